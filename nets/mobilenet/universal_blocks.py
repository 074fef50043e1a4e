"""The blocks of MobileNet V4 (Qin et al., 2024, https://arxiv.org/abs/2404.10518).

* `universal_inverted_bottleneck` (UIB): optional depthwise conv on the
  input, 1x1 expansion, optional depthwise conv on the expansion, 1x1
  linear projection, optional depthwise conv on the output. Which depthwise
  convolutions exist picks the paper's four forms: ExtraDW (input and
  middle), IB (middle only, the V2 block), ConvNext-like (input only) and
  FFN (none).
* `fused_inverted_bottleneck` (FusedIB): a full KxK expansion conv, then a
  1x1 linear projection.
* `mobile_mqa`: batch norm, then multi-query attention (one key and one
  value head shared by all query heads, optionally computed on a map
  downsampled by a strided depthwise conv), an output projection, layer
  scale and the residual.
* `layer_scale`: a learned per-channel factor on a block's output.
* `global_average_pool`: V4 pools before its last 1x1 conv, so the pool is
  a layer of the spec.

All blocks take `use_explicit_padding`: they then pad symmetrically in
front of each spatial convolution and run it VALID, which is PyTorch's
padding (and so what timm's weights were trained with). Blocks name their
outputs `expansion_output`, `depthwise_output`, `attention_output` and
`output`; the spec builder turns them into `layer_N/...` end_points.
"""

import math

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets.mobilenet import conv_blocks

LAYER_SCALE_SCOPE = 'layer_scale'


def gelu(x, name=None):
  """The exact (erf) GELU, as timm's MobileNet V4 Hybrid Large uses.

  Written out because TF 1.15 has no tf.nn.gelu. TF 2's TFLite converter
  turns it into its GELU op; TF 1.15's converter has no Erf.
  """
  with tf.name_scope(name, 'gelu', [x]):
    return np.float32(0.5) * x * (
        np.float32(1.) + tf.math.erf(x * np.float32(1. / math.sqrt(2.))))


@slim.add_arg_scope
def layer_scale(inputs, init_value=1e-5, scope=LAYER_SCALE_SCOPE):
  """Multiplies each channel by a learned factor (variable `gamma`).

  Args:
    inputs: a [..., channels] tensor.
    init_value: the factors' initial value; small, so a new block starts
      close to the identity of its residual.
    scope: variable scope.

  Returns:
    inputs * gamma.
  """
  with tf.variable_scope(scope):
    gamma = slim.model_variable(
        'gamma', shape=[inputs.get_shape().as_list()[-1]],
        initializer=tf.constant_initializer(init_value))
    return inputs * gamma


def _depthwise(net, kernel_size, stride, rate, use_explicit_padding, scope,
               **activation):
  """kxk depthwise conv with the arg scope's normalizer.

  Linear unless `activation` passes an `activation_fn` (an empty dict leaves
  it to the arg scope).
  """
  padding = 'SAME'
  if use_explicit_padding:
    net = conv_blocks.fixed_padding(net, [kernel_size, kernel_size], rate)
    padding = 'VALID'
  return slim.separable_conv2d(
      net, None, [kernel_size, kernel_size], depth_multiplier=1,
      stride=stride, rate=rate, padding=padding, scope=scope, **activation)


_LINEAR = {'activation_fn': None}


def _stride_and_rate(stride, rate):
  # TensorFlow's convolutions take a stride or a rate above 1, not both; the
  # spec builder never asks for both, direct callers get this message.
  if stride > 1 and rate > 1:
    raise ValueError('A block cannot have stride %d and rate %d at once; '
                     'one of them must be 1.' % (stride, rate))


def _finish(net, input_tensor, stride, residual, layer_scale_init_value):
  """Layer scale, then the residual when the block keeps the shape."""
  if layer_scale_init_value is not None:
    net = layer_scale(net, init_value=layer_scale_init_value)
  in_depth = input_tensor.get_shape().as_list()[3]
  if residual and stride == 1 and net.get_shape().as_list()[3] == in_depth:
    net += input_tensor
  return tf.identity(net, name='output')


@slim.add_arg_scope
def universal_inverted_bottleneck(input_tensor,
                                  num_outputs,
                                  expansion_ratio,
                                  start_dw_kernel=0,
                                  middle_dw_kernel=3,
                                  end_dw_kernel=0,
                                  stride=1,
                                  rate=1,
                                  residual=True,
                                  layer_scale_init_value=None,
                                  use_explicit_padding=False,
                                  divisible_by=8,
                                  activation_fn=None,
                                  scope=None):
  """The Universal Inverted Bottleneck of MobileNet V4.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    num_outputs: depth of the projected output.
    expansion_ratio: the expanded depth is this times the input depth,
      rounded to a multiple of `divisible_by`.
    start_dw_kernel: kernel of the depthwise conv on the input (linear);
      0 for none.
    middle_dw_kernel: kernel of the depthwise conv on the expansion
      (activated); 0 for none.
    end_dw_kernel: kernel of the depthwise conv on the output (linear);
      0 for none.
    stride: the block's stride, taken by the middle depthwise conv, else the
      start one, else the end one (a strided FFN form does not exist).
    rate: atrous rate of the depthwise convolutions.
    residual: add the input when the block keeps resolution and depth.
    layer_scale_init_value: None for no layer scale, else its initial value.
    use_explicit_padding: pad symmetrically and convolve VALID.
    divisible_by: rounding of the expanded depth.
    activation_fn: activation of the expansion and the middle depthwise
      conv; None uses the arg scope's `slim.conv2d` activation.
    scope: variable scope; default 'uib' (made unique).

  Returns:
    The block output, an identity op named 'output'.

  Raises:
    ValueError: for a stride above 1 without any depthwise conv, or a
      stride and a rate both above 1.
  """
  if stride > 1 and not (start_dw_kernel or middle_dw_kernel or
                         end_dw_kernel):
    raise ValueError('A universal inverted bottleneck with stride %d needs a '
                     'depthwise convolution (start_dw_kernel, '
                     'middle_dw_kernel or end_dw_kernel > 0).' % stride)
  _stride_and_rate(stride, rate)
  act = {} if activation_fn is None else {'activation_fn': activation_fn}
  with tf.variable_scope(scope, default_name='uib',
                         values=[input_tensor]) as var_scope, \
      tf.name_scope(var_scope.original_name_scope):
    in_depth = input_tensor.get_shape().as_list()[3]
    net = input_tensor
    if start_dw_kernel:
      net = _depthwise(net, start_dw_kernel,
                       1 if middle_dw_kernel else stride, rate,
                       use_explicit_padding, 'start_dw', **_LINEAR)
    inner = conv_blocks.make_divisible(in_depth * expansion_ratio,
                                       divisible_by)
    net = slim.conv2d(net, inner, [1, 1], scope='expand', **act)
    net = tf.identity(net, name='expansion_output')
    if middle_dw_kernel:
      net = _depthwise(net, middle_dw_kernel, stride, rate,
                       use_explicit_padding, 'middle_dw', **act)
      net = tf.identity(net, name='depthwise_output')
    net = slim.conv2d(net, num_outputs, [1, 1], activation_fn=None,
                      scope='project')
    if end_dw_kernel:
      end_stride = 1 if (start_dw_kernel or middle_dw_kernel) else stride
      net = _depthwise(net, end_dw_kernel, end_stride, rate,
                       use_explicit_padding, 'end_dw', **_LINEAR)
    return _finish(net, input_tensor, stride, residual,
                   layer_scale_init_value)


@slim.add_arg_scope
def fused_inverted_bottleneck(input_tensor,
                              num_outputs,
                              expansion_ratio,
                              kernel_size=3,
                              stride=1,
                              rate=1,
                              residual=True,
                              use_explicit_padding=False,
                              divisible_by=8,
                              scope=None):
  """FusedIB: a KxK expansion conv (activated), then a 1x1 projection.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    num_outputs: output depth.
    expansion_ratio: expanded depth over input depth (rounded).
    kernel_size: kernel of the expansion conv.
    stride: its stride.
    rate: its atrous rate.
    residual: add the input when the block keeps resolution and depth.
    use_explicit_padding: pad symmetrically and convolve VALID.
    divisible_by: rounding of the expanded depth.
    scope: variable scope; default 'fused_ib' (made unique).

  Returns:
    The block output, an identity op named 'output'.
  """
  _stride_and_rate(stride, rate)
  with tf.variable_scope(scope, default_name='fused_ib',
                         values=[input_tensor]) as var_scope, \
      tf.name_scope(var_scope.original_name_scope):
    in_depth = input_tensor.get_shape().as_list()[3]
    inner = conv_blocks.make_divisible(in_depth * expansion_ratio,
                                       divisible_by)
    net = input_tensor
    padding = 'SAME'
    if use_explicit_padding:
      net = conv_blocks.fixed_padding(net, [kernel_size, kernel_size], rate)
      padding = 'VALID'
    net = slim.conv2d(net, inner, [kernel_size, kernel_size], stride=stride,
                      rate=rate, padding=padding, scope='expand')
    net = tf.identity(net, name='expansion_output')
    net = slim.conv2d(net, num_outputs, [1, 1], activation_fn=None,
                      scope='project')
    return _finish(net, input_tensor, stride, residual, None)


def _projection(net, depth, scope):
  """1x1 conv without bias, normalizer or activation (attention weights).

  Xavier-initialized whatever the arg scope says, as timm does for these
  layers: the training scope's wide truncated normal destabilizes them.
  """
  return slim.conv2d(net, depth, [1, 1], activation_fn=None,
                     normalizer_fn=None, biases_initializer=None,
                     weights_initializer=slim.initializers.xavier_initializer(),
                     scope=scope)


def _shared_head(net, depth, kv_stride, kernel_size, use_explicit_padding,
                 scope):
  """The key (or value) head: optional strided depthwise + BN, then 1x1."""
  if kv_stride > 1:
    net = _depthwise(net, kernel_size, kv_stride, 1, use_explicit_padding,
                     scope + '_down', **_LINEAR)
  return _projection(net, depth, scope)


def _spatial_size(tensor):
  """(height, width) as ints when static, else as scalar tensors."""
  static = tensor.get_shape().as_list()[1:3]
  dynamic = tf.shape(tensor)
  return [static[i] if static[i] is not None else dynamic[i + 1]
          for i in range(2)]


def multi_query_attention(inputs, num_heads, key_dim, value_dim, kv_stride=1,
                          kv_kernel_size=3, use_explicit_padding=False):
  """Multi-query attention over the positions of a map (no output proj).

  Every query head attends over the same key and value maps.

  Args:
    inputs: a [batch, height, width, channels] tensor.
    num_heads: number of query heads.
    key_dim: depth of each query head and of the shared key.
    value_dim: depth of the shared value (and of each head's output).
    kv_stride: stride of the depthwise conv that downsamples the key and
      value maps; 1 for none.
    kv_kernel_size: its kernel.
    use_explicit_padding: pad it symmetrically and convolve VALID.

  Returns:
    [batch, height, width, num_heads * value_dim].
  """
  height, width = _spatial_size(inputs)
  query = _projection(inputs, num_heads * key_dim, 'query')
  key = _shared_head(inputs, key_dim, kv_stride, kv_kernel_size,
                     use_explicit_padding, 'key')
  value = _shared_head(inputs, value_dim, kv_stride, kv_kernel_size,
                       use_explicit_padding, 'value')
  # Query channel h * key_dim + d is head h, so each position's heads are
  # consecutive rows after this reshape.
  query = tf.reshape(query, [-1, height * width * num_heads, key_dim])
  key_height, key_width = _spatial_size(key)
  key = tf.reshape(key, [-1, key_height * key_width, key_dim])
  value = tf.reshape(value, [-1, key_height * key_width, value_dim])
  logits = tf.matmul(query * np.float32(key_dim ** -0.5), key,
                     transpose_b=True)
  weights = tf.nn.softmax(logits)
  attended = tf.matmul(weights, value)
  return tf.reshape(attended, [-1, height, width, num_heads * value_dim])


@slim.add_arg_scope
def mobile_mqa(input_tensor,
               num_outputs,
               num_heads,
               key_dim,
               value_dim=None,
               kv_stride=1,
               kv_kernel_size=3,
               stride=1,
               rate=1,
               residual=True,
               layer_scale_init_value=None,
               use_explicit_padding=False,
               scope=None):
  """Mobile MQA: batch norm, multi-query attention, projection, residual.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    num_outputs: output depth (the input depth in every V4 network).
    num_heads: number of query heads.
    key_dim: depth of each query head and of the shared key.
    value_dim: depth of the shared value; None means key_dim.
    kv_stride: downsampling of the shared key and value maps (2 in the
      hybrid networks' stride-16 stage, 1 at stride 32).
    kv_kernel_size: kernel of the downsampling depthwise conv.
    stride: must be 1 (the block does not downsample its output).
    rate: accepted for the spec builder's output_stride and ignored: the
      block has no convolution on its output's grid. Its key/value
      downsampling keeps its stride, so a denser map attends over a
      proportionally larger key/value map.
    residual: add the input when the depths match.
    layer_scale_init_value: None for no layer scale, else its initial value.
    use_explicit_padding: pad the downsampling conv symmetrically, VALID.
    scope: variable scope; default 'mqa' (made unique).

  Returns:
    The block output, an identity op named 'output'.

  Raises:
    ValueError: for a stride other than 1.
  """
  del rate
  if stride != 1:
    raise ValueError('mobile_mqa keeps the resolution: stride must be 1, '
                     'got %r.' % (stride,))
  with tf.variable_scope(scope, default_name='mqa',
                         values=[input_tensor]) as var_scope, \
      tf.name_scope(var_scope.original_name_scope):
    net = slim.batch_norm(input_tensor, scope='input_norm')
    net = multi_query_attention(
        net, num_heads, key_dim, value_dim or key_dim, kv_stride=kv_stride,
        kv_kernel_size=kv_kernel_size,
        use_explicit_padding=use_explicit_padding)
    net = tf.identity(net, name='attention_output')
    net = _projection(net, num_outputs, 'output_proj')
    return _finish(net, input_tensor, 1, residual, layer_scale_init_value)


@slim.add_arg_scope
def global_average_pool(input_tensor, scope=None, **unused_builder_args):
  """Averages each channel over the map to [batch, 1, 1, channels].

  A spec layer: the builder's `stride`, `rate` and `use_explicit_padding`
  mean nothing for a pool over the whole map and are ignored.
  """
  with tf.name_scope(scope, 'global_pool', [input_tensor]):
    return tf.reduce_mean(input_tensor, [1, 2], keepdims=True)
