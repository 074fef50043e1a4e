"""Tests of nets/nets_factory.py: names, arg scopes, pass-through kwargs.

The networks are built on short layer tables (`conv_defs`, passed through
the factory's kwargs), so each name costs a fraction of a full build; the
full networks are covered by test_mobilenet_v1, _v2, _v3 and _v4.
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import pytest
import tensorflow.compat.v1 as tf

from nets import mobilenet_v1
from nets import mobilenet_v2
from nets import nets_factory
from nets.mobilenet import mobilenet_v3
from preprocessing import preprocessing_factory

# The names the other lanes and downstream scripts use.
NAMES = ('mobilenet_v1', 'mobilenet_v1_075', 'mobilenet_v1_050',
         'mobilenet_v1_025', 'mobilenet_v2', 'mobilenet_v2_140',
         'mobilenet_v2_050', 'mobilenet_v2_035', 'mobilenet_v2_075',
         'mobilenet_v2_130', 'mobilenet_v3_large',
         'mobilenet_v3_small', 'mobilenet_v3_large_075',
         'mobilenet_v3_small_075', 'mobilenet_v3_large_minimalistic',
         'mobilenet_v3_small_minimalistic', 'mobilenet_edgetpu',
         'mobilenet_edgetpu_075')
# MobileNet V4 (tested in test_mobilenet_v4.py; default sizes 224-384).
V4_NAMES = ('mobilenet_v4_conv_small', 'mobilenet_v4_conv_medium',
            'mobilenet_v4_conv_large', 'mobilenet_v4_hybrid_medium',
            'mobilenet_v4_hybrid_large')
ALL_NAMES = NAMES + V4_NAMES

V1_SHORT = [mobilenet_v1.Conv(kernel=[3, 3], stride=2, depth=32),
            mobilenet_v1.DepthSepConv(kernel=[3, 3], stride=2, depth=1024)]
# V2's first layer (32), a 96-deep block and the last layer (1280).
V2_SHORT = dict(defaults=mobilenet_v2.V2_DEF['defaults'],
                spec=[mobilenet_v2.V2_DEF['spec'][0],
                      mobilenet_v2.V2_DEF['spec'][11],
                      mobilenet_v2.V2_DEF['spec'][-1]])
# V3 Large's first layer (16), a squeeze-excite block (40) and the last
# 1x1 conv (1280, no batch norm).
V3_SHORT = dict(defaults=mobilenet_v3.V3_LARGE['defaults'],
                spec=[mobilenet_v3.V3_LARGE['spec'][0],
                      mobilenet_v3.V3_LARGE['spec'][4],
                      mobilenet_v3.V3_LARGE['spec'][-1]])
BATCH_NORMS = {'mobilenet_v1': 3, 'mobilenet_v2': 5, 'mobilenet_v3': 4}

# name -> (scope, depths of the short nets' layers: the paper's depths times
# the name's multiplier (V2: rounded to multiples of 8, the 0.5 / 0.35
# entries keep the last layer at 1280: finegrain mode)).
EXPECTED = {
    'mobilenet_v1': ('MobilenetV1', [32, 1024]),
    'mobilenet_v1_075': ('MobilenetV1', [24, 768]),
    'mobilenet_v1_050': ('MobilenetV1', [16, 512]),
    'mobilenet_v1_025': ('MobilenetV1', [8, 256]),
    'mobilenet_v2': ('MobilenetV2', [32, 96, 1280]),
    'mobilenet_v2_140': ('MobilenetV2', [48, 136, 1792]),
    'mobilenet_v2_050': ('MobilenetV2', [16, 48, 1280]),
    'mobilenet_v2_035': ('MobilenetV2', [16, 32, 1280]),
    'mobilenet_v2_075': ('MobilenetV2', [24, 72, 1280]),
    'mobilenet_v2_130': ('MobilenetV2', [40, 128, 1664]),
    # The V3 0.75 entries keep the last layer at full width (finegrain).
    'mobilenet_v3_large': ('MobilenetV3', [16, 40, 1280]),
    'mobilenet_v3_small': ('MobilenetV3', [16, 40, 1280]),
    'mobilenet_v3_large_075': ('MobilenetV3', [16, 32, 1280]),
    'mobilenet_v3_small_075': ('MobilenetV3', [16, 32, 1280]),
    'mobilenet_v3_large_minimalistic': ('MobilenetV3', [16, 40, 1280]),
    'mobilenet_v3_small_minimalistic': ('MobilenetV3', [16, 40, 1280]),
    'mobilenet_edgetpu': ('MobilenetEdgeTPU', [16, 40, 1280]),
    'mobilenet_edgetpu_075': ('MobilenetEdgeTPU', [16, 32, 1280]),
}


def family(name):
  return name[:len('mobilenet_v1')] if name.startswith(
      ('mobilenet_v1', 'mobilenet_v2')) else 'mobilenet_v3'


def short_defs(name):
  return {'mobilenet_v1': V1_SHORT, 'mobilenet_v2': V2_SHORT,
          'mobilenet_v3': V3_SHORT}[family(name)]


def test_maps_list_exactly_the_supported_names():
  assert set(nets_factory.networks_map) == set(ALL_NAMES)
  assert set(nets_factory.arg_scopes_map) == set(ALL_NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_each_name_builds_its_network(name):
  scope, depths = EXPECTED[name]
  network_fn = nets_factory.get_network_fn(name, num_classes=11)
  assert network_fn.default_image_size == 224
  inputs = tf.placeholder(tf.float32, [2, 32, 32, 3], name='input')
  logits, end_points = network_fn(inputs, conv_defs=short_defs(name))
  assert logits.get_shape().as_list() == [2, 11]
  assert end_points['Logits'] is logits
  assert end_points['Predictions'].op.name == scope + '/Predictions/Reshape_1'
  layers = (['Conv2d_0', 'Conv2d_1_pointwise'] if scope == 'MobilenetV1'
            else ['layer_1', 'layer_2', 'layer_3'])
  assert [end_points[layer].get_shape().as_list()[3]
          for layer in layers] == depths
  logits_vars = [v.op.name for v in tf.trainable_variables()
                 if v.op.name.startswith(scope + '/Logits/')]
  assert logits_vars == [scope + '/Logits/Conv2d_1c_1x1/weights',
                         scope + '/Logits/Conv2d_1c_1x1/biases']
  if scope == 'MobilenetV1':
    assert 'AvgPool_1a' in end_points


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError) as info:
    nets_factory.get_network_fn('mobilenet_v9', num_classes=10)
  message = str(info.value)
  assert "'mobilenet_v9'" in message
  for name in ALL_NAMES:
    assert name in message


def test_unknown_name_suggests_the_closest_once_and_lists_once():
  with pytest.raises(ValueError) as info:
    nets_factory.get_network_fn('mobilenet_v3_larg', num_classes=10)
  message = str(info.value)
  assert "Did you mean 'mobilenet_v3_large'?" in message
  # Each valid name appears once: in the list (and the suggestion).
  listed = message.split('Valid names: ', 1)[1]
  assert listed.count('mobilenet_v3_large,') == 1
  assert message.count('Valid names') == 1
  assert sorted(listed.rstrip('.').split(', ')) == sorted(ALL_NAMES)
  with pytest.raises(ValueError) as info:
    nets_factory.check_model_name('resnet_50')
  assert 'Did you mean' not in str(info.value)
  nets_factory.check_model_name('mobilenet_edgetpu_075')


def test_model_names_is_the_sorted_map():
  assert nets_factory.model_names() == sorted(ALL_NAMES)


def test_edgetpu_export_node_name():
  network_fn = nets_factory.get_network_fn('mobilenet_edgetpu', 7)
  _, end_points = network_fn(tf.placeholder(tf.float32, [1, 32, 32, 3]),
                             final_endpoint='layer_3')
  assert end_points['Predictions'].op.name == (
      'MobilenetEdgeTPU/Predictions/Reshape_1')


@pytest.mark.parametrize('name', ['mobilenet_v1', 'mobilenet_v2',
                                  'mobilenet_v3_large'])
@pytest.mark.parametrize('is_training', [True, False])
def test_is_training_reaches_batch_norm(name, is_training):
  network_fn = nets_factory.get_network_fn(name, num_classes=5,
                                           is_training=is_training)
  network_fn(tf.placeholder(tf.float32, [2, 32, 32, 3]),
             conv_defs=short_defs(name))
  updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  # Two updates per batch norm in training.
  assert len(updates) == (2 * BATCH_NORMS[family(name)] if is_training
                          else 0)


@pytest.mark.parametrize('name', ['mobilenet_v1', 'mobilenet_v2',
                                  'mobilenet_v3_small'])
def test_weight_decay(name):
  network_fn = nets_factory.get_network_fn(name, num_classes=5)
  network_fn(tf.placeholder(tf.float32, [1, 32, 32, 3]),
             conv_defs=short_defs(name))
  assert not tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
  network_fn = nets_factory.get_network_fn(name, num_classes=5,
                                           weight_decay=0.01)
  network_fn(tf.placeholder(tf.float32, [1, 32, 32, 3]),
             conv_defs=short_defs(name), scope='Decayed')
  # Convolutions and logits, not depthwise filters: V1 2 + 1; V2 4 + 1;
  # V3 first conv, expand, 2 squeeze-excite, project, last conv + 1.
  expected = {'mobilenet_v1': 3, 'mobilenet_v2': 5,
              'mobilenet_v3': 7}[family(name)]
  assert len(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)) == expected


def test_kwargs_pass_through():
  network_fn = nets_factory.get_network_fn('mobilenet_v1', num_classes=5)
  logits, end_points = network_fn(
      tf.placeholder(tf.float32, [1, 96, 160, 3]), conv_defs=V1_SHORT,
      depth_multiplier=0.5, global_pool=True)
  assert end_points['global_pool'].get_shape().as_list() == [1, 1, 1, 512]
  assert logits.get_shape().as_list() == [1, 5]
  network_fn = nets_factory.get_network_fn('mobilenet_v2_140', num_classes=5)
  _, end_points = network_fn(tf.placeholder(tf.float32, [1, 32, 32, 3]),
                             conv_defs=V2_SHORT, depth_multiplier=0.5,
                             global_pool=True)
  assert end_points['layer_3'].get_shape().as_list()[3] == 640


@pytest.mark.parametrize('name', ['mobilenet_v1', 'mobilenet_v2',
                                  'mobilenet_edgetpu'])
@pytest.mark.parametrize("decay", [None, 0.9])
def test_batch_norm_decay_reaches_moving_statistics(name, decay):
  import numpy as np
  network_fn = nets_factory.get_network_fn(name, num_classes=5,
                                           is_training=True,
                                           batch_norm_decay=decay)
  images = tf.constant(np.random.RandomState(0).uniform(
      -1, 1, [2, 32, 32, 3]).astype(np.float32))
  network_fn(images, conv_defs=short_defs(name))
  moving_mean = [v for v in tf.global_variables()
                 if v.op.name.endswith('moving_mean')][0]
  updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    sess.run(updates)
    first = sess.run(moving_mean)
    sess.run(updates)
    second = sess.run(moving_mean)
  # Same batch twice from zero: m1 = (1-d) mu, m2 = d m1 + (1-d) mu = (1+d) m1.
  big = np.abs(first) > 1e-2 * np.abs(first).max()
  measured = np.median(second[big] / first[big]) - 1.0
  default = 0.9997 if name == 'mobilenet_v1' else 0.997
  assert measured == pytest.approx(default if decay is None else decay,
                                   abs=2e-4)


def test_batch_norm_decay_out_of_range_is_rejected():
  with pytest.raises(ValueError, match='batch_norm_decay'):
    nets_factory.get_network_fn('mobilenet_v1', 5, batch_norm_decay=1.5)


def test_width_variants_share_the_family_name():
  assert nets_factory.width_variants('mobilenet_v1_050') == {
      'mobilenet_v1': 1.0, 'mobilenet_v1_075': 0.75, 'mobilenet_v1_050': 0.5,
      'mobilenet_v1_025': 0.25}
  assert set(nets_factory.width_variants('mobilenet_v3_large')) == {
      'mobilenet_v3_large', 'mobilenet_v3_large_075'}
  # The minimalistic net is another network, not a width of V3 Large.
  assert 'mobilenet_v3_large_minimalistic' not in (
      nets_factory.width_variants('mobilenet_v3_large'))


@pytest.mark.parametrize('built, ratio, fitting', [
    ('mobilenet_v1_050', 0.5, 'mobilenet_v1_025'),
    ('mobilenet_v1', 0.75, 'mobilenet_v1_075'),
    ('mobilenet_v2', 1.4, 'mobilenet_v2_140'),
    ('mobilenet_v2_050', 16.0 / 24.0, 'mobilenet_v2_035'),  # rounded depths
    ('mobilenet_edgetpu_075', 32.0 / 24.0, 'mobilenet_edgetpu'),
])
def test_closest_width_variant_names_the_entry_that_fits(built, ratio,
                                                         fitting):
  assert nets_factory.closest_width_variant(built, ratio) == fitting


def test_every_name_has_a_complete_record():
  """One record per name; adding a network means one NETWORKS entry."""
  assert set(nets_factory.NETWORKS) == set(ALL_NAMES)
  for name, record in nets_factory.NETWORKS.items():
    assert callable(record.builder) and callable(record.arg_scope), name
    assert 0.0 < record.batch_norm_decay < 1.0, name
    assert record.batch_norm_decay_keyword in ('batch_norm_decay', 'bn_decay')
    assert record.preprocessing in preprocessing_factory.preprocessing_names()
    assert record.scope.startswith('Mobilenet'), name
    assert sorted(record.backbone_end_points) == [16, 32], name
    assert all(isinstance(point, str) and point
               for point in record.backbone_end_points.values()), name
    missing = [field for field in record._fields
               if getattr(record, field) is None]
    assert not missing, (name, missing)
    assert record.default_image_size == (
        nets_factory.get_network_fn(name, 10).default_image_size), name
    assert preprocessing_factory.get_preprocessing(name) is not None


def test_end_points_carry_the_records_scope():
  with tf.Graph().as_default():
    for name in ('mobilenet_v1_025', 'mobilenet_v2_035',
                 'mobilenet_edgetpu_075', 'mobilenet_v4_conv_small'):
      images = tf.placeholder(tf.float32, [1, 64, 64, 3])
      _, end_points = nets_factory.get_network_fn(name, 5)(images)
      scope = nets_factory.network_record(name).scope
      assert all(point.name.startswith(scope) for point in end_points.values()
                 if hasattr(point, 'name')), name


# The quick tier builds the smallest network of V1, V2, V3 and V4; the
# slow tier every other one.
BACKBONE_QUICK = ('mobilenet_v1_025', 'mobilenet_v2_035', 'mobilenet_v3_small',
                  'mobilenet_v4_conv_small')


def _check_backbone_end_points(name):
  size = 64  # A multiple of 32: each stride divides it exactly.
  record = nets_factory.network_record(name)
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [1, size, size, 3])
    _, end_points = nets_factory.get_network_fn(name, 5)(
        images, depth_multiplier=0.35 if 'v4' not in name else 1.0)
  for stride, point in record.backbone_end_points.items():
    assert point in end_points, (name, point)
    height, width = end_points[point].get_shape().as_list()[1:3]
    assert (height, width) == (size // stride, size // stride), (
        name, point, stride)


@pytest.mark.parametrize('name', BACKBONE_QUICK)
def test_backbone_end_points_exist_at_their_strides(name):
  _check_backbone_end_points(name)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(set(ALL_NAMES) - set(BACKBONE_QUICK)))
def test_backbone_end_points_of_every_other_network(name):
  _check_backbone_end_points(name)
