"""timm MobileNet weights (.safetensors or .pth state dicts) as layers.

timm's MobileNet V1, V2 and V3 (its `EfficientNet` and `MobileNetV3`
classes) name their modules `conv_stem`/`bn1`, then `blocks.<stage>.<index>`
(depthwise-separable blocks: `conv_dw`, `bn1`, `se`, `conv_pw`, `bn2`;
inverted residuals: `conv_pw`, `bn1`, `conv_dw`, `bn2`, `se`, `conv_pwl`,
`bn3`; plain conv blocks: `conv`, `bn1`), then `conv_head` (+ `bn2`) and
`classifier`. A .safetensors file does not keep the modules' order, so the
order is rebuilt from these names, and the tensors are moved from PyTorch's
layouts (OIHW, [out, in]) into TensorFlow's.

.safetensors files are read with the safetensors package's numpy API (no
PyTorch); .pth files need torch.
"""

import re

import numpy as np

from core import errors
from weights import layers as layers_lib

# PyTorch's BatchNorm2d default; timm's `tf_` ports use TensorFlow's 1e-3.
TORCH_BATCH_NORM_EPSILON = 1e-5
TF_BATCH_NORM_EPSILON = 1e-3

# timm model name -> the factory name its weights fill.
TIMM_TO_FACTORY = {
    'mobilenetv1_100': 'mobilenet_v1',
    'mobilenetv2_035': 'mobilenet_v2_035',
    'mobilenetv2_050': 'mobilenet_v2_050',
    'mobilenetv2_100': 'mobilenet_v2',
    'mobilenetv2_140': 'mobilenet_v2_140',
    'mobilenetv3_large_075': 'mobilenet_v3_large_075',
    'mobilenetv3_large_100': 'mobilenet_v3_large',
    'mobilenetv3_small_075': 'mobilenet_v3_small_075',
    'mobilenetv3_small_100': 'mobilenet_v3_small',
    'tf_mobilenetv3_large_075': 'mobilenet_v3_large_075',
    'tf_mobilenetv3_large_100': 'mobilenet_v3_large',
    'tf_mobilenetv3_large_minimal_100': 'mobilenet_v3_large_minimalistic',
    'tf_mobilenetv3_small_075': 'mobilenet_v3_small_075',
    'tf_mobilenetv3_small_100': 'mobilenet_v3_small',
    'tf_mobilenetv3_small_minimal_100': 'mobilenet_v3_small_minimalistic',
    # Converted by weights/timm_mobilenet_v4.py (by names, not layer order).
    'mobilenetv4_conv_small': 'mobilenet_v4_conv_small',
    'mobilenetv4_conv_medium': 'mobilenet_v4_conv_medium',
    'mobilenetv4_conv_large': 'mobilenet_v4_conv_large',
    'mobilenetv4_hybrid_medium': 'mobilenet_v4_hybrid_medium',
    'mobilenetv4_hybrid_large': 'mobilenet_v4_hybrid_large',
}


def is_tensorflow_port(timm_name):
  """Whether timm built `timm_name` like TensorFlow: SAME padding, eps 1e-3.

  timm's other MobileNets pad symmetrically (k // 2 on each side), which
  slim reproduces with use_explicit_padding=True, and use PyTorch's
  batch-norm epsilon.
  """
  return timm_name.startswith('tf_')


def source_epsilon(timm_name):
  return (TF_BATCH_NORM_EPSILON if is_tensorflow_port(timm_name)
          else TORCH_BATCH_NORM_EPSILON)


def load_state_dict(path):
  """{tensor name: numpy array} of a .safetensors or .pth file.

  Raises:
    WeightsError: unreadable or truncated file, or torch missing for .pth.
  """
  if path.endswith('.safetensors'):
    import safetensors.numpy  # pylint: disable=g-import-not-at-top
    try:
      return safetensors.numpy.load_file(path)
    except Exception as e:  # the Rust reader raises its own error types
      raise layers_lib.WeightsError(
          'cannot read %s (%s): it is missing, truncated or not a '
          'safetensors file. Download it again.' %
          (errors.ref('input_path', path), e))
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise layers_lib.WeightsError(
        'reading %s needs PyTorch, which is not installed here (it is no '
        'requirement of this project). Convert the file to .safetensors '
        'where torch is installed (safetensors.torch.save_file(state_dict, '
        '"model.safetensors")), or download the model\'s .safetensors '
        'file, and pass that as %s.' % (errors.ref('input_path', path),
                                        errors.ref('input_path')))
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # torch raises many types for damaged files
    raise layers_lib.WeightsError(
        'cannot read %s (%s): it is missing, truncated or not a PyTorch '
        'state dict.' % (errors.ref('input_path', path), e))
  state = state.get('state_dict', state)
  return {name: tensor.float().numpy() for name, tensor in state.items()}


def _natural_key(name):
  return [int(part) if part.isdigit() else part for part in name.split('.')]


def _conv(state, used, module, kind):
  weight = state[module + '.weight']
  used.add(module + '.weight')
  if weight.ndim == 2:  # Linear classifier [out, in] -> 1x1 conv
    kernel = weight.T.reshape((1, 1) + weight.T.shape)
  elif kind == layers_lib.DEPTHWISE:  # [C, 1, H, W] -> [H, W, C, 1]
    kernel = weight.transpose(2, 3, 0, 1)
  else:  # [O, I, H, W] -> [H, W, I, O]
    kernel = weight.transpose(2, 3, 1, 0)
  bias = state.get(module + '.bias')
  if bias is not None:
    used.add(module + '.bias')
  return layers_lib.Layer(module, kind, kernel, bias)


def _batch_norm(state, used, module, epsilon):
  names = ['%s.%s' % (module, leaf) for leaf in
           ('weight', 'bias', 'running_mean', 'running_var')]
  used.update(names + [module + '.num_batches_tracked'])
  return layers_lib.BatchNorm(*[state[name] for name in names],
                              epsilon=epsilon)


# A block's (convolution, its batch norm) in the order the block runs them;
# 'se' stands for the squeeze-excite's two convolutions where present.
_BLOCK_ORDERS = [
    ('conv_pwl', [('conv_pw', 'bn1'), ('conv_dw', 'bn2'), 'se',
                  ('conv_pwl', 'bn3')]),
    ('conv_dw', [('conv_dw', 'bn1'), 'se', ('conv_pw', 'bn2')]),
    ('conv', [('conv', 'bn1')]),
]


def _block_layers(state, used, block, epsilon):
  modules = {name[len(block) + 1:].split('.')[0] for name in state
             if name.startswith(block + '.')}
  order = next((o for key, o in _BLOCK_ORDERS if key in modules), [])
  layers = []
  for step in order:
    if step == 'se':
      for conv in ('se.conv_reduce', 'se.conv_expand'):
        if '%s.%s.weight' % (block, conv) in state:
          layers.append(_conv(state, used, '%s.%s' % (block, conv),
                              layers_lib.CONV))
      continue
    conv, norm = step
    kind = layers_lib.DEPTHWISE if conv == 'conv_dw' else layers_lib.CONV
    layer = _conv(state, used, '%s.%s' % (block, conv), kind)
    layer.batch_norm = _batch_norm(state, used, '%s.%s' % (block, norm),
                                   epsilon)
    layers.append(layer)
  return layers


def read_layers(state, epsilon):
  """The layers of a timm MobileNet state dict, in the order they run.

  Raises:
    WeightsError: tensors no MobileNet V1/V2/V3 layer explains (another
      architecture), or expected tensors missing.
  """
  try:
    used = set()
    layers = [_conv(state, used, 'conv_stem', layers_lib.CONV)]
    layers[0].batch_norm = _batch_norm(state, used, 'bn1', epsilon)
    blocks = sorted({re.match(r'blocks\.\d+\.\d+', name).group(0)
                     for name in state if re.match(r'blocks\.\d+\.\d+', name)},
                    key=_natural_key)
    for block in blocks:
      layers.extend(_block_layers(state, used, block, epsilon))
    if 'conv_head.weight' in state:
      layers.append(_conv(state, used, 'conv_head', layers_lib.CONV))
      if 'bn2.weight' in state:
        layers[-1].batch_norm = _batch_norm(state, used, 'bn2', epsilon)
    layers.append(_conv(state, used, 'classifier', layers_lib.CONV))
  except KeyError as e:
    raise layers_lib.WeightsError(
        'the state dict lacks %s, which a timm MobileNet V1/V2/V3 has: '
        'these are weights of another architecture or a damaged file.' % e)
  unused = sorted(set(state) - used, key=_natural_key)
  if unused:
    raise layers_lib.WeightsError(
        'the state dict has tensors no timm MobileNet V1/V2/V3 layer has '
        '(%s%s): these are weights of another architecture.' %
        (', '.join(unused[:5]), ', ...' if len(unused) > 5 else ''))
  return layers

