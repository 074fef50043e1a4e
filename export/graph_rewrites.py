"""Inference-time rewrites of a frozen GraphDef that keep the model's math.

`fold_batch_norms` folds each inference batch norm into the convolution
before it: with the moving statistics frozen, BN(conv(x, W)) is
conv(x, W * m) + (beta - mean * m) for m = gamma / sqrt(variance + epsilon),
per output channel. The graph loses one op per layer, and TensorFlow's
grappler can then fuse the convolution, the BiasAdd and the Relu6 into one
kernel (a depthwise convolution followed by a batch norm it cannot fuse).
The outputs differ from the unfolded graph only by float rounding (about
1e-6 relative). The TFLite converter does the same folding itself, so
TFLite models are the same either way.
"""


import copy

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

_BATCH_NORM_OPS = ('FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3')
_CONV_OPS = ('Conv2D', 'DepthwiseConv2dNative')


def _node_name(tensor_name):
  """'scope/op:1' or '^scope/op' -> 'scope/op'."""
  return tensor_name.lstrip('^').split(':')[0]


def _output_index(tensor_name):
  parts = tensor_name.split(':')
  return int(parts[1]) if len(parts) > 1 else 0


def _resolve_const(nodes, tensor_name):
  """The Const node behind `tensor_name` through Identity ops, or None."""
  node = nodes.get(_node_name(tensor_name))
  while node is not None and node.op == 'Identity':
    node = nodes.get(_node_name(node.input[0]))
  if node is None or node.op != 'Const':
    return None
  return node


def _consumers(graph_def):
  """{node name: [(consumer node, input tensor name)]}, data inputs only."""
  consumers = {}
  for node in graph_def.node:
    for name in node.input:
      if not name.startswith('^'):
        consumers.setdefault(_node_name(name), []).append((node, name))
  return consumers


def _const_node(name, array, dtype):
  node = tf.NodeDef()
  node.name = name
  node.op = 'Const'
  node.attr['dtype'].type = dtype
  node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(array))
  return node


def _foldable(bn, nodes, consumers):
  """The (conv node, weight Const, BN params) of a foldable BN, or None.

  A batch norm folds when it runs in inference mode on NHWC data, its input
  is a convolution that nothing else reads, and its weights and the four
  batch norm inputs are constants; only its first output may be used.
  """
  if bn.attr['is_training'].b:
    return None
  data_format = bn.attr['data_format'].s or b'NHWC'
  if data_format != b'NHWC':
    return None
  conv = nodes.get(_node_name(bn.input[0]))
  if conv is None or conv.op not in _CONV_OPS:
    return None
  if (conv.attr['data_format'].s or b'NHWC') != b'NHWC':
    return None
  if [c for c, _ in consumers.get(conv.name, []) if c.name != bn.name]:
    return None
  if any(_output_index(name) != 0 for _, name in consumers.get(bn.name, [])):
    return None
  weights = _resolve_const(nodes, conv.input[1])
  params = [_resolve_const(nodes, name) for name in bn.input[1:5]]
  if weights is None or any(p is None for p in params):
    return None
  values = [tf.make_ndarray(p.attr['value'].tensor).astype(np.float64)
            for p in params]
  return conv, weights, values


def fold_batch_norms(graph_def, output_node_names):
  """Folds inference batch norms into the convolutions that feed them.

  Args:
    graph_def: a frozen `GraphDef` (weights as constants).
    output_node_names: the graph's outputs; nodes they no longer need are
      removed.

  Returns:
    (new GraphDef, number of batch norms folded). Each folded batch norm
    becomes a BiasAdd of the same name, so references to it still hold.
  """
  graph_def = copy.deepcopy(graph_def)
  nodes = {node.name: node for node in graph_def.node}
  consumers = _consumers(graph_def)
  new_nodes = []
  folded = 0
  for node in list(graph_def.node):
    if node.op not in _BATCH_NORM_OPS:
      continue
    match = _foldable(node, nodes, consumers)
    if match is None:
      continue
    conv, weights, (gamma, beta, mean, variance) = match
    multiplier = gamma / np.sqrt(variance + node.attr['epsilon'].f)
    kernel = tf.make_ndarray(weights.attr['value'].tensor)
    dtype = weights.attr['dtype'].type
    if conv.op == 'Conv2D':
      # [height, width, in, out]: scale each output channel.
      scaled = kernel * multiplier
    else:
      # [height, width, in, channel_multiplier]: output channel
      # in * channel_multiplier + k.
      scaled = kernel * multiplier.reshape(kernel.shape[2], kernel.shape[3])
    weights_name = conv.name + '/folded_weights'
    new_nodes.append(_const_node(weights_name, scaled.astype(kernel.dtype),
                                 dtype))
    conv.input[1] = weights_name
    bias_name = node.name + '/folded_bias'
    bias = (beta - mean * multiplier).astype(kernel.dtype)
    new_nodes.append(_const_node(bias_name, bias, dtype))
    # The batch norm becomes a BiasAdd of the same name and output.
    control_inputs = [name for name in node.input if name.startswith('^')]
    node.op = 'BiasAdd'
    del node.input[:]
    node.input.extend([conv.name, bias_name] + control_inputs)
    t = node.attr['T'].type
    node.ClearField('attr')
    node.attr['T'].type = t
    node.attr['data_format'].s = b'NHWC'
    folded += 1
  graph_def.node.extend(new_nodes)
  if folded:
    graph_def = tf.graph_util.extract_sub_graph(graph_def,
                                                list(output_node_names))
  return graph_def, folded
