"""Keras MobileNet weights (.h5) as a list of layers.

Reads the HDF5 layout Keras writes with `model.save_weights('x.h5')` and
`model.save('x.h5')`, and in which keras.applications publishes its
MobileNet, MobileNetV2 and MobileNetV3 weights, with h5py alone: no Keras
and no TensorFlow, so the conversion runs on TF 1.15 as well.

The file lists its layers in model order; each layer's weights are in
TensorFlow's layouts already. A BatchNormalization layer belongs to the
convolution before it; a Dense classifier becomes a 1x1 convolution.
"""

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


def read_layers(path):
  """The layers of the Keras weights file `path`, in model order.

  Raises:
    WeightsError: the file is missing, truncated, not HDF5, or not a Keras
      weights file.
  """
  try:
    with h5py.File(path, 'r') as handle:
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
