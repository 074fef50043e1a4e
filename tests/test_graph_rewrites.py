"""Tests of export/graph_rewrites.py: batch norm folding of frozen graphs."""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from export import graph_rewrites

_EPSILON = 0.001


def _bn_params(rng, channels):
  return [tf.constant(v.astype(np.float32)) for v in (
      rng.uniform(0.5, 2.0, channels),     # gamma
      rng.uniform(-1.0, 1.0, channels),    # beta
      rng.uniform(-1.0, 1.0, channels),    # moving mean
      rng.uniform(0.2, 3.0, channels))]    # moving variance


def _frozen_graph(build):
  """Builds `build(images, rng)` on constants; returns (graph_def, output)."""
  rng = np.random.RandomState(0)
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [2, 9, 9, 3], name='input')
    output = tf.identity(build(images, rng), name='output')
  return graph.as_graph_def(), output.op.name


def _run(graph_def, images):
  with tf.Graph().as_default() as graph:
    tf.import_graph_def(graph_def, name='')
    with tf.Session(graph=graph) as sess:
      return sess.run('output:0', {'input:0': images})


def _conv_bn_relu6(images, rng):
  weights = tf.constant(rng.normal(size=[3, 3, 3, 4]).astype(np.float32))
  net = tf.nn.conv2d(images, tf.identity(weights), [1, 2, 2, 1], 'SAME')
  gamma, beta, mean, variance = _bn_params(rng, 4)
  net, _, _ = tf.nn.fused_batch_norm(net, gamma, beta, mean, variance,
                                     epsilon=_EPSILON, is_training=False)
  return tf.nn.relu6(net)


def _depthwise_bn(images, rng):
  # Channel multiplier 2: output channel c * 2 + k, the layout to get right.
  weights = tf.constant(rng.normal(size=[3, 3, 3, 2]).astype(np.float32))
  net = tf.nn.depthwise_conv2d(images, weights, [1, 1, 1, 1], 'SAME')
  gamma, beta, mean, variance = _bn_params(rng, 6)
  net, _, _ = tf.nn.fused_batch_norm(net, gamma, beta, mean, variance,
                                     epsilon=_EPSILON, is_training=False)
  return net


@pytest.mark.parametrize('build', [_conv_bn_relu6, _depthwise_bn])
def test_folding_keeps_outputs_and_removes_batch_norms(build):
  graph_def, output = _frozen_graph(build)
  folded, count = graph_rewrites.fold_batch_norms(graph_def, [output])
  assert count == 1
  ops = [n.op for n in folded.node]
  assert not [op for op in ops if op.startswith('FusedBatchNorm')]
  assert 'BiasAdd' in ops
  images = np.random.RandomState(1).uniform(-1, 1, [2, 9, 9, 3]).astype(
      np.float32)
  expected = _run(graph_def, images)
  np.testing.assert_allclose(_run(folded, images), expected, rtol=1e-5,
                             atol=1e-5)
  # The input graph is left as it was.
  assert [n.op for n in graph_def.node if n.op.startswith('FusedBatchNorm')]


def test_convolution_read_elsewhere_is_not_folded():
  def build(images, rng):
    weights = tf.constant(rng.normal(size=[1, 1, 3, 3]).astype(np.float32))
    conv = tf.nn.conv2d(images, weights, [1, 1, 1, 1], 'SAME')
    net, _, _ = tf.nn.fused_batch_norm(conv, *_bn_params(rng, 3),
                                       epsilon=_EPSILON, is_training=False)
    return net + conv  # Scaling the weights would change this `conv`.
  graph_def, output = _frozen_graph(build)
  folded, count = graph_rewrites.fold_batch_norms(graph_def, [output])
  assert count == 0
  assert folded == graph_def


def test_training_mode_batch_norm_is_not_folded():
  def build(images, rng):
    weights = tf.constant(rng.normal(size=[1, 1, 3, 3]).astype(np.float32))
    conv = tf.nn.conv2d(images, weights, [1, 1, 1, 1], 'SAME')
    gamma, beta, _, _ = _bn_params(rng, 3)
    net, _, _ = tf.nn.fused_batch_norm(conv, gamma, beta, epsilon=_EPSILON,
                                       is_training=True)
    return net
  graph_def, output = _frozen_graph(build)
  _, count = graph_rewrites.fold_batch_norms(graph_def, [output])
  assert count == 0
