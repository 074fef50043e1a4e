r"""Freezes a checkpoint into a GraphDef with the weights as constants.

One step from a checkpoint to a `.pb` that TFLite converters and
`classify_image.py` load:

    python freeze_graph.py --model_name=mobilenet_v1_025 --image_size=64 \
      --checkpoint_path=/tmp/train --dataset_name=shapes \
      --dataset_dir=/tmp/shapes --output_file=/tmp/frozen.pb

The graph is the one export_inference_graph.py writes (input `input`,
output `<Scope>/Predictions/Reshape_1`). With --moving_average_decay the
checkpoint's ExponentialMovingAverage shadow weights are used; the command
prints which weights it used. --quantize freezes the fake-quant
graph of a quantization-aware-trained checkpoint, for
`export_tflite.py --quantization=qat`. Batch norms are folded into the
convolutions before them (--nofold_batch_norms keeps them).
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
from export import freeze
from export import labels

PROGRAM = 'freeze_graph'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  common_flags.define(flags.DEFINE_string, 'output_file', None,
                      'Where to write the frozen GraphDef.', flag_values)
  common_flags.define(flags.DEFINE_bool, 'write_text_graphdef', False,
                      'Write the GraphDef in text format instead of binary.',
                      flag_values)
  common_flags.define(flags.DEFINE_bool, 'fold_batch_norms', True,
                      'Fold each batch norm into the convolution before it '
                      '(same outputs up to float rounding; faster). '
                      '--nofold_batch_norms keeps them as separate ops.',
                      flag_values)
  # The names of TensorFlow's freeze_graph tool, for existing scripts.
  common_flags.define_alias('input_checkpoint', 'checkpoint_path',
                            flag_values)
  common_flags.define_alias('output_graph', 'output_file', flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


# Training record field -> this script's flag.
RECORD_FLAGS = record_flags.NETWORK_FLAGS


def run(flag_values):
  """Runs the export with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors():
    return _run(flag_values)


def _run(flag_values):
  """Freezes and writes the graph; returns the `FrozenGraph`."""
  if not flag_values.checkpoint_path:
    raise script_utils.ScriptError(
        '--checkpoint_path is required: a checkpoint prefix '
        '(train_dir/model.ckpt-N) or a training directory.')
  if not flag_values.output_file:
    raise script_utils.ScriptError('--output_file is required: where to '
                                   'write the frozen graph (e.g. frozen.pb).')
  source = flag_values.checkpoint_path
  checkpoint = checkpoints.resolve_checkpoint(source)
  flag_values, _ = record_flags.merged_flags(flag_values, source,
                                             RECORD_FLAGS)
  frozen = freeze.freeze(
      flag_values.model_name, checkpoint,
      export_flags.num_classes(flag_values, checkpoint),
      image_size=flag_values.image_size, batch_size=flag_values.batch_size,
      use_grayscale=flag_values.use_grayscale, quantize=flag_values.quantize,
      moving_average_decay=flag_values.moving_average_decay,
      fold_batch_norms=flag_values.fold_batch_norms,
      use_explicit_padding=flag_values.use_explicit_padding)
  freeze.write_graph_def(frozen.graph_def, flag_values.output_file,
                         as_text=flag_values.write_text_graphdef)
  print('Froze %s with %s%s.' % (
      frozen.checkpoint, frozen.weights,
      '; folded %d batch norms into their convolutions' %
      frozen.folded_batch_norms if frozen.folded_batch_norms else ''))
  print('Wrote %s: input %s (%dx%d), output %s.' %
        (flag_values.output_file, frozen.input_node_name, frozen.image_size,
         frozen.image_size, frozen.output_node_name))
  record_flags.copy_record_beside(source, flag_values.output_file)
  labels.copy_labels_beside(flag_values.output_file, flag_values.dataset_dir,
                            checkpoint)
  return frozen


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
