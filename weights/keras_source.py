"""Keras MobileNet weights (.h5) as a list of layers.

Reads the HDF5 layout Keras writes with `model.save_weights('x.h5')` and
`model.save('x.h5')`, and in which keras.applications publishes its
MobileNet, MobileNetV2 and MobileNetV3 weights, with h5py alone: no Keras
and no TensorFlow, so the conversion runs on TF 1.15 as well.

The file lists its layers in model order; each layer's weights are in
TensorFlow's layouts already. A BatchNormalization layer belongs to the
convolution before it; a Dense classifier becomes a 1x1 convolution.

Keras 3's `.weights.h5` (`model.save_weights('x.weights.h5')`) stores each
layer under `layers/<class name>_<n>/vars/<i>`: numbered per layer class in
model order, but without the order across classes. Those layers are put in
the order of the slim network they are to fill: its layers say, one after
another, whether a convolution, a depthwise convolution or the classifier
comes next and whether a batch norm follows.
"""

import re

import json

import h5py
import numpy as np

from core import errors
from weights import layers as layers_lib

# keras.applications builds every MobileNet's batch norms with this epsilon
# (weights-only files do not store it; full-model files do, and win).
KERAS_BATCH_NORM_EPSILON = 1e-3


def _text(value):
  return value.decode('utf8') if isinstance(value, bytes) else str(value)


def _weights_group(handle):
  """The group holding the layers: the root, or 'model_weights' of a model."""
  if 'layer_names' in handle.attrs:
    return handle
  if 'model_weights' in handle and 'layer_names' in handle[
      'model_weights'].attrs:
    return handle['model_weights']
  return None


def _epsilons(handle):
  """Layer name -> batch-norm epsilon, from a full model's config if any."""
  config = handle.attrs.get('model_config')
  if config is None:
    return {}
  layers = json.loads(_text(config)).get('config', {}).get('layers', [])
  return {layer['config']['name']: layer['config']['epsilon']
          for layer in layers
          if layer.get('class_name') == 'BatchNormalization'}


def _named_weights(group, layer_name):
  """[(short name, array)] of one layer: ('kernel', ...), ('gamma', ...)."""
  layer = group[layer_name]
  result = []
  for weight_name in layer.attrs.get('weight_names', []):
    weight_name = _text(weight_name)
    short = weight_name.rpartition('/')[2].split(':')[0]
    result.append((short, np.asarray(layer[weight_name])))
  return result


def _add_weights(layers, layer_name, named, epsilon):
  """Appends a layer or attaches batch-norm weights to the last one."""
  weights = dict(named)
  if 'depthwise_kernel' in weights:
    layers.append(layers_lib.Layer(layer_name, layers_lib.DEPTHWISE,
                                   weights['depthwise_kernel'],
                                   weights.get('bias')))
  elif 'kernel' in weights:
    kernel = weights['kernel']
    if kernel.ndim == 2:  # Dense: the same product as a 1x1 convolution.
      kernel = kernel.reshape((1, 1) + kernel.shape)
    layers.append(layers_lib.Layer(layer_name, layers_lib.CONV, kernel,
                                   weights.get('bias')))
  elif 'moving_variance' in weights and layers:
    layers[-1].batch_norm = layers_lib.BatchNorm(
        weights.get('gamma', np.ones_like(weights['beta'])),
        weights['beta'], weights['moving_mean'], weights['moving_variance'],
        epsilon)
  else:
    raise layers_lib.WeightsError(
        'layer %s has weights %s that no MobileNet layer has.' %
        (layer_name, ', '.join(sorted(weights))))


# Keras 3's group name (snake case of the layer class) -> what it holds;
# layers of other classes (activations, pads, adds) have no variables.
_KERAS3_KINDS = {'conv2d': layers_lib.CONV,
                 'depthwise_conv2d': layers_lib.DEPTHWISE,
                 'dense': 'dense', 'batch_normalization': 'batch_norm'}


def _keras3_queues(group):
  """{kind: [(group name, [arrays])] in model order} of a Keras 3 file."""
  queues = {kind: [] for kind in _KERAS3_KINDS.values()}
  for name in group:
    match = re.match(r'^(.*?)(?:_(\d+))?$', name)
    kind = _KERAS3_KINDS.get(match.group(1))
    variables = group[name].get('vars')
    if kind is None or variables is None or not len(variables):
      continue
    arrays = [np.asarray(variables[key])
              for key in sorted(variables, key=int)]
    label = _text(variables.attrs.get('name', name))
    queues[kind].append((int(match.group(2) or 0), label, arrays))
  return {kind: [(label, arrays) for _, label, arrays in sorted(entries)]
          for kind, entries in queues.items()}


def _keras3_layer(queues, slim_layer, is_last):
  """The next source layer for `slim_layer` (None when none is left)."""
  if slim_layer.kind == layers_lib.DEPTHWISE:
    queue = queues[layers_lib.DEPTHWISE]
  elif is_last and queues['dense']:
    queue = queues['dense']
  else:
    queue = queues[layers_lib.CONV]
  if not queue:
    return None
  label, arrays = queue.pop(0)
  kernel = arrays[0]
  if kernel.ndim == 2:  # Dense: the same product as a 1x1 convolution.
    kernel = kernel.reshape((1, 1) + kernel.shape)
  layer = layers_lib.Layer(label, slim_layer.kind, kernel,
                           arrays[1] if len(arrays) > 1 else None)
  if slim_layer.has_batch_norm and queues['batch_norm']:
    norm_label, norm = queues['batch_norm'].pop(0)
    if len(norm) != 4:
      raise layers_lib.WeightsError(
          'batch norm %s has %d variables; MobileNets have 4 (gamma, beta, '
          'mean, variance).' % (norm_label, len(norm)))
    layer.batch_norm = layers_lib.BatchNorm(*norm,
                                            epsilon=KERAS_BATCH_NORM_EPSILON)
  return layer


def _keras3_layers(group, slim_layers):
  """The layers of a Keras 3 file in the order of `slim_layers`.

  Layers left over (another architecture) follow at the end, so the
  comparison with the slim layers reports them.
  """
  queues = _keras3_queues(group)
  layers = []
  for index, slim_layer in enumerate(slim_layers):
    layer = _keras3_layer(queues, slim_layer, index == len(slim_layers) - 1)
    if layer is None:
      break
    layers.append(layer)
  for kind in (layers_lib.CONV, layers_lib.DEPTHWISE, 'dense'):
    for label, arrays in queues[kind]:
      layers.append(layers_lib.Layer(label, layers_lib.CONV if kind == 'dense'
                                     else kind, arrays[0]))
  return layers


def _is_keras3_file(handle):
  return 'layer_names' not in handle.attrs and isinstance(
      handle.get('layers'), h5py.Group)


def has_keras3_layout(path):
  """Whether `path` is a Keras 3 `.weights.h5` file (False if unreadable:
  `read_layers` then says why)."""
  try:
    with h5py.File(path, 'r') as handle:
      return _is_keras3_file(handle)
  except OSError:
    return False


def read_layers(path, slim_layers=None):
  """The layers of the Keras weights file `path`, in model order.

  Args:
    path: a Keras 2 .h5 (weights or model) or Keras 3 .weights.h5 file.
    slim_layers: the SlimLayers to fill; Keras 3 files need them for the
      order of their layers (see the module docstring).

  Raises:
    WeightsError: the file is missing, truncated, not HDF5, or not a Keras
      weights file.
  """
  try:
    with h5py.File(path, 'r') as handle:
      if _is_keras3_file(handle) and slim_layers is not None:
        return _keras3_layers(handle['layers'], slim_layers)
      group = _weights_group(handle)
      if group is None:
        raise layers_lib.WeightsError(
            '%s is an HDF5 file without Keras layer weights (no layer_names '
            'attribute). Give %s a file written by Keras\'s save_weights or '
            'save, or one of keras.applications\' MobileNet weight files.' %
            (errors.ref('input_path', path), errors.ref('input_path')))
      epsilons = _epsilons(handle)
      layers = []
      for layer_name in group.attrs['layer_names']:
        layer_name = _text(layer_name)
        named = _named_weights(group, layer_name)
        if named:
          _add_weights(layers, layer_name, named,
                       epsilons.get(layer_name, KERAS_BATCH_NORM_EPSILON))
      return layers
  except (OSError, KeyError) as e:
    raise layers_lib.WeightsError(
        'cannot read %s as a Keras weights file (%s): it is missing, '
        'truncated or not HDF5. Download it again or point %s at the '
        'complete .h5 file.' % (errors.ref('input_path', path), e,
                                errors.ref('input_path')))
