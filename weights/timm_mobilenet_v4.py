"""timm's MobileNet V4 parameters as the variables of `nets.mobilenet.mobilenet_v4`.

timm (PyTorch) publishes the only MobileNet V4 weights. Its models number
their blocks `blocks.<stage>.<block>`; taken in order they are the slim
table's layers 2, 3, ... (layer 1 is the stem `conv_stem` / `bn1`), and
timm's `conv_head` / `norm_head` is the table's last layer, after the
global pool. Inside a block the names map one to one (see
`_BLOCK_PARTS`); batch norm's weight / bias / running mean / running
variance become slim's gamma / beta / moving_mean / moving_variance.

Arrays change layout: a convolution kernel [out, in, kh, kw] becomes
[kh, kw, in, out], a depthwise kernel [channels, 1, kh, kw] becomes
[kh, kw, channels, 1], and the classifier's [classes, 1280] matrix becomes
the 1x1 logits conv [1, 1, 1280, classes].

Pure numpy: `to_slim(state_dict)` takes {timm name: array} (e.g. read from
timm's `model.safetensors` with `safetensors.numpy.load_file`) and returns
{slim variable name: array}.
"""

import os
import re

import numpy as np

SCOPE = 'MobilenetV4'
LOGITS = 'Logits/Conv2d_1c_1x1'

_BATCH_NORM = {'weight': 'gamma', 'bias': 'beta',
               'running_mean': 'moving_mean',
               'running_var': 'moving_variance'}

# timm module path inside a block -> slim scope inside layer_N. Each entry
# is a convolution ('.weight') or, where the entry ends in '/BatchNorm', a
# batch norm.
_BLOCK_PARTS = {
    # stem-like convolution blocks (timm ConvBnAct)
    'conv': '', 'bn1': 'BatchNorm',
    # FusedIB (timm EdgeResidual); bn1 above is its expansion's norm in
    # timm, so EdgeResidual is special-cased in _block_part.
    'conv_exp': 'expand', 'conv_pwl': 'project', 'bn2': 'project/BatchNorm',
    # UIB (timm UniversalInvertedResidual)
    'dw_start.conv': 'start_dw', 'dw_start.bn': 'start_dw/BatchNorm',
    'pw_exp.conv': 'expand', 'pw_exp.bn': 'expand/BatchNorm',
    'dw_mid.conv': 'middle_dw', 'dw_mid.bn': 'middle_dw/BatchNorm',
    'pw_proj.conv': 'project', 'pw_proj.bn': 'project/BatchNorm',
    'dw_end.conv': 'end_dw', 'dw_end.bn': 'end_dw/BatchNorm',
    # Mobile MQA (timm MobileAttention + MultiQueryAttention2d)
    'norm': 'input_norm',
    'attn.query.proj': 'query',
    'attn.key.down_conv': 'key_down', 'attn.key.norm': 'key_down/BatchNorm',
    'attn.key.proj': 'key',
    'attn.value.down_conv': 'value_down',
    'attn.value.norm': 'value_down/BatchNorm',
    'attn.value.proj': 'value',
    'attn.output.proj': 'output_proj',
}
_BATCH_NORM_PARTS = ('bn1', 'bn2', 'norm')

_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.(\d+)\.(.+)$')


class ConversionError(ValueError):
  """A state dict that is not one of timm's MobileNet V4 models."""


def _kernel(array, depthwise):
  if array.ndim == 2:  # the classifier's linear layer
    return array.T[np.newaxis, np.newaxis]
  if depthwise:
    return np.transpose(array, (2, 3, 0, 1))
  return np.transpose(array, (2, 3, 1, 0))


def _block_part(module, leaf, has_conv_exp):
  """The slim path inside a block for timm's `module.leaf`, or None."""
  if module == 'layer_scale' and leaf == 'gamma':
    return 'layer_scale/gamma'
  if module == 'bn1' and has_conv_exp:
    module_path = 'expand/BatchNorm'
  else:
    module_path = _BLOCK_PARTS.get(module)
  if module_path is None:
    return None
  is_norm = (module_path.endswith('BatchNorm') or module_path == 'input_norm'
             or module in _BATCH_NORM_PARTS)
  if is_norm:
    if leaf not in _BATCH_NORM:
      return None
    return '%s/%s' % (module_path, _BATCH_NORM[leaf])
  if leaf != 'weight':
    return None
  name = 'depthwise_weights' if module_path.endswith('_dw') or (
      module_path.endswith('_down')) else 'weights'
  return '%s/%s' % (module_path, name) if module_path else name


def _block_layers(state_dict):
  """{(stage, block): layer number}, in timm's order, from layer 2 on."""
  found = set()
  for key in state_dict:
    match = _BLOCK_KEY.match(key)
    if match:
      found.add((int(match.group(1)), int(match.group(2))))
  return {position: number
          for number, position in enumerate(sorted(found), start=2)}


def _slim_name(key, layers, fused_blocks):
  """The slim variable (without the network scope) for a timm key."""
  if key.endswith('num_batches_tracked'):
    return None
  module, _, leaf = key.rpartition('.')
  if module == 'conv_stem' and leaf == 'weight':
    return 'layer_1/weights'
  if module == 'bn1' and leaf in _BATCH_NORM:
    return 'layer_1/BatchNorm/' + _BATCH_NORM[leaf]
  head = 'layer_%d' % (len(layers) + 3)  # stem, blocks, pool, head conv
  if module == 'conv_head' and leaf == 'weight':
    return head + '/weights'
  if module == 'norm_head' and leaf in _BATCH_NORM:
    return head + '/BatchNorm/' + _BATCH_NORM[leaf]
  if module == 'classifier':
    return LOGITS + {'weight': '/weights', 'bias': '/biases'}[leaf]
  match = _BLOCK_KEY.match(key)
  if match is None:
    return None
  position = (int(match.group(1)), int(match.group(2)))
  inner_module, _, inner_leaf = match.group(3).rpartition('.')
  part = _block_part(inner_module, inner_leaf, position in fused_blocks)
  if part is None:
    return None
  return 'layer_%d/%s' % (layers[position], part)


def to_slim(state_dict, scope=SCOPE, background_class=False):
  """Converts timm MobileNet V4 parameters to slim variables.

  Args:
    state_dict: {timm parameter or buffer name: numpy array}, of one of
      timm's `mobilenetv4_conv_*` / `mobilenetv4_hybrid_*` models.
    scope: the network's variable scope.
    background_class: prepend a class 0 ("background", zero weights and a
      bias far below the others) to the classifier, for the 1001-class
      label layout of the slim ImageNet datasets.

  Returns:
    {slim variable name: float32 array}, every name under `scope`.

  Raises:
    ConversionError: for a key this mapping does not know (a model of
      another family, or a V4 option such as squeeze-excite that timm's
      published V4 models do not use).
  """
  layers = _block_layers(state_dict)
  fused_blocks = {position for position in layers if
                  'blocks.%d.%d.conv_exp.weight' % position in state_dict}
  converted = {}
  for key, array in state_dict.items():
    name = _slim_name(key, layers, fused_blocks)
    if name is None:
      if key.endswith('num_batches_tracked'):
        continue
      raise ConversionError(
          'The timm parameter %r has no MobileNet V4 counterpart; is the '
          'state dict of a timm mobilenetv4_* model?' % key)
    value = np.asarray(array, dtype=np.float32)
    if name.endswith('weights'):
      value = _kernel(value, name.endswith('depthwise_weights'))
    converted['%s/%s' % (scope, name)] = value
  if background_class:
    _add_background(converted, scope)
  return converted


def _add_background(converted, scope):
  weights_name = '%s/%s/weights' % (scope, LOGITS)
  biases_name = '%s/%s/biases' % (scope, LOGITS)
  weights = converted[weights_name]
  converted[weights_name] = np.concatenate(
      [np.zeros_like(weights[..., :1]), weights], axis=-1)
  biases = converted[biases_name]
  # Far below every real class, so class 0 never wins and takes no mass.
  floor = np.float32(biases.min() - 100.)
  converted[biases_name] = np.concatenate([[floor], biases]).astype(
      np.float32)


def write_checkpoint(state_dict, model_name, checkpoint_prefix,
                     background_class=False):
  """Writes timm MobileNet V4 parameters as a slim checkpoint.

  Args:
    state_dict: {timm name: numpy array} (see `to_slim`).
    model_name: the nets_factory name of the same network, e.g.
      'mobilenet_v4_conv_small'.
    checkpoint_prefix: where to write (`<prefix>.index`, `.data-*`).
    background_class: see `to_slim` (1001 classes instead of 1000).

  Returns:
    The number of classes of the written logits.

  Raises:
    ConversionError: when the parameters are not those of `model_name`.
  """
  # pylint: disable=g-import-not-at-top
  from core import tf_compat  # noqa: F401
  import tensorflow.compat.v1 as tf
  from nets import nets_factory
  values = to_slim(state_dict, background_class=background_class)
  num_classes = values['%s/%s/biases' % (SCOPE, LOGITS)].shape[0]
  with tf.Graph().as_default():
    network_fn = nets_factory.get_network_fn(model_name, num_classes)
    # Variables do not depend on the image size; a small one builds fast.
    network_fn(tf.placeholder(tf.float32, [1, 64, 64, 3]))
    variables = tf.global_variables()
    shapes = {v.op.name: tuple(v.get_shape().as_list()) for v in variables}
    given = {name: value.shape for name, value in values.items()}
    if given != shapes:
      wrong = sorted(set(given) ^ set(shapes)) or sorted(
          name for name in given if given[name] != shapes[name])
      raise ConversionError(
          'These parameters are not those of %s (first mismatches: %s); '
          'pass the model name of the timm model they come from.' %
          (model_name, ', '.join(wrong[:3])))
    directory = os.path.dirname(os.path.abspath(checkpoint_prefix))
    os.makedirs(directory, exist_ok=True)
    with tf.Session() as sess:
      sess.run([v.initializer for v in variables],
               {v.initializer.inputs[1]: values[v.op.name]
                for v in variables})
      tf.train.Saver(variables).save(sess, checkpoint_prefix,
                                     write_meta_graph=False)
  return num_classes


def slim_variables_from_timm(state_dict, model_name):
  """The entry convert_weights.py calls: `to_slim` in the released layout.

  `model_name` (a `mobilenet_v4_*` factory name) is accepted for the
  converter's common signature; every V4 network has the same scope. The
  classifier gets slim's background class 0, as the other converted
  networks do.
  """
  del model_name  # One scope and one mapping serve all five networks.
  return to_slim(state_dict, background_class=True)
