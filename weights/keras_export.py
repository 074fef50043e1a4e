"""A slim MobileNet checkpoint -> the same network as a keras.applications model.

TensorFlow 2 stack only (tf.keras from tf-keras): TF 1.15's Keras has no
MobileNetV3. The Keras model is built with `weights=None` (nothing is
downloaded) and filled layer by layer from the checkpoint, in the order both
run their layers (weights/layers.py).

The Keras model takes images in [-1, 1], as the slim network does
(`keras.applications.mobilenet_v2.preprocess_input` maps [0, 255] there);
MobileNetV3 is built with include_preprocessing=False for that reason.
"""

import os
import re

import numpy as np

from core import atomic_files
from core import errors
from nets import nets_factory
from weights import layers as layers_lib
from weights import slim_network

KERAS_SUFFIXES = ('.keras', '.h5')


def _keras():
  try:
    import tf_keras as keras  # pylint: disable=g-import-not-at-top
  except ImportError:
    from tensorflow import keras  # pylint: disable=g-import-not-at-top
  return keras


def keras_builder(model_name):
  """(keras.applications function, keyword arguments) for `model_name`.

  Raises:
    WeightsError: a network keras.applications does not have.
  """
  applications = _keras().applications
  alpha = nets_factory.depth_multiplier_of(model_name)
  if re.match(r'mobilenet_v1(_\d+)?$', model_name):
    return applications.MobileNet, {'alpha': alpha}
  if re.match(r'mobilenet_v2(_\d+)?$', model_name):
    return applications.MobileNetV2, {'alpha': alpha}
  match = re.match(r'mobilenet_v3_(large|small)(_075)?(_minimalistic)?$',
                   model_name)
  if match and hasattr(applications, 'MobileNetV3Large'):
    builder = (applications.MobileNetV3Large if match.group(1) == 'large'
               else applications.MobileNetV3Small)
    return builder, {'alpha': alpha, 'minimalistic': bool(match.group(3)),
                     'include_preprocessing': False}
  raise layers_lib.WeightsError(
      '%s has no keras.applications counterpart (MobileNet, MobileNetV2 and '
      'MobileNetV3Large/Small on TensorFlow 2 are; EdgeTPU is not).' %
      errors.ref('model_name', model_name))


def keras_slots(model):
  """[(Keras layer, its batch-norm layer or None)] in model order."""
  slots = []
  for layer in model.layers:
    kind = type(layer).__name__
    if kind in ('Conv2D', 'DepthwiseConv2D', 'Dense'):
      slots.append([layer, None])
    elif kind == 'BatchNormalization':
      slots[-1][1] = layer
  return slots


def _slot_values(slot, layer):
  """(Keras variable, value) pairs that put `layer` into `slot`."""
  conv, norm = slot
  kernel_shape = tuple(conv.weights[0].shape)
  values = [layer.kernel.reshape(kernel_shape)]
  if layer.bias is not None:
    values.append(layer.bias)
  if norm is not None:
    stats = layer.batch_norm.with_epsilon(norm.epsilon)
    values += [stats.gamma.astype(np.float32), stats.beta, stats.mean,
               stats.variance.astype(np.float32)]
  variables = list(conv.weights) + (list(norm.weights) if norm else [])
  return list(zip(variables, values))


def build_keras_model(model_name, prefix, image_size=224, num_classes=None):
  """The keras.applications model holding checkpoint `prefix`'s weights.

  Args:
    model_name: the checkpoint's factory name.
    prefix: the slim checkpoint.
    image_size: the Keras model's input size.
    num_classes: the Keras head's classes; None: 1000 for a 1001-class
      checkpoint (slim's background class dropped), else the checkpoint's.

  Raises:
    WeightsError: an unreadable checkpoint, or one of another network.
  """
  builder, kwargs = keras_builder(model_name)
  try:
    values = slim_network.read_checkpoint(prefix)
  except Exception as e:  # TensorFlow raises several types for bad files
    raise layers_lib.WeightsError(
        'cannot read the checkpoint %s (%s): give the prefix of a complete '
        'checkpoint (the path before .index).' %
        (errors.ref('checkpoint_path', prefix), str(e).split('\n')[0]))
  heads = [v for name, v in values.items()
           if re.search(r'/Logits/Conv2d_1c_1x1/biases$', name)]
  slim_classes = int(heads[0].shape[0]) if heads else 1001
  slim_layers = slim_network.slim_layers(model_name, slim_classes)
  missing = [name for layer in slim_layers
             for name in layer.variables.values() if name not in values]
  if missing:
    raise layers_lib.WeightsError(
        'the checkpoint %s lacks %s, which %s has: it holds another network.'
        ' Pass the %s it was trained as (its training_record.json says).' %
        (prefix, ', '.join(missing[:3]), errors.ref('model_name', model_name),
         errors.ref('model_name')))
  layers = layers_lib.layers_from_slim_values(slim_layers, values)
  if num_classes is None:
    num_classes = 1000 if slim_classes == 1001 else slim_classes
  layers[-1] = _head_for_keras(layers[-1], slim_classes, num_classes)
  model = builder(weights=None, classes=num_classes,
                  input_shape=(image_size, image_size, 3), **kwargs)
  slots = keras_slots(model)
  shapes = [tuple(slot[0].weights[0].shape) for slot in slots]
  if len(slots) != len(layers) or any(
      int(np.prod(shape)) != layer.kernel.size
      for shape, layer in zip(shapes, layers)):
    raise layers_lib.WeightsError(
        'the Keras %s does not match %s layer for layer.' %
        (builder.__name__, errors.ref('model_name', model_name)))
  # One batch_set_value for the whole model: set_weights per layer costs a
  # graph extension and a session run each in graph mode (minutes for V2 1.4).
  _keras().backend.batch_set_value(
      [pair for slot, layer in zip(slots, layers)
       for pair in _slot_values(slot, layer)])
  return model


def _head_for_keras(layer, slim_classes, num_classes):
  if num_classes == slim_classes:
    return layer
  if slim_classes == 1001 and num_classes == 1000:
    return layers_lib.Layer(layer.name, layer.kind, layer.kernel[..., 1:],
                            layer.bias[1:])
  raise layers_lib.WeightsError(
      'the checkpoint has %d classes; the Keras model can have %d%s, not '
      '%s.' % (slim_classes, slim_classes,
               ' or 1000 (without the background class)'
               if slim_classes == 1001 else '',
               errors.ref('num_classes', num_classes)))


def check_output(path):
  """Raises WeightsError unless `path` names a Keras model format."""
  if not path.endswith(KERAS_SUFFIXES):
    raise layers_lib.WeightsError(
        '%s must end in .keras or .h5 (the format Keras writes).' %
        errors.ref('output', path))


def save_model(model, path):
  """Saves `model` to `path` (.keras or .h5) under a temporary name first."""
  check_output(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  # Keras picks the format by the extension of the name it writes.
  with atomic_files.atomic_path(path, os.path.splitext(path)[1]) as temporary:
    model.save(temporary)
