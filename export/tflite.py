"""Converts a frozen classifier graph to TensorFlow Lite.

Quantization modes (`QUANTIZATION_MODES`):

* `none`: float32 weights and activations.
* `dynamic`: post-training dynamic-range quantization (int8 weights, float
  activations); needs no data.
* `float16`: float16 weights (half the file), float32 computation on CPU.
* `full_integer`: post-training full-integer quantization: int8 weights and
  activations calibrated on a representative dataset, uint8 input and
  output (quantization parameters in the model's input/output details).
* `qat`: a graph frozen from a quantization-aware-trained checkpoint
  (freeze_graph.py with `quantize`) converted to a uint8 model with
  the ranges learnt in training.

The same `tf.compat.v1.lite.TFLiteConverter.from_frozen_graph` API exists on
TF 1.15 and TF 2, so this module does not branch on the version (except to
find TF 1.15's converter binary).
"""


import os
import re
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from core import errors
from export import inference_graph
from export import native_stderr

ExportError = inference_graph.ExportError
# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

QUANTIZATION_MODES = ('none', 'dynamic', 'full_integer', 'qat', 'float16')
# Input/output types of a full-integer model.
INTEGER_IO_TYPES = {'uint8': tf.uint8, 'int8': tf.int8}

# Input quantization of a QAT model: real = (uint8 - mean) / std maps
# [0, 255] onto the network's [-1, 1] input range.
QAT_INPUT_MEAN = 128.0
QAT_INPUT_STD = 127.0

_PREDICTIONS_SUFFIX = '/Predictions/Reshape_1'
_FAKE_QUANT_OPS = ('FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxArgs')

# TensorFlow ops that TF 1.15's converter cannot write as TFLite builtins
# (and this module enables no other op set): op -> (what in the project's
# networks uses it, what TF 2's converter makes of it).
TF1_UNCONVERTIBLE_OPS = {
    'Erf': ('the exact (erf) GELU of mobilenet_v4_hybrid_large',
            'TFLite\'s GELU op')}


def _ensure_converter_binary_on_path():
  """Puts TF 1.15's `toco_from_protos` (next to the Python binary) on PATH.

  TF 1.15 runs the converter as a subprocess found through PATH, which a
  virtual environment used without activation (`.venv/tf1/bin/python ...`)
  does not have.
  """
  bin_dir = os.path.dirname(sys.executable)
  if os.path.exists(os.path.join(bin_dir, 'toco_from_protos')):
    path = os.environ.get('PATH', '')
    if bin_dir not in path.split(os.pathsep):
      os.environ['PATH'] = bin_dir + os.pathsep + path


def interpreter_class():
  """The TFLite interpreter class this stack runs models with.

  LiteRT's (`ai_edge_litert`, pinned in the TF 2 requirements) on TF 2,
  where `tf.lite.Interpreter` is deprecated for removal; TF 1.15's own
  where LiteRT cannot be installed (it needs Python >= 3.9).
  """
  if tf_compat.IS_TF2:
    # pylint: disable=g-import-not-at-top
    from ai_edge_litert import interpreter as litert_interpreter
    return litert_interpreter.Interpreter
  return tf.lite.Interpreter


def make_interpreter(model_path=None, model_content=None, num_threads=None):
  """A TFLite interpreter (see `interpreter_class`), tensors not allocated.

  Args:
    model_path: a .tflite file, or
    model_content: the model's bytes.
    num_threads: CPU threads (TF 2 only; TF 1.15's interpreter has no such
      setting and runs on one thread). None: the runtime's default.
  """
  kwargs = {}
  if num_threads and tf_compat.IS_TF2:
    kwargs['num_threads'] = num_threads
  if model_path is not None:
    kwargs['model_path'] = model_path
  else:
    kwargs['model_content'] = model_content
  return interpreter_class()(**kwargs)


def find_output_node(graph_def):
  """Returns the name of the softmax output node of a classifier GraphDef.

  Args:
    graph_def: a `tf.GraphDef`.

  Raises:
    ExportError: if there is not exactly one `<scope>/Predictions/Reshape_1`.
  """
  names = [n.name for n in graph_def.node
           if n.name.endswith(_PREDICTIONS_SUFFIX)]
  if len(names) != 1:
    raise ExportError(
        'Cannot find the output node: expected one node named '
        '<Scope>%s (e.g. MobilenetV1%s), found %s. Pass %s.' %
        (_PREDICTIONS_SUFFIX, _PREDICTIONS_SUFFIX, names or 'none',
         ref('output_name')))
  return names[0]


def input_shape(graph_def, input_name=inference_graph.INPUT_NODE_NAME):
  """Returns the static shape of the input placeholder (-1 for unknown).

  Args:
    graph_def: a `tf.GraphDef`.
    input_name: the placeholder's name.

  Raises:
    ExportError: if the graph has no such placeholder with a known rank.
  """
  for node in graph_def.node:
    if node.name == input_name and node.op == 'Placeholder':
      shape = node.attr['shape'].shape
      if not shape.unknown_rank:
        return [d.size for d in shape.dim]
  raise ExportError('The graph has no input placeholder %r of known rank; '
                    'export it with export_inference_graph.py or '
                    'freeze_graph.py.' % input_name)


def has_fake_quant(graph_def):
  """Whether a GraphDef has fake-quant ops (a quantization-aware graph)."""
  return any(n.op in _FAKE_QUANT_OPS for n in graph_def.node)


def convert(graph_def_file, quantization='none', representative_data=None,
            input_name=inference_graph.INPUT_NODE_NAME, output_name=None,
            integer_io_type='uint8'):
  """Converts a frozen GraphDef file to a TFLite flatbuffer.

  Args:
    graph_def_file: path of a frozen GraphDef (`.pb`).
    quantization: one of `QUANTIZATION_MODES`.
    representative_data: for `full_integer`: a list of float32 input arrays
      `[1, size, size, channels]`, preprocessed like the network input.
    input_name: the input placeholder.
    output_name: the output node; None: the graph's
      `<Scope>/Predictions/Reshape_1`.
    integer_io_type: for `full_integer`: `uint8` or `int8` (what TFLite
      Micro's person detector takes) input and output.

  Returns:
    The TFLite model as bytes.

  Raises:
    ExportError: unknown mode, missing representative data, a QAT
      conversion of a graph without fake-quant ops, or a converter error.
  """
  # pylint: disable=g-import-not-at-top
  from export import freeze
  if quantization not in QUANTIZATION_MODES:
    raise ExportError('%s is not one of %s.' %
                      (ref('quantization', quantization),
                       ', '.join(QUANTIZATION_MODES)))
  graph_def = freeze.load_graph_def(graph_def_file, 'graph_def_file')
  if not tf_compat.IS_TF2:
    _check_tf1_converts(graph_def, graph_def_file)
  output_name = output_name or find_output_node(graph_def)
  shape = input_shape(graph_def, input_name)
  shape[0] = 1  # TFLite models run one image at a time.
  if any(d < 1 for d in shape):
    raise ExportError('The input %r of %s has an unknown size %s; export the '
                      'graph with %s.' %
                      (input_name, graph_def_file, shape, ref('image_size')))
  if quantization == 'qat' and not has_fake_quant(graph_def):
    raise ExportError(
        '%s needs a graph with fake-quant ops, frozen by freeze_graph.py '
        'with %s from a checkpoint trained with %s. %s has none: '
        'use %s or full_integer (post-training) instead.' %
        (ref('quantization', 'qat'), ref('quantize'), ref('quantize_delay'),
         graph_def_file, ref('quantization', 'dynamic')))
  if quantization == 'full_integer' and not representative_data:
    raise ExportError('%s needs representative images to calibrate '
                      'activation ranges: pass %s/%s (and %s) of the '
                      'training data.' %
                      (ref('quantization', 'full_integer'),
                       ref('dataset_name'), ref('dataset_dir'),
                       ref('dataset_split_name')))

  _ensure_converter_binary_on_path()
  converter = tf.lite.TFLiteConverter.from_frozen_graph(
      graph_def_file, [input_name], [output_name], {input_name: shape})
  if quantization in ('dynamic', 'full_integer'):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == 'float16':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  if quantization == 'full_integer':
    converter.representative_dataset = lambda: ([x] for x in
                                                representative_data)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = INTEGER_IO_TYPES.get(integer_io_type)
    if io_type is None:
      raise ExportError('%s is not one of %s.' % (
          ref('integer_io_type', integer_io_type),
          ', '.join(sorted(INTEGER_IO_TYPES))))
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
  if quantization == 'qat':
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {
        input_name: (QAT_INPUT_MEAN, QAT_INPUT_STD)}
  try:
    with native_stderr.without_lines(native_stderr.CALIBRATION_NOTICES, fd=1):
      with native_stderr.without_lines(native_stderr.CALIBRATION_NOTICES):
        model = converter.convert()
  except Exception as e:  # pylint: disable=broad-except  (ConverterError)
    raise ExportError('TFLite conversion (%s) of %s failed: %s' %
                      (ref('quantization', quantization), graph_def_file,
                       converter_error_summary(str(e))))
  if not tf_compat.IS_TF2:
    _check_tf1_loads(model, quantization, graph_def_file)
  return model


# TF 2's converter (MLIR) reports each failure as `loc(<where>): error:
# <what>`, then dumps the whole function; the first lines say what failed.
_MLIR_ERROR = re.compile(r'error:\s*(?:loc\(.*?\):\s*)?(?:error:\s*)?(.*)$')
_MLIR_SUMMARY_LINES = ('Some ops are not supported', 'TF Select ops:')
_MAX_SUMMARY_ITEMS = 6


def converter_error_summary(text):
  """The lines of a converter error that say what failed, as one line.

  TF 2's error holds every failing op's line (`'tf.AsString' op is neither a
  custom op nor a flex op`), the list of ops that need TF Select, and then a
  dump of the graph whose last line means nothing; TF 1.15's ends with its
  list of unsupported operators.

  Args:
    text: the converter's error message.
  """
  found = []
  for line in text.split('\n'):
    line = line.strip()
    match = _MLIR_ERROR.search(line)
    item = match.group(1).strip() if match else None
    if line.startswith(_MLIR_SUMMARY_LINES):
      item = line
    if item and not item.startswith('failed while converting') and (
        item not in found):
      found.append(item)
  if not found:
    lines = [line.strip() for line in text.split('\n') if line.strip()]
    return lines[-1] if lines else 'no message'
  return ' '.join(item.rstrip('.:;') + '.' for item in
                  found[:_MAX_SUMMARY_ITEMS])


def _check_tf1_converts(graph_def, graph_def_file):
  """Refuses, before converting, a graph TF 1.15's converter cannot take.

  Raises:
    ExportError: naming the op, the network using it and the way out.
  """
  missing = sorted(set(n.op for n in graph_def.node) &
                   set(TF1_UNCONVERTIBLE_OPS))
  if missing:
    op = missing[0]
    user, tf2_op = TF1_UNCONVERTIBLE_OPS[op]
    raise ExportError(
        'TF 1.15 cannot convert %s to TFLite: the graph has %s ops (%s), '
        'which TF 1.15\'s converter does not have, and no setting of this '
        'stack gets around it. This is a limitation of TF 1.15: run the '
        'same command on the TF 2 stack (.venv/tf2/bin/python, or make '
        'with TF=2), whose converter writes them as %s. The frozen graph '
        'and the SavedModel work on TF 1.15.' %
        (graph_def_file, op, user, tf2_op))


def _check_tf1_loads(model, quantization, graph_def_file):
  """Refuses a converted model that TF 1.15's own interpreter cannot load.

  TF 1.15's converter writes some models it cannot run: with full-integer
  quantization, the attention matmuls of the MobileNet V4 hybrids become
  FULLY_CONNECTED ops whose bias scale is not the product of their input
  scales, which the interpreter checks when it allocates them.

  Raises:
    ExportError: naming the interpreter's complaint and the way out.
  """
  try:
    make_interpreter(model_content=model).allocate_tensors()
  except (ValueError, RuntimeError) as e:
    raise ExportError(
        'TF 1.15 converted %s (%s), but its own TFLite interpreter cannot '
        'load the result (%s), so no TFLite model was written. This is a '
        'limitation of TF 1.15\'s converter: with full-integer quantization '
        'it writes the attention matmuls of the MobileNet V4 hybrids as '
        'FULLY_CONNECTED ops with a wrong bias scale. Convert on the TF 2 '
        'stack (.venv/tf2/bin/python, or make with TF=2), or choose %s, %s '
        'or %s here.' %
        (graph_def_file, ref('quantization', quantization),
         ' '.join(str(e).split()), ref('quantization', 'none'),
         ref('quantization', 'dynamic'), ref('quantization', 'float16')))


def representative_images(dataset_fn, image_size, preprocessing_fn,
                          num_images=100):
  """Reads and preprocesses the first images of a dataset split.

  Args:
    dataset_fn: returns the `slim.dataset.Dataset` (from `dataset_factory`);
      called inside the reading graph, which its decoder's tensors must
      belong to.
    image_size: network input size.
    preprocessing_fn: the model's evaluation preprocessing.
    num_images: how many images to read (fewer if the split is smaller).

  Returns:
    A list of float32 arrays `[1, image_size, image_size, channels]`.
  """
  return labeled_images(dataset_fn, image_size, preprocessing_fn,
                        num_images)[0]


def labeled_images(dataset_fn, image_size, preprocessing_fn, num_images=100,
                   labels_offset=0):
  """`representative_images` and the images' labels.

  Returns:
    (a list of float32 arrays `[1, image_size, image_size, channels]`,
     an int array of their labels minus `labels_offset`).
  """
  # pylint: disable=g-import-not-at-top
  from datasets import input_pipeline
  with tf.Graph().as_default():
    data = input_pipeline.make_dataset(
        dataset_fn(), preprocessing_fn, image_size, batch_size=1,
        is_training=False, labels_offset=labels_offset).take(num_images)
    next_batch = tf.data.make_one_shot_iterator(data).get_next()
    arrays, labels = [], []
    with tf.Session() as sess:
      try:
        while True:
          images, batch_labels = sess.run(next_batch)
          arrays.append(images.astype(np.float32))
          labels.extend(batch_labels.tolist())
      except tf.errors.OutOfRangeError:
        pass
  return arrays, np.array(labels, dtype=np.int64)
