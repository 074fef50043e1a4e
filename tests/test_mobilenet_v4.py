"""Tests of MobileNet V4 (nets/mobilenet/mobilenet_v4.py, universal_blocks.py)
and of the timm weight mapping (weights/timm_mobilenet_v4.py).

The golden outputs are timm 1.0.31's, made by
tests/golden/make_mobilenet_v4_golden.py (torch, run by hand) with seeded
weights that tests/golden/seeded_weights.py regenerates here without torch.
Full-size graphs are built, not run (marked slow); everything that runs
uses 80x80 inputs or short tables.
"""

import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import tf_slim as slim

from training import batch_norm_check
from nets import nets_factory
from nets.mobilenet import mobilenet_v4
from nets.mobilenet import universal_blocks
from preprocessing import preprocessing_factory
from tests.golden import seeded_weights
from weights import timm_mobilenet_v4

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden',
                      'mobilenet_v4_golden.npz')
# Factory name -> (timm name, default image size, parameters at 1000
# classes as the issue quotes timm 1.0.31's, number of layers).
NETWORKS = {
    'mobilenet_v4_conv_small': ('mobilenetv4_conv_small', 224, 3.77, 20),
    'mobilenet_v4_conv_medium': ('mobilenetv4_conv_medium', 256, 9.72, 26),
    'mobilenet_v4_conv_large': ('mobilenetv4_conv_large', 384, 32.59, 31),
    'mobilenet_v4_hybrid_medium': ('mobilenetv4_hybrid_medium', 256, 11.07,
                                   35),
    'mobilenet_v4_hybrid_large': ('mobilenetv4_hybrid_large', 384, 37.76,
                                  40),
}
LARGE = ('mobilenet_v4_conv_large', 'mobilenet_v4_hybrid_large')


def _maybe_slow(name):
  return pytest.param(name, marks=pytest.mark.slow) if name in LARGE else name


def golden_state_dict(timm_name):
  """timm's seeded parameters as the golden generator loaded them."""
  golden = np.load(GOLDEN)
  names = [str(name) for name in golden[timm_name + '/names']]
  shapes = seeded_weights.unpack_shapes(golden[timm_name + '/ranks'],
                                        golden[timm_name + '/dims'])
  calibration = {
      str(norm): (shift, factor) for norm, shift, factor in zip(
          golden[timm_name + '/norms'], golden[timm_name + '/norm_shifts'],
          golden[timm_name + '/norm_factors'])}
  return seeded_weights.seeded_state_dict(names, shapes, int(golden['seed']),
                                          calibration)


def load_values(sess, values):
  """Assigns {variable name: array} to the default graph's variables.

  One run of all initializers with their initial values fed (hundreds of
  separate loads take minutes on a busy machine).
  """
  variables = tf.global_variables()
  sess.run([v.initializer for v in variables],
           {v.initializer.inputs[1]: values[v.op.name] for v in variables})


@pytest.fixture(scope='module', params=[_maybe_slow(n) for n in NETWORKS])
def golden_run(request):
  """One network on the golden images, with timm's seeded weights."""
  name = request.param
  timm_name = NETWORKS[name][0]
  golden = np.load(GOLDEN)
  values = timm_mobilenet_v4.to_slim(golden_state_dict(timm_name))
  with tf.Graph().as_default():
    network_fn = nets_factory.get_network_fn(name, num_classes=1000)
    logits, end_points = network_fn(tf.constant(golden['images']))
    variables = {v.op.name for v in tf.global_variables()}
    trainable = sum(int(np.prod(v.get_shape().as_list()))
                    for v in tf.trainable_variables())
    with tf.Session() as sess:
      load_values(sess, values)
      probabilities, logit_values = sess.run([end_points['Predictions'],
                                              logits])
  return dict(name=name, golden=golden, timm_name=timm_name, values=values,
              variables=variables, trainable=trainable,
              probabilities=probabilities, logits=logit_values)


def test_golden_outputs_equal_timm(golden_run):
  golden, timm_name = golden_run['golden'], golden_run['timm_name']
  expected = golden[timm_name + '/probabilities']
  # The seeded weights must make the images matter, or equal outputs
  # would prove little.
  assert np.abs(expected[0] - expected[1]).max() > 1e-3
  np.testing.assert_allclose(golden_run['probabilities'], expected, atol=1e-4)
  np.testing.assert_allclose(golden_run['logits'],
                             golden[timm_name + '/logits'], atol=1e-3)


def test_conversion_fills_exactly_the_network_variables(golden_run):
  assert set(golden_run['values']) == golden_run['variables']


def test_parameter_count_equals_timm(golden_run):
  timm_count = int(golden_run['golden'][golden_run['timm_name'] +
                                        '/parameter_count'])
  assert golden_run['trainable'] == timm_count
  quoted = NETWORKS[golden_run['name']][2]
  assert round(timm_count / 1e6, 2) == quoted


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_full_size_graph_shapes(name):
  _, size, _, layers = NETWORKS[name]
  network_fn = nets_factory.get_network_fn(name, num_classes=1001)
  assert network_fn.default_image_size == size
  logits, end_points = network_fn(
      tf.placeholder(tf.float32, [1, size, size, 3], name='input'))
  assert logits.get_shape().as_list() == [1, 1001]
  assert end_points['Predictions'].op.name == (
      'MobilenetV4/Predictions/Reshape_1')
  assert 'layer_%d' % (layers + 1) not in end_points
  assert end_points['layer_%d' % (layers - 2)].get_shape().as_list() == [
      1, size // 32, size // 32, 960]
  assert end_points['layer_%d' % layers].get_shape().as_list() == [
      1, 1, 1, 1280]


def _small_defs(conv_defs, picks):
  return dict(conv_defs, spec=[conv_defs['spec'][i] for i in picks])


# layer_1 stem, 2 FusedIB (stride 2), 3 ExtraDW UIB (stride 2), 4 MQA with
# key/value downsampling (80 -> 160, no residual), 5 MQA (residual), 6
# ConvNext-like UIB, 7 FFN UIB, 8 ExtraDW UIB (stride 2, 256), 9-11 head.
HYBRID_SHORT = _small_defs(mobilenet_v4.V4_HYBRID_MEDIUM,
                           [0, 1, 2, 8, 10, 15, 5, 16, -3, -2, -1])
# layer_1 stem, 2 conv (stride 2), 3 IB UIB, 4 and 5 ExtraDW UIBs (stride
# 2), 6 ExtraDW UIB (stride 1, residual), 7-9 head.
CONV_SHORT = _small_defs(mobilenet_v4.V4_CONV_SMALL,
                         [0, 1, 6, 5, 11, 12, -3, -2, -1])


def _build(conv_defs, size=32, **kwargs):
  with slim.arg_scope(mobilenet_v4.training_scope(is_training=False)):
    return mobilenet_v4.mobilenet(
        tf.placeholder(tf.float32, [2, size, size, 3]), num_classes=7,
        conv_defs=conv_defs, **kwargs)


def test_block_end_points_and_variables():
  _, end_points = _build(HYBRID_SHORT)
  for number in range(1, 12):
    assert 'layer_%d' % number in end_points
  assert 'layer_12' not in end_points
  assert end_points['layer_2/expansion_output'].get_shape().as_list() == [
      2, 8, 8, 128]
  assert end_points['layer_3/depthwise_output'].get_shape().as_list() == [
      2, 4, 4, 192]
  assert end_points['layer_4/attention_output'].get_shape().as_list() == [
      2, 4, 4, 4 * 64]
  assert end_points['layer_4/output'].get_shape().as_list() == [2, 4, 4, 160]
  names = {v.op.name for v in tf.global_variables()}
  mqa = 'MobilenetV4/layer_4/'
  for part in ['input_norm/gamma', 'input_norm/moving_variance',
               'query/weights', 'key_down/depthwise_weights',
               'key_down/BatchNorm/moving_mean', 'key/weights',
               'value_down/depthwise_weights', 'value/weights',
               'output_proj/weights', 'layer_scale/gamma']:
    assert mqa + part in names
  convnext = [n for n in names if n.startswith('MobilenetV4/layer_6/')]
  assert [n for n in convnext if '_dw/' in n] == [
      n for n in convnext if '/start_dw/' in n] != []
  assert not [n for n in names if n.startswith('MobilenetV4/layer_7/')
              and '_dw/' in n]
  shapes = {v.op.name: v.get_shape().as_list() for v in tf.global_variables()}
  assert shapes[mqa + 'key/weights'] == [1, 1, 80, 64]
  assert shapes[mqa + 'query/weights'] == [1, 1, 80, 4 * 64]
  assert shapes[mqa + 'output_proj/weights'] == [1, 1, 4 * 64, 160]


def test_final_endpoint_and_base_only():
  with slim.arg_scope(mobilenet_v4.training_scope(is_training=False)):
    net, end_points = mobilenet_v4.mobilenet_base(
        tf.placeholder(tf.float32, [2, 32, 32, 3]), conv_defs=CONV_SHORT,
        final_endpoint='layer_3')
  assert 'layer_4' not in end_points and 'Logits' not in end_points
  assert net is end_points['layer_3']
  with tf.variable_scope('again'):
    net, end_points = _build(CONV_SHORT, base_only=True)
  assert net.get_shape().as_list() == [2, 1, 1, 1280]
  with pytest.raises(ValueError, match='final_endpoint'):
    _build(CONV_SHORT, final_endpoint='layer_99')


def _run(conv_defs, inputs, seed=0, **kwargs):
  """Runs a short net with random weights (same seed: same weights)."""
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    logits, end_points = _build(conv_defs, size=inputs.shape[1], **kwargs)
    placeholder = [op for op in tf.get_default_graph().get_operations()
                   if op.type == 'Placeholder'][0].outputs[0]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      rng = np.random.RandomState(seed)
      for variable in tf.global_variables():
        if 'gamma' in variable.op.name:
          variable.load(rng.uniform(0.5, 1.0, variable.get_shape()), sess)
      return sess.run([logits, end_points], {placeholder: inputs})


@pytest.mark.slow
def test_output_stride_keeps_resolution_and_dilates():
  images = seeded_weights.seeded_images((2, 64, 64, 3), 3)
  _, plain = _run(HYBRID_SHORT, images)
  _, dense = _run(HYBRID_SHORT, images, output_stride=8)
  assert plain['layer_5'].shape == dense['layer_5'].shape == (2, 8, 8, 160)
  assert plain['layer_8'].shape == (2, 4, 4, 256)
  assert dense['layer_8'].shape == (2, 8, 8, 256)
  _, dense = _run(CONV_SHORT, images, output_stride=8)
  assert dense['layer_5'].shape[1:3] == (8, 8)
  graph_rates = []
  with tf.Graph().as_default() as graph:
    _build(CONV_SHORT, size=64, output_stride=8)
    for operation in graph.get_operations():
      if operation.type == 'DepthwiseConv2dNative':
        graph_rates.append(operation.get_attr('dilations')[1])
      if operation.type == 'SpaceToBatchND':
        graph_rates.append(int(tf.get_static_value(operation.inputs[1])[0]))
  # Layer 5 gives up its stride; layer 6, after it, is dilated.
  assert max(graph_rates) == 2


def test_explicit_padding_is_symmetric_and_optional():
  images = seeded_weights.seeded_images((2, 48, 48, 3), 5)
  _, explicit = _run(CONV_SHORT, images)
  _, same = _run(CONV_SHORT, images, use_explicit_padding=False)
  for layer in ('layer_1', 'layer_6'):
    assert explicit[layer].shape == same[layer].shape
    difference = np.abs(explicit[layer] - same[layer]).max()
    assert difference > 1e-3 * np.abs(same[layer]).max()
  with tf.Graph().as_default() as graph:
    _build(CONV_SHORT)
    pads = [tf.get_static_value(op.inputs[1]).tolist()
            for op in graph.get_operations() if op.type in ('Pad', 'PadV2')]
  assert [[0, 0], [1, 1], [1, 1], [0, 0]] in pads  # the 3x3 stride-2 stem


def test_depth_multiplier_and_finegrain_mode():
  _, end_points = _build(CONV_SHORT, depth_multiplier=0.5)
  assert end_points['layer_1'].get_shape().as_list()[3] == 16
  assert end_points['layer_9'].get_shape().as_list()[3] == 640
  with tf.Graph().as_default():
    _, end_points = _build(CONV_SHORT, depth_multiplier=0.5,
                           finegrain_classification_mode=True)
    assert end_points['layer_9'].get_shape().as_list()[3] == 1280
  with pytest.raises(ValueError, match='depth_multiplier'):
    _build(CONV_SHORT, depth_multiplier=0)


def test_input_normalization_matches_timm_preprocessing():
  images = seeded_weights.seeded_images((1, 4, 4, 3), 9)
  with tf.Graph().as_default(), tf.Session() as sess:
    normalized = sess.run(mobilenet_v4.normalize_input(tf.constant(images)))
  mean, std = (np.array(v) for v in mobilenet_v4.IMAGENET_MEAN_STD)
  np.testing.assert_allclose(normalized, ((images + 1) / 2 - mean) / std,
                             rtol=1e-5, atol=1e-6)
  assert mobilenet_v4.normalize_input(images, None) is images


def test_blocks_reject_impossible_settings():
  inputs = tf.placeholder(tf.float32, [1, 8, 8, 16])
  with pytest.raises(ValueError, match='depthwise convolution'):
    universal_blocks.universal_inverted_bottleneck(
        inputs, 16, 2, start_dw_kernel=0, middle_dw_kernel=0, stride=2)
  with pytest.raises(ValueError, match='stride must be 1'):
    universal_blocks.mobile_mqa(inputs, 16, num_heads=2, key_dim=8, stride=2)


def test_a_few_training_steps_lower_the_loss_and_move_everything():
  """Five SGD steps on one batch of the short hybrid, in training mode."""
  images = seeded_weights.seeded_images((4, 32, 32, 3), 11)
  labels = np.array([0, 1, 2, 3])
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    network_fn = nets_factory.get_network_fn(
        'mobilenet_v4_hybrid_medium', num_classes=4, is_training=True,
        batch_norm_decay=0.9)
    logits, _ = network_fn(tf.constant(images), conv_defs=HYBRID_SHORT,
                           dropout_keep_prob=1.0)
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
      train_op = tf.train.AdamOptimizer(1e-3).minimize(loss)
    watched = [v for v in tf.global_variables() if v.op.name.endswith((
        'layer_4/layer_scale/gamma', 'layer_4/query/weights',
        'layer_4/key_down/BatchNorm/moving_mean', 'layer_1/weights'))]
    assert len(watched) == 4
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(watched)
      losses = [sess.run([train_op, loss])[1] for _ in range(5)]
      after = sess.run(watched)
  assert np.all(np.isfinite(losses))
  assert losses[-1] < losses[0]
  for old, new in zip(before, after):
    assert not np.allclose(old, new)


def test_factory_registry_settings():
  for name, (_, size, _, _) in NETWORKS.items():
    assert nets_factory.get_network_fn(name, 10).default_image_size == size
    assert batch_norm_check.network_decay(name) == 0.99
    assert preprocessing_factory.get_preprocessing(name) is not None
    scope_fn = nets_factory.arg_scopes_map[name]
    assert scope_fn is mobilenet_v4.training_scope
  for kwargs, decay in [({}, 0.99), ({'bn_decay': 0.95}, 0.95)]:
    with slim.arg_scope(mobilenet_v4.training_scope(**kwargs)):
      norm_args = slim.current_arg_scope()[getattr(
          slim.batch_norm, '_key_op', 'batch_norm')]
      assert norm_args['decay'] == decay


@pytest.mark.slow
def test_model_analysis_counts_the_attention_products():
  from nets import model_analysis  # pylint: disable=g-import-not-at-top
  result = model_analysis.analyze('mobilenet_v4_hybrid_medium', 64,
                                  num_classes=1000)
  assert result['total_params'] == 11074648
  attention = [layer['macs'] for layer in result['layers']
               if layer['op'].startswith('BatchMatMul')]
  # Two products per MQA block, heads x positions x key/value positions x
  # 64: stride 16 (4x4 queries, 2x2 downsampled keys), then stride 32
  # (2x2 queries and keys), four blocks each.
  assert len(attention) == 16
  assert sum(attention) == 4 * 2 * (4 * 16 * 4 * 64) + 4 * 2 * (4 * 4 * 4 * 64)


def test_convert_weights_entry_adds_the_background_class():
  state = golden_state_dict('mobilenetv4_conv_small')
  values = timm_mobilenet_v4.slim_variables_from_timm(
      state, 'mobilenet_v4_conv_small')
  plain = timm_mobilenet_v4.to_slim(state)
  assert set(values) == set(plain)
  bias = 'MobilenetV4/Logits/Conv2d_1c_1x1/biases'
  assert values[bias].shape[0] == plain[bias].shape[0] + 1 == 1001
  np.testing.assert_array_equal(values[bias][1:], plain[bias])
