"""The public API of the MobileNet modules, checked against slim's.

`SLIM_API` is the project's own table of the public names of slim's
`nets/mobilenet/{mobilenet,conv_blocks,mobilenet_v2,mobilenet_v3}.py` and
`nets/nets_factory.py` (the MobileNet part), with the signature of each
function as `(name, default)` pairs (`REQUIRED` for none; `*args` and
`**kwargs` as such). Defaults that are functions are written as their
names. Code written against slim imports these names and passes these
keywords, so each must exist here with the same parameters, order and
defaults; `nets_factory.get_network_fn` may add trailing keyword
parameters with defaults (it adds `batch_norm_decay`).
"""


import functools
import importlib
import inspect

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import pytest

REQUIRED = object()
CALLABLE = 'callable'  # a partial or other callable object, not a def
CONSTANT = 'constant'  # a dict or other value
CLASS = 'class'

_NET_ARGS = [('input_tensor', REQUIRED), ('depth_multiplier', 1.0),
             ('**kwargs', None)]

SLIM_API = {
    'nets.mobilenet.mobilenet': {
        'apply_activation': [('x', REQUIRED), ('name', None),
                             ('activation_fn', None)],
        'depth_multiplier': [('output_params', REQUIRED),
                             ('multiplier', REQUIRED), ('divisible_by', 8),
                             ('min_depth', 8), ('**unused_kwargs', None)],
        'op': [('opfunc', REQUIRED), ('multiplier_func', 'depth_multiplier'),
               ('**params', None)],
        'NoOpScope': CLASS,
        'safe_arg_scope': [('funcs', REQUIRED), ('**kwargs', None)],
        'mobilenet_base': [('inputs', REQUIRED), ('conv_defs', REQUIRED),
                           ('multiplier', 1.0), ('final_endpoint', None),
                           ('output_stride', None),
                           ('use_explicit_padding', False), ('scope', None),
                           ('is_training', False)],
        'mobilenet': [('inputs', REQUIRED), ('num_classes', 1001),
                      ('prediction_fn', 'softmax'), ('reuse', None),
                      ('scope', 'Mobilenet'), ('base_only', False),
                      ('use_reduce_mean_for_pooling', False),
                      ('**mobilenet_args', None)],
        'global_pool': [('input_tensor', REQUIRED), ('pool_op', 'avg_pool')],
        'training_scope': [('is_training', True), ('weight_decay', 0.00004),
                           ('stddev', 0.09), ('dropout_keep_prob', 0.8),
                           ('bn_decay', 0.997)],
    },
    'nets.mobilenet.conv_blocks': {
        'split_separable_conv2d': [
            ('input_tensor', REQUIRED), ('num_outputs', REQUIRED),
            ('scope', None), ('normalizer_fn', None), ('stride', 1),
            ('rate', 1), ('endpoints', None),
            ('use_explicit_padding', False)],
        'expand_input_by_factor': [('n', REQUIRED), ('divisible_by', 8)],
        'split_conv': [('input_tensor', REQUIRED), ('num_outputs', REQUIRED),
                       ('num_ways', REQUIRED), ('scope', REQUIRED),
                       ('divisible_by', 8), ('**kwargs', None)],
        'expanded_conv': [
            ('input_tensor', REQUIRED), ('num_outputs', REQUIRED),
            ('expansion_size', CALLABLE), ('stride', 1), ('rate', 1),
            ('kernel_size', (3, 3)), ('residual', True),
            ('normalizer_fn', None), ('split_projection', 1),
            ('split_expansion', 1), ('split_divisible_by', 8),
            ('expansion_transform', None), ('depthwise_location', 'expansion'),
            ('depthwise_channel_multiplier', 1), ('endpoints', None),
            ('use_explicit_padding', False), ('padding', 'SAME'),
            ('inner_activation_fn', None), ('depthwise_activation_fn', None),
            ('project_activation_fn', 'identity'),
            ('depthwise_fn', 'separable_convolution2d'),
            ('expansion_fn', 'split_conv'), ('projection_fn', 'split_conv'),
            ('scope', None)],
        'squeeze_excite': [
            ('input_tensor', REQUIRED), ('divisible_by', 8),
            ('squeeze_factor', 3), ('inner_activation_fn', 'relu'),
            ('gating_fn', 'sigmoid'), ('squeeze_input_tensor', None),
            ('pool', None)],
    },
    'nets.mobilenet.mobilenet_v2': {
        'op': CALLABLE,
        'expand_input': CALLABLE,
        'V2_DEF': CONSTANT,
        'V2_DEF_GROUP_NORM': CONSTANT,
        'mobilenet': [('input_tensor', REQUIRED), ('num_classes', 1001),
                      ('depth_multiplier', 1.0), ('scope', 'MobilenetV2'),
                      ('conv_defs', None),
                      ('finegrain_classification_mode', False),
                      ('min_depth', None), ('divisible_by', None),
                      ('activation_fn', None), ('**kwargs', None)],
        'wrapped_partial': [('func', REQUIRED), ('*args', None),
                            ('**kwargs', None)],
        'mobilenet_v2_100': CALLABLE,
        'mobilenet_v2_140': CALLABLE,
        'mobilenet_v2_050': CALLABLE,
        'mobilenet_v2_035': CALLABLE,
        'mobilenet_base': _NET_ARGS,
        'mobilenet_base_group_norm': _NET_ARGS,
        'training_scope': [('**kwargs', None)],
    },
    'nets.mobilenet.mobilenet_v3': {
        'op': CALLABLE,
        'expand_input': CALLABLE,
        'squeeze_excite': CALLABLE,
        'hard_swish': [('x', REQUIRED)],
        'reduce_to_1x1': [('input_tensor', REQUIRED), ('default_size', 7),
                          ('**kwargs', None)],
        'mbv3_op': [('ef', REQUIRED), ('n', REQUIRED), ('k', REQUIRED),
                    ('s', 1), ('act', 'relu'), ('se', None),
                    ('**kwargs', None)],
        'mbv3_fused': [('ef', REQUIRED), ('n', REQUIRED), ('k', REQUIRED),
                       ('s', 1), ('**kwargs', None)],
        'mbv3_op_se': CALLABLE,
        'DEFAULTS': CONSTANT,
        'DEFAULTS_GROUP_NORM': CONSTANT,
        'V3_LARGE': CONSTANT,
        'V3_LARGE_MINIMALISTIC': CONSTANT,
        'V3_SMALL': CONSTANT,
        'V3_SMALL_MINIMALISTIC': CONSTANT,
        'V3_EDGETPU': CONSTANT,
        'V3_LARGE_DETECTION': CONSTANT,
        'V3_SMALL_DETECTION': CONSTANT,
        'mobilenet': [('input_tensor', REQUIRED), ('num_classes', 1001),
                      ('depth_multiplier', 1.0), ('scope', 'MobilenetV3'),
                      ('conv_defs', None),
                      ('finegrain_classification_mode', False),
                      ('use_groupnorm', False), ('**kwargs', None)],
        'training_scope': CALLABLE,
        'mobilenet_base': _NET_ARGS,
        'wrapped_partial': [('func', REQUIRED), ('new_defaults', None),
                            ('**kwargs', None)],
        'large': CALLABLE,
        'small': CALLABLE,
        'edge_tpu': CALLABLE,
        'edge_tpu_075': CALLABLE,
        'large_minimalistic': CALLABLE,
        'small_minimalistic': CALLABLE,
    },
    'nets.nets_factory': {
        'networks_map': CONSTANT,
        'arg_scopes_map': CONSTANT,
        'get_network_fn': [('name', REQUIRED), ('num_classes', REQUIRED),
                           ('weight_decay', 0.0), ('is_training', False)],
    },
}

# Functions that may add trailing keyword parameters with defaults.
EXTENSIBLE = {('nets.nets_factory', 'get_network_fn')}


def _describe_default(value):
  if value is inspect.Parameter.empty:
    return REQUIRED
  if callable(value) and not isinstance(value, type):
    # Named functions by name; partials / closures as CALLABLE.
    name = getattr(value, '__name__', None)
    if name and not isinstance(value, functools.partial) and (
        name != '<lambda>'):
      return name
    return CALLABLE
  return value


def _describe(func):
  """[(name, default)] of a function, in slim's table notation."""
  described = []
  for parameter in inspect.signature(func).parameters.values():
    if parameter.kind == parameter.VAR_POSITIONAL:
      described.append(('*' + parameter.name, None))
    elif parameter.kind == parameter.VAR_KEYWORD:
      described.append(('**' + parameter.name, None))
    else:
      described.append((parameter.name, _describe_default(parameter.default)))
  return described


def _cases():
  for module_name, names in sorted(SLIM_API.items()):
    for name, expected in sorted(names.items()):
      yield pytest.param(module_name, name, expected,
                         id='%s.%s' % (module_name.split('.')[-1], name))


@pytest.mark.parametrize('module_name,name,expected', list(_cases()))
def test_public_name_matches_slim(module_name, name, expected):
  module = importlib.import_module(module_name)
  assert hasattr(module, name), '%s.%s is missing' % (module_name, name)
  value = getattr(module, name)
  if expected == CONSTANT:
    assert not callable(value)
  elif expected == CLASS:
    assert isinstance(value, type)
  elif expected == CALLABLE:
    assert callable(value)
  else:
    actual = _describe(value)
    if (module_name, name) in EXTENSIBLE:
      extra = actual[len(expected):]
      actual = actual[:len(expected)]
      assert all(default is not REQUIRED for _, default in extra), extra
    assert actual == expected


def test_no_op_scope_and_safe_arg_scope():
  from nets.mobilenet import mobilenet
  import tf_slim as slim
  with mobilenet.NoOpScope() as entered:
    assert entered is None
  assert isinstance(mobilenet.safe_arg_scope([slim.conv2d], stride=None),
                    mobilenet.NoOpScope)
  with mobilenet.safe_arg_scope([slim.conv2d], stride=2, rate=None) as scope:
    assert list(scope.values()) == [{'stride': 2}]


def test_apply_activation():
  from nets.mobilenet import mobilenet
  import tensorflow.compat.v1 as tf
  x = tf.constant([-1.0, 2.0])
  assert mobilenet.apply_activation(x) is x
  with tf.Session() as sess:
    out = sess.run(mobilenet.apply_activation(x, activation_fn=tf.nn.relu,
                                              name='act'))
  assert list(out) == [0.0, 2.0]


def test_split_separable_conv2d_layout():
  from nets.mobilenet import conv_blocks
  import tensorflow.compat.v1 as tf
  import tf_slim as slim
  inputs = tf.placeholder(tf.float32, [1, 9, 9, 4])
  endpoints = {}
  with slim.arg_scope([slim.batch_norm], is_training=False):
    named = conv_blocks.split_separable_conv2d(
        inputs, 8, scope='Conv2d_1', normalizer_fn=slim.batch_norm,
        stride=2, endpoints=endpoints)
    fresh = conv_blocks.split_separable_conv2d(inputs, 6,
                                               use_explicit_padding=True)
  names = {v.op.name for v in tf.global_variables()}
  assert {'Conv2d_1_depthwise/depthwise_weights',
          'Conv2d_1_depthwise/BatchNorm/beta', 'Conv2d_1_pointwise/weights',
          'separable/depthwise/depthwise_weights',
          'separable/pointwise/weights'} <= names
  assert sorted(endpoints) == ['Conv2d_1_depthwise', 'Conv2d_1_pointwise']
  assert named.get_shape().as_list() == [1, 5, 5, 8]
  assert fresh.get_shape().as_list() == [1, 9, 9, 6]
