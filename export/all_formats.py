"""Writes one checkpoint in several formats and checks each against it.

`export_formats` writes any of `FORMATS` into one directory; `verify` runs
the same images through the checkpoint's own graph and every written model
(each loaded by `export.predictors`, as `classify_image.py` would) and
reports, per format, the largest probability difference, the top-1
agreement, the batch-1 latency and the size on disk.

Float formats (`FLOAT_FORMATS`) compute what the checkpoint computes, so
they are judged by the probability difference; the others round weights
(float16, int8) or activations (int8) and are judged by top-1 agreement.
"""

import collections
import os
import time
import uuid

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np

from core import errors
from export import freeze
from export import inference_graph
from export import onnx_model
from export import predictors
from export import saved_model
from export import tflite

ExportError = inference_graph.ExportError
# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# Format -> (file name in the output directory, TFLite quantization or None).
_FILES = collections.OrderedDict([
    ('frozen', ('frozen.pb', None)),
    ('saved_model', ('saved_model', None)),
    ('tflite', ('model.tflite', 'none')),
    ('tflite_fp16', ('model_fp16.tflite', 'float16')),
    ('tflite_dynamic', ('model_dynamic.tflite', 'dynamic')),
    ('tflite_int8', ('model_int8.tflite', 'full_integer')),
    ('onnx', ('model.onnx', None)),
])
FORMATS = tuple(_FILES)
FLOAT_FORMATS = ('frozen', 'saved_model', 'tflite', 'onnx')
DEFAULT_FORMATS = FLOAT_FORMATS
# What a quantization-aware-trained checkpoint (`quantize`) is written as: the
# fake-quant graph (frozen, and as float TFLite ops) and the integer model
# its ranges define. The SavedModel and ONNX writers build float graphs.
QUANTIZE_FORMATS = ('frozen', 'tflite', 'tflite_int8')

ExportSettings = collections.namedtuple('ExportSettings', [
    'model_name', 'checkpoint', 'num_classes', 'image_size', 'use_grayscale',
    'moving_average_decay', 'preprocessing_name', 'labels_offset',
    'labels_to_names', 'opset', 'use_explicit_padding', 'quantize'])
# Settings older callers leave out: the network's own padding, float.
ExportSettings.__new__.__defaults__ = (None, False)

# `accuracy`: top-1 accuracy against the images' labels (None without them).
FormatResult = collections.namedtuple('FormatResult', [
    'format', 'path', 'size_bytes', 'max_difference', 'top1_agreement',
    'latency_ms', 'passed', 'accuracy'])


def check_formats(formats, quantize=False):
  """Raises ExportError for an unknown or empty list of formats, or one
  that a quantization-aware checkpoint (`quantize`) is not written as."""
  unknown = [f for f in formats if f not in FORMATS]
  if unknown or not formats:
    raise ExportError('%s: %s. Choose from %s.' % (
        ref('formats', ','.join(formats)),
        'unknown %s' % ', '.join(unknown) if unknown else 'none given',
        ','.join(FORMATS)))
  float_only = [f for f in formats if f not in QUANTIZE_FORMATS]
  if quantize and float_only:
    raise ExportError(
        '%s: %s cannot be written with %s (a quantization-aware-trained '
        'checkpoint): choose from %s, or drop %s to write the float model.' % (
            ref('formats', ','.join(formats)), ', '.join(float_only),
            ref('quantize'), ','.join(QUANTIZE_FORMATS), ref('quantize')))


def _saved_model_version_dir(base):
  """`base/<n>`, n one more than the highest version there (TF Serving's
  layout), so a second export adds a version instead of failing."""
  versions = [int(name) for name in (os.listdir(base) if os.path.isdir(base)
                                     else []) if name.isdigit()]
  return os.path.join(base, str(max(versions + [0]) + 1))


def export_formats(settings, output_dir, formats, calibration_images=None):
  """Writes `settings.checkpoint` in each of `formats` into `output_dir`.

  Each file is written whole or not at all; a SavedModel goes to the next
  free version directory `saved_model/<n>`.

  Args:
    settings: an `ExportSettings`.
    output_dir: the directory (created if needed).
    formats: names from `FORMATS`.
    calibration_images: for `tflite_int8`: preprocessed float32 images
      `[1, S, S, C]` each, from the training data.

  Returns:
    ({format: path written}, the `freeze.FrozenGraph`).

  Raises:
    ExportError: bad settings, checkpoint, formats, or a failed conversion.
  """
  check_formats(formats, settings.quantize)
  if 'onnx' in formats:
    onnx_model.check_opset(settings.opset)
  frozen = freeze.freeze(
      settings.model_name, settings.checkpoint, settings.num_classes,
      image_size=settings.image_size, use_grayscale=settings.use_grayscale,
      quantize=settings.quantize,
      moving_average_decay=settings.moving_average_decay,
      use_explicit_padding=settings.use_explicit_padding)
  frozen_path = os.path.join(output_dir, _FILES['frozen'][0])
  if 'frozen' not in formats:
    # The TFLite converter reads a file; a hidden one of its own leaves a
    # frozen.pb of an earlier export alone.
    frozen_path = os.path.join(output_dir, '.frozen-%s.pb' %
                               uuid.uuid4().hex[:8])
  freeze.write_graph_def(frozen.graph_def, frozen_path)
  try:
    paths = _write_formats(settings, output_dir, formats, frozen,
                           frozen_path, calibration_images)
  finally:
    if 'frozen' not in formats:
      os.remove(frozen_path)
  return paths, frozen


def _write_formats(settings, output_dir, formats, frozen, frozen_path,
                   calibration_images):
  """Writes each format but the frozen graph; returns {format: path}."""
  paths = collections.OrderedDict()
  if 'frozen' in formats:
    paths['frozen'] = frozen_path
  for fmt in formats:
    name, quantization = _FILES[fmt]
    path = os.path.join(output_dir, name)
    if fmt == 'saved_model':
      path = _saved_model_version_dir(path)
      saved_model.export_saved_model(
          path, settings.model_name, settings.checkpoint,
          settings.num_classes, image_size=settings.image_size,
          preprocessing_name=settings.preprocessing_name,
          use_grayscale=settings.use_grayscale,
          moving_average_decay=settings.moving_average_decay,
          labels_offset=settings.labels_offset,
          labels_to_names=settings.labels_to_names,
          use_explicit_padding=settings.use_explicit_padding)
    elif fmt == 'onnx':
      model = onnx_model.convert_graph_def(
          frozen.graph_def, frozen.output_node_name, opset=settings.opset)
      onnx_model.check_against_graph_def(model, frozen.graph_def,
                                         frozen.output_node_name)
      freeze.write_bytes(model, path)
    elif quantization:
      if settings.quantize and quantization == 'full_integer':
        # The ranges come from training: nothing to calibrate.
        quantization = 'qat'
      freeze.write_bytes(tflite.convert(
          frozen_path, quantization=quantization,
          representative_data=calibration_images), path)
    else:
      continue
    paths[fmt] = path
  return paths


def _size_on_disk(path):
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def _checkpoint_size(prefix):
  """Bytes of a checkpoint's index, data and meta files."""
  folder, base = os.path.split(prefix)
  return sum(os.path.getsize(os.path.join(folder or '.', name))
             for name in os.listdir(folder or '.')
             if name.startswith(base + '.'))


def _latency_ms(predictor, image, runs):
  """Median wall time of one batch-1 prediction, after one warm-up."""
  predictor.predict(image)
  times = []
  for _ in range(runs):
    start = time.time()
    predictor.predict(image)
    times.append(time.time() - start)
  return 1000.0 * float(np.median(times))


def verify(settings, paths, images, max_float_difference=1e-4,
           min_top1_agreement=0.99, latency_runs=10, labels=None):
  """Runs `images` through the checkpoint and each exported model.

  Args:
    settings: the `ExportSettings` the models were written with.
    paths: {format: path} from `export_formats`.
    images: preprocessed float32 images `[N, S, S, C]`.
    labels: optional int array `[N]` of the images' classes: each result
      then carries its top-1 accuracy.
    max_float_difference: a float format passes when no probability differs
      from the checkpoint's by more.
    min_top1_agreement: a rounded format passes when at least this fraction
      of top-1 classes equal the checkpoint's.
    latency_runs: timed batch-1 predictions per format.

  Returns:
    (a `FormatResult` for the checkpoint first, then one per format).
  """
  reference = predictors.CheckpointPredictor(
      settings.checkpoint, settings.model_name, settings.num_classes,
      image_size=settings.image_size, use_grayscale=settings.use_grayscale,
      quantize=settings.quantize,
      moving_average_decay=settings.moving_average_decay,
      use_explicit_padding=settings.use_explicit_padding)

  def accuracy(probabilities):
    if labels is None:
      return None
    return float(np.mean(probabilities.argmax(1) == labels))

  try:
    expected = reference.predict(images)
    results = [FormatResult(
        'checkpoint', settings.checkpoint,
        _checkpoint_size(settings.checkpoint), 0.0, 1.0,
        _latency_ms(reference, images[:1], latency_runs), True,
        accuracy(expected))]
  finally:
    reference.close()
  for fmt, path in paths.items():
    predictor = predictors.load(path)
    try:
      probabilities = predictor.predict(images)
      latency = _latency_ms(predictor, images[:1], latency_runs)
    finally:
      predictor.close()
    difference = float(np.abs(probabilities - expected).max())
    agreement = float(np.mean(probabilities.argmax(1) == expected.argmax(1)))
    # TFLite's fake-quant kernel puts a value on a rounding boundary one
    # step away from TensorFlow's now and then (TF 1.15: probabilities 1e-3
    # apart), so a fake-quant TFLite model is judged as a rounded format.
    exact = fmt in FLOAT_FORMATS and not (settings.quantize and
                                          fmt == 'tflite')
    if exact:
      passed = difference <= max_float_difference
    else:
      passed = agreement >= min_top1_agreement
    results.append(FormatResult(fmt, path, _size_on_disk(path), difference,
                                agreement, latency, passed,
                                accuracy(probabilities)))
  return results


def format_table(results, num_images):
  """The verification table as text (one line per format)."""
  with_accuracy = results[0].accuracy is not None
  lines = ['%-15s %10s %12s %11s %s%10s  %s' % (
      'format', 'size', 'max |dp|', 'top-1 agr.',
      '%10s ' % 'top-1 acc.' if with_accuracy else '', 'b1 ms', 'path')]
  for r in results:
    verdict = '' if r.passed else '  FAILED'
    lines.append('%-15s %10s %12.3g %10.1f%% %s%10.2f  %s%s' % (
        r.format, _human_size(r.size_bytes), r.max_difference,
        100.0 * r.top1_agreement,
        '%9.1f%% ' % (100.0 * r.accuracy) if with_accuracy else '',
        r.latency_ms, r.path, verdict))
  lines.append('(%d images; max |dp|: largest probability difference from '
               'the checkpoint; top-1 agr.: images with the checkpoint\'s '
               'top class%s)' % (num_images, '; top-1 acc.: images whose top '
                                 'class is their label' if with_accuracy
                                 else ''))
  return '\n'.join(lines)


def _human_size(size):
  for unit in ('B', 'KiB', 'MiB'):
    if size < 1024 or unit == 'MiB':
      return ('%d %s' % (size, unit) if unit == 'B'
              else '%.1f %s' % (size, unit))
    size /= 1024.0
  return str(size)
