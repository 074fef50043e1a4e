"""Convolution blocks of MobileNet V2 and V3: the inverted residual and helpers.

The block (`expanded_conv`) is

    input -> [1x1 expand + BN + ReLU6] -> 3x3 depthwise + BN + ReLU6
          -> 1x1 linear projection + BN -> (+ input) -> output

The expand layer exists only when the expansion size is larger than the
input depth (the first V2 block has expansion 1 and none). The residual is
added when the block keeps both the resolution (stride 1) and the depth.

Every block names its outputs `expansion_output`, `depthwise_output` and
`output` (identity ops); the generic builder exposes them as end_points
`layer_N/expansion_output` etc., which detection code reads features from.

V3 reuses the block with other activations, a squeeze-excite transform
(`squeeze_excite`) after the depthwise convolution and, for EdgeTPU, a full
KxK expansion convolution in place of the depthwise one ("fused" blocks).
`split_separable_conv2d` is the V1-style separable layer (depthwise + BN +
activation, then pointwise) for specs that mix V1 layers in.
"""


import contextlib
import functools

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

_DEPTHWISE_LOCATIONS = ('input', 'expansion', 'output', None)


def make_divisible(value, divisor=8, min_value=None):
  """Rounds a channel count to a multiple of `divisor`.

  The value is rounded to the nearest multiple, but never below `min_value`
  and never more than 10 % below `value` (then one more `divisor` is added).

  Args:
    value: the unrounded channel count (float or int).
    divisor: the multiple to round to.
    min_value: the smallest result; defaults to `divisor`.

  Returns:
    The rounded channel count, an int.
  """
  if min_value is None:
    min_value = divisor
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  # Rounding down must not drop more than 10 % of the channels.
  if rounded < 0.9 * value:
    rounded += divisor
  return int(rounded)


def _expand_input(factor, num_inputs, divisible_by=8, **unused_kwargs):
  return make_divisible(num_inputs * factor, divisible_by)


def expand_input_by_factor(n, divisible_by=8):
  """Returns an `expansion_size` callable: `n` times the input depth.

  Args:
    n: the expansion ratio (6 for most V2 blocks).
    divisible_by: the expanded depth is rounded to a multiple of this.

  Returns:
    A function `f(num_inputs, **unused)` giving the expanded depth.
  """
  return functools.partial(_expand_input, n, divisible_by=divisible_by)


def fixed_padding(inputs, kernel_size, rate=1):
  """Pads the spatial dimensions so a VALID convolution acts like SAME.

  Unlike SAME padding, the padding does not depend on the input size, so
  outputs of even and odd sized inputs line up.

  Args:
    inputs: a [batch, height, width, channels] tensor.
    kernel_size: [kernel_height, kernel_width] of the convolution to follow.
    rate: its atrous rate.

  Returns:
    The padded tensor (the input itself when no padding is needed).
  """
  kernel_size = _pair(kernel_size)
  effective = [k + (k - 1) * (rate - 1) for k in kernel_size]
  pad_total = [k - 1 for k in effective]
  if not any(pad_total):
    return inputs
  pad_begin = [p // 2 for p in pad_total]
  pad_end = [p - b for p, b in zip(pad_total, pad_begin)]
  return tf.pad(inputs, [[0, 0], [pad_begin[0], pad_end[0]],
                         [pad_begin[1], pad_end[1]], [0, 0]])


def _fused_kernel(expansion_fn):
  """The kernel size a partial of a convolution fixes; 1x1 otherwise."""
  keywords = getattr(expansion_fn, 'keywords', None) or {}
  return keywords.get('kernel_size', 1)


def _pair(value):
  if isinstance(value, int):
    return [value, value]
  return list(value)


def _split_sizes(depth, num_ways, divisible_by):
  """Splits `depth` channels into `num_ways` parts, multiples of divisible_by.

  Returns None when the depth is too small to split that way.
  """
  part = depth // num_ways // divisible_by * divisible_by
  if part == 0:
    return None
  sizes = [part] * num_ways
  sizes[0] += depth - sum(sizes)
  return sizes


def split_conv(input_tensor, num_outputs, num_ways, scope, divisible_by=8,
               **kwargs):
  """A 1x1 convolution, optionally split into `num_ways` channel groups.

  Splitting cuts the parameters and MACs of wide 1x1 layers by `num_ways`.
  With `num_ways == 1` (the V2 default) this is one `slim.conv2d`.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    num_outputs: output depth.
    num_ways: number of groups.
    scope: variable scope of the layer.
    divisible_by: each group's depth is a multiple of this.
    **kwargs: passed to `slim.conv2d`.

  Returns:
    The output tensor.
  """
  in_depth = input_tensor.get_shape().as_list()[3]
  in_sizes = _split_sizes(in_depth, num_ways, divisible_by)
  out_sizes = _split_sizes(num_outputs, num_ways, divisible_by)
  if num_ways == 1 or in_sizes is None or out_sizes is None:
    return slim.conv2d(input_tensor, num_outputs, [1, 1], scope=scope, **kwargs)
  with tf.variable_scope(scope):
    parts = tf.split(input_tensor, in_sizes, axis=3)
    outputs = [
        slim.conv2d(part, depth, [1, 1], scope='part_%d' % i, **kwargs)
        for i, (part, depth) in enumerate(zip(parts, out_sizes))]
    return tf.concat(outputs, axis=3)


@slim.add_arg_scope
def expanded_conv(input_tensor,
                  num_outputs,
                  expansion_size=expand_input_by_factor(6),
                  stride=1,
                  rate=1,
                  kernel_size=(3, 3),
                  residual=True,
                  normalizer_fn=None,
                  split_projection=1,
                  split_expansion=1,
                  split_divisible_by=8,
                  expansion_transform=None,
                  depthwise_location='expansion',
                  depthwise_channel_multiplier=1,
                  endpoints=None,
                  use_explicit_padding=False,
                  padding='SAME',
                  inner_activation_fn=None,
                  depthwise_activation_fn=None,
                  project_activation_fn=tf.identity,
                  depthwise_fn=slim.separable_conv2d,
                  expansion_fn=split_conv,
                  projection_fn=split_conv,
                  scope=None):
  """The MobileNet V2 inverted-residual block.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    num_outputs: depth of the projected output.
    expansion_size: depth of the expanded representation, an int or a
      callable `f(num_inputs=...)` (see `expand_input_by_factor`). No expand
      layer is built when it is not larger than the input depth.
    stride: stride of the depthwise convolution.
    rate: atrous rate of the depthwise convolution.
    kernel_size: kernel of the depthwise convolution.
    residual: add the input to the output when stride is 1 and the depths
      match; or a callable `f(input_tensor=, output_tensor=)` that combines
      them.
    normalizer_fn: normalizer of all three convolutions.
    split_projection: number of groups of the projection.
    split_expansion: number of groups of the expansion.
    split_divisible_by: group depths are multiples of this.
    expansion_transform: optional `f(expansion_tensor=, input_tensor=)`
      applied after the depthwise convolution (V3's squeeze-excite).
    depthwise_location: where the depthwise convolution goes: 'expansion'
      (the V2 block), 'input', 'output', or None for none.
    depthwise_channel_multiplier: channel multiplier of the depthwise conv.
    endpoints: optional dict that receives 'expansion_output',
      'depthwise_output' and 'projection_output'.
    use_explicit_padding: pad explicitly before the depthwise convolution
      and run it VALID.
    padding: padding of the depthwise convolution otherwise.
    inner_activation_fn: activation of the expansion and the depthwise
      conv; None uses the arg-scope defaults.
    depthwise_activation_fn: activation of the depthwise conv, taking
      precedence over inner_activation_fn; None leaves it to that.
    project_activation_fn: activation of the projection (linear by default).
    depthwise_fn: the depthwise convolution function.
    expansion_fn: the expansion function; `split_conv` gets the split
      arguments, any other is called as `f(net, depth, normalizer_fn=,
      scope=)` (V3's fused blocks pass a KxK `slim.conv2d`).
    projection_fn: the projection function, called like expansion_fn.
    scope: variable scope; defaults to 'expanded_conv' (made unique).

  Returns:
    The block output, an identity op named 'output'.

  Raises:
    ValueError: for an unknown `depthwise_location`, or explicit padding
      combined with a padding other than 'SAME'.
  """
  if depthwise_location not in _DEPTHWISE_LOCATIONS:
    raise ValueError(
        'depthwise_location must be one of %s, got %r.' %
        (', '.join(repr(v) for v in _DEPTHWISE_LOCATIONS), depthwise_location))
  if use_explicit_padding:
    if padding != 'SAME':
      raise ValueError(
          'use_explicit_padding=True replaces SAME padding; padding must be '
          "'SAME', got %r." % (padding,))
    padding = 'VALID'

  # The inner activation reaches the expansion (through an arg scope, so a
  # fused `slim.conv2d` expansion gets it too) and the depthwise convolution
  # (where an explicit depthwise_activation_fn wins); the projection and
  # squeeze-excite pass their own activations.
  expand_defaults = {}
  depthwise_defaults = {}
  if inner_activation_fn is not None:
    expand_defaults['activation_fn'] = inner_activation_fn
    depthwise_defaults['activation_fn'] = inner_activation_fn
  if depthwise_activation_fn is not None:
    depthwise_defaults['activation_fn'] = depthwise_activation_fn
  if expansion_fn is split_conv:
    expansion_fn = functools.partial(split_conv, num_ways=split_expansion,
                                     divisible_by=split_divisible_by,
                                     stride=1)
  if projection_fn is split_conv:
    projection_fn = functools.partial(split_conv, num_ways=split_projection,
                                      divisible_by=split_divisible_by,
                                      stride=1)

  with tf.variable_scope(scope, default_name='expanded_conv',
                         values=[input_tensor]) as var_scope, \
      tf.name_scope(var_scope.original_name_scope), \
      slim.arg_scope([slim.conv2d], **expand_defaults):
    in_depth = input_tensor.get_shape().as_list()[3]

    def depthwise(net, **overrides):
      if use_explicit_padding:
        net = fixed_padding(net, kernel_size, rate)
      args = dict(num_outputs=None, kernel_size=kernel_size,
                  depth_multiplier=depthwise_channel_multiplier,
                  stride=stride, rate=rate, normalizer_fn=normalizer_fn,
                  padding=padding, scope='depthwise')
      args.update(depthwise_defaults)
      args.update(overrides)
      net = tf.identity(depthwise_fn(net, **args), name='depthwise_output')
      if endpoints is not None:
        endpoints['depthwise_output'] = net
      return net

    net = input_tensor
    if depthwise_location == 'input':
      # A depthwise conv straight on the input is linear, as in the paper's
      # variants that move it there.
      net = depthwise(net, activation_fn=None)

    inner_size = (expansion_size(num_inputs=in_depth)
                  if callable(expansion_size) else expansion_size)
    if inner_size > net.get_shape().as_list()[3]:
      if use_explicit_padding:
        # A fused (KxK) expansion runs VALID under explicit padding too.
        net = fixed_padding(net, _fused_kernel(expansion_fn), rate)
      net = expansion_fn(net, inner_size, normalizer_fn=normalizer_fn,
                         scope='expand')
      net = tf.identity(net, name='expansion_output')
      if endpoints is not None:
        endpoints['expansion_output'] = net

    if depthwise_location == 'expansion':
      net = depthwise(net)
    # The transform (V3's squeeze-excite) sees the depthwise output, which
    # is where the released V3 checkpoints create its variables.
    if expansion_transform is not None:
      net = expansion_transform(expansion_tensor=net, input_tensor=input_tensor)

    # tf.identity as the projection activation means linear: pass None so
    # the graph carries no extra op.
    project_activation = (None if project_activation_fn is tf.identity
                          else project_activation_fn)
    net = projection_fn(net, num_outputs, normalizer_fn=normalizer_fn,
                        activation_fn=project_activation, scope='project')
    if endpoints is not None:
      endpoints['projection_output'] = net

    if depthwise_location == 'output':
      net = depthwise(net, activation_fn=None)

    if callable(residual):
      net = residual(input_tensor=input_tensor, output_tensor=net)
    elif (residual and stride == 1 and
          net.get_shape().as_list()[3] == in_depth):
      net += input_tensor
    return tf.identity(net, name='output')


@slim.add_arg_scope
def squeeze_excite(input_tensor,
                   divisible_by=8,
                   squeeze_factor=3,
                   inner_activation_fn=tf.nn.relu,
                   gating_fn=tf.sigmoid,
                   squeeze_input_tensor=None,
                   pool=None):
  """Squeeze-and-excite: rescales each channel by a gate computed from all.

  The (optionally separate) squeeze input is averaged spatially, passed
  through a 1x1 conv to `depth / squeeze_factor` channels (rounded with
  `make_divisible`) and a 1x1 conv back to the input's depth, whose gated
  output multiplies the input. Variables live in `squeeze_excite/Conv` and
  `squeeze_excite/Conv_1` (biases, no normalizer).

  Args:
    input_tensor: the [batch, height, width, channels] tensor to rescale.
    divisible_by: the squeezed depth is a multiple of this.
    squeeze_factor: the squeezed depth is the squeeze input's depth over this.
    inner_activation_fn: activation of the squeezing conv.
    gating_fn: activation of the exciting conv (V3: a hard sigmoid).
    squeeze_input_tensor: the tensor the gate is computed from; None uses
      input_tensor.
    pool: None averages over the whole map; an int averages pool x pool
      windows (stride pool) and resizes the gate back to the input's size.

  Returns:
    input_tensor times the gate, same shape as input_tensor.
  """
  with tf.variable_scope('squeeze_excite'):
    source = input_tensor if squeeze_input_tensor is None else (
        squeeze_input_tensor)
    source_shape = source.get_shape().as_list()
    squeezed_depth = make_divisible(source_shape[3] / squeeze_factor,
                                    divisor=divisible_by)
    if pool is not None and source_shape[1] >= pool:
      window = [1, pool, pool, 1]
      pooled = tf.nn.avg_pool(source, window, strides=window,
                              padding='VALID')
    elif pool is not None:
      # A map smaller than the window pools whole, with a stride of 1.
      window = [1, source_shape[1], source_shape[2], 1]
      pooled = tf.nn.avg_pool(source, window, strides=[1, 1, 1, 1],
                              padding='VALID')
    else:
      pooled = tf.reduce_mean(source, axis=[1, 2], keepdims=True)
    squeezed = slim.conv2d(pooled, squeezed_depth, [1, 1],
                           normalizer_fn=None,
                           activation_fn=inner_activation_fn)
    gate = slim.conv2d(squeezed, input_tensor.get_shape().as_list()[3],
                       [1, 1], normalizer_fn=None, activation_fn=gating_fn)
    if pool is not None:
      gate = tf.image.resize_images(
          gate, input_tensor.get_shape().as_list()[1:3], align_corners=True)
    return input_tensor * gate


@slim.add_arg_scope
def split_separable_conv2d(input_tensor,
                           num_outputs,
                           scope=None,
                           normalizer_fn=None,
                           stride=1,
                           rate=1,
                           endpoints=None,
                           use_explicit_padding=False):
  """A MobileNet V1 layer: 3x3 depthwise + norm + activation, then 1x1 conv.

  Unlike `slim.separable_conv2d` with num_outputs set, the depthwise part is
  normalized and activated on its own, as in the V1 paper and checkpoints.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    num_outputs: depth of the pointwise output.
    scope: with a name S the parts are `S_depthwise` and `S_pointwise` (the
      V1 checkpoint layout); None makes a fresh `separable` scope holding
      `depthwise` and `pointwise`.
    normalizer_fn: normalizer of both parts.
    stride: stride of the depthwise part.
    rate: atrous rate of the depthwise part.
    endpoints: optional dict receiving both parts' outputs under their
      scope names.
    use_explicit_padding: pad explicitly and run the depthwise part VALID.

  Returns:
    The pointwise output.
  """
  with contextlib.ExitStack() as stack:
    prefix = '' if scope is None else scope + '_'
    if scope is None:
      fresh = stack.enter_context(
          tf.variable_scope(None, default_name='separable'))
      stack.enter_context(tf.name_scope(fresh.original_name_scope))
    padding = 'SAME'
    if use_explicit_padding:
      input_tensor = fixed_padding(input_tensor, [3, 3], rate)
      padding = 'VALID'
    net = slim.separable_conv2d(
        input_tensor, None, [3, 3], depth_multiplier=1, stride=stride,
        rate=rate, normalizer_fn=normalizer_fn, padding=padding,
        scope=prefix + 'depthwise')
    if endpoints is not None:
      endpoints[prefix + 'depthwise'] = net
    net = slim.conv2d(net, num_outputs, [1, 1], stride=1,
                      normalizer_fn=normalizer_fn, scope=prefix + 'pointwise')
    if endpoints is not None:
      endpoints[prefix + 'pointwise'] = net
  return net

