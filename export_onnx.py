r"""Exports a checkpoint (or a frozen graph) as an ONNX model.

    # from a checkpoint; the training record beside it fills the other flags
    python export_onnx.py --checkpoint_path=out/tf2/train \
      --output_file=out/tf2/export/model.onnx
    # from a frozen graph written by freeze_graph.py
    python export_onnx.py --input_graph=out/tf2/export/frozen.pb \
      --output_file=out/tf2/export/model.onnx

The model has the input `input` (float32 NHWC, images preprocessed to
[-1, 1]; batch fixed by --batch_size or dynamic) and the output
`probabilities`. It is checked against the TensorFlow graph in ONNX Runtime
before it is written; nothing is written when a step fails.
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
from export import onnx_model
from export import tflite
from training import checkpoints

PROGRAM = 'export_onnx'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  define = common_flags.define
  define(flags.DEFINE_string, 'input_graph', None,
         'A frozen GraphDef (.pb from freeze_graph.py) to convert instead of '
         '--checkpoint_path.', flag_values)
  define(flags.DEFINE_string, 'output_file', None,
         'Where to write the .onnx model.', flag_values)
  define(flags.DEFINE_integer, 'opset', onnx_model.DEFAULT_OPSET,
         'ONNX opset to write.', flag_values)
  define(flags.DEFINE_string, 'output_node_name', None,
         'Output node; default: the graph\'s <Scope>/Predictions/Reshape_1.',
         flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS

# The flags whose names differ from the library parameters they set.
FLAG_NAMES = {'output_name': 'output_node_name'}


def run(flag_values):
  """Runs the export with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors(FLAG_NAMES):
    return _run(flag_values)


def _source_graph(flag_values):
  """(frozen GraphDef, output node, source path, flags) of the flags."""
  if flag_values.input_graph:
    if flag_values.checkpoint_path:
      raise script_utils.ScriptError(
          'Pass either --checkpoint_path or --input_graph, not both.')
    graph_def = freeze.load_graph_def(flag_values.input_graph,
                                      'input_graph')
    output = flag_values.output_node_name or tflite.find_output_node(
        graph_def)
    return graph_def, output, flag_values.input_graph, flag_values
  if not flag_values.checkpoint_path:
    raise script_utils.ScriptError(
        '--checkpoint_path is required: a checkpoint prefix '
        '(train_dir/model.ckpt-N) or a training directory; or pass a '
        'frozen graph as --input_graph.')
  if flag_values.quantize:
    raise script_utils.ScriptError(
        '--quantize (a fake-quant graph) cannot be exported to ONNX: '
        'export the float checkpoint, or use export_tflite.py '
        '--quantization=qat for the quantization-aware model.')
  source = flag_values.checkpoint_path
  checkpoint = checkpoints.resolve_checkpoint(source)
  flag_values, _ = record_flags.merged_flags(
      flag_values, source, record_flags.NETWORK_FLAGS)
  frozen = freeze.freeze(
      flag_values.model_name, checkpoint,
      export_flags.num_classes(flag_values, checkpoint),
      image_size=flag_values.image_size, batch_size=flag_values.batch_size,
      use_grayscale=flag_values.use_grayscale,
      moving_average_decay=flag_values.moving_average_decay,
      use_explicit_padding=flag_values.use_explicit_padding)
  print('Froze %s with %s.' % (frozen.checkpoint, frozen.weights))
  return (frozen.graph_def, flag_values.output_node_name or
          frozen.output_node_name, source, flag_values)


def _run(flag_values):
  """Converts, checks and writes the model; returns its size in bytes."""
  if not flag_values.output_file:
    raise script_utils.ScriptError('--output_file is required: where to '
                                   'write the .onnx model.')
  graph_def, output, source, flag_values = _source_graph(flag_values)
  model = onnx_model.convert_graph_def(graph_def, output,
                                       opset=flag_values.opset)
  difference = onnx_model.check_against_graph_def(model, graph_def, output)
  freeze.write_bytes(model, flag_values.output_file)
  runner = onnx_model.OnnxRunner(model_content=model)
  print('Wrote %s (opset %d, %d bytes): input %s [%s, %d, %d, %d], output '
        '%s; ONNX Runtime %s matches TensorFlow within %.1g.' %
        (flag_values.output_file, flag_values.opset, len(model),
         onnx_model.INPUT_NAME, runner.batch_size or onnx_model.BATCH_DIM_NAME,
         runner.image_size, runner.image_size, runner.channels,
         onnx_model.OUTPUT_NAME, onnx_model.runtime_version(), difference))
  record_flags.copy_record_beside(source, flag_values.output_file)
  return len(model)


main = common_flags.script_main(PROGRAM, run, FLAG_NAMES)


if __name__ == '__main__':
  app.run(main)
