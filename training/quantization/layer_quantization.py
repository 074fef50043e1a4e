"""Finds the layers of a (folded) graph and quantizes them.

Where quantizers go, in the order `tf.contrib.quantize` inserts them, so
that a checkpoint of either names its range variables alike:
  * the weights of every Conv2D / DepthwiseConv2dNative / MatMul
    (`weights_quant`, narrow range: [-127, 127] steps);
  * the layer's output after its activation (`act_quant`), or after its
    bias add when it has none;
  * with a residual add between bias add and activation: the bias add
    (`conv_quant`) and the add (`add_quant`, unless an activation follows);
  * a residual add after the activation (`post_activation_bypass_quant`,
    unless a ReLU follows);
  * finally every Add/Mul that combines already-quantized tensors and is not
    followed by a ReLU (`activation_<type>_quant`), e.g. hard-swish and
    squeeze-excite products.
"""

from training.quantization import fake_quant
from training.quantization import op_patterns as pt
from training.quantization import rewiring

LAYER_TYPES = 'Conv2D|MatMul|DepthwiseConv2dNative'
_ACTIVATION_TYPES = frozenset(['Relu', 'Relu6', 'Identity'])
_RELU_TYPES = frozenset(['Relu', 'Relu6'])
_COMBINING_TYPES = frozenset(['Add', 'AddV2', 'Mul'])
_TRANSPARENT_TYPES = frozenset(['Reshape', 'Identity', 'BatchToSpaceND',
                                'SpaceToBatchND', 'MaxPool', 'Max'])


class _Patterns(object):
  """The subgraph shapes that identify a layer and what follows it."""

  def __init__(self):
    variable = pt.Op('Variable|VariableV2')
    partition = pt.Op('Identity', [variable])
    concat = pt.Op('ConcatV2', [partition, '*', '*'])
    weight_sources = pt.AnyOf(
        pt.Op('Identity', [pt.AnyOf(partition, concat, variable)],
              role='weight_read'),
        pt.Op('ReadVariableOp', role='weight_resource'),
        pt.Op('Mul', role='weight_folded'))
    self.layer = pt.Op(LAYER_TYPES, ['*', weight_sources], any_order=True,
                       role='layer')
    output = pt.AnyOf(pt.Op('BatchToSpaceND', [self.layer, '*', '*']),
                      self.layer)
    self.stacked_layers = pt.Op(LAYER_TYPES, [pt.AnyOf(output), '*'],
                                any_order=True)
    # Training-time folding: add(add(mul(recip, layer), offset), bias).
    corrected = pt.Op('Add|AddV2', [pt.Op('Mul', ['*', output],
                                          any_order=True), '*'],
                      any_order=True)
    self.folded_bias_add = pt.Op('Add|AddV2', [corrected, '*'],
                                 any_order=True, role='folded_bias_add')
    bias_identity = pt.Op('Identity', [self.folded_bias_add])
    self.bias_add = pt.Op('Add|AddV2|BiasAdd', [output, '*'], any_order=True,
                          role='bias_add')
    bypass = pt.Op('Add|AddV2', [pt.AnyOf(self.bias_add,
                                          self.folded_bias_add,
                                          bias_identity), '*'],
                   any_order=True, role='bypass')
    self.activation = pt.Op(
        'Relu|Relu6|Identity',
        [pt.AnyOf(self.bias_add, self.folded_bias_add, bias_identity, bypass,
                  self.layer)], role='activation')
    self.post_bypass = pt.Op('Add|AddV2', ['*', self.activation],
                             any_order=True, role='post_bypass')


class _Layer(object):

  def __init__(self, match, with_folded_weight=True, activation_role=None):
    self.op = match.op('layer')
    self.weight = match.tensor('weight_read')
    if self.weight is None:
      self.weight = match.tensor('weight_resource')
    if self.weight is None and with_folded_weight:
      self.weight = match.tensor('weight_folded')
    self.activation = match.op(activation_role or 'activation')
    self.bypass = match.op('bypass')
    self.post_bypass = match.op('post_bypass')
    self.bias_add = match.op('bias_add') or match.op('folded_bias_add')


def _feeds_only_batch_norm(activation):
  if activation.type != 'Identity' or len(activation.outputs) != 1:
    return False
  readers = activation.outputs[0].consumers()
  return len(readers) == 1 and readers[0].type in ('FusedBatchNorm',
                                                   'FusedBatchNormV3')


def find_layers(graph):
  """Layers to quantize, in the order of the four passes over the graph."""
  patterns = _Patterns()
  ops = graph.get_operations()
  layers, seen = [], set()

  def keep(layer):
    if layer.op not in seen:
      seen.add(layer.op)
      layers.append(layer)

  for match in pt.matches(patterns.post_bypass, ops):
    keep(_Layer(match))
  for match in pt.matches(patterns.activation, ops):
    layer = _Layer(match)
    layer.post_bypass = None
    if not _feeds_only_batch_norm(layer.activation):
      keep(layer)
  last = pt.AnyOf(patterns.bias_add, patterns.folded_bias_add)
  for match in pt.matches(last, ops):
    layer = _Layer(match)
    layer.activation = layer.bias_add
    layer.bypass = layer.post_bypass = layer.bias_add = None
    keep(layer)
  for match in pt.matches(patterns.stacked_layers, ops):
    layer = _Layer(match, with_folded_weight=False, activation_role='layer')
    layer.bypass = layer.post_bypass = layer.bias_add = None
    keep(layer)
  return layers


def _parent(name):
  return name.rpartition('/')[0]


def _quantize_layer(settings, layer, readers, quantized):
  context = _parent(layer.op.name)
  consumers = lambda op: rewiring.consumers_of(readers, op)
  if layer.weight is not None:
    fake_quant.insert(settings, context, 'weights_quant', layer.weight.op,
                      consumers(layer.weight.op), moving_average=False,
                      narrow_range=True)
  outer = _parent(context) if layer.bypass is not None else context
  if layer.activation is not None:
    fake_quant.insert(settings, outer, 'act_quant', layer.activation,
                      consumers(layer.activation), init_min=0.0)
    quantized.add(layer.activation)
  if layer.bypass is not None:
    fake_quant.insert(settings, context, 'conv_quant', layer.bias_add,
                      consumers(layer.bias_add))
    quantized.add(layer.bias_add)
    if not any(c.type in _ACTIVATION_TYPES for c in consumers(layer.bypass)):
      fake_quant.insert(settings, outer, 'add_quant', layer.bypass,
                        consumers(layer.bypass))
      quantized.add(layer.bypass)
  if layer.post_bypass is not None:
    after = consumers(layer.post_bypass)
    if not any(c.type in _RELU_TYPES for c in after):
      fake_quant.insert(settings, _parent(layer.post_bypass.name),
                        'post_activation_bypass_quant', layer.post_bypass,
                        after)
      quantized.add(layer.post_bypass)


def _combines_quantized(op, settings, quantized):
  """Whether Add/Mul `op` joins tensors that are already quantized."""
  if op in quantized or op.type not in _COMBINING_TYPES:
    return False
  if len(op.outputs) == 1:
    readers = op.outputs[0].consumers()
    if len(readers) == 1 and readers[0].type in _RELU_TYPES:
      return False  # quantized after the ReLU instead
  for tensor in op.inputs:
    source = tensor.op
    while source.type in _TRANSPARENT_TYPES:
      source = source.inputs[0].op
    if (source.type == 'FakeQuantWithMinMaxVars' or
        source in settings.quantized_outputs or
        source.name.find('delayed_quant/Merge') > 0):
      return True
    if source.type in _COMBINING_TYPES and any(
        _combines_quantized(t.op, settings, quantized)
        for t in source.inputs):
      return True
  return False


def quantize_layers(graph, settings):
  """Inserts every quantizer of the module docstring into `graph`."""
  readers = rewiring.consumer_map(graph)
  quantized = set()
  for layer in find_layers(graph):
    _quantize_layer(settings, layer, readers, quantized)
  readers = rewiring.consumer_map(graph)
  for op in graph.get_operations():
    if _combines_quantized(op, settings, quantized):
      fake_quant.insert(settings, op.name, 'activation_%s_quant' % op.type,
                        op, rewiring.consumers_of(readers, op))
