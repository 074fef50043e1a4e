"""Runs a classifier of any exported kind on encoded image files.

Kinds: a checkpoint (prefix or directory, rebuilt with
`inference_graph.build_inference_graph`), a frozen GraphDef (`.pb`), a
SavedModel directory, a TFLite flatbuffer (`.tflite`, run by LiteRT on TF 2)
and an ONNX model (`.onnx`, run by ONNX Runtime). `detect_kind` (in
`export.model_files`, re-exported here with the kind names, `ModelError`
and `read_image_file`) tells them apart by content, and `load` returns a
`Predictor` whose `predict_encoded` applies the model's evaluation
preprocessing (inside the SavedModel, which carries its own; with
`preprocessing_factory` for the others) and returns class probabilities.
"""


import os

from absl import logging
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from core import errors
from export import freeze
from export import inference_graph
from export import model_files
from export import native_stderr
from export import onnx_model
from export import saved_model
from export import tflite


# The file recognition of model_files, importable from here as before.
ModelError = model_files.ModelError
ref = model_files.ref
CHECKPOINT = model_files.CHECKPOINT
FROZEN_GRAPH = model_files.FROZEN_GRAPH
SAVED_MODEL = model_files.SAVED_MODEL
TFLITE = model_files.TFLITE
ONNX = model_files.ONNX
KINDS = model_files.KINDS
image_format = model_files.image_format
read_image_file = model_files.read_image_file
detect_kind = model_files.detect_kind

# Network scope (first component of the output node) -> preprocessing name.
_SCOPE_TO_PREPROCESSING = {
    'MobilenetV1': 'mobilenet_v1',
    'MobilenetV2': 'mobilenet_v2',
}

_VARIABLE_OPS = ('VariableV2', 'Variable', 'VarHandleOp')


def preprocessing_name_for_scope(scope):
  """The preprocessing of the network whose variables live in `scope`."""
  return _SCOPE_TO_PREPROCESSING.get(scope, 'inception')


class Predictor(object):
  """A loaded model. Subclasses set the attributes and `predict`.

  Attributes:
    kind: one of `KINDS`.
    image_size: the network's input height and width.
    channels: input channels (3, or 1 for grayscale models).
    num_classes: number of outputs.
    scope: the network scope (e.g. 'MobilenetV1'), or None if unknown.
  """

  kind = None
  image_size = None
  channels = 3
  num_classes = None
  scope = None

  def __init__(self, preprocessing_name=None):
    self._preprocessing_name = preprocessing_name
    self._preprocessor = None

  @property
  def preprocessing_name(self):
    """The preprocessing applied to encoded images."""
    return (self._preprocessing_name or
            preprocessing_name_for_scope(self.scope))

  def preprocess(self, image_bytes):
    """Decodes and preprocesses one encoded image to a `[1, S, S, C]` array.

    Raises:
      ModelError: if the bytes cannot be decoded.
    """
    if self._preprocessor is None:
      self._preprocessor = _Preprocessor(self.preprocessing_name,
                                         self.image_size, self.channels == 1)
    return self._preprocessor(image_bytes)

  def predict(self, images):
    """Returns probabilities `[N, num_classes]` for preprocessed images."""
    raise NotImplementedError

  def predict_encoded(self, image_bytes):
    """Returns probabilities `[num_classes]` for one encoded image."""
    return self.predict(self.preprocess(image_bytes))[0]

  def close(self):
    if self._preprocessor is not None:
      self._preprocessor.close()


class _Preprocessor(object):
  """Decodes and preprocesses encoded images in a graph of its own."""

  def __init__(self, preprocessing_name, image_size, use_grayscale):
    preprocessing_fn = inference_graph.get_eval_preprocessing(
        preprocessing_name, use_grayscale)
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._bytes = tf.placeholder(tf.string, [])
      image = tf.image.decode_image(self._bytes, channels=3,
                                    expand_animations=False)
      self._image = tf.expand_dims(
          preprocessing_fn(image, image_size, image_size), 0)
    self._sess = tf.Session(graph=self._graph)

  def __call__(self, image_bytes):
    try:
      return self._sess.run(self._image, {self._bytes: image_bytes})
    except tf.errors.InvalidArgumentError as e:
      raise ModelError('Cannot decode the image: %s. It may be truncated or '
                       'corrupt.' % e.message.split('\n')[0])

  def close(self):
    self._sess.close()


class _GraphPredictor(Predictor):
  """Runs `input` -> probabilities in a TF session."""

  def __init__(self, graph, sess, images, probabilities, preprocessing_name):
    super(_GraphPredictor, self).__init__(preprocessing_name)
    self._graph, self._sess = graph, sess
    self._images, self._probabilities = images, probabilities
    shape = images.get_shape().as_list()
    self.image_size, self.channels = shape[1], shape[3]
    self.num_classes = probabilities.get_shape().as_list()[-1]
    self.scope = probabilities.op.name.split('/')[0]

  def predict(self, images):
    return self._sess.run(self._probabilities, {self._images: images})

  def close(self):
    super(_GraphPredictor, self).close()
    self._sess.close()


class CheckpointPredictor(_GraphPredictor):
  """A checkpoint restored into the inference graph of `model_name`."""

  kind = CHECKPOINT

  def __init__(self, checkpoint_path, model_name, num_classes,
               image_size=None, use_grayscale=False, quantize=False,
               moving_average_decay=None, preprocessing_name=None,
               use_explicit_padding=None):
    graph = tf.Graph()
    with graph.as_default():
      net = inference_graph.build_inference_graph(
          model_name, num_classes, image_size=image_size,
          use_grayscale=use_grayscale, quantize=quantize,
          use_explicit_padding=use_explicit_padding)
      sess = tf.Session(graph=graph)
      try:
        self.checkpoint, self.weights = inference_graph.restore_weights(
            sess, checkpoint_path, model_name, moving_average_decay)
      except BaseException:
        sess.close()
        raise
    super(CheckpointPredictor, self).__init__(
        graph, sess, net.images, net.predictions,
        preprocessing_name or model_name)


class FrozenGraphPredictor(_GraphPredictor):
  """A frozen GraphDef with an `input` placeholder and a softmax output."""

  kind = FROZEN_GRAPH

  def __init__(self, path, preprocessing_name=None, output_name=None):
    graph_def = freeze.load_graph_def(path, 'model_path')
    variables = [n.name for n in graph_def.node if n.op in _VARIABLE_OPS]
    if variables:
      raise ModelError(
          '%s is a GraphDef with %d variables (e.g. %s), i.e. '
          'not frozen: its weights are not in it. Freeze the checkpoint '
          'with freeze_graph.py (%s, %s), or pass the checkpoint itself.' %
          (ref('model_path', path), len(variables), variables[0],
           ref('checkpoint_path', '...'), ref('output_file', 'frozen.pb')))
    try:
      output_name = output_name or tflite.find_output_node(graph_def)
      tflite.input_shape(graph_def)
    except errors.InputError as e:
      raise ModelError('%s is a GraphDef but not an exported '
                       'classifier: %s It must come from freeze_graph.py.' %
                       (ref('model_path', path), errors.marked(e)))
    graph = tf.Graph()
    with graph.as_default():
      tf.import_graph_def(graph_def, name='')
    images = graph.get_tensor_by_name(inference_graph.INPUT_NODE_NAME + ':0')
    probabilities = graph.get_tensor_by_name(output_name + ':0')
    if images.get_shape().as_list()[1] is None:
      raise ModelError('%s has an input of unknown size; '
                       'freeze it with %s.' % (ref('model_path', path),
                                               ref('image_size')))
    super(FrozenGraphPredictor, self).__init__(
        graph, tf.Session(graph=graph), images, probabilities,
        preprocessing_name)


class SavedModelPredictor(Predictor):
  """A SavedModel written by `export_saved_model` (both signatures)."""

  kind = SAVED_MODEL

  def __init__(self, export_dir, preprocessing_name=None):
    super(SavedModelPredictor, self).__init__(preprocessing_name)
    self._graph = tf.Graph()
    self._sess = tf.Session(graph=self._graph)
    with self._graph.as_default():
      try:
        meta_graph = tf.saved_model.loader.load(
            self._sess, [tf.saved_model.tag_constants.SERVING], export_dir)
      except (RuntimeError, IOError, OSError, tf.errors.OpError) as e:
        self._sess.close()
        raise ModelError('Cannot load the SavedModel in %s: %s' %
                         (ref('model_path', export_dir),
                          str(e).split('\n')[0]))
    signatures = meta_graph.signature_def
    missing = [s for s in (saved_model.SERVING_SIGNATURE,
                           saved_model.IMAGES_SIGNATURE)
               if s not in signatures]
    if missing:
      self._sess.close()
      raise ModelError('The SavedModel in %s lacks the '
                       'signature(s) %s; it was not written by '
                       'export_saved_model.py.' %
                       (ref('model_path', export_dir), ', '.join(missing)))
    self._bytes_signature = signatures[saved_model.SERVING_SIGNATURE]
    self._images_signature = signatures[saved_model.IMAGES_SIGNATURE]
    images_info = self._images_signature.inputs[saved_model.IMAGES_INPUT]
    dims = [d.size for d in images_info.tensor_shape.dim]
    self.image_size, self.channels = dims[1], dims[3]
    probabilities = self._tensor(self._images_signature, 'probabilities',
                                 outputs=True)
    self.num_classes = probabilities.get_shape().as_list()[-1]
    self.scope = probabilities.op.name.split('/')[0]

  def _tensor(self, signature, key, outputs=False):
    infos = signature.outputs if outputs else signature.inputs
    return self._graph.get_tensor_by_name(infos[key].name)

  def predict(self, images):
    return self._sess.run(
        self._tensor(self._images_signature, 'probabilities', outputs=True),
        {self._tensor(self._images_signature, saved_model.IMAGES_INPUT):
         images})

  def predict_encoded(self, image_bytes):
    """Runs the serving signature, which decodes and preprocesses itself."""
    try:
      return self._sess.run(
          self._tensor(self._bytes_signature, 'probabilities', outputs=True),
          {self._tensor(self._bytes_signature, saved_model.IMAGE_BYTES_INPUT):
           [image_bytes]})[0]
    except tf.errors.InvalidArgumentError as e:
      raise ModelError('Cannot decode the image: %s. It may be truncated or '
                       'corrupt.' % e.message.split('\n')[0])

  def close(self):
    super(SavedModelPredictor, self).close()
    self._sess.close()


def _usable_cpus():
  """CPUs this process may run on."""
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


# Measured in BENCHMARKS.md (int8 rows of TF 1.15).
_TF1_INTEGER_TFLITE_NOTE = (
    '%s is an integer model; TF 1.15\'s TFLite interpreter runs those on '
    'its unoptimized reference kernels, about 1 s per image for '
    'mobilenet_v1 at 224x224 on 2 CPU cores (1.3 ms on TF 2.21\'s). The '
    'file is fine: it runs at full speed on TFLite 2.x (mobile runtimes, or '
    'this script on the TF 2 stack). For speed on TF 1.15, classify with '
    'the float .tflite model or the frozen graph.')


class TFLitePredictor(Predictor):
  """A TFLite model; (de)quantizes uint8/int8 inputs and outputs."""

  kind = TFLITE

  def __init__(self, path, preprocessing_name=None):
    super(TFLitePredictor, self).__init__(preprocessing_name)
    try:
      # One thread per usable CPU: mobilenet_v1 batch-1 latency 10.0 ms
      # with 2 threads vs 14.0 ms with one on 2 cores (BENCHMARKS.md).
      self._interpreter = tflite.make_interpreter(
          model_path=path, num_threads=_usable_cpus())
      with native_stderr.without_lines():  # its XNNPACK notice
        self._interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
      raise ModelError('Cannot load the TFLite model %s: %s' %
                       (ref('model_path', path), str(e).split('\n')[0]))
    self._input = self._interpreter.get_input_details()[0]
    self._output = self._interpreter.get_output_details()[0]
    shape = list(self._input['shape'])
    self.image_size, self.channels = int(shape[1]), int(shape[3])
    self.num_classes = int(self._output['shape'][-1])
    self.scope = self._output['name'].split('/')[0]
    if not tf_compat.IS_TF2 and self._input['dtype'] != np.float32:
      logging.warning(_TF1_INTEGER_TFLITE_NOTE, path)

  @property
  def input_dtype(self):
    """numpy dtype of the model input (float32, or uint8 when quantized)."""
    return self._input['dtype']

  @property
  def input_quantization(self):
    """(scale, zero point) of a quantized input; (0.0, 0) for float."""
    return self._input['quantization']

  def predict(self, images):
    results = []
    for image in images:
      self._interpreter.set_tensor(self._input['index'],
                                   _quantize(image[None], self._input))
      self._interpreter.invoke()
      results.append(_dequantize(
          self._interpreter.get_tensor(self._output['index']),
          self._output)[0])
    return np.stack(results)


class OnnxPredictor(Predictor):
  """An ONNX model from export_onnx.py, run by ONNX Runtime."""

  kind = ONNX

  def __init__(self, path, preprocessing_name=None):
    super(OnnxPredictor, self).__init__(preprocessing_name)
    try:
      self._runner = onnx_model.OnnxRunner(model_path=path,
                                           num_threads=_usable_cpus())
    except errors.InputError as e:
      raise ModelError(errors.marked(e))
    self.image_size = self._runner.image_size
    self.channels = self._runner.channels
    self.num_classes = self._runner.num_classes
    self.scope = self._runner.scope

  def predict(self, images):
    return self._runner.run(images)


def _quantize(values, details):
  """Converts float values to a tensor's (quantized) input dtype."""
  dtype = details['dtype']
  if dtype == np.float32:
    return values.astype(np.float32)
  scale, zero_point = details['quantization']
  info = np.iinfo(dtype)
  quantized = np.round(values / scale + zero_point)
  return np.clip(quantized, info.min, info.max).astype(dtype)


def _dequantize(values, details):
  """Converts a (quantized) output tensor to float32."""
  if details['dtype'] == np.float32:
    return values
  scale, zero_point = details['quantization']
  return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def load(model_path, model_name=None, num_classes=None, image_size=None,
         use_grayscale=False, quantize=False, moving_average_decay=None,
         preprocessing_name=None, use_explicit_padding=None):
  """Loads a model of any kind.

  Args:
    model_path: see `detect_kind`.
    model_name: network name; needed for checkpoints only.
    num_classes: checkpoints only: head size (None: read from the
      checkpoint).
    image_size: checkpoints only: input size (None: the network's default).
    use_grayscale: checkpoints only: 1-channel input.
    quantize: checkpoints only: fake-quant graph (TF 1.15).
    moving_average_decay: checkpoints only: use moving-average weights.
    preprocessing_name: preprocessing for encoded images; None: the one of
      `model_name`, else of the network scope found in the model.
    use_explicit_padding: checkpoints only: the network's padding (None:
      its own).

  Returns:
    A `Predictor`.

  Raises:
    ModelError: if the model cannot be found, recognized or loaded.
  """
  kind, path = detect_kind(model_path)
  if kind == CHECKPOINT:
    if not model_name:
      raise ModelError('%s is a checkpoint: pass the %s it was trained '
                       'with.' % (ref('model_path', model_path),
                                  ref('model_name')))
    if not num_classes:
      num_classes = inference_graph.resolve_num_classes(checkpoint=path)
    return CheckpointPredictor(
        path, model_name, num_classes, image_size=image_size,
        use_grayscale=use_grayscale, quantize=quantize,
        moving_average_decay=moving_average_decay,
        preprocessing_name=preprocessing_name,
        use_explicit_padding=use_explicit_padding)
  if kind == FROZEN_GRAPH:
    return FrozenGraphPredictor(path, preprocessing_name)
  if kind == SAVED_MODEL:
    return SavedModelPredictor(path, preprocessing_name)
  if kind == ONNX:
    return OnnxPredictor(path, preprocessing_name)
  return TFLitePredictor(path, preprocessing_name)
