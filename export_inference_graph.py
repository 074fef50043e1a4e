r"""Writes a classifier's inference GraphDef (no weights).

The graph has a float32 placeholder `input` `[batch_size, image_size,
image_size, channels]` (inputs in [-1, 1], as eval preprocessing makes them)
and the softmax output `<scope>/Predictions/Reshape_1`, the scope being
`MobilenetV1`, `MobilenetV2`, `MobilenetV3`, `MobilenetEdgeTPU` or
`MobilenetV4`. It is always built in inference mode.

    python export_inference_graph.py --model_name=mobilenet_v1_025 \
      --dataset_name=shapes --dataset_dir=/tmp/shapes --image_size=64 \
      --output_file=/tmp/mobilenet_v1_025_inf_graph.pb

To put trained weights in, use freeze_graph.py (one step from the
checkpoint). With --quantize the graph has the fake-quant ops of
a quantization-aware-trained model.
"""


from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import common_flags
from cli import script_utils
from cli import export_flags
from export import freeze
from export import inference_graph

PROGRAM = 'export_inference_graph'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  common_flags.define_quantize_flag(flag_values)
  common_flags.define(
      flags.DEFINE_bool, 'is_training', False,
      'Accepted for compatibility with slim; must stay false: an inference '
      'graph is always built in inference mode.', flag_values)
  common_flags.define(flags.DEFINE_string, 'output_file', None,
                      'Where to write the GraphDef.', flag_values)
  common_flags.define(flags.DEFINE_bool, 'write_text_graphdef', False,
                      'Write the GraphDef in text format instead of binary.',
                      flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def run(flag_values):
  """Runs the export with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors():
    return _run(flag_values)


def _run(flag_values):
  """Builds and writes the graph; returns the output node name."""
  if flag_values.is_training:
    raise script_utils.ScriptError(
        '--is_training=true is not supported: an exported graph is for '
        'inference (batch norm uses its moving statistics, no dropout). '
        'Drop the flag; to continue training, use the checkpoint.')
  if not flag_values.output_file:
    raise script_utils.ScriptError('--output_file is required: where to '
                                   'write the GraphDef (e.g. graph.pb).')
  num_classes = export_flags.num_classes(flag_values)
  # Reference variables (TF 1.15's kind, also on TF 2): TensorFlow's own
  # freeze_graph tool, which guides run on this file, fails on resource
  # variables. The checkpoint names are the same for both kinds.
  with tf.Graph().as_default() as graph, tf.variable_scope(
      tf.get_variable_scope(), use_resource=False):
    net = inference_graph.build_inference_graph(
        flag_values.model_name, num_classes,
        image_size=flag_values.image_size,
        batch_size=flag_values.batch_size,
        use_grayscale=flag_values.use_grayscale,
        quantize=flag_values.quantize,
        use_explicit_padding=flag_values.use_explicit_padding)
    freeze.write_graph_def(graph.as_graph_def(), flag_values.output_file,
                           as_text=flag_values.write_text_graphdef)
  print('Wrote the %s inference graph (%d classes, input %s %s) to %s; '
        'output node: %s' %
        (flag_values.model_name, num_classes, net.images.op.name,
         net.images.get_shape().as_list(), flag_values.output_file,
         net.output_node_name))
  return net.output_node_name


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
