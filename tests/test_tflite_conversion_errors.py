"""A graph the TFLite converter cannot take fails in one paragraph that
names the ops it could not convert (export/tflite.py), on both stacks."""

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import pytest
import tensorflow.compat.v1 as tf

from export import freeze
from export import tflite


@pytest.fixture
def string_op_graph(tmp_path):
  """A frozen graph with string ops, which TFLite's builtins lack."""
  path = str(tmp_path / 'strings.pb')
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [1, 4], name='input')
    lengths = tf.strings.length(tf.strings.as_string(images))
    tf.identity(tf.cast(lengths, tf.float32), name='output')
    freeze.write_graph_def(graph.as_graph_def(), path)
  return path


def test_the_error_names_the_ops_that_failed(string_op_graph):
  with pytest.raises(tflite.ExportError) as error:
    tflite.convert(string_op_graph, 'none', output_name='output')
  message = str(error.value)
  assert message.startswith('TFLite conversion (quantization=none) of %s '
                            'failed: ' % string_op_graph)
  assert 'AsString' in message and 'StringLength' in message, message
  assert '\n' not in message
  # Not the graph dump that follows the errors on TF 2.
  assert 'func.func' not in message and '%' not in message, message


def test_the_summary_keeps_the_lines_that_say_what_failed():
  text = '\n'.join([
      'Could not translate MLIR to FlatBuffer.<unknown>:0: error: '
      'loc(fused["AsString:", "AsString"]): \'tf.AsString\' op is neither a '
      'custom op nor a flex op',
      '<unknown>:0: note: loc(fused["AsString:", "AsString"]): see current '
      'operation: %29 = "tf.AsString"(%arg0)',
      '<unknown>:0: error: failed while converting: \'main\': ',
      'TF Select ops: AsString',
      '  %0 = "arith.constant"() : () -> tensor<1x4xf32>',
      '}) {tf.entry_function = {outputs = "output"}} : () -> ()'])
  assert tflite.converter_error_summary(text) == (
      "'tf.AsString' op is neither a custom op nor a flex op. "
      'TF Select ops: AsString.')
  # A message without such lines: its last line, as before.
  assert tflite.converter_error_summary('a\nlast words\n') == 'last words'
