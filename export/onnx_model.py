"""Converts a frozen classifier graph to ONNX and runs ONNX models.

tf2onnx converts the frozen GraphDef (the one `freeze.freeze` builds:
inference-mode batch norm, moving-average weights when asked, batch norms
folded); ONNX Runtime runs the result. The model has one input, `input`
(float32 NHWC `[batch, size, size, channels]`, preprocessed to [-1, 1] like
the frozen graph's; batch fixed or the symbolic `batch`), and one output,
`probabilities` `[batch, num_classes]`.

Both packages are pinned per stack (tf2onnx 1.17 / ONNX Runtime 1.32 on
TF 2; tf2onnx 1.16.1 / ONNX Runtime 1.10 on TF 1.15, the last releases for
Python 3.7 that keep its numpy), so the opsets each runtime can run differ.
"""

import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from core import errors
from export import inference_graph
from export import tflite

ExportError = inference_graph.ExportError
# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

INPUT_NAME = 'input'
OUTPUT_NAME = 'probabilities'
BATCH_DIM_NAME = 'batch'
# Opset 13 runs on both pinned ONNX Runtimes and most deployment runtimes
# (TensorRT, OpenVINO); tf2onnx's own default follows its release.
DEFAULT_OPSET = 13
# The lowest opset tf2onnx converts these networks to (Softmax over the last
# axis of a 2-D tensor, Relu6 as Clip with tensor bounds).
MIN_OPSET = 11

_ADD_OPS = ('Add', 'AddV2')
_ONNX_MAGIC_FIELD = b'\x08'  # ModelProto field 1 (ir_version), varint.


def converter_max_opset():
  """The highest opset the installed tf2onnx writes."""
  from tf2onnx import constants  # pylint: disable=g-import-not-at-top
  return max(constants.OPSET_TO_IR_VERSION)


def runtime_version():
  """The installed ONNX Runtime's version string."""
  import onnxruntime  # pylint: disable=g-import-not-at-top
  return onnxruntime.__version__


def _scalar_addends_as_vectors(graph_def):
  """Gives scalar constants added to tensors the shape [1].

  tf2onnx's transpose optimizer fails on an Add of a convolution output and
  a rank-0 constant (V3's hard swish, `x + 3`), logs a traceback and leaves
  every layout transpose in the model. A [1] constant broadcasts the same
  way, so the outputs do not change.

  Args:
    graph_def: a frozen `tf.GraphDef`; not modified.

  Returns:
    A rewritten copy, and how many constants were given a vector copy.
  """
  graph_def_copy = tf.GraphDef()
  graph_def_copy.CopyFrom(graph_def)
  nodes = {n.name: n for n in graph_def_copy.node}
  vectors = {}
  for node in list(graph_def_copy.node):
    if node.op not in _ADD_OPS:
      continue
    for i, name in enumerate(node.input):
      const = nodes.get(name)
      if (const is None or const.op != 'Const' or
          const.attr['value'].tensor.tensor_shape.dim or
          const.attr['value'].tensor.tensor_shape.unknown_rank):
        continue
      if name not in vectors:
        value = tf.make_ndarray(const.attr['value'].tensor).reshape([1])
        vector = graph_def_copy.node.add()
        vector.CopyFrom(const)
        vector.name = name + '/as_vector'
        vector.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value))
        vectors[name] = vector.name
      node.input[i] = vectors[name]
  return graph_def_copy, len(vectors)


def check_opset(opset):
  """Raises ExportError for an opset the installed tf2onnx cannot write."""
  high = converter_max_opset()
  if not MIN_OPSET <= opset <= high:
    raise ExportError(
        '%s is out of range: the installed tf2onnx writes opsets %d to %d '
        'for these networks. Pass one in that range (default %d).' %
        (ref('opset', opset), MIN_OPSET, high, DEFAULT_OPSET))


def convert_graph_def(graph_def, output_node_name=None, opset=DEFAULT_OPSET,
                      input_name=inference_graph.INPUT_NODE_NAME):
  """Converts a frozen classifier GraphDef to an ONNX model.

  Args:
    graph_def: a frozen `tf.GraphDef` with a float input placeholder.
    output_node_name: the softmax node; None: the graph's
      `<Scope>/Predictions/Reshape_1`.
    opset: the ONNX opset to write (see `converter_max_opset`).
    input_name: the input placeholder.

  Returns:
    The serialized ONNX `ModelProto` (bytes).

  Raises:
    ExportError: no such input or output node, an opset out of range, or a
      conversion error.
  """
  check_opset(opset)
  names = set(n.name for n in graph_def.node)
  if output_node_name is None:
    output_node_name = tflite.find_output_node(graph_def)
  elif output_node_name not in names:
    raise ExportError(
        'The graph has no node %s. Pass the softmax node (e.g. '
        'MobilenetV1/Predictions/Reshape_1), or leave %s unset to find '
        'it.' % (ref('output_name', output_node_name), ref('output_name')))
  shape = tflite.input_shape(graph_def, input_name)
  if any(d < 1 for d in shape[1:]):
    raise ExportError('The input %r has an unknown size %s; export the graph '
                      'with %s.' % (input_name, shape, ref('image_size')))
  graph_def, _ = _scalar_addends_as_vectors(graph_def)
  # pylint: disable=g-import-not-at-top
  import tf2onnx
  quiet = _QuietConverterLog()
  try:
    with quiet:
      model_proto, _ = tf2onnx.convert.from_graph_def(
          graph_def, name=output_node_name.split('/')[0],
          input_names=[input_name + ':0'],
          output_names=[output_node_name + ':0'], opset=opset,
          tensors_to_rename={input_name + ':0': INPUT_NAME,
                             output_node_name + ':0': OUTPUT_NAME})
  except Exception as e:  # pylint: disable=broad-except  (converter errors)
    raise ExportError('ONNX conversion (%s) failed: %s%s' % (
        ref('opset', opset), str(e).strip().split('\n')[-1], quiet.errors()))
  if quiet.failed_ops:
    raise ExportError('ONNX conversion (%s) could not convert %s.%s' % (
        ref('opset', opset), ', '.join(quiet.failed_ops), quiet.errors()))
  _name_batch_dimension(model_proto)
  return model_proto.SerializeToString()


class _QuietConverterLog(object):
  """Keeps tf2onnx's INFO chatter off the console, remembering its errors.

  tf2onnx converts with `continue_on_error`: an op it cannot map is only
  logged. The records are kept so that such a model is refused.
  """

  def __init__(self):
    self.records = []
    self.failed_ops = []
    self._logger = logging.getLogger('tf2onnx')
    self._handler = logging.Handler(logging.WARNING)
    self._handler.emit = self._keep

  def _keep(self, record):
    message = record.getMessage()
    self.records.append(message)
    if 'Failed to convert node' in message:
      self.failed_ops.append(message.split('\n')[0])

  def errors(self):
    kept = [r.split('\n')[0] for r in self.records if r not in self.failed_ops]
    return (' Converter messages: %s' % '; '.join(kept[:3])) if kept else ''

  def __enter__(self):
    self._level, self._propagate = self._logger.level, self._logger.propagate
    self._logger.setLevel(logging.WARNING)
    self._logger.propagate = False
    self._old_handlers = list(self._logger.handlers)
    self._logger.handlers = [self._handler]
    return self

  def __exit__(self, *unused):
    self._logger.handlers = self._old_handlers
    self._logger.setLevel(self._level)
    self._logger.propagate = self._propagate


def _name_batch_dimension(model_proto):
  """Names the symbolic batch dimension of the input and output `batch`."""
  for value in list(model_proto.graph.input) + list(model_proto.graph.output):
    dims = value.type.tensor_type.shape.dim
    if dims and not dims[0].HasField('dim_value'):
      dims[0].dim_param = BATCH_DIM_NAME


def is_onnx_model(head):
  """Whether the first bytes of a file look like an ONNX ModelProto."""
  return head[:1] == _ONNX_MAGIC_FIELD


class OnnxRunner(object):
  """An ONNX classifier in an ONNX Runtime CPU session.

  Attributes:
    image_size, channels, num_classes: from the model's input and output.
    batch_size: the fixed batch size, or None when any batch runs.
  """

  def __init__(self, model_path=None, model_content=None, num_threads=None,
               setting_name='model_path'):
    # pylint: disable=g-import-not-at-top
    import onnxruntime
    options = onnxruntime.SessionOptions()
    if num_threads:
      options.intra_op_num_threads = num_threads
    source = model_path if model_path is not None else model_content
    try:
      self._session = onnxruntime.InferenceSession(
          source, options, providers=['CPUExecutionProvider'])
    except Exception as e:  # pylint: disable=broad-except  (ORT errors)
      raise ExportError(_load_error_message(e, model_path, setting_name))
    inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
      raise ExportError(
          '%s is not an exported classifier: it has %d inputs (%s); '
          'expected one NHWC image input. Export it with export_onnx.py.' %
          (ref(setting_name, model_path or '<bytes>'), len(inputs),
           ', '.join('%s%s' % (i.name, i.shape) for i in inputs)))
    self._input_name = inputs[0].name
    self._output_name = outputs[0].name
    shape = inputs[0].shape
    self.batch_size = shape[0] if isinstance(shape[0], int) else None
    self.image_size, self.channels = shape[1], shape[3]
    self.num_classes = outputs[0].shape[-1]
    self.scope = self._session.get_modelmeta().graph_name or None

  def run(self, images):
    """Probabilities `[N, num_classes]` of float32 images `[N, S, S, C]`."""
    images = np.asarray(images, np.float32)
    if self.batch_size is None or self.batch_size == len(images):
      return self._session.run([self._output_name],
                               {self._input_name: images})[0]
    if self.batch_size != 1:
      raise ValueError('This model runs batches of %d, got %d images.' %
                       (self.batch_size, len(images)))
    return np.concatenate([self.run(image[None]) for image in images])


def _load_error_message(error, model_path, setting_name):
  text = str(error).strip().split('\n')[0]
  what = ref(setting_name, model_path) if model_path else 'the ONNX model'
  if 'opset' in text.lower() or 'version' in text.lower():
    return ('ONNX Runtime %s cannot run %s: %s. Export it again with a '
            'lower %s (default %d), or run it on a newer ONNX Runtime.' %
            (runtime_version(), what, text, ref('opset'), DEFAULT_OPSET))
  return ('ONNX Runtime %s cannot load %s: %s. Export it with '
          'export_onnx.py.' % (runtime_version(), what, text))


# The largest |difference| of probabilities between an ONNX model and the
# graph it came from that `check_against_graph_def` accepts. Measured: 3e-8
# for V1 (float rounding of the same arithmetic in another order).
CONVERSION_TOLERANCE = 1e-5


def check_against_graph_def(model_bytes, graph_def, output_node_name,
                            num_images=2, seed=0):
  """Runs an ONNX model and its source graph on random images and compares.

  Loading the model into ONNX Runtime also tells whether this runtime can
  run its opset.

  Args:
    model_bytes: the serialized ONNX model.
    graph_def: the frozen GraphDef it was converted from.
    output_node_name: the graph's softmax node.
    num_images: random images in [-1, 1] to compare on.
    seed: their seed.

  Returns:
    The largest |difference| of probabilities.

  Raises:
    ExportError: ONNX Runtime cannot load the model, or the difference
      exceeds `CONVERSION_TOLERANCE`.
  """
  runner = OnnxRunner(model_content=model_bytes)
  shape = [runner.batch_size or num_images, runner.image_size,
           runner.image_size, runner.channels]
  images = np.random.RandomState(seed).uniform(-1, 1, shape).astype(
      np.float32)
  with tf.Graph().as_default() as graph:
    tf.import_graph_def(graph_def, name='')
    with tf.Session(graph=graph) as sess:
      expected = sess.run(output_node_name + ':0',
                          {inference_graph.INPUT_NODE_NAME + ':0': images})
  difference = float(np.abs(runner.run(images) - expected).max())
  if not difference <= CONVERSION_TOLERANCE:
    raise ExportError(
        'The ONNX model differs from the TensorFlow graph by up to %.3g in '
        'probability (more than %g) on random images; not written. Try '
        'another %s.' % (difference, CONVERSION_TOLERANCE, ref('opset')))
  return difference
