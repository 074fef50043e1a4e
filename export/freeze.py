"""Freezes a checkpoint into a GraphDef with the weights as constants."""


import collections
import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
from google.protobuf import text_format

from core import atomic_files
from core import errors
from export import graph_rewrites
from export import inference_graph

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

ExportError = inference_graph.ExportError

FrozenGraph = collections.namedtuple(
    'FrozenGraph', ['graph_def', 'checkpoint', 'weights', 'input_node_name',
                    'output_node_name', 'image_size', 'folded_batch_norms'])


def freeze(model_name, checkpoint_path, num_classes, image_size=None,
           batch_size=None, use_grayscale=False, quantize=False,
           moving_average_decay=None, fold_batch_norms=True,
           use_explicit_padding=None):
  """Builds the inference graph, restores a checkpoint and freezes it.

  Args:
    model_name: a name from `nets_factory`.
    checkpoint_path: a checkpoint prefix or a directory (its latest).
    num_classes: head size (see `inference_graph.resolve_num_classes`).
    image_size: input height and width; None: the network's default.
    batch_size: fixed batch size; None: any.
    use_grayscale: 1-channel input.
    quantize: fake-quant graph for a quantization-aware-trained checkpoint
      (TF 1.15 only).
    moving_average_decay: use the checkpoint's moving-average weights.
    fold_batch_norms: fold each batch norm into the convolution before it
      (`export.graph_rewrites`): same outputs up to float rounding, and
      faster (BENCHMARKS.md). A `quantize` graph is never folded (its
      fake-quant ops already see folded weights).
    use_explicit_padding: True: symmetric padding (timm's weights); None:
      the network's own.

  Returns:
    A `FrozenGraph`; `weights` says which weights were used.

  Raises:
    ExportError: bad model, image size or checkpoint.
  """
  with tf.Graph().as_default() as graph:
    net = inference_graph.build_inference_graph(
        model_name, num_classes, image_size=image_size,
        batch_size=batch_size, use_grayscale=use_grayscale,
        quantize=quantize, use_explicit_padding=use_explicit_padding)
    with tf.Session() as sess:
      checkpoint, weights = inference_graph.restore_weights(
          sess, checkpoint_path, model_name, moving_average_decay)
      graph_def = tf.graph_util.convert_variables_to_constants(
          sess, graph.as_graph_def(), [net.output_node_name])
  folded = 0
  if fold_batch_norms and not quantize:
    graph_def, folded = graph_rewrites.fold_batch_norms(
        graph_def, [net.output_node_name])
  return FrozenGraph(graph_def=graph_def, checkpoint=checkpoint,
                     weights=weights, input_node_name=net.images.op.name,
                     output_node_name=net.output_node_name,
                     image_size=net.image_size, folded_batch_norms=folded)


def write_graph_def(graph_def, output_file, as_text=False):
  """Writes a GraphDef atomically (no partial file is left on failure).

  Args:
    graph_def: a `tf.GraphDef`.
    output_file: destination path; its directory is created if needed.
    as_text: write the text format instead of the binary one.

  Raises:
    ExportError: if the file cannot be written.
  """
  data = (str(graph_def).encode('utf-8') if as_text
          else graph_def.SerializeToString())
  write_bytes(data, output_file)


def write_bytes(data, output_file, setting_name='output_file'):
  """Writes bytes to a file atomically, creating its directory.

  Args:
    data: the bytes.
    output_file: destination path.
    setting_name: the parameter that named the path (for the message).

  Raises:
    ExportError: if the file cannot be written.
  """
  if not output_file:
    raise ExportError('%s is required: the file to write.' %
                      ref(setting_name))
  try:
    directory = os.path.dirname(os.path.abspath(output_file))
    if not os.path.isdir(directory):
      os.makedirs(directory)
    atomic_files.write_atomically(output_file, data)
  except (IOError, OSError) as e:
    raise ExportError('Cannot write %s=%s: %s. Choose a writable path.' %
                      (ref(setting_name), output_file, e))


def load_graph_def(path, setting_name='path'):
  """Reads a binary (or, for `.pbtxt`, text) GraphDef file.

  Args:
    path: the file.
    setting_name: the parameter that named it (for the message).

  Returns:
    The `tf.GraphDef`.

  Raises:
    ExportError: missing file, or not a GraphDef.
  """
  if not os.path.isfile(path):
    raise ExportError('%s=%s: no such file.' % (ref(setting_name), path))
  with open(path, 'rb') as f:
    data = f.read()
  graph_def = tf.GraphDef()
  try:
    if path.endswith('.pbtxt'):
      text_format.Merge(data.decode('utf-8'), graph_def)
    else:
      graph_def.ParseFromString(data)
  except Exception as e:  # pylint: disable=broad-except  (protobuf errors)
    raise ExportError('%s=%s is not a GraphDef (%s). Pass a .pb written by '
                      'freeze_graph.py or export_inference_graph.py.' %
                      (ref(setting_name), path, str(e).split('\n')[0]))
  if not graph_def.node:
    raise ExportError('%s=%s is not a GraphDef: it parses as an empty graph. '
                      'Pass a .pb written by freeze_graph.py or '
                      'export_inference_graph.py.' % (ref(setting_name), path))
  return graph_def

