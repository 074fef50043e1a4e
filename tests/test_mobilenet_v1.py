"""Tests of nets/mobilenet_v1.py against the released-checkpoint contract.

Full-size (224, depth 1.0) graphs are only built and compared with the
reference listings; every option is exercised on small inputs with depth
multiplier 0.25. Shape-only tests build without the arg scope (no batch
norm), which makes graph construction several times cheaper.
"""


import contextlib

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets import mobilenet_v1
from tests.net_helpers import assert_close
from tests.net_helpers import built_listing
from tests.net_helpers import check_checkpoint_restores
from tests.net_helpers import check_step_leaves_batch_norm_alone
from tests.net_helpers import check_step_updates_batch_norm
from tests.net_helpers import depthwise_rate
from tests.net_helpers import images
from tests.net_helpers import random_images
from tests.net_helpers import read_listing
from tests.net_helpers import train_graph

# Depths of the 14 layers in the MobileNet V1 paper (Table 1).
PAPER_DEPTHS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512,
                1024, 1024]

# The first four layers of the network (7 batch norms, 4 regularized
# convolutions with the logits): batch norm, regularizer and training
# mechanics are per layer, and a short net keeps those tests fast.
SHORT_CONV_DEFS = [
    mobilenet_v1.Conv(kernel=[3, 3], stride=2, depth=32),
    mobilenet_v1.DepthSepConv(kernel=[3, 3], stride=1, depth=64),
    mobilenet_v1.DepthSepConv(kernel=[3, 3], stride=2, depth=128),
    mobilenet_v1.DepthSepConv(kernel=[3, 3], stride=1, depth=128),
]
SHORT_BATCH_NORMS = 7


@contextlib.contextmanager
def well_scaled():
  """Initializers that keep activations O(1) without batch norm.

  Builds without the arg scope (no batch norm) are cheap; variance-preserving
  initializers (He for convolutions, stddev 1/2 for 3x3 depthwise filters)
  keep their outputs far from zero, so numeric comparisons mean something.
  """
  with slim.arg_scope([slim.separable_conv2d],
                      weights_initializer=tf.truncated_normal_initializer(
                          stddev=0.5)), \
      slim.arg_scope([slim.conv2d],
                     weights_initializer=tf.variance_scaling_initializer(
                         scale=2.0)):
    yield


@pytest.fixture(scope='module')
def reference_build():
  """The 1.0 / 224 / 1001-class network, built once for the contract tests."""
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.placeholder(tf.float32, [1, 224, 224, 3], name='input')
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(is_training=False)):
      logits, end_points = mobilenet_v1.mobilenet_v1(inputs, num_classes=1001,
                                                     is_training=False)
    return dict(
        built_listing(end_points),
        logits=logits.get_shape().as_list(),
        relu6=sum(op.type == 'Relu6' for op in graph.get_operations()))


# The contract: names and shapes of the released checkpoints.


def test_variables_match_released_checkpoint(reference_build):
  assert reference_build['variables'] == read_listing(
      'mobilenet_v1_1.0_224.variables.txt')


def test_end_points_match_reference(reference_build):
  assert reference_build['end_points'] == read_listing(
      'mobilenet_v1_1.0_224.end_points.txt')


def test_trainable_parameter_count(reference_build):
  assert reference_build['trainable'] == 4233001


def test_exported_output_node_name(reference_build):
  assert reference_build['predictions'] == 'MobilenetV1/Predictions/Reshape_1'
  assert reference_build['logits'] == [1, 1001]


def test_relu6_after_every_convolution(reference_build):
  # Conv2d_0 and the 13 depthwise and 13 pointwise convolutions.
  assert reference_build['relu6'] == 27


def test_default_image_size_on_every_variant():
  for fn in (mobilenet_v1.mobilenet_v1, mobilenet_v1.mobilenet_v1_075,
             mobilenet_v1.mobilenet_v1_050, mobilenet_v1.mobilenet_v1_025):
    assert fn.default_image_size == 224


# Depth multiplier, min_depth, conv_defs.


@pytest.mark.parametrize('variant,multiplier', [
    (mobilenet_v1.mobilenet_v1_075, 0.75),
    (mobilenet_v1.mobilenet_v1_050, 0.5),
    (mobilenet_v1.mobilenet_v1_025, 0.25),
])
def test_depth_multiplier_variants_scale_every_layer(variant, multiplier):
  _, end_points = variant(images(32), num_classes=10)
  for i, depth in enumerate(PAPER_DEPTHS):
    name = 'Conv2d_0' if i == 0 else 'Conv2d_%d_pointwise' % i
    assert end_points[name].get_shape().as_list()[3] == int(depth * multiplier)
    if i:
      # A depthwise layer keeps its input depth.
      assert (end_points['Conv2d_%d_depthwise' % i].get_shape().as_list()[3] ==
              int(PAPER_DEPTHS[i - 1] * multiplier))


def test_min_depth_floors_small_layers():
  _, end_points = mobilenet_v1.mobilenet_v1_base(
      images(32), depth_multiplier=0.1, min_depth=16)
  # 32 * 0.1 = 3 -> 16; 1024 * 0.1 = 102 stays.
  assert end_points['Conv2d_0'].get_shape().as_list()[3] == 16
  assert end_points['Conv2d_1_pointwise'].get_shape().as_list()[3] == 16
  assert end_points['Conv2d_13_pointwise'].get_shape().as_list()[3] == 102


@pytest.mark.parametrize('multiplier', [0, -0.5, None])
def test_non_positive_depth_multiplier_is_rejected(multiplier):
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v1.mobilenet_v1(images(32), num_classes=10,
                              depth_multiplier=multiplier)
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v1.mobilenet_v1_base(images(32), depth_multiplier=multiplier)


def test_custom_conv_defs():
  conv_defs = [
      mobilenet_v1.Conv(kernel=[3, 3], stride=2, depth=16),
      mobilenet_v1.DepthSepConv(kernel=[3, 3], stride=2, depth=24),
      mobilenet_v1.DepthSepConv(kernel=[5, 5], stride=1, depth=40),
  ]
  net, end_points = mobilenet_v1.mobilenet_v1_base(
      images(32), final_endpoint='Conv2d_2_pointwise', conv_defs=conv_defs)
  assert list(end_points) == ['Conv2d_0', 'Conv2d_1_depthwise',
                              'Conv2d_1_pointwise', 'Conv2d_2_depthwise',
                              'Conv2d_2_pointwise']
  assert net.get_shape().as_list() == [1, 8, 8, 40]
  kernel = [v for v in tf.global_variables()
            if v.op.name == 'MobilenetV1/Conv2d_2_depthwise/depthwise_weights']
  assert kernel[0].get_shape().as_list() == [5, 5, 24, 1]


def test_bad_conv_defs_entry_is_rejected():
  with pytest.raises(ValueError, match='Conv or DepthSepConv'):
    mobilenet_v1.mobilenet_v1_base(images(32), conv_defs=[('conv', 3, 2, 32)])


# final_endpoint.


@pytest.mark.slow  # 27 partial builds (~10 s of CPU on TF 2)
def test_every_final_endpoint_stops_there():
  names = [name for name, _ in read_listing(
      'mobilenet_v1_1.0_224.end_points.txt') if name.startswith('Conv2d_')]
  inputs = images(32)
  # Variables come from the first (full) build; the others reuse them, which
  # keeps this loop cheap.
  mobilenet_v1.mobilenet_v1_base(inputs, depth_multiplier=0.25,
                                 scope='MobilenetV1')
  with tf.variable_scope(tf.get_variable_scope(), reuse=True):
    for i, name in enumerate(names):
      net, end_points = mobilenet_v1.mobilenet_v1_base(
          inputs, final_endpoint=name, depth_multiplier=0.25,
          scope='MobilenetV1')
      assert list(end_points) == names[:i + 1]
      assert net is end_points[name]


def test_unknown_final_endpoint_lists_valid_names():
  with pytest.raises(ValueError) as info:
    mobilenet_v1.mobilenet_v1_base(images(32), final_endpoint='Conv2d_14')
  message = str(info.value)
  assert 'final_endpoint' in message and "'Conv2d_14'" in message
  assert 'Conv2d_0' in message and 'Conv2d_13_pointwise' in message


# output_stride (atrous) and explicit padding.


def test_output_stride_uses_atrous_convolution(fresh_graph):
  inputs = images(64)
  with well_scaled():
    base, _ = mobilenet_v1.mobilenet_v1_base(inputs, depth_multiplier=0.25,
                                             scope='MobilenetV1')
  num_variables = len(tf.global_variables())
  outputs = {}
  with tf.variable_scope(tf.get_variable_scope(), reuse=True):
    for stride in (32, 16, 8):
      outputs[stride], _ = mobilenet_v1.mobilenet_v1_base(
          inputs, depth_multiplier=0.25, output_stride=stride,
          scope='MobilenetV1')
  # Same variables, only the resolution changes.
  assert len(tf.global_variables()) == num_variables
  assert base.get_shape().as_list() == [1, 2, 2, 256]
  assert outputs[32].get_shape().as_list() == [1, 2, 2, 256]
  assert outputs[16].get_shape().as_list() == [1, 4, 4, 256]
  assert outputs[8].get_shape().as_list() == [1, 8, 8, 256]
  # Stride 8: layer 6 (the first skipped stride) keeps rate 1, layers 7-12
  # run at rate 2, layer 13 at rate 4.
  stride8_scope = outputs[8].op.name.split('/')[0]
  rates = [depthwise_rate(fresh_graph,
                           '%s/Conv2d_%d_depthwise' % (stride8_scope, i))
           for i in range(6, 14)]
  assert rates == [1, 2, 2, 2, 2, 2, 2, 4]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    plain, stride32 = sess.run([base, outputs[32]],
                               {inputs: random_images(64)})
  assert_close(stride32, plain)


@pytest.mark.parametrize('stride', [4, 12, 64, 0])
def test_invalid_output_stride_is_rejected(stride):
  with pytest.raises(ValueError, match='output_stride.*8, 16, 32'):
    mobilenet_v1.mobilenet_v1_base(images(32), output_stride=stride)


def test_explicit_padding_matches_same_padding_only_on_odd_inputs():
  # With odd sizes (65 -> 33 -> 17 -> 9) SAME pads 1 on each side, exactly
  # like the explicit padding; with even sizes SAME pads only at the end.
  inputs = tf.placeholder(tf.float32, [1, None, None, 3])
  with well_scaled():
    same, _ = mobilenet_v1.mobilenet_v1_base(
        inputs, final_endpoint='Conv2d_5_pointwise', depth_multiplier=0.25,
        scope='MobilenetV1')
  with tf.variable_scope(tf.get_variable_scope(), reuse=True):
    explicit, _ = mobilenet_v1.mobilenet_v1_base(
        inputs, final_endpoint='Conv2d_5_pointwise', depth_multiplier=0.25,
        use_explicit_padding=True, scope='MobilenetV1')
  graph = tf.get_default_graph()
  explicit_scope = explicit.op.name.split('/')[0]
  convs = [op for op in graph.get_operations()
           if op.name.startswith(explicit_scope + '/') and
           op.type in ('Conv2D', 'DepthwiseConv2dNative')]
  assert convs and all(op.get_attr('padding') == b'VALID' for op in convs)
  assert any(op.type == 'Pad' for op in graph.get_operations()
             if op.name.startswith(explicit_scope + '/'))
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    odd = sess.run([same, explicit], {inputs: random_images(65)})
    even = sess.run([same, explicit], {inputs: random_images(64)})
  assert odd[0].shape == odd[1].shape == (1, 9, 9, 64)
  assert_close(odd[1], odd[0])
  assert even[0].shape == even[1].shape == (1, 8, 8, 64)
  assert np.abs(even[0] - even[1]).max() > 1e-2 * np.abs(even[0]).max()


def test_explicit_padding_static_shapes():
  for size, expected in ((64, 2), (65, 3)):
    with tf.Graph().as_default():
      net, _ = mobilenet_v1.mobilenet_v1_base(
          images(size), depth_multiplier=0.25, use_explicit_padding=True)
      assert net.get_shape().as_list() == [1, expected, expected, 256]


def test_ssd_feature_extractor_call_shape():
  # As SSD does: the detector's batch norm scope outside, the network's arg
  # scope leaving batch norm's mode alone and decaying depthwise filters too.
  with slim.arg_scope([slim.batch_norm], is_training=False), \
      slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(
          is_training=None, regularize_depthwise=True)):
    with tf.variable_scope('MobilenetV1', reuse=None) as scope:
      _, end_points = mobilenet_v1.mobilenet_v1_base(
          images(64), final_endpoint='Conv2d_13_pointwise', min_depth=16,
          depth_multiplier=0.25, use_explicit_padding=True, scope=scope)
  assert end_points['Conv2d_11_pointwise'].get_shape().as_list() == [
      1, 4, 4, 128]
  assert end_points['Conv2d_13_pointwise'].get_shape().as_list() == [
      1, 2, 2, 256]
  # 32 * 0.25 = 8, raised to min_depth.
  assert end_points['Conv2d_0'].get_shape().as_list()[3] == 16
  variables = [v.op.name for v in tf.global_variables()]
  assert variables[0] == 'MobilenetV1/Conv2d_0/weights'
  assert all(name.startswith('MobilenetV1/Conv2d_') for name in variables)
  # All 27 convolutions, depthwise included, are regularized.
  assert len(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)) == 27
  assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)


# Classifier head options.


def test_small_input_reduces_the_pooling_kernel():
  logits, end_points = mobilenet_v1.mobilenet_v1(
      images(64), num_classes=10, depth_multiplier=0.25)
  assert end_points['AvgPool_1a'].get_shape().as_list() == [1, 1, 1, 256]
  assert logits.get_shape().as_list() == [1, 10]


def test_fixed_pool_on_large_input_and_global_pool():
  # 320 -> 10x10 features: the 7x7 (stride 2, VALID) pool leaves 2x2
  # unless pooling globally.
  inputs = images(320)
  logits, end_points = mobilenet_v1.mobilenet_v1(
      inputs, num_classes=10, depth_multiplier=0.25, spatial_squeeze=False)
  assert end_points['AvgPool_1a'].get_shape().as_list() == [1, 2, 2, 256]
  assert logits.get_shape().as_list() == [1, 2, 2, 10]
  logits, end_points = mobilenet_v1.mobilenet_v1(
      inputs, num_classes=10, depth_multiplier=0.25, global_pool=True,
      reuse=True)
  assert 'AvgPool_1a' not in end_points
  assert end_points['global_pool'].get_shape().as_list() == [1, 1, 1, 256]
  assert logits.get_shape().as_list() == [1, 10]


# The head does not depend on the body: these tests put it on the short net.


def test_global_pool_with_unknown_spatial_size():
  inputs = tf.placeholder(tf.float32, [2, None, None, 3])
  logits, _ = mobilenet_v1.mobilenet_v1(inputs, num_classes=7,
                                        conv_defs=SHORT_CONV_DEFS,
                                        global_pool=True)
  assert logits.get_shape().as_list() == [2, 7]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for size in (40, 57):
      assert sess.run(logits, {inputs: random_images(size, batch=2)}).shape == (
          2, 7)


def test_spatial_squeeze_off_keeps_4d_logits():
  logits, end_points = mobilenet_v1.mobilenet_v1(
      images(32), num_classes=10, conv_defs=SHORT_CONV_DEFS,
      spatial_squeeze=False)
  assert logits.get_shape().as_list() == [1, 1, 1, 10]
  assert end_points['Predictions'].get_shape().as_list() == [1, 1, 1, 10]


def test_no_classes_returns_pooled_features():
  net, end_points = mobilenet_v1.mobilenet_v1(images(32), num_classes=0,
                                              conv_defs=SHORT_CONV_DEFS)
  assert net.get_shape().as_list() == [1, 1, 1, 128]
  assert 'Logits' not in end_points
  assert not [v for v in tf.global_variables() if 'Logits' in v.op.name]


def test_prediction_fn_and_scope():
  def sigmoid(logits, scope=None):
    return tf.nn.sigmoid(logits, name=scope)

  logits, end_points = mobilenet_v1.mobilenet_v1(
      images(32), num_classes=5, conv_defs=SHORT_CONV_DEFS,
      prediction_fn=sigmoid, scope='Custom')
  assert end_points['Predictions'].op.type == 'Sigmoid'
  assert end_points['Predictions'].op.inputs[0] is logits
  assert all(v.op.name.startswith('Custom/') for v in tf.global_variables())
  _, end_points = mobilenet_v1.mobilenet_v1(
      images(32), num_classes=5, conv_defs=SHORT_CONV_DEFS, prediction_fn=None,
      scope='NoPredictions')
  assert 'Predictions' not in end_points


def test_reuse_shares_every_variable():
  inputs = images(32)
  # is_training=False: dropout would make the towers differ.
  with well_scaled():
    first, _ = mobilenet_v1.mobilenet_v1(inputs, num_classes=10,
                                         conv_defs=SHORT_CONV_DEFS,
                                         is_training=False)
  count = len(tf.global_variables())
  second, _ = mobilenet_v1.mobilenet_v1(inputs, num_classes=10,
                                        conv_defs=SHORT_CONV_DEFS,
                                        is_training=False, reuse=True)
  assert len(tf.global_variables()) == count
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    a, b = sess.run([first, second], {inputs: random_images(32)})
  assert_close(b, a)


def test_dropout_keep_prob_in_training_only():
  inputs = images(32)
  with well_scaled():
    dropped, _ = mobilenet_v1.mobilenet_v1(
        inputs, num_classes=10, conv_defs=SHORT_CONV_DEFS,
        dropout_keep_prob=0.5, is_training=True)
  kept, _ = mobilenet_v1.mobilenet_v1(
      inputs, num_classes=10, conv_defs=SHORT_CONV_DEFS, dropout_keep_prob=0.5,
      is_training=False, reuse=True)
  feed = {inputs: random_images(32)}
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    assert not np.array_equal(sess.run(dropped, feed), sess.run(dropped, feed))
    assert_close(sess.run(kept, feed), sess.run(kept, feed))


@pytest.mark.parametrize('rank', [3, 5])
def test_wrong_input_rank_is_rejected(rank):
  inputs = tf.placeholder(tf.float32, [32] * (rank - 1) + [3])
  with pytest.raises(ValueError, match='rank-4'):
    mobilenet_v1.mobilenet_v1(inputs, num_classes=10)
  with pytest.raises(ValueError, match='rank-4'):
    mobilenet_v1.mobilenet_v1_base(inputs)


# Arg scope, batch norm and training.


def _batch_norm_update_count():
  return len(tf.get_collection(tf.GraphKeys.UPDATE_OPS))


@pytest.mark.parametrize('outer_is_training', [True, False])
def test_is_training_none_defers_to_outer_scope(outer_is_training):
  # As detection code does: the caller's batch norm scope outside, the
  # network's arg scope (made inside it) leaving the mode alone.
  with slim.arg_scope([slim.batch_norm], is_training=outer_is_training):
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(is_training=None)):
      mobilenet_v1.mobilenet_v1_base(images(32), depth_multiplier=0.25,
                                     final_endpoint='Conv2d_2_pointwise')
      mobilenet_v1.mobilenet_v1(images(32), num_classes=10, scope='Classifier',
                                conv_defs=SHORT_CONV_DEFS, is_training=None)
  # 5 batch norms in the base + 7 in the classifier, 2 updates each.
  expected = 2 * (5 + SHORT_BATCH_NORMS) if outer_is_training else 0
  assert _batch_norm_update_count() == expected


def test_arg_scope_regularizes_depthwise_only_on_request():
  with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
    mobilenet_v1.mobilenet_v1(images(32), num_classes=10,
                              conv_defs=SHORT_CONV_DEFS)
  losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
  # Conv2d_0, 3 pointwise convolutions and the logits decay; depthwise not.
  assert len(losses) == 5
  weights = [v for v in tf.global_variables()
             if v.op.name == 'MobilenetV1/Conv2d_0/weights'][0]
  with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(
      regularize_depthwise=True, weight_decay=0.01)):
    mobilenet_v1.mobilenet_v1(images(32), num_classes=10,
                              conv_defs=SHORT_CONV_DEFS, scope='Regularized')
  losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
  assert len(losses) == 5 + 8
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    loss, w = sess.run([losses[0], weights])
    # Default weight decay 4e-5 on 0.5 * sum(w^2); stddev-0.09 truncated
    # normal init (the truncation at 2 stddev leaves a std of ~0.079).
    np.testing.assert_allclose(loss, 4e-5 * 0.5 * np.sum(w ** 2), rtol=1e-5)
  big = [v for v in tf.global_variables()
         if v.op.name == 'MobilenetV1/Conv2d_3_pointwise/weights'][0]
  with tf.Session() as sess:
    sess.run(big.initializer)
    assert 0.075 < sess.run(big).std() < 0.084


def _train_graph(is_training):
  """A small classifier with a loss and a train op honouring UPDATE_OPS."""

  def build_logits(inputs):
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(
        is_training=is_training)):
      logits, _ = mobilenet_v1.mobilenet_v1(inputs, num_classes=5,
                                            conv_defs=SHORT_CONV_DEFS,
                                            is_training=is_training)
    return logits

  return train_graph(build_logits, labels=(1, 2, 3, 4))


def test_training_step_updates_batch_norm_statistics():
  inputs, train_op = _train_graph(is_training=True)
  # mobilenet_v1_arg_scope's batch norm decay is 0.9997.
  check_step_updates_batch_norm(
      inputs, train_op, 'MobilenetV1/Conv2d_0/BatchNorm/moving_mean',
      decay=0.9997, num_batch_norms=SHORT_BATCH_NORMS)


def test_inference_build_leaves_batch_norm_statistics_alone():
  inputs, train_op = _train_graph(is_training=False)
  assert _batch_norm_update_count() == 0
  check_step_leaves_batch_norm_alone(
      inputs, train_op, 'MobilenetV1/Conv2d_3_pointwise/weights')


def test_checkpoint_restores_into_fresh_build(tmp_path):

  def build_predictions(inputs):
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(is_training=False)):
      _, end_points = mobilenet_v1.mobilenet_v1(
          inputs, num_classes=10, conv_defs=SHORT_CONV_DEFS, is_training=False)
    return end_points['Predictions']

  # Non-default batch norm statistics, so restoring them is visible.
  check_checkpoint_restores(build_predictions, str(tmp_path / 'model.ckpt'))
