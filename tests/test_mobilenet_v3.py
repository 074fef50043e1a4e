"""Tests of MobileNet V3 and MobileNet-EdgeTPU (nets/mobilenet/mobilenet_v3.py).

The 224 / depth 1.0 graphs are built (not run) and compared with the
reference listings of the released checkpoints; everything that runs uses
small inputs or the first layers of a spec (`SHORT`).
"""


import copy
import re

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets import nets_factory
from nets.mobilenet import conv_blocks
from nets.mobilenet import mobilenet
from nets.mobilenet import mobilenet_v3
from tests.net_helpers import assert_close
from tests.net_helpers import built_listing
from tests.net_helpers import check_checkpoint_restores
from tests.net_helpers import depth
from tests.net_helpers import depthwise_rate
from tests.net_helpers import images
from tests.net_helpers import moving_stats
from tests.net_helpers import random_images
from tests.net_helpers import read_listing
from tests.net_helpers import spec_train_graph
from tests.net_helpers import values_around_a_step
from tests.net_helpers import without_batch_norm

# Factory name -> reference listing prefix.
RELEASED = {
    'mobilenet_v3_large': 'mobilenet_v3_large_1.0_224',
    'mobilenet_v3_small': 'mobilenet_v3_small_1.0_224',
    'mobilenet_v3_large_minimalistic': 'mobilenet_v3_large_minimalistic_1.0_224',
    'mobilenet_v3_small_minimalistic': 'mobilenet_v3_small_minimalistic_1.0_224',
    'mobilenet_edgetpu': 'mobilenet_edgetpu_1.0_224',
    'mobilenet_edgetpu_075': 'mobilenet_edgetpu_0.75_224',
}

# V3 Large's first conv (hard-swish), a plain block, a strided
# squeeze-excite block (5x5) and the ungated last 1x1 conv: stride 4.
SHORT = dict(defaults=mobilenet_v3.V3_LARGE['defaults'],
             spec=[mobilenet_v3.V3_LARGE['spec'][i] for i in (0, 3, 4)] +
             [mobilenet_v3.V3_LARGE['spec'][-1]])
# Conv + (expand, depthwise, project) x 2.
SHORT_BATCH_NORMS = 7
# Shape-only tests build without batch norm (about twice as fast).
LARGE_WITHOUT_BN = without_batch_norm(mobilenet_v3.V3_LARGE)
SMALL_WITHOUT_BN = without_batch_norm(mobilenet_v3.V3_SMALL)


def _layer_order(entry):
  """Sort key of the reference end_points: layer number, then name."""
  match = re.match(r'layer_(\d+)(.*)', entry[0])
  if match:
    return (0, int(match.group(1)), match.group(2))
  return (1, 0, entry[0])


@pytest.fixture(scope='module', params=[
    pytest.param(name, marks=pytest.mark.slow) for name in sorted(RELEASED)])
def released_build(request):
  """A 1.0 (or 0.75) / 224 / 1001-class network as the factory builds it."""
  graph = tf.Graph()
  with graph.as_default():
    network_fn = nets_factory.get_network_fn(request.param, num_classes=1001)
    _, end_points = network_fn(
        tf.placeholder(tf.float32, [1, 224, 224, 3], name='input'))
    return dict(
        built_listing(end_points),
        name=request.param,
        op_types=[op.type for op in graph.get_operations()],
        op_names=[op.name for op in graph.get_operations()])


# The contract with the released checkpoints.


def test_variables_match_released_checkpoint(released_build):
  assert released_build['variables'] == read_listing(
      RELEASED[released_build['name']] + '.variables.txt')


def test_end_points_match_reference(released_build):
  ours = sorted(released_build['end_points'], key=_layer_order)
  assert ours == read_listing(
      RELEASED[released_build['name']] + '.end_points.txt')


def test_trainable_parameters_are_the_checkpoints(released_build):
  listed = read_listing(RELEASED[released_build['name']] + '.variables.txt')
  expected = sum(int(np.prod(shape)) for name, shape in listed
                 if 'moving_' not in name)
  assert released_build['trainable'] == expected


def test_prediction_node_names(released_build):
  scope = ('MobilenetEdgeTPU' if 'edgetpu' in released_build['name']
           else 'MobilenetV3')
  assert released_build['predictions'] == scope + '/Predictions/Reshape_1'


def test_activations_of_each_variant(released_build):
  name = released_build['name']
  hard_swish_ops = [n for n in released_build['op_names']
                    if '/hard_swish/' in n]
  squeeze_ops = [n for n in released_build['op_names']
                 if '/squeeze_excite/' in n]
  if name in ('mobilenet_v3_large', 'mobilenet_v3_small'):
    assert hard_swish_ops and squeeze_ops
  else:  # Minimalistic and EdgeTPU: ReLU only, no squeeze-excite.
    assert not hard_swish_ops and not squeeze_ops
  if 'edgetpu' in name:
    # Fused blocks 2-10: no depthwise there; blocks 11-23 have one each.
    assert released_build['op_types'].count('DepthwiseConv2dNative') == 13


def test_head_reduce_and_ungated_last_conv():
  _, end_points = mobilenet_v3.large(images(64), num_classes=10)
  # layer_18 is the 1x1 reduce pool, layer_19 the 1x1 conv without BN.
  assert end_points['layer_18'].get_shape().as_list() == [1, 1, 1, 960]
  assert end_points['layer_18'].op.type == 'AvgPool'
  names = [v.op.name for v in tf.global_variables()]
  assert 'MobilenetV3/Conv_2/biases' in names
  assert not [n for n in names if n.startswith('MobilenetV3/Conv_2/Batch')]
  assert end_points['layer_19'].op.name.startswith(
      'MobilenetV3/Conv_2/hard_swish/')


# Numerics of the building blocks.


def test_hard_swish_values():
  x = np.linspace(-6, 6, 97).astype(np.float32)
  with tf.Session() as sess:
    got = sess.run(mobilenet_v3.hard_swish(tf.constant(x)))
  np.testing.assert_allclose(got, x * np.clip(x + 3, 0, 6) / 6, atol=1e-6)


def test_squeeze_excite_numerics_and_width():
  data = random_images(6, batch=2).repeat(8, axis=3)  # 24 channels
  inputs = tf.constant(data)
  output = mobilenet_v3.squeeze_excite(inputs)
  variables = {v.op.name: v for v in tf.global_variables()}
  # 24 / 4 = 6 rounds up to 8 (divisible by 8).
  assert variables['squeeze_excite/Conv/weights'].get_shape().as_list() == [
      1, 1, 24, 8]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for name in ('squeeze_excite/Conv/biases', 'squeeze_excite/Conv_1/biases'):
      variables[name].load(np.random.RandomState(3).uniform(
          -1, 1, variables[name].get_shape().as_list()), sess)
    got, values = sess.run([output, variables])
  pooled = data.mean(axis=(1, 2))
  squeezed = np.maximum(
      pooled.dot(values['squeeze_excite/Conv/weights'][0, 0]) +
      values['squeeze_excite/Conv/biases'], 0)
  logits = (squeezed.dot(values['squeeze_excite/Conv_1/weights'][0, 0]) +
            values['squeeze_excite/Conv_1/biases'])
  gate = np.clip(logits + 3, 0, 6) * 0.16667
  assert_close(got, data * gate[:, None, None, :])


def test_squeeze_excite_comes_after_the_depthwise_conv():
  mobilenet_v3.mobilenet_base(images(32), conv_defs=SHORT)
  graph = tf.get_default_graph()
  pooled = [op for op in graph.get_operations()
            if op.name.startswith('MobilenetV3/expanded_conv_1/squeeze_excite')
            and op.type == 'Mean'][0]
  assert pooled.inputs[0].op.name == (
      'MobilenetV3/expanded_conv_1/depthwise_output')


def test_fused_block_uses_a_full_expansion_conv():
  _, end_points = mobilenet_v3.edge_tpu(images(32), final_endpoint='layer_3',
                                        num_classes=0)
  shapes = {v.op.name: v.get_shape().as_list() for v in tf.global_variables()}
  assert shapes['MobilenetEdgeTPU/expanded_conv_1/expand/weights'] == [
      3, 3, 16, 128]
  assert 'layer_3/depthwise_output' not in end_points
  # The stride sits in the expansion conv.
  assert end_points['layer_3/expansion_output'].get_shape().as_list() == [
      1, 8, 8, 128]


# Shapes, strides, padding, widths.


@pytest.mark.parametrize('size', [32, 96])
def test_shapes_at_several_sizes(size):
  _, end_points = mobilenet_v3.small(images(size), num_classes=7,
                                     conv_defs=SMALL_WITHOUT_BN)
  assert end_points['layer_12'].get_shape().as_list() == [
      1, size // 32, size // 32, 96]
  assert end_points['Logits'].get_shape().as_list() == [1, 7]
  # The reduce layer pools a square map whole.
  assert end_points['layer_14'].get_shape().as_list() == [1, 1, 1, 576]


# Rates of the depthwise convs of V3 Large's layers 8-16 (layer_N is
# expanded_conv_{N-2}); strides 2 at layers 1, 3, 5, 8 and 14. At 16, layer
# 14 gives up its stride and later layers dilate by 2; at 8, layer 8 does
# and later layers dilate by 2, by 4 after layer 14.
@pytest.mark.parametrize('output_stride,rates', [
    (32, [1] * 9),
    (16, [1] * 7 + [2] * 2),
    (8, [1] + [2] * 6 + [4] * 2),
])
def test_output_stride(output_stride, rates, fresh_graph):
  net, _ = mobilenet_v3.mobilenet_base(
      images(64), output_stride=output_stride, final_endpoint='layer_17',
      conv_defs=LARGE_WITHOUT_BN)
  assert net.get_shape().as_list() == [1, 64 // output_stride,
                                       64 // output_stride, 960]
  assert [depthwise_rate(fresh_graph,
                          'MobilenetV3/expanded_conv_%d/depthwise' % (n - 2))
          for n in range(8, 17)] == rates


def test_output_stride_with_the_classifier_head():
  # The reduce layer ignores the rate the builder hands later layers.
  logits, end_points = mobilenet_v3.large(images(64), num_classes=5,
                                          output_stride=16,
                                          conv_defs=LARGE_WITHOUT_BN)
  assert end_points['layer_17'].get_shape().as_list() == [1, 4, 4, 960]
  assert logits.get_shape().as_list() == [1, 5]


def test_explicit_padding_matches_same_padding_shapes():
  for size in (33, 32):
    with tf.Graph().as_default():
      _, same = mobilenet_v3.mobilenet_base(images(size), conv_defs=SHORT)
    with tf.Graph().as_default():
      _, explicit = mobilenet_v3.mobilenet_base(
          images(size), conv_defs=SHORT, use_explicit_padding=True)
      pads = [op for op in tf.get_default_graph().get_operations()
              if op.type in ('Pad', 'PadV2')]
    for name in ('layer_1', 'layer_2', 'layer_3'):
      assert (same[name].get_shape().as_list() ==
              explicit[name].get_shape().as_list())
    # First conv, two depthwise convs.
    assert len(pads) == 3


def test_explicit_padding_of_fused_blocks():
  for size in (33, 32):
    shapes = []
    for explicit in (False, True):
      with tf.Graph().as_default():
        net, _ = mobilenet_v3.mobilenet_base(
            images(size), conv_defs=mobilenet_v3.V3_EDGETPU,
            final_endpoint='layer_8', use_explicit_padding=explicit,
            scope='MobilenetEdgeTPU')
        shapes.append(net.get_shape().as_list())
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize('multiplier,expected', [
    (0.5, {'layer_1': 8, 'layer_2': 16, 'layer_3': 24, 'layer_4': 640}),
    (0.75, {'layer_1': 16, 'layer_2': 24, 'layer_3': 32, 'layer_4': 960}),
    (1.25, {'layer_1': 24, 'layer_2': 32, 'layer_3': 48, 'layer_4': 1600}),
])
def test_depth_multiplier_rounds_every_layer(multiplier, expected):
  # Spec depths 16, 24, 40, 1280 times the multiplier, rounded to the
  # nearest multiple of 8 but never 10 % below (worked by hand).
  _, end_points = mobilenet_v3.mobilenet_base(
      images(32), conv_defs=SHORT, depth_multiplier=multiplier)
  assert {k: depth(end_points[k]) for k in expected} == expected


def test_finegrain_keeps_the_last_layer():
  net, _ = mobilenet_v3.mobilenet_base(
      images(32), conv_defs=SHORT, depth_multiplier=0.5,
      finegrain_classification_mode=True)
  assert depth(net) == 1280


def test_min_depth():
  with slim.arg_scope([mobilenet.depth_multiplier], min_depth=32):
    _, end_points = mobilenet_v3.mobilenet_base(
        images(32), conv_defs=SHORT, depth_multiplier=0.25)
  assert depth(end_points['layer_1']) == 32
  assert depth(end_points['layer_2']) == 32


@pytest.mark.parametrize('conv_defs,halved', [
    (mobilenet_v3.V3_LARGE_DETECTION, {'layer_14': 80, 'layer_15': 80,
                                       'layer_16': 80, 'layer_17': 480}),
    (mobilenet_v3.V3_SMALL_DETECTION, {'layer_10': 48, 'layer_11': 48,
                                       'layer_12': 48, 'layer_13': 288}),
])
def test_detection_specs_halve_the_last_blocks(conv_defs, halved):
  _, end_points = mobilenet_v3.mobilenet_base(
      images(32), conv_defs=without_batch_norm(conv_defs),
      final_endpoint=max(halved))
  assert {k: depth(end_points[k]) for k in halved} == halved
  # The classification specs are untouched.
  assert mobilenet_v3.V3_LARGE['spec'][16].params['num_outputs'] == 960


def test_group_norm_replaces_batch_norm():
  mobilenet_v3.mobilenet(images(32), conv_defs=SHORT, use_groupnorm=True,
                         num_classes=3)
  names = [v.op.name for v in tf.global_variables()]
  assert not [n for n in names if 'BatchNorm' in n]
  assert 'MobilenetV3/Conv/GroupNorm/gamma' in names
  assert mobilenet_v3.V3_LARGE['defaults'][
      (slim.conv2d, slim.fully_connected,
       slim.separable_conv2d)]['normalizer_fn'] is slim.batch_norm


def test_wrapped_partial_defaults_can_be_overridden():
  _, end_points = mobilenet_v3.edge_tpu(images(32), scope='Other',
                                        final_endpoint='layer_2')
  assert end_points['Predictions'].op.name.startswith('Other/')
  assert mobilenet_v3.edge_tpu.default_image_size == 224
  assert mobilenet_v3.edge_tpu_075.keywords['depth_multiplier'] == 0.75


# Training mode and checkpoints.


def _train_graph(is_training):
  return spec_train_graph(mobilenet_v3, SHORT, is_training)


def test_training_step_updates_batch_norm_statistics():
  inputs, train_op = _train_graph(is_training=True)
  assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == (
      2 * SHORT_BATCH_NORMS)
  before, after, _ = values_around_a_step(inputs, train_op, moving_stats())
  for old, new in zip(before, after):
    assert not np.array_equal(old, new)


def test_inference_build_leaves_batch_norm_statistics_alone():
  inputs, train_op = _train_graph(is_training=False)
  assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  before, after, _ = values_around_a_step(inputs, train_op, moving_stats())
  for old, new in zip(before, after):
    np.testing.assert_array_equal(old, new)


def test_checkpoint_restores_into_fresh_build(tmp_path):

  def build_logits(inputs):
    with slim.arg_scope(mobilenet_v3.training_scope(is_training=False)):
      _, end_points = mobilenet_v3.mobilenet(inputs, num_classes=10,
                                             conv_defs=SHORT)
    return end_points['Logits']

  # Every variable set away from its initial value before saving.
  check_checkpoint_restores(build_logits, str(tmp_path / 'model.ckpt'),
                            variables=tf.global_variables)


# Bad arguments.


def test_multiplier_keyword_is_rejected():
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v3.mobilenet(images(32), multiplier=0.5)


@pytest.mark.parametrize('multiplier', [0, -0.5])
def test_non_positive_depth_multiplier_is_rejected(multiplier):
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v3.large(images(32), depth_multiplier=multiplier)


@pytest.mark.parametrize('output_stride', [4, 12, 64])
def test_invalid_output_stride_is_rejected(output_stride):
  with pytest.raises(ValueError, match='output_stride'):
    mobilenet_v3.mobilenet_base(images(32), output_stride=output_stride)


def test_unknown_final_endpoint_is_rejected():
  with pytest.raises(ValueError, match='layer_1 ... layer_19'):
    mobilenet_v3.mobilenet_base(images(32), final_endpoint='layer_20')


def test_wrong_input_rank_is_rejected():
  with pytest.raises(ValueError, match='rank-4'):
    mobilenet_v3.small(tf.placeholder(tf.float32, [32, 32, 3]))


def test_reducing_a_layer_without_depth_is_rejected():
  with pytest.raises(ValueError, match='num_outputs'):
    mobilenet_v3._reduce_consecutive_layers(  # pylint: disable=protected-access
        copy.deepcopy(mobilenet_v3.V3_LARGE), 16, 17)
