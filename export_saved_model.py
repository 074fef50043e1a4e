r"""Exports a checkpoint as a SavedModel for TF Serving and tf.saved_model.

    python export_saved_model.py --model_name=mobilenet_v1_025 \
      --image_size=64 --checkpoint_path=/tmp/train --dataset_name=shapes \
      --dataset_dir=/tmp/shapes --export_dir=/tmp/saved_model/1

Signatures (tag `serve`):
  serving_default  image_bytes: string [N] (encoded JPEG/PNG/GIF/BMP images
                   of any size; decoded and eval-preprocessed in the graph)
  predict_images   images: float32 [N, size, size, channels] in [-1, 1]
Outputs of both: probabilities [N, num_classes], classes [N, top_k] (label
ids: output index + --labels_offset), scores [N, top_k], and class_names
[N, top_k] when labels.txt is found in --dataset_dir or --labels_file.
"""


from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from cli import common_flags
from cli import record_flags
from cli import script_utils
from training import checkpoints
from cli import export_flags
from export import labels
from export import saved_model

PROGRAM = 'export_saved_model'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  export_flags.define_labels_flags(flag_values)
  common_flags.define(
      flags.DEFINE_string, 'export_dir', None,
      'Directory to create for the SavedModel (must not exist; TF Serving '
      'expects <model_dir>/<version>).', flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


# Training record field -> this script's flag.
RECORD_FLAGS = record_flags.NETWORK_FLAGS


def run(flag_values):
  """Runs the export with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors():
    return _run(flag_values)


def _run(flag_values):
  """Writes the SavedModel; returns its directory."""
  if not flag_values.checkpoint_path:
    raise script_utils.ScriptError(
        '--checkpoint_path is required: a checkpoint prefix '
        '(train_dir/model.ckpt-N) or a training directory.')
  if not flag_values.export_dir:
    raise script_utils.ScriptError('--export_dir is required: a new '
                                   'directory for the SavedModel.')
  if flag_values.quantize:
    raise script_utils.ScriptError(
        '--quantize is not supported for SavedModels; serve the float model, '
        'or make a quantized TFLite model with freeze_graph.py --quantize '
        'and export_tflite.py --quantization=qat.')
  source = flag_values.checkpoint_path
  checkpoint = checkpoints.resolve_checkpoint(source)
  flag_values, _ = record_flags.merged_flags(flag_values, source,
                                             RECORD_FLAGS)
  labels_path = labels.find_labels_file(flag_values.labels_file,
                                        flag_values.dataset_dir)
  names = labels.read_labels(labels_path) if labels_path else None
  checkpoint, weights = saved_model.export_saved_model(
      flag_values.export_dir, flag_values.model_name, checkpoint,
      export_flags.num_classes(flag_values, checkpoint),
      image_size=flag_values.image_size,
      preprocessing_name=flag_values.preprocessing_name,
      use_grayscale=flag_values.use_grayscale,
      moving_average_decay=flag_values.moving_average_decay,
      labels_offset=flag_values.labels_offset, top_k=flag_values.top_k,
      labels_to_names=names,
      use_explicit_padding=flag_values.use_explicit_padding)
  print('Exported %s with %s.' % (checkpoint, weights))
  print('Wrote the SavedModel to %s (signatures %s, %s%s).' %
        (flag_values.export_dir, saved_model.SERVING_SIGNATURE,
         saved_model.IMAGES_SIGNATURE,
         '; class names from %s' % labels_path if labels_path else ''))
  record_flags.copy_record_beside(source, flag_values.export_dir)
  return flag_values.export_dir


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
