"""The slim side of a conversion: a network's layers, checkpoints in and out.

Builds the factory network in a graph of its own to learn its variables (in
creation order, which is the order of its layers) and its batch norms'
epsilons, writes converted values as a checkpoint, and reads one back.
"""

import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from core import atomic_files
from nets import nets_factory
from weights import layers as layers_lib

CHECKPOINT_INDEX_SUFFIX = '.index'


def _build(model_name, num_classes, image_size=None, **network_kwargs):
  """Builds the inference network into the default graph; returns its outputs."""
  network_fn = nets_factory.get_network_fn(model_name, num_classes,
                                           is_training=False)
  size = image_size or network_fn.default_image_size
  images = tf.placeholder(tf.float32, [None, size, size, 3], name='input')
  logits, end_points = network_fn(images, **network_kwargs)
  return images, logits, end_points


def _batch_norm_epsilons(graph):
  """'<layer>/BatchNorm' scope -> the epsilon its fused op computes with."""
  epsilons = {}
  for op in graph.get_operations():
    if op.type.startswith('FusedBatchNorm'):
      epsilons[op.name.rpartition('/')[0]] = op.get_attr('epsilon')
  return epsilons


def slim_layers(model_name, num_classes):
  """The SlimLayers of factory network `model_name` with `num_classes`."""
  with tf.Graph().as_default() as graph:
    _build(model_name, num_classes, image_size=32)
    shapes = [(v.op.name, v.shape.as_list()) for v in tf.global_variables()]
    return layers_lib.group_slim_variables(shapes,
                                           _batch_norm_epsilons(graph))


def checkpoint_files(prefix):
  """The files a checkpoint written by `write_checkpoint` consists of."""
  return [prefix + CHECKPOINT_INDEX_SUFFIX,
          prefix + '.data-00000-of-00001']


def write_checkpoint(values, prefix):
  """Writes `values` (slim variable name -> array) as checkpoint `prefix`.

  The checkpoint is written under a temporary name in the same directory
  and moved into place data first, index last, so `prefix` never names a
  half-written checkpoint (readers open the index first).
  """
  with atomic_files.scratch_directory(prefix) as scratch:
    scratch_prefix = os.path.join(scratch, os.path.basename(prefix))
    _save_values(values, scratch_prefix)
    for source, target in reversed(list(zip(checkpoint_files(scratch_prefix),
                                            checkpoint_files(prefix)))):
      atomic_files.commit_file(source, target)


def _save_values(values, prefix):
  """Saves {name: array} as a checkpoint without building the network."""
  with tf.Graph().as_default():
    feeds, variables = {}, {}
    for name, value in sorted(values.items()):
      initial = tf.placeholder(tf.float32, value.shape)
      variables[name] = tf.Variable(initial, name=name)
      feeds[initial] = value
    saver = tf.train.Saver(variables, write_version=tf.train.SaverDef.V2)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer(), feeds)
      saver.save(sess, prefix, write_meta_graph=False, write_state=False)


def read_checkpoint(prefix):
  """{variable name: array} of every variable in checkpoint `prefix`."""
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def run_network(model_name, num_classes, prefix, images, **network_kwargs):
  """(logits, probabilities) of the network restored from `prefix`.

  Args:
    images: float32 [batch, size, size, 3] in the network's input range.
    **network_kwargs: for the network, e.g. use_explicit_padding=True.
  """
  images = np.asarray(images, np.float32)
  with tf.Graph().as_default():
    inputs, logits, end_points = _build(model_name, num_classes,
                                        images.shape[1], **network_kwargs)
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as sess:
      saver.restore(sess, prefix)
      return sess.run([logits, end_points['Predictions']],
                      {inputs: images})
