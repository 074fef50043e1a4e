"""Helpers (no tests) shared by the network tests of V1, V2, V3 and EdgeTPU.

Placeholders and random batches, the comparison of outputs, the listing of
a built network in the form of the reference files under data/reference,
and the training-mode and checkpoint round trips every family must pass.
"""


import copy
import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf
import tf_slim as slim

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'data', 'reference')


def read_listing(filename):
  """[(name, shape)] from a reference listing: `name [d1,d2,...]` lines."""
  entries = []
  with open(os.path.join(REFERENCE_DIR, filename)) as f:
    for line in f:
      line = line.strip()
      if line:
        name, shape = line.rsplit(' ', 1)
        entries.append((name, [int(d) for d in shape.strip('[]').split(',')]))
  return entries


def built_listing(end_points):
  """What the reference listings describe, read off the default graph.

  Returns:
    dict with `variables` and `end_points` ([(name, shape)], in build
    order), `trainable` (the count of trainable parameters) and
    `predictions` (the op name of end_points['Predictions']).
  """
  return {
      'variables': [(v.op.name, v.get_shape().as_list())
                    for v in tf.global_variables()],
      'trainable': sum(int(np.prod(v.get_shape().as_list()))
                       for v in tf.trainable_variables()),
      'end_points': [(k, v.get_shape().as_list())
                     for k, v in end_points.items()],
      'predictions': end_points['Predictions'].op.name,
  }


def images(size=32, batch=1, channels=3):
  return tf.placeholder(tf.float32, [batch, size, size, channels])


def random_images(size, batch=1, seed=0):
  return np.random.RandomState(seed).uniform(
      -1, 1, [batch, size, size, 3]).astype(np.float32)


def assert_close(actual, expected):
  """Equal up to float rounding (op scheduling can reorder sums)."""
  scale = float(np.abs(expected).max())
  assert scale > 1e-3, 'outputs vanish; the comparison would be meaningless'
  np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def depth(tensor):
  return tensor.get_shape().as_list()[3]


def depthwise_rate(graph, scope):
  """The dilation of the depthwise convolution under `scope`."""
  for operation in graph.get_operations():
    if not operation.name.startswith(scope + '/'):
      continue
    if operation.type == 'SpaceToBatchND':
      return int(tf.get_static_value(operation.inputs[1])[0])
    if operation.type == 'DepthwiseConv2dNative':
      dilations = operation.get_attr('dilations')
      if dilations[1] > 1:
        return dilations[1]
  return 1


def without_batch_norm(conv_defs):
  """V2/V3 layers without batch norm: for shape-only tests, builds 2x faster."""
  conv_defs = copy.deepcopy(conv_defs)
  for params in conv_defs['defaults'].values():
    if 'normalizer_fn' in params:
      params['normalizer_fn'] = None
  return conv_defs


def moving_stats():
  """The batch norm moving means and variances of the default graph."""
  return [v for v in tf.global_variables() if 'moving_' in v.op.name]


def train_graph(build_logits, labels=(0, 1, 2, 3)):
  """A training step on a batch of four: loss, and UPDATE_OPS run first.

  Args:
    build_logits: `fn(images)` that builds the network (in its own arg
      scope) and returns the logits.
    labels: the batch's four labels.

  Returns:
    (the images placeholder, the train op).
  """
  inputs = images(32, batch=4)
  logits = build_logits(inputs)
  loss = tf.losses.sparse_softmax_cross_entropy(tf.constant(list(labels)),
                                                logits)
  with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
  return inputs, train_op


def spec_train_graph(net_module, conv_defs, is_training):
  """`train_graph` of a spec-built net (mobilenet_v2 or mobilenet_v3).

  Args:
    net_module: the module; its `training_scope` and `mobilenet` are used.
    conv_defs: the spec to build, with a 5-class head.
    is_training: passed to `training_scope`.
  """

  def build_logits(inputs):
    with slim.arg_scope(net_module.training_scope(is_training=is_training)):
      logits, _ = net_module.mobilenet(inputs, num_classes=5,
                                       conv_defs=conv_defs)
    return logits

  return train_graph(build_logits)


def values_around_a_step(inputs, train_op, tensors, fetches=()):
  """Runs one training step on random images in a fresh session.

  Args:
    inputs, train_op: from `train_graph`.
    tensors: what to read before and after the step.
    fetches: what to read in the step itself.

  Returns:
    (values of `tensors` before, after, [values of `fetches`]).
  """
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    before = sess.run(tensors)
    fetched = sess.run([train_op] + list(fetches),
                       {inputs: random_images(32, 4)})[1:]
    after = sess.run(tensors)
  return before, after, fetched


def check_step_updates_batch_norm(inputs, train_op, first_mean_name, decay,
                                  num_batch_norms):
  """A training step moves every statistic, the first mean by the rule.

  moving_mean <- decay * moving_mean + (1 - decay) * batch mean, from 0.

  Args:
    inputs, train_op: from `train_graph` in training mode.
    first_mean_name: the moving mean of the first convolution's batch norm.
    decay: the batch norm decay the network was built with.
    num_batch_norms: how many batch norms the network has.
  """
  # The first convolution's raw output, the input of the first batch norm.
  first_conv = [op for op in tf.get_default_graph().get_operations()
                if op.type == 'Conv2D'][0].outputs[0]
  stats = moving_stats()
  first_mean = [v.op.name for v in stats].index(first_mean_name)
  before, after, [conv] = values_around_a_step(inputs, train_op, stats,
                                               [first_conv])
  assert len(before) == 2 * num_batch_norms
  for old, new in zip(before, after):
    assert not np.array_equal(old, new)
  np.testing.assert_allclose(after[first_mean],
                             (1 - decay) * conv.mean(axis=(0, 1, 2)),
                             rtol=1e-3, atol=1e-8)


def check_step_leaves_batch_norm_alone(inputs, train_op, weights_name):
  """A step of an inference build trains `weights_name`, no statistic."""
  weights = [v for v in tf.trainable_variables()
             if v.op.name == weights_name][0]
  before, after, _ = values_around_a_step(inputs, train_op,
                                          moving_stats() + [weights])
  for old, new in zip(before[:-1], after[:-1]):
    np.testing.assert_array_equal(old, new)
  assert not np.allclose(before[-1], after[-1])


def check_checkpoint_restores(build_output, prefix, variables=moving_stats):
  """A saved build, restored into a fresh graph, computes the same output.

  The saved values of `variables()` are random in [0.5, 1.5] rather than
  their initial ones, so that restoring them makes a visible difference.

  Args:
    build_output: `fn(images)` that builds the network on a batch of two
      and returns the output tensor to compare.
    prefix: the checkpoint path prefix to write.
    variables: `fn()` listing the variables to set before saving.
  """
  data = random_images(32, batch=2)

  def build():
    inputs = images(32, batch=2)
    return inputs, build_output(inputs)

  with tf.Graph().as_default():
    inputs, output = build()
    rng = np.random.RandomState(1)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for v in variables():
        v.load(rng.uniform(0.5, 1.5, v.get_shape().as_list()).astype(
            np.float32), sess)
      expected = sess.run(output, {inputs: data})
      tf.train.Saver().save(sess, prefix)

  with tf.Graph().as_default():
    inputs, output = build()
    saved = {name for name, _ in tf.train.list_variables(prefix)}
    assert saved == {v.op.name for v in tf.global_variables()}
    with tf.Session() as sess:
      tf.train.Saver().restore(sess, prefix)
      assert_close(sess.run(output, {inputs: data}), expected)
