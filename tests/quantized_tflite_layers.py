"""Compares an all-integer (uint8) TFLite model with its fake-quant graph,
layer by layer.

Each activation tensor of the integer model is set against the frozen
fake-quant graph's tensor of the same name, computed from the integer
model's own (dequantized) tensors of the layer before: what one layer does,
with no earlier difference carried in. The integer model computes a layer
as the fake-quant graph does except that it rounds the bias to int32 in
units of input scale x weight scale (the graph adds it in float), so an
output that lies within that rounding error of a tie between two 8-bit
steps may be rounded to the other step. Nothing else may differ.

Needs TF 2: TF 1.15's interpreter cannot keep intermediate tensors.
"""

import collections

from core import tf_compat  # noqa: F401  (must run before TensorFlow is used)
import numpy as np
import tensorflow.compat.v1 as tf

from export import freeze
from export import tflite
from tests import fake_quant_layers
from training.quantization import fake_quant

# Float rounding of the graph and of the kernels' requantization, in steps.
FLOAT_SLACK_STEPS = 1e-3
_WEIGHTED_OPS = ('CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED')

Layer = collections.namedtuple('Layer', ['name', 'op', 'index', 'scale',
                                         'zero_point', 'graph_input',
                                         'graph_output', 'bias_steps'])
Result = collections.namedtuple('Result', ['layer', 'same_grid', 'elements',
                                           'differing', 'flips'])


def _graph_tensors(graph, tflite_name):
  """(input, output) of the fake-quant graph for a TFLite tensor name:
  the op the converter named first, and the fake quant after it if any."""
  name = tflite_name.split(';')[0]
  ops = {op.name for op in graph.get_operations()}
  if name not in ops and name[:-1] in ops:  # the converter's renamed copy
    name = name[:-1]
  tensor = graph.get_operation_by_name(name).outputs[0]
  quantized = [op.outputs[0] for op in tensor.consumers()
               if op.type.startswith('FakeQuant')]
  return tensor, (quantized[0] if quantized else tensor)


def _layers(interpreter, graph):
  details = interpreter.get_tensor_details()
  layers = []
  for op in interpreter._get_ops_details():  # pylint: disable=protected-access
    if op['op_name'] == 'DELEGATE':  # a delegate's copy of the ops above
      continue
    for index in op['outputs']:
      output = details[index]
      if output['dtype'] != np.uint8:
        continue
      scale, zero_point = output['quantization']
      bias_steps = 0.0
      if op['op_name'] in _WEIGHTED_OPS:
        # The int32 bias is rounded to input scale x weight scale.
        bias_steps = 0.5 * (details[op['inputs'][0]]['quantization'][0] *
                            details[op['inputs'][1]]['quantization'][0] /
                            scale)
      layers.append(Layer(output['name'], op['op_name'], index, scale,
                          zero_point, *_graph_tensors(graph, output['name']),
                          bias_steps=bias_steps))
  return layers


def _same_grid(sess, layer):
  """Whether the layer's scale and zero point are its fake quant's grid."""
  if layer.graph_output.op.type not in fake_quant.FAKE_QUANT_TYPES:
    return True  # (pooling, reshape, softmax: the converter's choice)
  op = layer.graph_output.op
  low, step, _ = fake_quant_layers.quantization_grid(
      *sess.run(op.inputs[1:3]), num_bits=op.get_attr('num_bits'),
      narrow_range=op.get_attr('narrow_range'))
  return (abs(layer.scale - step) <= 1e-6 * step and
          round(-low / step) == layer.zero_point)


def compare(tflite_path, frozen_path, images):
  """Per layer of the integer model, a `Result`.

  `same_grid`: its scale and zero point are the fake quant's; `flips`:
  the `differing` elements that are one step off and within the layer's
  bias rounding (plus FLOAT_SLACK_STEPS) of a tie.
  """
  interpreter = tflite.interpreter_class()(
      model_path=tflite_path, experimental_preserve_all_tensors=True)
  interpreter.allocate_tensors()
  source = interpreter.get_input_details()[0]
  scale, zero_point = source['quantization']
  graph = tf.Graph()
  with graph.as_default():
    tf.import_graph_def(freeze.load_graph_def(frozen_path, 'frozen_path'),
                        name='')
  layers = _layers(interpreter, graph)
  counts = np.zeros([len(layers), 3], np.int64)
  with tf.Session(graph=graph) as sess:
    same_grid = [_same_grid(sess, layer) for layer in layers]
    for image in images:
      codes = np.clip(np.round(image / scale + zero_point), 0, 255)
      interpreter.set_tensor(source['index'], codes[None].astype(np.uint8))
      interpreter.invoke()
      feed = {'input:0': ((codes - zero_point) * scale)[None]}
      integer = [interpreter.get_tensor(l.index).astype(np.float64)
                 for l in layers]
      for layer, value in zip(layers, integer):
        feed[layer.graph_output] = ((value - layer.zero_point) *
                                    layer.scale).astype(np.float32)
      computed = sess.run([l.graph_input for l in layers], feed)
      for row, layer, value, float_value in zip(counts, layers, integer,
                                                computed):
        positions = np.clip(np.reshape(float_value, value.shape) /
                            layer.scale + layer.zero_point, 0, 255)
        differ = np.floor(positions + 0.5) != value
        tie = np.abs(positions - np.floor(positions) - 0.5)
        flips = differ & (np.abs(positions - value) < 1) & (
            tie <= layer.bias_steps + FLOAT_SLACK_STEPS)
        row += [value.size, differ.sum(), flips.sum()]
  return [Result(layer, same, *[int(c) for c in row])
          for layer, same, row in zip(layers, same_grid, counts)]
