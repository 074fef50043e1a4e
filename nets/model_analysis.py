r"""Per-layer parameters and multiply-adds (MACs) of a network.

    python -m nets.model_analysis --model_name=mobilenet_v1 --image_size=224
    python -m nets.model_analysis --model_name=mobilenet_v2 \
        --depth_multiplier=0.5

(the command line is `analyze_model.py`'s, which that command runs: the
flags live with the entry scripts, not in nets/).

The network is built from `nets_factory` (inference mode, batch 1) and its
graph is walked: every Conv2D, DepthwiseConv2dNative and MatMul op is one
row, with

    MACs = output height * width * kernel height * width * Cin * Cout / groups

(the logits are a 1x1 convolution, so they count too) and the trainable
parameters of the layer's variable scope (weights, batch norm scale and
offset, biases). `analyze()` returns the same figures for other tools.
"""


import inspect

import numpy as np

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors
from nets import nets_factory

class AnalysisError(errors.InputError):
  """A network or input size that cannot be analysed."""


_CONV_OPS = ('Conv2D', 'DepthwiseConv2dNative')
_VARIABLE_OPS = ('VariableV2', 'VarHandleOp', 'Variable')
_READ_OPS = ('Identity', 'ReadVariableOp')


def _constant_initializer(getter, *args, **kwargs):
  """A custom getter: every variable starts from one constant op.

  The analysis reads shapes only and never runs the graph; a random
  initializer would add several ops per variable, and building those is
  most of the time `analyze` takes.
  """
  kwargs['initializer'] = tf.constant_initializer(0.0)
  return getter(*args, **kwargs)


def _variable_scope_of(tensor):
  """The scope of the variable a filter tensor reads, or None."""
  operation = tensor.op
  while operation.type in _READ_OPS and operation.inputs:
    operation = operation.inputs[0].op
  if operation.type in _VARIABLE_OPS:
    return operation.name.rpartition('/')[0]
  return None


# Attention (MobileNet V4's Mobile MQA): products of two activations.
_BATCH_MATMUL_OPS = ('BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3')


def _batch_matmul_macs(operation, batch_size):
  """Multiply-adds of a batched [..., n, k] x [..., k, m] product per image."""
  a_shape = operation.inputs[0].get_shape().as_list()
  b_shape = operation.inputs[1].get_shape().as_list()
  inner = a_shape[-2] if operation.get_attr('adj_x') else a_shape[-1]
  rows = a_shape[-1] if operation.get_attr('adj_x') else a_shape[-2]
  cols = b_shape[-2] if operation.get_attr('adj_y') else b_shape[-1]
  return int(np.prod(a_shape[:-2])) * rows * inner * cols // batch_size


def _op_macs(operation, batch_size):
  """Multiply-adds of one Conv2D / DepthwiseConv2dNative / MatMul per image."""
  if operation.type in _CONV_OPS:
    output = operation.outputs[0].get_shape().as_list()
    kernel = operation.inputs[1].get_shape().as_list()
    # Conv2D: [kh, kw, Cin, Cout]. Depthwise: [kh, kw, Cin, multiplier],
    # i.e. Cout = Cin * multiplier in Cin groups: the same product.
    # output[0] can exceed the batch (atrous via space-to-batch).
    positions = output[0] * output[1] * output[2]
    return positions * int(np.prod(kernel)) // batch_size
  if operation.type in _BATCH_MATMUL_OPS:
    return _batch_matmul_macs(operation, batch_size)
  a_shape = operation.inputs[0].get_shape().as_list()
  b_shape = operation.inputs[1].get_shape().as_list()
  rows = a_shape[1] if operation.get_attr('transpose_a') else a_shape[0]
  inner, cols = b_shape if not operation.get_attr('transpose_b') else (
      b_shape[1], b_shape[0])
  return rows * inner * cols // batch_size


def analyze(model_name, image_size, depth_multiplier=None, num_classes=1001):
  """Builds `model_name` and counts its parameters and MACs per layer.

  Args:
    model_name: a `nets_factory` name, e.g. 'mobilenet_v1'.
    image_size: input height and width; None uses the network's default.
    depth_multiplier: overrides the network's depth multiplier.
    num_classes: number of classes of the logits.

  Returns:
    A dict with `total_macs`, `total_params` (trainable),
    `params_without_batch_norm` (the trainable ones less batch norm's
    gamma / beta, the convention of the published V2 figures), and `layers`: a
    list of dicts with `name`, `op`, `output_shape`, `params`, `macs`, in
    graph order. Parameters outside any convolution's scope are a final
    '(other)' row, so the rows sum to the totals.

  Raises:
    AnalysisError: for an unknown model name, a non-positive image size or
      depth multiplier.
  """
  try:
    nets_factory.check_model_name(model_name)
  except ValueError as e:
    raise AnalysisError('%s: %s' % (errors.ref('model_name', model_name), e))
  network_fn = nets_factory.get_network_fn(model_name, num_classes,
                                           is_training=False)
  if image_size is None:
    image_size = network_fn.default_image_size
  if image_size <= 0:
    raise AnalysisError('%s must be a positive number of pixels.' %
                        errors.ref('image_size', image_size))
  if depth_multiplier is not None and depth_multiplier <= 0:
    raise AnalysisError('%s must be > 0.' %
                        errors.ref('depth_multiplier', depth_multiplier))
  # Global pooling: at 224 and below it is V1's own pool (the kernel covers
  # the whole map), and larger inputs still give [1, num_classes] logits.
  # V2, V3, EdgeTPU and V4 always pool globally and take no such argument.
  kwargs = {}
  if 'global_pool' in inspect.signature(
      nets_factory.networks_map[model_name]).parameters:
    kwargs['global_pool'] = True
  if depth_multiplier is not None:
    kwargs['depth_multiplier'] = depth_multiplier
  batch_size = 1
  graph = tf.Graph()
  with graph.as_default():
    images = tf.placeholder(tf.float32, [batch_size, image_size, image_size, 3],
                            name='input')
    with tf.variable_scope(tf.get_variable_scope(),
                           custom_getter=_constant_initializer):
      network_fn(images, **kwargs)
    params_of = {v.op.name: int(np.prod(v.get_shape().as_list()))
                 for v in tf.trainable_variables()}

    layers = []
    counted = set()
    for operation in graph.get_operations():
      if operation.type not in _CONV_OPS + ('MatMul',) + _BATCH_MATMUL_OPS:
        continue
      scope = (_variable_scope_of(operation.inputs[1]) or
               operation.name.rpartition('/')[0])
      layer_vars = [name for name in params_of
                    if name.startswith(scope + '/') and name not in counted]
      counted.update(layer_vars)
      layers.append({
          'name': scope,
          'op': operation.type,
          'output_shape': operation.outputs[0].get_shape().as_list(),
          'params': sum(params_of[name] for name in layer_vars),
          'macs': _op_macs(operation, batch_size),
      })
    others = sum(n for name, n in params_of.items() if name not in counted)
    if others:
      layers.append({'name': '(other)', 'op': '', 'output_shape': None,
                     'params': others, 'macs': 0})
  batch_norm_params = sum(n for name, n in params_of.items()
                          if '/BatchNorm/' in name)
  return {
      'model_name': model_name,
      'image_size': image_size,
      'depth_multiplier': depth_multiplier,
      'num_classes': num_classes,
      'total_macs': sum(layer['macs'] for layer in layers),
      'total_params': sum(params_of.values()),
      # Published V2 parameter counts leave out batch norm scale / offset.
      'params_without_batch_norm': sum(params_of.values()) - batch_norm_params,
      'layers': layers,
  }


def format_table(result):
  """The analysis as a printable table with totals."""
  rows = [('layer', 'op', 'output shape', 'params', 'MACs')]
  for layer in result['layers']:
    shape = layer['output_shape']
    rows.append((layer['name'], layer['op'],
                 'x'.join(str(d) for d in shape) if shape else '',
                 '{:,}'.format(layer['params']), '{:,}'.format(layer['macs'])))
  widths = [max(len(row[i]) for row in rows) for i in range(5)]
  lines = []
  for i, row in enumerate(rows):
    lines.append('  '.join([row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                            row[2].ljust(widths[2]), row[3].rjust(widths[3]),
                            row[4].rjust(widths[4])]))
    if i == 0:
      lines.append('-' * len(lines[0]))
  multiplier = result['depth_multiplier']
  lines.append('')
  lines.append('%s, input %dx%d%s, %d classes' % (
      result['model_name'], result['image_size'], result['image_size'],
      '' if multiplier is None else ', depth multiplier %g' % multiplier,
      result['num_classes']))
  lines.append('Total params: {:,} ({:.2f} M); without batch norm: {:,} '
               '({:.2f} M)'.format(
                   result['total_params'], result['total_params'] / 1e6,
                   result['params_without_batch_norm'],
                   result['params_without_batch_norm'] / 1e6))
  lines.append('Total MACs:   {:,} ({:.1f} M)'.format(
      result['total_macs'], result['total_macs'] / 1e6))
  return '\n'.join(lines)


if __name__ == '__main__':
  # Runs only as `python -m nets.model_analysis`, never for an importer, so
  # nets/ still depends on no command-line code.
  from absl import app  # pylint: disable=g-import-not-at-top
  import analyze_model  # pylint: disable=g-import-not-at-top
  app.run(analyze_model.main)
