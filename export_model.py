r"""Exports one checkpoint in every format asked for, and checks them.

    python export_model.py --checkpoint_path=out/tf2/train \
      --dataset_dir=out/tf2/shapes --output_dir=out/tf2/export_all \
      --formats=frozen,saved_model,tflite,tflite_fp16,tflite_dynamic,tflite_int8,onnx \
      --verify

Formats: frozen (frozen.pb), saved_model (saved_model/<n>, the next free
version), tflite, tflite_fp16, tflite_dynamic, tflite_int8 (calibrated on
--num_calibration_images of --dataset_split_name) and onnx. The training
record beside the checkpoint fills the model flags not given. A
quantization-aware-trained checkpoint (--quantize) is written as its
fake-quant graph (frozen, tflite) and the integer model its trained ranges
define (tflite_int8, no calibration).

--verify runs --num_verify_images of --verify_split_name (or the image files
given as arguments) through the checkpoint's graph and every written model
and prints one table: size, largest probability difference, top-1
agreement, top-1 accuracy (dataset images) and batch-1 latency. The command exits with status 1 when a float
format (frozen, saved_model, tflite, onnx) differs by more than
--max_float_difference, or a rounded one (fp16, dynamic, int8) agrees on
fewer than --min_top1_agreement of the top-1 classes.
"""


from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np

from cli import common_flags
from cli import record_flags
from cli import script_utils
from export import all_formats
from cli import export_flags
from export import inference_graph
from export import labels
from export import onnx_model
from export import predictors
from export import tflite
from training import checkpoints
from training import model_inputs

PROGRAM = 'export_model'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  export_flags.define_labels_flags(flag_values)
  define = common_flags.define
  define(flags.DEFINE_string, 'output_dir', None,
         'Directory to write the models into (created if needed).',
         flag_values)
  define(flags.DEFINE_list, 'formats', list(all_formats.DEFAULT_FORMATS),
         'Formats to write: %s.' % ','.join(all_formats.FORMATS), flag_values)
  define(flags.DEFINE_integer, 'opset', onnx_model.DEFAULT_OPSET,
         'ONNX opset to write.', flag_values)
  define(flags.DEFINE_integer, 'num_calibration_images', 100,
         'tflite_int8: images of --dataset_split_name used to calibrate '
         'activation ranges.', flag_values)
  define(flags.DEFINE_bool, 'verify', False,
         'Compare every written model with the checkpoint and print a '
         'table; exit with status 1 past the thresholds.', flag_values)
  define(flags.DEFINE_integer, 'num_verify_images', 100,
         '--verify: images of --verify_split_name to compare on (unless '
         'image files are given as arguments).', flag_values)
  define(flags.DEFINE_string, 'verify_split_name', 'validation',
         '--verify: the split of --dataset_dir to read images from.',
         flag_values)
  define(flags.DEFINE_float, 'max_float_difference', 1e-4,
         '--verify: largest probability difference a float format may '
         'have from the checkpoint.', flag_values)
  define(flags.DEFINE_float, 'min_top1_agreement', 0.99,
         '--verify: smallest fraction of top-1 classes a float16, dynamic or '
         'int8 model must share with the checkpoint.', flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


# Training record field -> flag: the network, and the dataset that
# calibration and verification read.
RECORD_FLAGS = dict(record_flags.NETWORK_FLAGS, dataset_name='dataset_name')


class VerificationFailed(script_utils.ScriptError):
  """Every model was written, but some differ from the checkpoint."""


def run(flag_values, image_paths=()):
  """Runs the export with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors():
    return _run(flag_values, list(image_paths))


def _dataset_images(flag_values, split_name, count, preprocessing_fn,
                    image_size):
  """(the first `count` images of a split, preprocessed; their labels)."""
  if not flag_values.dataset_dir:
    raise script_utils.ScriptError(
        '--dataset_dir is required for tflite_int8 calibration and for '
        '--verify without image files: the TFRecords of --dataset_name.')
  return tflite.labeled_images(
      lambda: model_inputs.get_dataset(flag_values.dataset_name, split_name,
                                       flag_values.dataset_dir),
      image_size, preprocessing_fn, count, flag_values.labels_offset)


def _file_images(image_paths, preprocessing_name, image_size, channels):
  """Image files decoded and preprocessed like the model's evaluation."""
  decoder = predictors.Predictor(preprocessing_name)
  decoder.image_size, decoder.channels = image_size, channels
  try:
    return np.concatenate([
        decoder.preprocess(predictors.read_image_file(path))
        for path in image_paths])
  finally:
    decoder.close()


def _settings(flag_values):
  """(`ExportSettings`, source path, flags completed from the record)."""
  if not flag_values.checkpoint_path:
    raise script_utils.ScriptError(
        '--checkpoint_path is required: a checkpoint prefix '
        '(train_dir/model.ckpt-N) or a training directory.')
  if not flag_values.output_dir:
    raise script_utils.ScriptError('--output_dir is required: the directory '
                                   'to write the models into.')
  if flag_values.quantize and not flag_values['formats'].present:
    flag_values.formats = list(all_formats.QUANTIZE_FORMATS)
  all_formats.check_formats(flag_values.formats, flag_values.quantize)
  source = flag_values.checkpoint_path
  checkpoint = checkpoints.resolve_checkpoint(source)
  flag_values, _ = record_flags.merged_flags(flag_values, source,
                                             RECORD_FLAGS)
  labels_path = labels.find_labels_file(flag_values.labels_file,
                                        flag_values.dataset_dir)
  settings = all_formats.ExportSettings(
      model_name=flag_values.model_name, checkpoint=checkpoint,
      num_classes=export_flags.num_classes(flag_values, checkpoint),
      image_size=(flag_values.image_size or
                  inference_graph.default_image_size(flag_values.model_name)),
      use_grayscale=flag_values.use_grayscale,
      moving_average_decay=flag_values.moving_average_decay,
      preprocessing_name=(flag_values.preprocessing_name or
                          flag_values.model_name),
      labels_offset=flag_values.labels_offset,
      labels_to_names=labels.read_labels(labels_path) if labels_path else None,
      opset=flag_values.opset,
      use_explicit_padding=flag_values.use_explicit_padding,
      quantize=flag_values.quantize)
  return settings, source, flag_values


def _run(flag_values, image_paths):
  """Writes (and verifies) the models; returns {format: path}."""
  settings, source, flag_values = _settings(flag_values)
  preprocessing_fn = inference_graph.get_eval_preprocessing(
      settings.preprocessing_name, settings.use_grayscale)
  channels = 1 if settings.use_grayscale else 3
  verify_images = verify_labels = None
  if flag_values.verify:  # Read first: bad images stop before any writing.
    if image_paths:
      verify_images = _file_images(image_paths, settings.preprocessing_name,
                                   settings.image_size, channels)
    else:
      verify_images, verify_labels = _dataset_images(
          flag_values, flag_values.verify_split_name,
          flag_values.num_verify_images, preprocessing_fn,
          settings.image_size)
      verify_images = np.concatenate(verify_images)
  calibration = None
  if 'tflite_int8' in flag_values.formats and not settings.quantize:
    calibration, _ = _dataset_images(
        flag_values, flag_values.dataset_split_name,
        flag_values.num_calibration_images, preprocessing_fn,
        settings.image_size)
  paths, frozen = all_formats.export_formats(
      settings, flag_values.output_dir, flag_values.formats, calibration)
  print('Exported %s with %s.' % (settings.checkpoint, frozen.weights))
  for fmt, path in paths.items():
    print('Wrote %s: %s' % (fmt, path))
  record_flags.copy_record_beside(source, flag_values.output_dir)
  if verify_images is not None:
    results = all_formats.verify(
        settings, paths, verify_images,
        max_float_difference=flag_values.max_float_difference,
        min_top1_agreement=flag_values.min_top1_agreement,
        labels=verify_labels)
    print(all_formats.format_table(results, len(verify_images)))
    failed = [r.format for r in results if not r.passed]
    if failed:
      raise VerificationFailed(
          'Verification failed for %s: a float format differs from the '
          'checkpoint by more than --max_float_difference=%g, or a rounded '
          'one agrees on fewer than --min_top1_agreement=%g of the top-1 '
          'classes (table above). The models are written; check them '
          'before use, or loosen the thresholds.' %
          (', '.join(failed), flag_values.max_float_difference,
           flag_values.min_top1_agreement))
  return paths


main = common_flags.script_main(PROGRAM, run, takes_arguments=True)


if __name__ == '__main__':
  app.run(main)
