r"""Labels image files with a trained classifier of any exported kind.

    python classify_image.py --model_path=MODEL [flags] IMAGE [IMAGE ...]

MODEL is detected by its content: a checkpoint (prefix or training
directory; needs --model_name, and --image_size if not 224), a frozen graph
(.pb from freeze_graph.py), a SavedModel directory (export_saved_model.py),
a .tflite model (export_tflite.py) or a .onnx model (export_onnx.py, run by
ONNX Runtime). Images are JPEG, PNG, GIF or BMP of
any size; each gets the model's evaluation preprocessing (central crop,
bilinear resize to the model's input size, scaling to [-1, 1]) and the top
--top_k classes are printed with names from --labels_file, or the
labels.txt of --dataset_dir, or a labels.txt next to the model.

When the model's directory holds the record train_image_classifier.py writes
(training_record.json: model name, image size, preprocessing, class count,
labels offset, moving-average decay), flags not given are taken from it
and listed; a given flag that contradicts it gets a warning.

Every readable image is classified; each one that cannot be read or
decoded is reported (one line each) and the exit status is then 1.

    python classify_image.py --model_path=/tmp/export/model.tflite \
      --dataset_dir=/tmp/shapes /tmp/photo.jpg
"""


import sys

from absl import app
from absl import flags

# Before TensorFlow loads: its C++ side reads the log level once.
from cli import logs
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np

from core import errors
from cli import common_flags
from cli import record_flags
from cli import script_utils
from cli import export_flags
from export import inference_graph
from export import labels
from export import predictors

# Record field -> this script's flag; checkpoints rebuild the network from
# all of them, exported models carry their own name, size and head.
_RECORD_FLAGS = record_flags.NETWORK_FLAGS
_EXPORTED_RECORD_FLAGS = ('preprocessing_name', 'labels_offset')


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  export_flags.define_labels_flags(flag_values)
  export_flags.define(
      flags.DEFINE_string, 'model_path', None,
      'The model: a checkpoint (prefix or directory), a frozen graph .pb, a '
      'SavedModel directory, a .tflite file or a .onnx file.', flag_values)


FLAGS = flags.FLAGS


class ImagesFailed(script_utils.ScriptError):
  """Some images could not be classified (the others were).

  Attributes:
    results: per image, its top-k list, or None where it failed.
  """

  def __init__(self, message, results):
    super(ImagesFailed, self).__init__(message)
    self.results = results


def _read_images(image_paths):
  """Returns ({path: bytes} of readable images, {path: error message})."""
  images, failures = {}, {}
  for path in image_paths:
    try:
      images[path] = predictors.read_image_file(path)
    except errors.InputError as e:
      failures[path] = script_utils.as_command_line(e)
  return images, failures


def _failure_report(image_paths, failures):
  """The error for the images in `failures`: one line each."""
  lines = []
  for path in image_paths:
    if path in failures:
      message = failures[path]
      lines.append('  ' + (message if path in message else
                           '%s: %s' % (path, message)))
  if len(failures) == len(image_paths):
    head = 'None of the %d image(s) could be classified:' % len(image_paths)
  else:
    head = ('%d of %d images could not be classified (the results of the '
            'others are above):' % (len(failures), len(image_paths)))
  return '\n'.join([head] + lines)


def model_options(flag_values, kind, out):
  """The model flags, completed from the model's training record if any.

  Args:
    flag_values: the parsed flags.
    kind: the model's kind (predictors.KINDS).
    out: where to print what was taken from the record and conflicts.

  Returns:
    {flag name: value} for the flags in _RECORD_FLAGS.

  Raises:
    ScriptError: if the record is damaged.
  """
  fields = dict(_RECORD_FLAGS)
  if kind != predictors.CHECKPOINT:
    fields = {f: fields[f] for f in _EXPORTED_RECORD_FLAGS}
  given, defaults = record_flags.given_and_defaults(
      flag_values, set(_RECORD_FLAGS.values()))
  merged = record_flags.merge_record(flag_values.model_path, fields, given,
                                     defaults)
  if merged is None:
    return dict(defaults, **given)
  if merged.taken_line():
    print(merged.taken_line(), file=out)
  for conflict in merged.conflicts:
    print('Warning: %s' % script_utils.as_command_line(conflict), file=out)
  return merged.values


def _load_predictor(flag_values, out):
  """Loads --model_path with flags completed from its training record."""
  kind, path = predictors.detect_kind(flag_values.model_path)
  options = model_options(flag_values, kind, out)
  num_classes = None
  if kind == predictors.CHECKPOINT:
    num_classes = inference_graph.resolve_num_classes(
        dataset_name=flag_values.dataset_name,
        dataset_dir=flag_values.dataset_dir,
        labels_offset=options['labels_offset'],
        num_classes=options['num_classes'], checkpoint=path)
  predictor = predictors.load(
      flag_values.model_path,
      model_name=options['model_name'],
      num_classes=num_classes,
      image_size=options['image_size'],
      use_grayscale=flag_values.use_grayscale,
      quantize=flag_values.quantize,
      moving_average_decay=options['moving_average_decay'],
      preprocessing_name=(options['preprocessing_name'] or
                          options['model_name']),
      use_explicit_padding=options['use_explicit_padding'])
  return predictor, options['labels_offset']


def _print_model(flag_values, predictor, out):
  weights = getattr(predictor, 'weights', None)
  print('Model: %s (%s), input %dx%dx%d, %d classes, preprocessing %s%s.' %
        (flag_values.model_path, predictor.kind, predictor.image_size,
         predictor.image_size, predictor.channels, predictor.num_classes,
         predictor.preprocessing_name, '; %s' % weights if weights else ''),
        file=out)


def _classify_one(predictor, label_map, path, data, top_k, out):
  """Prints and returns the top-k (probability, label id, name) of an image."""
  probabilities = predictor.predict_encoded(data)
  top = np.argsort(-probabilities, kind='stable')[:top_k]
  result = []
  print('%s' % path, file=out)
  for rank, index in enumerate(top, 1):
    label_id, name = label_map.label(index)
    result.append((float(probabilities[index]), label_id, name))
    print('  %d. %-8.4f %4d  %s' % (rank, probabilities[index], label_id,
                                    name if name is not None else ''),
          file=out)
  return result


def classify(flag_values, image_paths, out=sys.stdout):
  """Classifies the images and prints the top classes.

  A library error becomes a `ScriptError` naming flags; see `_classify_all`.
  """
  with script_utils.command_line_errors():
    return _classify_all(flag_values, image_paths, out)


def _classify_all(flag_values, image_paths, out):
  """Classifies the images and prints the top classes.

  Args:
    flag_values: the parsed flags.
    image_paths: image files.
    out: where to print.

  Returns:
    A list with, per image, the top-k `(probability, label_id, name)`.

  Raises:
    ImagesFailed: after classifying the others, if some images could not
      be read or decoded.
    ScriptError: on any other bad input.
  """
  if not image_paths:
    raise script_utils.ScriptError(
        'No images given: pass image files after the flags, e.g. '
        '`python classify_image.py --model_path=model.tflite photo.jpg`.')
  if flag_values.top_k < 1:
    raise script_utils.ScriptError('--top_k=%d must be at least 1.' %
                                   flag_values.top_k)
  images, failures = _read_images(image_paths)
  if not images:
    raise ImagesFailed(_failure_report(image_paths, failures),
                       [None] * len(image_paths))
  labels_path = labels.find_labels_file(flag_values.labels_file,
                                        flag_values.dataset_dir,
                                        flag_values.model_path)
  names = labels.read_labels(labels_path) if labels_path else None
  predictor, labels_offset = _load_predictor(flag_values, out)
  try:
    label_map = labels.LabelMap(names, predictor.num_classes, labels_offset,
                                labels_path)
    _print_model(flag_values, predictor, out)
    if label_map.note:
      print(label_map.note, file=out)
    if not names:
      print('No labels file found (--labels_file, --dataset_dir): printing '
            'class ids only.', file=out)
    results = []
    for path in image_paths:
      result = None
      if path in images:
        try:
          result = _classify_one(predictor, label_map, path, images[path],
                                 flag_values.top_k, out)
        except errors.InputError as e:
          failures[path] = script_utils.as_command_line(e)
      results.append(result)
  finally:
    predictor.close()
  if failures:
    raise ImagesFailed(_failure_report(image_paths, failures), results)
  return results


main = common_flags.script_main('classify_image', classify,
                                takes_arguments=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
