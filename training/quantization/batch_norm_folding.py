"""Folds fused batch norms into the convolution or matmul before them.

The folded layer computes `conv(x, w * s) + (beta - mean * s)` with
`s = gamma / sqrt(var + eps)`, so that fake quantization sees the weights
and biases an integer kernel will use. Eval graphs fold the moving
statistics. Training graphs fold the batch statistics, but scale the
weights by `sigma_batch / sigma_moving` and undo it after the layer, so the
quantized weights are those of inference while the outputs keep batch-norm
training behaviour (the rules of `tf.contrib.quantize`, whose op names this
module reproduces so that checkpoints and tools carry over).
"""

from core import tf_compat  # noqa: F401  (must run before TensorFlow is used)
import tensorflow.compat.v1 as tf
from tensorflow.core.framework import attr_value_pb2
from tensorflow.python.framework import ops

from training.quantization import op_patterns as pt
from training.quantization import rewiring

FUSED_BATCH_NORMS = 'FusedBatchNorm|FusedBatchNormV3'
LAYER_TYPES = 'Conv2D|DepthwiseConv2dNative|MatMul'
# The gradient of a folded training batch norm flows only through its batch
# statistics (its normalized output is no longer used).
BATCH_STATS_GRADIENT = 'QuantizationFoldedBatchNormGrad'


@ops.RegisterGradient(BATCH_STATS_GRADIENT)
def _batch_statistics_gradient(op, unused_grad_y, grad_mean, grad_var,
                               *unused_reserved):
  x = op.inputs[0]
  count = tf.cast(tf.size(x) / tf.size(grad_mean), tf.float32)
  # The variance output is the unbiased one: sum((x - mean)^2) / (n - 1).
  grad_x = grad_mean / count + 2 * grad_var * (x - op.outputs[1]) / (count - 1)
  return grad_x, None, None, None, None


def _batch_norm_pattern():
  layer = pt.Op(LAYER_TYPES, ['*', '*'], role='layer')
  space_to_batch_undo = pt.Op('BatchToSpaceND', [layer, '*', '*'],
                              role='batch_to_space')
  layer_output = pt.AnyOf(pt.Op('Identity', [pt.AnyOf(space_to_batch_undo,
                                                      layer)]),
                          layer, space_to_batch_undo)
  matmul_reshape = pt.Op('Reshape', [layer_output, '*'])
  batch_norm = pt.Op(FUSED_BATCH_NORMS,
                     [pt.AnyOf(matmul_reshape, layer_output), '*', '*', '*',
                      '*'], role='batch_norm')
  output_reshape = pt.Op('Reshape', [batch_norm, '*'], role='output_reshape')
  return pt.AnyOf(output_reshape, batch_norm)


def _moving_average_updates(graph):
  """{batch statistic tensor: (moving average tensor, 1 - decay tensor)}.

  Found from the update `(moving - batch) * (1 - decay)` that
  `assign_moving_average` builds.
  """
  updates = {}
  for op in graph.get_operations():
    if op.type != 'Mul' or len(op.inputs) != 2:
      continue
    sub = op.inputs[0].op
    if sub.type == 'Sub' and len(sub.inputs) == 2:
      updates[sub.inputs[1]] = (sub.inputs[0], op.inputs[1])
  return updates


class _Fold(object):
  """What folding one batch norm needs."""

  def __init__(self, match):
    self.layer = match.op('layer')
    self.layer_output = match.tensor('layer')
    self.batch_norm = match.op('batch_norm')
    self.batch_to_space = match.op('batch_to_space')
    self.output = self.batch_norm.outputs[0]
    if self.layer.type == 'MatMul':
      reshape = match.op('output_reshape')
      self.output = reshape.outputs[0] if reshape is not None else None
    self.input, self.weights = self.layer.inputs[0], self.layer.inputs[1]
    self.gamma, self.beta, self.mean, self.variance = (
        self.batch_norm.inputs[1:5])
    self.epsilon = self.batch_norm.get_attr('epsilon')
    self.training = self.batch_norm.get_attr('is_training')
    self.moving_mean = self.moving_variance = None


def find_batch_norms(graph):
  """The fused batch norms to fold, one per layer, in graph order."""
  folds, seen = [], set()
  for match in pt.matches(_batch_norm_pattern(), graph.get_operations()):
    fold = _Fold(match)
    if fold.output is None or not fold.output.consumers():
      continue
    if fold.layer not in seen:
      seen.add(fold.layer)
      folds.append(fold)
  return folds


def _use_batch_statistics(graph, fold, updates):
  """Points `fold` at the batch statistics and the moving averages."""
  bn = fold.batch_norm
  bn._set_attr('_gradient_op_type',  # pylint: disable=protected-access
               attr_value_pb2.AttrValue(s=BATCH_STATS_GRADIENT.encode()))
  fold.mean = bn.outputs[1]
  scope = bn.name.rpartition('/')[0]
  with graph.name_scope(scope + '/' if scope else None):
    count = tf.cast(tf.size(fold.layer_output) / tf.size(fold.mean),
                    tf.float32)
    # Batch norm normalizes with the biased batch variance.
    fold.variance = tf.multiply(bn.outputs[2], (count - 1) / count,
                                name='Undo_Bessel_Correction')
  mean_update = updates.get(bn.outputs[1])
  variance_update = updates.get(bn.outputs[2])
  if mean_update is None or variance_update is None:
    raise rewiring.QuantizationError(
        'Cannot fold the training batch norm %s for quantization: no '
        'moving-average update of its mean and variance was found (build '
        'it with updates of the moving statistics, as slim.batch_norm '
        'does).' % bn.name)
  fold.moving_mean = mean_update[0]
  fold.moving_variance = variance_update[0]


def _training_corrections(fold):
  """Scale for the weights and its reciprocal for the layer output."""
  with tf.name_scope('batch_norm_correction'):
    inv_sigma_moving = tf.rsqrt(fold.moving_variance + fold.epsilon)
    inv_sigma_batch = tf.rsqrt(fold.variance + fold.epsilon)
    scale = tf.identity(tf.divide(inv_sigma_moving, inv_sigma_batch,
                                  name='scale_compute'),
                        name='correction_scale')
    undo_scale = tf.reciprocal(scale, name='reciprocal_compute')
    # No freezing of the statistics: with create_training_graph the offset
    # term is always zero.
    offset = tf.zeros(scale.shape)
  return scale, undo_scale, offset


def _clone_layer(fold, weights):
  layer = fold.layer
  name = layer.name.split('/')[-1] + '_Fold'
  if layer.type == 'Conv2D':
    return tf.nn.conv2d(
        fold.input, weights, strides=layer.get_attr('strides'),
        padding=layer.get_attr('padding'),
        use_cudnn_on_gpu=layer.get_attr('use_cudnn_on_gpu'),
        data_format=layer.get_attr('data_format').decode(),
        dilations=layer.get_attr('dilations'), name=name)
  if layer.type == 'MatMul':
    return tf.matmul(fold.input, weights,
                     transpose_a=layer.get_attr('transpose_a'),
                     transpose_b=layer.get_attr('transpose_b'), name=name)
  output = tf.nn.depthwise_conv2d(fold.input, weights,
                                  strides=layer.get_attr('strides'),
                                  padding=layer.get_attr('padding'), name=name)
  if fold.batch_to_space is not None:
    undo = fold.batch_to_space
    output = tf.batch_to_space_nd(output, undo.inputs[1], undo.inputs[2],
                                  name=undo.name.split('/')[-1] + '_Fold')
  return output


def _fold_one(graph, fold):
  scope = fold.layer.name.rpartition('/')[0]
  scope = scope + '/' if scope else ''
  corrections = None
  with graph.name_scope(scope or None):
    with graph.name_scope(scope + 'BatchNorm_Fold/'):
      multiplier = fold.gamma * tf.rsqrt(fold.variance + fold.epsilon)
      bias = tf.subtract(fold.beta, fold.mean * multiplier, name='bias')
      if fold.training:
        corrections = _training_corrections(fold)
      scale = corrections[0] if corrections else None
      if fold.layer.type == 'DepthwiseConv2dNative':
        shape = fold.weights.get_shape().as_list()[2:4]
        multiplier = tf.reshape(multiplier, shape, name='scale_reshape')
        if scale is not None:
          scale = tf.reshape(scale, shape, name='correction_reshape')
    weights = fold.weights
    if scale is not None:
      weights = tf.multiply(scale, weights, name='correction_mult')
    output = _clone_layer(fold, tf.multiply(weights, multiplier,
                                            name='mul_fold'))
    if corrections:
      output = tf.multiply(corrections[1], output, name='post_conv_mul')
      output = tf.add(output, corrections[2], name='correction_add')
    folded = tf.add(output, bias, name='add_fold')
  rewiring.reroute(folded, fold.output)


def fold_batch_norms(graph):
  """Folds every fused batch norm after a conv/matmul layer of `graph`.

  Raises:
    QuantizationError: naming an op the folding cannot handle (an unfused
      batch norm, a training batch norm without moving-average updates).
  """
  rewiring.refuse_unfused_batch_norms(graph)
  folds = find_batch_norms(graph)
  updates = (_moving_average_updates(graph)
             if any(f.training for f in folds) else {})
  for fold in folds:
    if fold.training:
      _use_batch_statistics(graph, fold, updates)
  for fold in folds:
    _fold_one(graph, fold)
