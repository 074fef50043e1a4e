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

Full-integer and QAT models take uint8 images and give uint8 probabilities;
their input/output details carry the (scale, zero point) to convert.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import app
from absl import flags

from deployment import logs  # first: sets TensorFlow's C++ log level
from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)

import common_flags
import record_flags
from deployment import script_utils
from export import export_flags
from export import freeze
from export import labels
from export import inference_graph
from export import predictors
from export import tflite
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


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


# Training record field -> this script's flag (for calibration).
RECORD_FLAGS = {'preprocessing_name': 'preprocessing_name',
                'labels_offset': 'labels_offset',
                'dataset_name': 'dataset_name'}


def _representative_data(flag_values, graph_def):
  """Preprocessed calibration images for --quantization=full_integer."""
  shape = tflite.input_shape(graph_def)
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
               'full_integer': 'int8, uint8 input and output',
               'qat': 'uint8, quantization-aware trained'}

# The flags whose names differ from the library parameters they set.
FLAG_NAMES = {'graph_def_file': 'input_graph',
              'output_name': 'output_node_name'}


def run(flag_values):
  """Runs the export with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors(FLAG_NAMES):
    return _run(flag_values)


def _run(flag_values):
  """Converts and writes the model; returns its size in bytes."""
  if not flag_values.input_graph:
    raise script_utils.ScriptError(
        '--input_graph is required: a frozen graph written by '
        'freeze_graph.py.')
  if not flag_values.output_file:
    raise script_utils.ScriptError('--output_file is required: where to '
                                   'write the .tflite model.')
  source = flag_values.input_graph
  flag_values, _ = record_flags.merged_flags(flag_values, source,
                                             RECORD_FLAGS)
  representative = None
  if flag_values.quantization == 'full_integer':
    graph_def = freeze.load_graph_def(flag_values.input_graph, 'input_graph')
    representative = _representative_data(flag_values, graph_def)
  model = tflite.convert(flag_values.input_graph,
                         quantization=flag_values.quantization,
                         representative_data=representative,
                         output_name=flag_values.output_node_name)
  freeze.write_bytes(model, flag_values.output_file)
  print('Wrote %s (%s, %d bytes%s).' %
        (flag_values.output_file,
         MODEL_KINDS.get(flag_values.quantization, flag_values.quantization),
         len(model),
         ', calibrated on %d images of %s/%s' %
         (len(representative), flag_values.dataset_name,
          flag_values.dataset_split_name) if representative else ''))
  record_flags.copy_record_beside(source, flag_values.output_file)
  labels.copy_labels_beside(flag_values.output_file, flag_values.dataset_dir,
                            source)
  return len(model)


def main(_):
  logs.quiet_logging(FLAGS.verbosity)
  common_flags.use_script_defaults(PROGRAM)
  script_utils.run_or_exit(lambda: run(FLAGS), PROGRAM, FLAG_NAMES)


if __name__ == '__main__':
  app.run(main)
