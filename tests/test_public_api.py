"""The public API of nets/mobilenet_v1.py and deployment/model_deploy.py.

The tables below are slim's documented interface of the two modules (names,
parameters in order, defaults), kept here by hand. Code written against slim
imports these names and passes these keywords, so each must exist with the
same signature; extras are allowed.
"""


import inspect

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from deployment import model_deploy
from nets import mobilenet_v1

_ = inspect.Parameter.empty  # "no default"
_VAR_KEYWORD = '**'
_VAR_POSITIONAL = '*'

# name -> [(parameter, default), ...]; `_` marks a parameter without one.
MOBILENET_V1_FUNCTIONS = {
    'mobilenet_v1_base': [
        ('inputs', _), ('final_endpoint', 'Conv2d_13_pointwise'),
        ('min_depth', 8), ('depth_multiplier', 1.0), ('conv_defs', None),
        ('output_stride', None), ('use_explicit_padding', False),
        ('scope', None)],
    'mobilenet_v1': [
        ('inputs', _), ('num_classes', 1000), ('dropout_keep_prob', 0.999),
        ('is_training', True), ('min_depth', 8), ('depth_multiplier', 1.0),
        ('conv_defs', None), ('prediction_fn', slim.softmax),
        ('spatial_squeeze', True), ('reuse', None), ('scope', 'MobilenetV1'),
        # After slim's parameters: the base's padding, for timm's weights.
        ('global_pool', False), ('use_explicit_padding', False)],
    'mobilenet_v1_arg_scope': [
        ('is_training', True), ('weight_decay', 0.00004), ('stddev', 0.09),
        ('regularize_depthwise', False), ('batch_norm_decay', 0.9997),
        ('batch_norm_epsilon', 0.001),
        ('batch_norm_updates_collections', tf.GraphKeys.UPDATE_OPS),
        ('normalizer_fn', slim.batch_norm)],
    'wrapped_partial': [('func', _), ('args', _VAR_POSITIONAL),
                        ('kwargs', _VAR_KEYWORD)],
    '_reduced_kernel_size_for_small_input': [('input_tensor', _),
                                             ('kernel_size', _)],
    '_fixed_padding': [('inputs', _), ('kernel_size', _), ('rate', 1)],
}
MOBILENET_V1_VARIANTS = {'mobilenet_v1_075': 0.75, 'mobilenet_v1_050': 0.50,
                         'mobilenet_v1_025': 0.25}
MOBILENET_V1_TUPLES = {'Conv': ('kernel', 'stride', 'depth'),
                       'DepthSepConv': ('kernel', 'stride', 'depth')}
# (kind, kernel, stride, depth) of the 14 layers of the paper's Table 1.
MOBILENETV1_CONV_DEFS = [('Conv', [3, 3], 2, 32)] + [
    ('DepthSepConv', [3, 3], stride, depth) for stride, depth in [
        (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512),
        (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)]]

MODEL_DEPLOY_FUNCTIONS = {
    'create_clones': [('config', _), ('model_fn', _), ('args', None),
                      ('kwargs', None)],
    'optimize_clones': [('clones', _), ('optimizer', _),
                        ('regularization_losses', None),
                        ('kwargs', _VAR_KEYWORD)],
    'deploy': [('config', _), ('model_fn', _), ('args', None),
               ('kwargs', None), ('optimizer', None),
               ('summarize_gradients', False)],
}
MODEL_DEPLOY_TUPLES = {
    'Clone': ('outputs', 'scope', 'device'),
    'DeployedModel': ('train_op', 'summary_op', 'total_loss', 'clones'),
}
MODEL_DEPLOY_ALL = ['create_clones', 'deploy', 'optimize_clones',
                    'DeployedModel', 'DeploymentConfig', 'Clone']
DEPLOYMENT_CONFIG_INIT = [
    ('num_clones', 1), ('clone_on_cpu', False), ('replica_id', 0),
    ('num_replicas', 1), ('num_ps_tasks', 0), ('worker_job_name', 'worker'),
    ('ps_job_name', 'ps')]
DEPLOYMENT_CONFIG_METHODS = {
    'caching_device': [], 'clone_device': [('clone_index', _)],
    'clone_scope': [('clone_index', _)], 'optimizer_device': [],
    'inputs_device': [], 'variables_device': []}
DEPLOYMENT_CONFIG_PROPERTIES = ['num_clones', 'clone_on_cpu', 'replica_id',
                                'num_replicas', 'num_ps_tasks', 'ps_device',
                                'worker_device']


def _signature_table(function, follow_wrapped=True):
  """[(name, default)] of `function`, in the form of the tables above."""
  table = []
  signature = inspect.signature(function, follow_wrapped=follow_wrapped)
  for param in signature.parameters.values():
    if param.kind == param.VAR_POSITIONAL:
      table.append((param.name, _VAR_POSITIONAL))
    elif param.kind == param.VAR_KEYWORD:
      table.append((param.name, _VAR_KEYWORD))
    else:
      table.append((param.name, param.default))
  return table


def _check_functions(module, table):
  for name, expected in sorted(table.items()):
    assert hasattr(module, name), '%s.%s is missing' % (module.__name__, name)
    assert _signature_table(getattr(module, name)) == expected, name


def test_mobilenet_v1_functions_have_slims_signatures():
  _check_functions(mobilenet_v1, MOBILENET_V1_FUNCTIONS)
  assert mobilenet_v1.mobilenet_v1.default_image_size == 224


@pytest.mark.parametrize('name', sorted(MOBILENET_V1_VARIANTS))
def test_mobilenet_v1_variants_fix_the_depth_multiplier(name):
  variant = getattr(mobilenet_v1, name)
  assert variant.func is mobilenet_v1.mobilenet_v1
  assert variant.keywords == {'depth_multiplier': MOBILENET_V1_VARIANTS[name]}
  assert variant.__name__ == 'mobilenet_v1'
  assert variant.default_image_size == 224
  # Every other parameter is still there, with the base function's default
  # (the partial itself, not the __wrapped__ base that update_wrapper adds).
  table = dict(_signature_table(variant, follow_wrapped=False))
  assert table.pop('depth_multiplier') == MOBILENET_V1_VARIANTS[name]
  base = dict(MOBILENET_V1_FUNCTIONS['mobilenet_v1'])
  base.pop('depth_multiplier')
  assert table == base


def test_mobilenet_v1_layer_table_and_tuples():
  for name, fields in MOBILENET_V1_TUPLES.items():
    assert getattr(mobilenet_v1, name)._fields == fields
  actual = [(type(layer).__name__, list(layer.kernel), layer.stride,
             layer.depth) for layer in mobilenet_v1.MOBILENETV1_CONV_DEFS]
  assert actual == MOBILENETV1_CONV_DEFS
  assert mobilenet_v1._CONV_DEFS == mobilenet_v1.MOBILENETV1_CONV_DEFS


def test_wrapped_partial_keeps_attributes():
  def net(inputs, depth_multiplier=1.0):
    return inputs, depth_multiplier
  net.default_image_size = 96
  wrapped = mobilenet_v1.wrapped_partial(net, depth_multiplier=0.5)
  assert wrapped('x') == ('x', 0.5)
  assert wrapped.default_image_size == 96 and wrapped.__name__ == 'net'


def test_fixed_padding_pads_for_a_valid_convolution():
  inputs = tf.zeros([1, 5, 6, 2])
  assert mobilenet_v1._fixed_padding(inputs, [3, 3]).shape.as_list() == [
      1, 7, 8, 2]
  # rate 2 makes a 3x3 kernel span 5x5: pad 2 on each side.
  assert mobilenet_v1._fixed_padding(inputs, [3, 3], 2).shape.as_list() == [
      1, 9, 10, 2]


def test_model_deploy_functions_and_tuples():
  _check_functions(model_deploy, MODEL_DEPLOY_FUNCTIONS)
  for name, fields in MODEL_DEPLOY_TUPLES.items():
    assert getattr(model_deploy, name)._fields == fields
  assert sorted(model_deploy.__all__) == sorted(MODEL_DEPLOY_ALL)


def test_deployment_config_interface():
  config_class = model_deploy.DeploymentConfig
  assert _signature_table(config_class) == DEPLOYMENT_CONFIG_INIT
  for name, params in DEPLOYMENT_CONFIG_METHODS.items():
    method = getattr(config_class, name)
    assert _signature_table(method) == [('self', _)] + params, name
  config = config_class()
  for name in DEPLOYMENT_CONFIG_PROPERTIES:
    assert isinstance(getattr(config_class, name), property), name
  assert [getattr(config, n) for n in DEPLOYMENT_CONFIG_PROPERTIES] == [
      1, False, 0, 1, 0, '', '']


def test_nets_tf_compat_is_the_core_module():
  # Code written for earlier versions imports it from nets/ first thing.
  from nets import tf_compat as old_path  # pylint: disable=g-import-not-at-top
  from core import tf_compat  # pylint: disable=g-import-not-at-top
  assert old_path is tf_compat
