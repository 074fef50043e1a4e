"""Tests of MobileNet V2 (nets/mobilenet_v2.py and the nets/mobilenet/ package).

Full-size (224, depth 1.0) graphs are only built and compared with the
reference listings; options run on small inputs. Head, batch norm and
checkpoint mechanics are tested on the first layers of `V2_DEF` (`SHORT`)
to keep graph construction cheap.
"""


import copy
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets import mobilenet_v2
from nets.mobilenet import conv_blocks
from nets.mobilenet import mobilenet
from nets.mobilenet import mobilenet_v2 as upstream_path
from tests.net_helpers import assert_close
from tests.net_helpers import built_listing
from tests.net_helpers import check_checkpoint_restores
from tests.net_helpers import check_step_leaves_batch_norm_alone
from tests.net_helpers import check_step_updates_batch_norm
from tests.net_helpers import depth
from tests.net_helpers import depthwise_rate
from tests.net_helpers import images
from tests.net_helpers import random_images
from tests.net_helpers import read_listing
from tests.net_helpers import spec_train_graph
from tests.net_helpers import without_batch_norm

# Layers 1-4 of V2 (stride 4, 24 channels out).
SHORT = dict(defaults=mobilenet_v2.V2_DEF['defaults'],
             spec=mobilenet_v2.V2_DEF['spec'][:4])
# Conv (1) + the block without expansion (2) + two full blocks (3 + 3).
SHORT_BATCH_NORMS = 9


# V2's layers without batch norm: shape-only tests build 2x faster.
V2_WITHOUT_BN = without_batch_norm(mobilenet_v2.V2_DEF)


@pytest.fixture(scope='module')
def reference_build():
  """The 1.0 / 224 / 1001-class network, built once for the contract tests."""
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.placeholder(tf.float32, [1, 224, 224, 3], name='input')
    with slim.arg_scope(mobilenet_v2.training_scope(is_training=False)):
      logits, end_points = mobilenet_v2.mobilenet(inputs)
    return dict(
        built_listing(end_points),
        logits=logits.get_shape().as_list(),
        ops=[op.name for op in graph.get_operations()],
        relu6=sum(op.type == 'Relu6' for op in graph.get_operations()),
        # Residual additions: MobilenetV2/<block>/add.
        residual_blocks=sorted(
            op.name.split('/')[1] for op in graph.get_operations()
            if op.type in ('Add', 'AddV2') and op.name.count('/') == 2 and
            op.name.endswith('/add')))


# The contract: names and shapes of the released checkpoints.


def test_variables_match_released_checkpoint(reference_build):
  assert reference_build['variables'] == read_listing(
      'mobilenet_v2_1.0_224.variables.txt')


def test_end_points_match_reference(reference_build):
  assert reference_build['end_points'] == read_listing(
      'mobilenet_v2_1.0_224.end_points.txt')


def test_trainable_parameter_count(reference_build):
  assert reference_build['trainable'] == 3506153


def test_graph_node_names(reference_build):
  assert reference_build['predictions'] == 'MobilenetV2/Predictions/Reshape_1'
  assert reference_build['logits'] == [1, 1001]
  # Ops live in the variables' scopes, as in the released graphs.
  assert 'MobilenetV2/Conv/Conv2D' in reference_build['ops']
  assert 'MobilenetV2/expanded_conv_16/output' in reference_build['ops']


def test_relu6_and_linear_bottlenecks(reference_build):
  # ReLU6 after the first conv, the 16 expansions, the 17 depthwise convs
  # and the last 1x1 conv; the 17 projections are linear.
  assert reference_build['relu6'] == 1 + 16 + 17 + 1


def test_residuals_where_stride_1_and_depth_repeats(reference_build):
  # Blocks repeated n times (paper, Table 2) add their input in all but the
  # first repetition: 24 x2, 32 x3, 64 x4, 96 x3, 160 x3. layer_N is
  # expanded_conv_{N-2}.
  layers = [4, 6, 7, 9, 10, 11, 13, 14, 16, 17]
  assert reference_build['residual_blocks'] == sorted(
      'expanded_conv_%d' % (n - 2) for n in layers)


def test_expanded_conv_block():
  inputs = images(8, batch=2)
  endpoints = {}
  with slim.arg_scope([slim.batch_norm], is_training=True):
    output = conv_blocks.expanded_conv(
        inputs, num_outputs=3,
        expansion_size=conv_blocks.expand_input_by_factor(6, divisible_by=1),
        normalizer_fn=slim.batch_norm,
        endpoints=endpoints, scope='block')
    strided = conv_blocks.expanded_conv(inputs, num_outputs=3, stride=2,
                                        scope='strided')
    no_residual = conv_blocks.expanded_conv(inputs, num_outputs=3,
                                            residual=False, scope='plain')
  assert depth(endpoints['expansion_output']) == 18
  assert endpoints['depthwise_output'].get_shape().as_list() == [2, 8, 8, 18]
  assert strided.get_shape().as_list() == [2, 4, 4, 3]
  data = random_images(8, batch=2)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    out, projection = sess.run([output, endpoints['projection_output']],
                               {inputs: data})
    plain = sess.run(no_residual, {inputs: data})
  # Stride 1 and equal depth: the input is added to the linear projection.
  assert_close(out - projection, data)
  assert not [op for op in tf.get_default_graph().get_operations()
              if op.name.startswith(('strided/', 'plain/')) and
              op.type in ('Add', 'AddV2') and 'Initializer' not in op.name]
  assert plain.shape == data.shape


def test_both_import_paths_give_the_same_functions():
  # slim's path is the implementation; the short path re-exports it (no
  # module replaces itself in sys.modules).
  assert sys.modules['nets.mobilenet.mobilenet_v2'] is upstream_path
  assert upstream_path.__name__ == 'nets.mobilenet.mobilenet_v2'
  for name in ('mobilenet', 'mobilenet_base', 'training_scope', 'V2_DEF',
               'V2_DEF_GROUP_NORM', 'mobilenet_base_group_norm',
               'wrapped_partial', 'mobilenet_v2_100', 'mobilenet_v2_140',
               'mobilenet_v2_050', 'mobilenet_v2_035'):
    assert getattr(mobilenet_v2, name) is getattr(upstream_path, name), name
  for name in ('op', 'depth_multiplier', 'mobilenet_base', 'mobilenet',
               'global_pool', 'training_scope', 'apply_activation',
               'safe_arg_scope'):
    assert callable(getattr(mobilenet, name)), name


def test_group_norm_backbone():
  net, end_points = mobilenet_v2.mobilenet_base_group_norm(
      images(32), final_endpoint='layer_3', groups=4)
  names = [v.op.name for v in tf.global_variables()]
  assert not [n for n in names if 'BatchNorm' in n]
  assert 'MobilenetV2/Conv/GroupNorm/gamma' in names
  assert depth(net) == 24 and 'layer_3/expansion_output' in end_points
  # The shared table is not modified by the call.
  assert (slim.group_norm,) not in mobilenet_v2.V2_DEF_GROUP_NORM['defaults']
  # groups=4 splits the 32 first-layer channels into 4 groups of 8.
  grouped = tf.get_default_graph().get_tensor_by_name(
      'MobilenetV2/Conv/GroupNorm/Reshape:0')
  assert grouped.get_shape().as_list()[-2:] == [4, 8]


def test_default_image_size_on_every_variant():
  for fn in (mobilenet_v2.mobilenet, mobilenet_v2.mobilenet_v2_140,
             mobilenet_v2.mobilenet_v2_050, mobilenet_v2.mobilenet_v2_035):
    assert fn.default_image_size == 224


# Depth rounding.


def test_make_divisible_rule():
  # Worked examples: nearest multiple of 8, at least 8, never < 90 %.
  assert conv_blocks.make_divisible(32 * 0.35, 8) == 16  # 11.2: 8 < 90 %
  assert conv_blocks.make_divisible(24 * 0.35, 8) == 8  # 8.4
  assert conv_blocks.make_divisible(16 * 0.35, 8) == 8  # 5.6: min 8
  assert conv_blocks.make_divisible(64 * 1.4, 8) == 88  # 89.6
  assert conv_blocks.make_divisible(96 * 1.4, 8) == 136  # 134.4
  assert conv_blocks.make_divisible(5.6, 1, 1) == 6
  for divisor in (1, 4, 8, 16):
    for value in np.arange(1, 400, 0.7):
      rounded = conv_blocks.make_divisible(value, divisor)
      assert rounded % divisor == 0
      assert rounded >= max(divisor, 0.9 * value)
      nearest = max(divisor, divisor * np.floor(value / divisor + 0.5))
      assert rounded in (nearest, nearest + divisor)


# Each expected depth is the paper's depth times the multiplier, rounded by
# the rule above (worked by hand); expansions are 6x the rounded input depth.
@pytest.mark.parametrize('network,expected', [
    (mobilenet_v2.mobilenet_v2_035, {
        'layer_1': 16, 'layer_2': 8, 'layer_3': 8, 'layer_5': 16,
        'layer_8': 24, 'layer_12': 32, 'layer_15': 56, 'layer_18': 112,
        'layer_19': 1280, 'layer_3/expansion_output': 48,
        'layer_4/expansion_output': 48, 'layer_18/expansion_output': 336}),
    (mobilenet_v2.mobilenet_v2_140, {
        'layer_1': 48, 'layer_2': 24, 'layer_3': 32, 'layer_5': 48,
        'layer_8': 88, 'layer_12': 136, 'layer_15': 224, 'layer_18': 448,
        'layer_19': 1792, 'layer_3/expansion_output': 144,
        'layer_4/expansion_output': 192, 'layer_18/expansion_output': 1344}),
])
def test_width_variants_round_every_layer(network, expected):
  _, end_points = network(images(32), base_only=True, conv_defs=V2_WITHOUT_BN)
  assert {name: depth(end_points[name]) for name in expected} == expected


def _two_layers():
  """V2's first and last layer: enough to see the last layer's width."""
  return dict(defaults=mobilenet_v2.V2_DEF['defaults'],
              spec=[mobilenet_v2.V2_DEF['spec'][0],
                    mobilenet_v2.V2_DEF['spec'][-1]])


@pytest.mark.parametrize('build,last_depth', [
    (lambda x: mobilenet_v2.mobilenet_base(
        x, depth_multiplier=0.5, conv_defs=_two_layers()), 640),
    (lambda x: mobilenet_v2.mobilenet_base(
        x, depth_multiplier=0.5, conv_defs=_two_layers(),
        finegrain_classification_mode=True), 1280),
    (lambda x: mobilenet_v2.mobilenet_v2_050(
        x, conv_defs=_two_layers(), base_only=True), 1280),
    (lambda x: mobilenet_v2.mobilenet_v2_035(
        x, conv_defs=_two_layers(), base_only=True), 1280),
    (lambda x: mobilenet_v2.mobilenet_base(
        x, depth_multiplier=1.4, conv_defs=_two_layers(),
        finegrain_classification_mode=True), 1792),
])
def test_finegrain_mode_keeps_last_layer_wide(build, last_depth):
  conv_defs_before = copy.deepcopy(mobilenet_v2.V2_DEF['spec'][-1].params)
  net, _ = build(images(32))
  assert depth(net) == last_depth
  assert mobilenet_v2.V2_DEF['spec'][-1].params == conv_defs_before


def test_min_depth_and_divisible_by():
  _, end_points = mobilenet_v2.mobilenet_base(
      images(32), depth_multiplier=0.35, min_depth=1, divisible_by=1,
      final_endpoint='layer_3')
  # 32 * 0.35 = 11.2 -> 11; 16 * 0.35 = 5.6 -> 6; 24 * 0.35 = 8.4 -> 8.
  assert [depth(end_points['layer_%d' % i]) for i in (1, 2, 3)] == [11, 6, 8]
  # The SSD way: an arg scope on the depth function.
  with slim.arg_scope([mobilenet.depth_multiplier], min_depth=24):
    _, end_points = mobilenet_v2.mobilenet_base(
        images(32), depth_multiplier=0.35, final_endpoint='layer_3',
        scope='Ssd')
  assert [depth(end_points['layer_%d' % i]) for i in (1, 2, 3)] == [24, 24, 24]


@pytest.mark.parametrize('multiplier', [0, -1.0, None])
def test_non_positive_depth_multiplier_is_rejected(multiplier):
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v2.mobilenet(images(32), depth_multiplier=multiplier)
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v2.mobilenet_base(images(32), depth_multiplier=multiplier)
  with pytest.raises(ValueError, match='multiplier'):
    mobilenet.mobilenet_base(images(32), conv_defs=SHORT,
                             multiplier=multiplier)


# final_endpoint.


def _marker_layer(net, index, stride=1):
  """A cheap stand-in layer that names its output after its index."""
  del stride
  return tf.identity(net, name='marker_%d' % index)


def test_every_final_endpoint_stops_there():
  num_layers = len(mobilenet_v2.V2_DEF['spec'])
  names = ['layer_%d' % i for i in range(1, num_layers + 1)]
  # Every name, through the generic builder, on a spec of V2's length made
  # of cheap layers (building V2 19 times over would take most of a minute).
  markers = dict(defaults={}, spec=[
      mobilenet.op(_marker_layer, index=i, stride=1)
      for i in range(num_layers)])
  inputs = images(8)
  for i, name in enumerate(names):
    net, end_points = mobilenet.mobilenet_base(
        inputs, conv_defs=markers, final_endpoint=name)
    assert list(end_points) == names[:i + 1]
    assert net is end_points[name]
    assert net.op.name.endswith('marker_%d' % i)
  # And on the real layers, for a few of them (sub-outputs included).
  for i, name in enumerate(('layer_9', 'layer_2', 'layer_1')):
    net, end_points = mobilenet_v2.mobilenet_base(
        inputs, conv_defs=V2_WITHOUT_BN, final_endpoint=name, reuse=i > 0)
    last = int(name.split('_')[1])
    assert {k.split('/')[0] for k in end_points} == set(names[:last])
    assert net is end_points[name]


def test_unknown_final_endpoint_lists_valid_names():
  with pytest.raises(ValueError) as info:
    mobilenet_v2.mobilenet_base(images(32), final_endpoint='layer_20')
  message = str(info.value)
  assert 'final_endpoint' in message and "'layer_20'" in message
  assert 'layer_1 ... layer_19' in message


# output_stride (atrous), explicit padding, and the downstream call shapes.


@pytest.mark.slow  # three 18-layer builds with batch norm
def test_deeplab_call_with_output_stride(fresh_graph):
  inputs = images(64)
  outputs = {}
  num_variables = []
  for stride in (32, 16, 8):
    with tf.variable_scope('MobilenetV2', reuse=stride != 32) as scope:
      outputs[stride], _ = mobilenet_v2.mobilenet_base(
          inputs, conv_defs=mobilenet_v2.V2_DEF, depth_multiplier=0.5,
          min_depth=8, divisible_by=8, final_endpoint='layer_18',
          output_stride=stride, scope=scope)
    num_variables.append(len(tf.global_variables()))
  # Atrous builds reuse the same variables.
  assert len(set(num_variables)) == 1
  shapes = {s: out.get_shape().as_list() for s, out in outputs.items()}
  assert shapes == {32: [1, 2, 2, 160], 16: [1, 4, 4, 160],
                    8: [1, 8, 8, 160]}
  # layer_N is expanded_conv_{N-2}. Stride 16: layer_15 (the first skipped
  # stride) keeps rate 1, layers 16-18 run at rate 2. Stride 8: layer_8
  # keeps rate 1, layers 9-15 run at rate 2, layers 16-18 at rate 4.
  expected = {32: [1] * 11, 16: [1] * 8 + [2] * 3,
              8: [1] + [2] * 7 + [4] * 3}
  for stride, rates in expected.items():
    name_scope = outputs[stride].op.name.split('/')[0]
    assert [depthwise_rate(
        fresh_graph, '%s/expanded_conv_%d/depthwise' % (name_scope, n - 2))
            for n in range(8, 19)] == rates


@pytest.mark.parametrize('stride', [4, 12, 64, 0])
def test_invalid_output_stride_is_rejected(stride):
  with pytest.raises(ValueError, match='output_stride.*8, 16, 32'):
    mobilenet_v2.mobilenet_base(images(32), output_stride=stride)


def test_explicit_padding_matches_same_padding_only_on_odd_inputs():
  # With odd sizes (65 -> 33 -> 17 -> 9) SAME pads 1 on each side, exactly
  # like the explicit padding; with even sizes SAME pads only at the end.
  inputs = tf.placeholder(tf.float32, [1, None, None, 3])
  with slim.arg_scope([slim.batch_norm], is_training=True):
    same, _ = mobilenet_v2.mobilenet_base(
        inputs, final_endpoint='layer_5', depth_multiplier=0.5,
        is_training=None)
    explicit, _ = mobilenet_v2.mobilenet_base(
        inputs, final_endpoint='layer_5', depth_multiplier=0.5,
        is_training=None, use_explicit_padding=True, reuse=True)
  graph = tf.get_default_graph()
  explicit_scope = explicit.op.name.split('/')[0] + '/'
  explicit_ops = [op for op in graph.get_operations()
                  if op.name.startswith(explicit_scope)]
  convs = [op for op in explicit_ops
           if op.type in ('Conv2D', 'DepthwiseConv2dNative')]
  assert convs and all(op.get_attr('padding') == b'VALID' for op in convs)
  assert any(op.type == 'Pad' for op in explicit_ops)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    odd = sess.run([same, explicit], {inputs: random_images(65)})
    even = sess.run([same, explicit], {inputs: random_images(64)})
  assert odd[0].shape == odd[1].shape == (1, 9, 9, 16)
  assert_close(odd[1], odd[0])
  assert even[0].shape == even[1].shape == (1, 8, 8, 16)
  assert np.abs(even[0] - even[1]).max() > 1e-2 * np.abs(even[0]).max()


def test_ssd_feature_extractor_call_shape():
  # As SSDLite does: copy V2_DEF, replace the last layer, set min_depth on
  # the depth function, leave batch norm's mode to the caller's scope.
  conv_defs = copy.deepcopy(mobilenet_v2.V2_DEF)
  conv_defs['spec'][-1] = mobilenet.op(slim.conv2d, stride=1,
                                       kernel_size=[1, 1], num_outputs=256)
  # The detector's batch norm scope is outermost.
  with slim.arg_scope([slim.batch_norm], is_training=True), \
      slim.arg_scope(mobilenet_v2.training_scope(is_training=None,
                                                 bn_decay=0.9997)), \
      slim.arg_scope([mobilenet.depth_multiplier], min_depth=16):
    with tf.variable_scope('MobilenetV2', reuse=None) as scope:
      _, end_points = mobilenet_v2.mobilenet_base(
          images(64), final_endpoint='layer_19', depth_multiplier=0.25,
          conv_defs=conv_defs, use_explicit_padding=True, scope=scope)
  assert end_points['layer_19'].get_shape().as_list() == [1, 2, 2, 64]
  # layer_14 outputs 96 * 0.25 = 24 channels; layer_15 expands them 6x.
  assert end_points['layer_15/expansion_output'].get_shape().as_list() == [
      1, 4, 4, 144]
  assert depth(end_points['layer_2']) == 16  # 16 * 0.25 = 4, min_depth 16
  assert mobilenet_v2.V2_DEF['spec'][-1].params['num_outputs'] == 1280
  assert all(v.op.name.startswith('MobilenetV2/')
             for v in tf.global_variables())
  # Training mode came from the outer scope: 52 batch norms, 2 updates each.
  assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == 2 * 52


# Classifier head options (on the short net).


def test_head_options():
  inputs = images(32)
  logits, end_points = mobilenet_v2.mobilenet(inputs, num_classes=7,
                                              conv_defs=SHORT)
  assert logits.get_shape().as_list() == [1, 7]
  assert end_points['global_pool'].get_shape().as_list() == [1, 1, 1, 24]
  assert (end_points['Predictions'].op.name ==
          'MobilenetV2/Predictions/Reshape_1')
  features, end_points = mobilenet_v2.mobilenet(
      inputs, num_classes=0, conv_defs=SHORT, scope='Features')
  assert features.get_shape().as_list() == [1, 1, 1, 24]
  assert 'Logits' not in end_points
  net, end_points = mobilenet_v2.mobilenet(
      inputs, conv_defs=SHORT, base_only=True, scope='Base')
  assert net.get_shape().as_list() == [1, 8, 8, 24]
  assert 'global_pool' not in end_points
  _, end_points = mobilenet_v2.mobilenet(
      inputs, conv_defs=SHORT, prediction_fn=None, global_pool=True,
      scope='NoPredictions')
  assert 'Predictions' not in end_points
  scopes = {v.op.name.split('/')[0] for v in tf.global_variables()}
  assert scopes == {'MobilenetV2', 'Features', 'Base', 'NoPredictions'}
  assert not [v for v in tf.global_variables()
              if v.op.name.startswith(('Features/Logits', 'Base/Logits'))]


def test_global_pool_with_unknown_spatial_size():
  inputs = tf.placeholder(tf.float32, [2, None, None, 3])
  logits, end_points = mobilenet_v2.mobilenet(inputs, num_classes=5,
                                              conv_defs=SHORT)
  assert end_points['global_pool'].get_shape().as_list() == [2, 1, 1, 24]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for size in (33, 48):
      assert sess.run(logits, {inputs: random_images(size, 2)}).shape == (2, 5)


def test_global_pool_false_is_rejected():
  with pytest.raises(ValueError, match='global_pool'):
    mobilenet_v2.mobilenet(images(32), global_pool=False)


def test_multiplier_keyword_is_rejected():
  with pytest.raises(ValueError, match='depth_multiplier'):
    mobilenet_v2.mobilenet(images(32), multiplier=0.5)


def test_activation_fn_replaces_relu6():
  mobilenet_v2.mobilenet(images(32), num_classes=5, conv_defs=SHORT,
                         activation_fn=tf.nn.relu)
  types = {op.type for op in tf.get_default_graph().get_operations()}
  assert 'Relu' in types and 'Relu6' not in types
  assert all(params.get('activation_fn', tf.nn.relu6) is tf.nn.relu6
             for params in mobilenet_v2.V2_DEF['defaults'].values())


def test_reuse_and_dropout():
  # Batch norm in training mode keeps activations O(1) (with a batch of 4:
  # one image's pooled features would be normalized to zero); dropout off.
  inputs = images(32, batch=4)
  with slim.arg_scope(mobilenet_v2.training_scope(is_training=True,
                                                  dropout_keep_prob=1.0)):
    first, _ = mobilenet_v2.mobilenet(inputs, num_classes=10, conv_defs=SHORT)
    count = len(tf.global_variables())
    second, _ = mobilenet_v2.mobilenet(inputs, num_classes=10, conv_defs=SHORT,
                                       reuse=True)
  assert len(tf.global_variables()) == count
  # is_training=None: batch norm and dropout follow the outer scopes.
  with slim.arg_scope([slim.batch_norm], is_training=True):
    dropped, _ = mobilenet_v2.mobilenet(inputs, num_classes=10,
                                        conv_defs=SHORT, reuse=True,
                                        is_training=None,
                                        dropout_keep_prob=0.5)
  with slim.arg_scope([slim.dropout], is_training=False), \
      slim.arg_scope([slim.batch_norm], is_training=True):
    kept, _ = mobilenet_v2.mobilenet(inputs, num_classes=10, conv_defs=SHORT,
                                     reuse=True, is_training=None,
                                     dropout_keep_prob=0.5)
  feed = {inputs: random_images(32, batch=4)}
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    a, b = sess.run([first, second], feed)
    assert_close(b, a)
    # No outer dropout mode: slim's default (training) drops.
    assert not np.array_equal(sess.run(dropped, feed), sess.run(dropped, feed))
    # The outer scope turned dropout off.
    assert_close(sess.run(kept, feed), sess.run(kept, feed))


@pytest.mark.parametrize('rank', [3, 5])
def test_wrong_input_rank_is_rejected(rank):
  inputs = tf.placeholder(tf.float32, [32] * (rank - 1) + [3])
  with pytest.raises(ValueError, match='rank-4'):
    mobilenet_v2.mobilenet(inputs)
  with pytest.raises(ValueError, match='rank-4'):
    mobilenet_v2.mobilenet_base(inputs)


# Batch norm, training and checkpoints.


@pytest.mark.parametrize('outer_is_training', [True, False])
def test_is_training_none_defers_to_outer_scope(outer_is_training):
  # The caller's batch norm scope outside, training_scope made inside it.
  with slim.arg_scope([slim.batch_norm], is_training=outer_is_training):
    with slim.arg_scope(mobilenet_v2.training_scope(is_training=None)):
      mobilenet_v2.mobilenet(images(32), conv_defs=SHORT)
  expected = 2 * SHORT_BATCH_NORMS if outer_is_training else 0
  assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == expected


def _train_graph(is_training):
  return spec_train_graph(mobilenet_v2, SHORT, is_training)


def test_training_step_updates_batch_norm_statistics():
  inputs, train_op = _train_graph(is_training=True)
  # training_scope's batch norm decay is 0.997.
  check_step_updates_batch_norm(
      inputs, train_op, 'MobilenetV2/Conv/BatchNorm/moving_mean',
      decay=0.997, num_batch_norms=SHORT_BATCH_NORMS)


def test_inference_build_leaves_batch_norm_statistics_alone():
  inputs, train_op = _train_graph(is_training=False)
  assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  check_step_leaves_batch_norm_alone(
      inputs, train_op, 'MobilenetV2/expanded_conv_2/project/weights')


def test_training_scope_regularizes_convolutions_only():
  with slim.arg_scope(mobilenet_v2.training_scope(weight_decay=0.01)):
    mobilenet_v2.mobilenet(images(32), num_classes=5, conv_defs=SHORT)
  losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
  # Conv, 3 projections, 2 expansions and the logits; depthwise filters not.
  assert len(losses) == 7
  assert not [l for l in losses if 'depthwise' in l.op.name]


def test_checkpoint_restores_into_fresh_build(tmp_path):

  def build_predictions(inputs):
    with slim.arg_scope(mobilenet_v2.training_scope(is_training=False)):
      _, end_points = mobilenet_v2.mobilenet(inputs, num_classes=10,
                                             conv_defs=SHORT)
    return end_points['Predictions']

  check_checkpoint_restores(build_predictions, str(tmp_path / 'model.ckpt'))
