"""Keras or timm MobileNet weights -> a slim checkpoint with its record.

    from weights import convert
    result = convert.convert('keras', 'mobilenet_1_0_224_tf.h5',
                             'mobilenet_v1', 'pretrained/mobilenet_v1')

writes `pretrained/mobilenet_v1.index` / `.data-00000-of-00001` in the
released slim layout and `pretrained/training_record.json`, which evaluation,
export and fine-tuning read back (training/run_record.py).
"""

import importlib
import os

from core import errors
from training import run_record
from nets import nets_factory
from weights import keras_source
from weights import layers as layers_lib
from weights import slim_network
from weights import timm_source

SOURCES = ('keras', 'timm')

# Another module converts timm's MobileNet V4 by names, not layer order.
_MOBILENET_V4_MODULE = 'weights.timm_mobilenet_v4'


class ConversionResult(object):
  """What `convert` wrote, and what its user needs to know.

  Attributes:
    prefix: the checkpoint prefix.
    record_path: the training record beside it.
    num_classes: the checkpoint's class count.
    notes: sentences for the user (padding, preprocessing, class offset).
  """

  def __init__(self, prefix, record_path, num_classes, notes):
    self.prefix = prefix
    self.record_path = record_path
    self.num_classes = num_classes
    self.notes = notes


def _check_model_name(model_name):
  try:
    nets_factory.check_model_name(model_name)
  except ValueError as e:
    raise layers_lib.WeightsError('%s: %s' % (
        errors.ref('model_name', model_name), e))


def fitting_model_names(layers_for, num_classes, model_name):
  """The factory names whose layers the source's layers fill exactly.

  `layers_for(slim_layers)` gives the source's layers for a network's (the
  order of a Keras 3 file's layers depends on it). The other widths of
  `model_name` are tried first, the other networks only if none fits
  (building every network takes a while).
  """
  widths = sorted(nets_factory.width_variants(model_name))
  others = [name for name in nets_factory.model_names() if name not in widths]
  for candidates in (widths, others):
    fitting = [name for name in candidates
               if name != model_name and
               _fits_layers(name, layers_for, num_classes)]
    if fitting:
      return fitting
  return []


def _fits_layers(model_name, layers_for, num_classes):
  try:
    slim_layers = slim_network.slim_layers(model_name, num_classes)
  except ValueError:
    # Variables outside the conv/batch-norm layer scheme (V4's layer scales):
    # such a network converts through its own mapping, never by layer order.
    return False
  try:
    layers = layers_for(slim_layers)
  except layers_lib.WeightsError:
    return False
  return not layers_lib.first_mismatches(slim_layers, layers, count=1)


def _mismatch_error(model_name, slim_layers, layers_for, num_classes,
                    input_path):
  pairs = layers_lib.first_mismatches(slim_layers, layers_for(slim_layers))
  fitting = fitting_model_names(layers_for, num_classes, model_name)
  if fitting:
    hint = 'They fit %s.' % ' or '.join(
        errors.ref('model_name', name) for name in fitting)
  else:
    hint = ('No network of this project fits them (a width or architecture '
            'it does not build).')
  return layers_lib.WeightsError(
      'the weights in %s do not fit %s (another architecture or width). '
      'First mismatching layers, slim vs source: %s. %s' %
      (input_path, errors.ref('model_name', model_name),
       '; '.join('%s vs %s' % pair for pair in pairs), hint))


def _class_count(layers, num_classes):
  """The checkpoint's class count: 1001 for 1000 ImageNet classes."""
  source = layers_lib.head_classes(layers)
  if num_classes is None:
    return 1001 if source == 1000 else source
  return num_classes


def _source_reader(source, input_path, timm_name):
  """`layers_for(slim_layers)`: the file's layers, for a network's layers.

  The file is read once; only a Keras 3 file's layers are ordered by
  `slim_layers` (keras_source).
  """
  if source == 'keras':
    if not keras_source.has_keras3_layout(input_path):
      layers = keras_source.read_layers(input_path)
      return lambda slim_layers: list(layers)
    return lambda slim_layers: keras_source.read_layers(input_path,
                                                        slim_layers)
  state = timm_source.load_state_dict(input_path)
  layers = timm_source.read_layers(state, timm_source.source_epsilon(timm_name))
  return lambda slim_layers: list(layers)


def _mobilenet_v4_values(input_path, model_name):
  """Variable values from the MobileNet V4 module, or None if absent."""
  try:
    module = importlib.import_module(_MOBILENET_V4_MODULE)
  except ImportError:
    return None
  state = timm_source.load_state_dict(input_path)
  return module.slim_variables_from_timm(state, model_name)


def _convert_mobilenet_v4(input_path, model_name, output_prefix, image_size):
  values = _mobilenet_v4_values(input_path, model_name)
  if values is None:
    raise layers_lib.WeightsError(
        '%s needs the MobileNet V4 converter (%s), which this checkout does '
        'not have.' % (errors.ref('model_name', model_name),
                       _MOBILENET_V4_MODULE.replace('.', '/') + '.py'))
  heads = [value for name, value in values.items()
           if '/Logits/' in name and name.endswith('/biases')]
  num_classes = int(heads[0].shape[0]) if heads else 1001
  return write(values, model_name, num_classes, output_prefix, image_size)


# The preprocessing of PyTorch-trained weights: ImageNet's mean and std.
PYTORCH_PREPROCESSING = 'inception_mean_std'


def input_settings(source, timm_name):
  """(preprocessing name or None, use_explicit_padding or None) to record.

  None keeps the network's own; timm's non-tf_ models need PyTorch's
  symmetric padding and ImageNet's mean/std normalization.
  """
  if source == 'timm' and not timm_source.is_tensorflow_port(timm_name):
    return PYTORCH_PREPROCESSING, True
  return None, None


def _notes(source, timm_name, num_classes):
  notes = []
  if num_classes == 1000:
    notes.append('The head has the 1000 ImageNet classes without slim\'s '
                 'background class: train and evaluate on ImageNet TFRecords '
                 'with labels_offset=1 (recorded).')
  if input_settings(source, timm_name)[1]:
    notes.append(
        '%s pads symmetrically (PyTorch) and normalizes images with '
        'ImageNet\'s mean and std: the record says %s and %s, which '
        'training, evaluation and export read from it; pass both when '
        'you export a graph without a checkpoint.' % (
            timm_name, errors.ref('use_explicit_padding', 'true'),
            errors.ref('preprocessing_name', PYTORCH_PREPROCESSING)))
  return notes


def convert(source, input_path, model_name, output_prefix, num_classes=None,
            image_size=None, timm_name=None):
  """Converts a weights file into a slim checkpoint and training record.

  Args:
    source: 'keras' (an .h5 file) or 'timm' (.safetensors or .pth).
    input_path: the weights file.
    model_name: the factory name to fill, e.g. 'mobilenet_v2_140'.
    output_prefix: the checkpoint prefix to write.
    num_classes: the checkpoint's classes; None: 1001 (background + the
      1000 ImageNet classes) for ImageNet weights, else the source's count.
    image_size: the image size to record; None: the network's default.
    timm_name: for timm, the model's timm name (e.g. 'mobilenetv2_100'),
      which says its padding and batch-norm epsilon.

  Returns:
    A ConversionResult.

  Raises:
    WeightsError: unreadable file, weights that do not fit `model_name`, a
      class count that does not fit, or a record there that disagrees.
      Nothing is written at `output_prefix` then.
  """
  if source not in SOURCES:
    raise layers_lib.WeightsError('%s is not one of %s.' % (
        errors.ref('source', source), ', '.join(SOURCES)))
  if source == 'timm' and not timm_name:
    raise layers_lib.WeightsError(
        '%s is needed for timm weights: the model\'s timm name (one of %s), '
        'which says how it pads and normalizes.' % (
            errors.ref('timm_name'), ', '.join(sorted(
                timm_source.TIMM_TO_FACTORY))))
  _check_model_name(model_name)
  if source == 'timm' and model_name.startswith('mobilenet_v4'):
    return _convert_mobilenet_v4(input_path, model_name, output_prefix,
                                 image_size)
  layers_for = _source_reader(source, input_path, timm_name)
  # The layer order does not depend on the class count, only the head does.
  slim_layers = slim_network.slim_layers(model_name, num_classes or 1001)
  layers = layers_for(slim_layers)
  if num_classes is None:
    num_classes = _class_count(layers, num_classes) if layers else 1001
    if num_classes != 1001:
      slim_layers = slim_network.slim_layers(model_name, num_classes)
  if not layers or layers_lib.first_mismatches(slim_layers, layers, count=1):
    raise _mismatch_error(model_name, slim_layers, layers_for, num_classes,
                          input_path)
  layers[-1] = layers_lib.adapt_head(layers[-1], num_classes)
  values = layers_lib.slim_values(slim_layers, layers)
  preprocessing_name, use_explicit_padding = input_settings(source, timm_name)
  return write(values, model_name, num_classes, output_prefix, image_size,
               _notes(source, timm_name, num_classes), preprocessing_name,
               use_explicit_padding)


def write(values, model_name, num_classes, output_prefix, image_size=None,
          notes=(), preprocessing_name=None, use_explicit_padding=None):
  """Writes checkpoint and record unless the record there disagrees.

  `preprocessing_name` and `use_explicit_padding` go into the record; None
  records the network's own preprocessing and padding.
  """
  record = run_record.make_record(
      model_name=model_name,
      image_size=image_size or nets_factory.get_network_fn(
          model_name, num_classes).default_image_size,
      preprocessing_name=preprocessing_name or model_name,
      dataset_name='imagenet', num_classes=num_classes,
      labels_offset=1 if num_classes == 1000 else 0,
      use_explicit_padding=use_explicit_padding)
  directory = os.path.dirname(output_prefix) or '.'
  every_field = {field: field for field in run_record.FIELDS}
  merged = run_record.merge_with_record(directory, every_field, record, {})
  if merged and merged.conflicts:
    raise layers_lib.WeightsError(
        '%s already holds a training record of another model (%s). Write '
        'the converted checkpoint to a directory of its own with %s.' % (
            directory, '; '.join(merged.conflicts), errors.ref('output_prefix')))
  slim_network.write_checkpoint(values, output_prefix)
  record_path = run_record.write_record(directory, record)
  return ConversionResult(output_prefix, record_path, num_classes, list(notes))
