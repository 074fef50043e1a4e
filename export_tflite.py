r"""Converts a frozen graph (freeze_graph.py) to a TensorFlow Lite model.

    # float32
    python export_tflite.py --input_graph=/tmp/frozen.pb \
      --output_file=/tmp/model.tflite
    # post-training dynamic-range quantization (int8 weights)
    python export_tflite.py --input_graph=/tmp/frozen.pb \
      --quantization=dynamic --output_file=/tmp/model_dynamic.tflite
    # post-training full-integer quantization, calibrated on a TFRecord split
    python export_tflite.py --input_graph=/tmp/frozen.pb \
      --quantization=full_integer --dataset_name=shapes \
      --dataset_dir=/tmp/shapes --dataset_split_name=train \
      --output_file=/tmp/model_int8.tflite
    # quantization-aware-trained graph (freeze_graph.py --quantize)
    python export_tflite.py --input_graph=/tmp/frozen_qat.pb \
      --quantization=qat --output_file=/tmp/model_uint8.tflite
    # TFLite Micro in one command: a checkpoint (or --input_graph) to a
    # full-int8 model with int8 input and output, as C source
    python export_tflite.py --checkpoint_path=/tmp/person_detection_train \
      --model_name=mobilenet_v1_025 --image_size=96 --input_grayscale=True \
      --quantization=full_integer --integer_io_type=int8 \
      --dataset_name=visualwakewords --dataset_dir=/tmp/person_detection \
      --dataset_split_name=val --output_format=c_array \
      --output_file=/tmp/person_detect_model_data.cc

Full-integer and QAT models take uint8 images and give uint8 probabilities;
their input/output details carry the (scale, zero point) to convert.
"""


from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from cli import common_flags
from cli import record_flags
from cli import script_utils
from cli import export_flags
from export import freeze
from export import labels
from export import inference_graph
from export import micro_export
from export import predictors
from export import tflite
from training import checkpoints
from training import model_inputs

PROGRAM = 'export_tflite'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  common_flags.define_dataset_flags('train', flag_values)
  common_flags.define_model_flags(flag_values)
  define = common_flags.define
  define(flags.DEFINE_string, 'input_graph', None,
         'The frozen GraphDef (.pb) written by freeze_graph.py.', flag_values)
  define(flags.DEFINE_string, 'output_file', None,
         'Where to write the .tflite model.', flag_values)
  define(flags.DEFINE_enum, 'quantization', 'none',
         'none: float32; dynamic: int8 weights; full_integer: int8 weights '
         'and activations calibrated on --dataset_dir; qat: a graph frozen '
         'with --quantize from a quantization-aware-trained checkpoint '
         '(uint8); float16: float16 weights.', flag_values,
         enum_values=list(tflite.QUANTIZATION_MODES))
  define(flags.DEFINE_integer, 'num_calibration_images', 100,
         'full_integer: images of --dataset_split_name used to calibrate '
         'activation ranges.', flag_values)
  define(flags.DEFINE_string, 'output_node_name', None,
         'Output node; default: the graph\'s <Scope>/Predictions/Reshape_1.',
         flag_values)
  define_microcontroller_flags(flag_values)


def define_microcontroller_flags(flag_values):
  """Flags of the one-command int8 export for TFLite Micro."""
  define = common_flags.define
  define(flags.DEFINE_enum, 'integer_io_type', 'uint8',
         'full_integer: type of the model\'s input and output (int8 for '
         'TFLite Micro\'s person detector).', flag_values,
         enum_values=sorted(tflite.INTEGER_IO_TYPES))
  define(flags.DEFINE_enum, 'output_format', 'tflite',
         'tflite: the model file; c_array: C/C++ source of its bytes (an '
         'aligned const array and its length, as xxd -i gives).',
         flag_values, enum_values=list(micro_export.OUTPUT_FORMATS))
  define(flags.DEFINE_string, 'c_array_name', None,
         'c_array: the array\'s name (default from --output_file, as xxd -i '
         'names it); the length is <name>_len.', flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  define(flags.DEFINE_integer, 'image_size', None,
         'With --checkpoint_path: input height and width (default: the '
         'training record\'s, else the network\'s).', flag_values)
  define(flags.DEFINE_integer, 'num_classes', None,
         'With --checkpoint_path: outputs of the head (default: from the '
         'dataset or the checkpoint).', flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


# Training record field -> this script's flag (for calibration).
RECORD_FLAGS = {'preprocessing_name': 'preprocessing_name',
                'labels_offset': 'labels_offset',
                'dataset_name': 'dataset_name'}


def _representative_data(flag_values, graph_def,
                         calibration_preprocessing=None):
  """Preprocessed calibration images for --quantization=full_integer."""
  shape = tflite.input_shape(graph_def)
  if calibration_preprocessing is not None:
    preprocessing_fn = calibration_preprocessing(use_grayscale=shape[3] == 1)
  else:
    # Prepare images as the model's evaluation does: by --preprocessing_name,
    # else the preprocessing of the network found in the graph.
    name = flag_values.preprocessing_name
    if not name:
      scope = tflite.find_output_node(graph_def).split('/')[0]
      name = predictors.preprocessing_name_for_scope(scope)
    preprocessing_fn = inference_graph.get_eval_preprocessing(
        name, use_grayscale=shape[3] == 1)
  return tflite.representative_images(
      lambda: model_inputs.get_dataset(
          flag_values.dataset_name, flag_values.dataset_split_name,
          flag_values.dataset_dir), shape[1],
      preprocessing_fn, flag_values.num_calibration_images)


# How the written model is described, by --quantization.
MODEL_KINDS = {'none': 'float32, not quantized',
               'dynamic': 'int8 weights, float activations',
               'full_integer': 'int8, %s input and output',
               'qat': 'uint8, quantization-aware trained',
               'float16': 'float16 weights'}

# The flags whose names differ from the library parameters they set.
FLAG_NAMES = {'graph_def_file': 'input_graph',
              'output_name': 'output_node_name'}


def run(flag_values, calibration_preprocessing=None):
  """Runs the export with parsed flags; library errors become ScriptErrors.

  Args:
    flag_values: the parsed flags of `define_flags`.
    calibration_preprocessing: full_integer only: `fn(use_grayscale)` giving
      the `preprocessing_fn(image, height, width)` of the calibration images;
      None: the model's evaluation preprocessing (as --preprocessing_name or
      the network in the graph names it).

  Returns:
    The size of the written model in bytes.
  """
  with script_utils.command_line_errors(FLAG_NAMES):
    return _run(flag_values, calibration_preprocessing)


def _run(flag_values, calibration_preprocessing):
  """Converts and writes the model; returns its size in bytes."""
  if flag_values.checkpoint_path and not flag_values.input_graph:
    return _run_from_checkpoint(flag_values, calibration_preprocessing)
  if not flag_values.input_graph:
    raise script_utils.ScriptError(
        '--input_graph is required: a frozen graph written by '
        'freeze_graph.py (or give --checkpoint_path to freeze one here).')
  if not flag_values.output_file:
    raise script_utils.ScriptError('--output_file is required: where to '
                                   'write the .tflite model.')
  source = flag_values.input_graph
  flag_values, _ = record_flags.merged_flags(flag_values, source,
                                             RECORD_FLAGS)
  size = _convert_and_write(flag_values, flag_values.input_graph,
                            calibration_preprocessing)
  record_flags.copy_record_beside(source, flag_values.output_file)
  labels.copy_labels_beside(flag_values.output_file, flag_values.dataset_dir,
                            source)
  return size


def _convert_and_write(flag_values, graph_path,
                       calibration_preprocessing=None):
  """Converts the frozen graph at `graph_path`; returns the model's size."""
  representative = None
  if flag_values.quantization == 'full_integer':
    graph_def = freeze.load_graph_def(graph_path, 'input_graph')
    representative = _representative_data(flag_values, graph_def,
                                          calibration_preprocessing)
  model = tflite.convert(graph_path,
                         quantization=flag_values.quantization,
                         representative_data=representative,
                         output_name=flag_values.output_node_name,
                         integer_io_type=flag_values.integer_io_type)
  freeze.write_bytes(micro_export.model_file_bytes(
      model, flag_values.output_format, flag_values.output_file,
      flag_values.c_array_name), flag_values.output_file)
  print('Wrote %s (%s%s, %d bytes%s).' %
        (flag_values.output_file,
         MODEL_KINDS.get(flag_values.quantization,
                         flag_values.quantization).replace(
                             '%s', flag_values.integer_io_type),
         '' if flag_values.output_format == 'tflite' else
         ' as ' + flag_values.output_format, len(model),
         ', calibrated on %d images of %s/%s' %
         (len(representative), flag_values.dataset_name,
          flag_values.dataset_split_name) if representative else ''))
  return len(model)


def _run_from_checkpoint(flag_values, calibration_preprocessing):
  """Freezes --checkpoint_path to a temporary graph and converts that."""
  source = flag_values.checkpoint_path
  checkpoint = checkpoints.resolve_checkpoint(source)
  flag_values, _ = record_flags.merged_flags(
      flag_values, source, dict(record_flags.NETWORK_FLAGS,
                                dataset_name='dataset_name'))
  if not flag_values.output_file:
    raise script_utils.ScriptError('--output_file is required: where to '
                                   'write the .tflite model.')
  with micro_export.frozen_checkpoint_file(
      flag_values.output_file, flag_values.model_name, checkpoint,
      export_flags.num_classes(flag_values, checkpoint),
      image_size=flag_values.image_size,
      use_grayscale=flag_values.use_grayscale,
      moving_average_decay=flag_values.moving_average_decay,
      use_explicit_padding=flag_values.use_explicit_padding) as (path, frozen):
    print('Froze %s with %s.' % (frozen.checkpoint, frozen.weights))
    size = _convert_and_write(flag_values, path, calibration_preprocessing)
  record_flags.copy_record_beside(source, flag_values.output_file)
  labels.copy_labels_beside(flag_values.output_file, flag_values.dataset_dir,
                            source)
  return size


main = common_flags.script_main(PROGRAM, run, FLAG_NAMES)


if __name__ == '__main__':
  app.run(main)
