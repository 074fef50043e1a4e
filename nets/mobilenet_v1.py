"""MobileNet V1 (Howard et al., 2017, https://arxiv.org/abs/1704.04861).

A 3x3 stride-2 convolution to 32 channels and 13 depthwise-separable blocks
(3x3 depthwise + BN + ReLU6, 1x1 pointwise + BN + ReLU6), then average
pooling, dropout and 1x1 logits. Variable names and end_points match the
released slim checkpoints (scope `MobilenetV1`).

The layers are the table `_CONV_DEFS` below; pass a list of `Conv` /
`DepthSepConv` as `conv_defs` to build a variant. Activation, batch norm,
initializers and regularizers come from `mobilenet_v1_arg_scope`:

    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(is_training=False)):
      logits, end_points = mobilenet_v1.mobilenet_v1(images, num_classes=1001)

Depth multipliers 0.75 / 0.5 / 0.25 are `mobilenet_v1_075/050/025`.
"""


import collections
import functools

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets.mobilenet import conv_blocks

# A standard convolution and a depthwise-separable one (depthwise kernel x
# kernel, then 1x1 pointwise to `depth` channels).
Conv = collections.namedtuple('Conv', ['kernel', 'stride', 'depth'])
DepthSepConv = collections.namedtuple('DepthSepConv',
                                      ['kernel', 'stride', 'depth'])

# The architecture of the paper (Table 1). Layer i is end_point 'Conv2d_i'
# (a Conv) or 'Conv2d_i_depthwise' + 'Conv2d_i_pointwise' (a DepthSepConv).
_CONV_DEFS = [
    Conv(kernel=[3, 3], stride=2, depth=32),
    DepthSepConv(kernel=[3, 3], stride=1, depth=64),
    DepthSepConv(kernel=[3, 3], stride=2, depth=128),
    DepthSepConv(kernel=[3, 3], stride=1, depth=128),
    DepthSepConv(kernel=[3, 3], stride=2, depth=256),
    DepthSepConv(kernel=[3, 3], stride=1, depth=256),
    DepthSepConv(kernel=[3, 3], stride=2, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=1, depth=512),
    DepthSepConv(kernel=[3, 3], stride=2, depth=1024),
    DepthSepConv(kernel=[3, 3], stride=1, depth=1024),
]
# The upstream name of the table (detection code copies it).
MOBILENETV1_CONV_DEFS = _CONV_DEFS

_VALID_OUTPUT_STRIDES = (8, 16, 32)


def _endpoint_names(conv_defs):
  """The end_point names `mobilenet_v1_base` makes for `conv_defs`."""
  names = []
  for i, conv_def in enumerate(conv_defs):
    if isinstance(conv_def, Conv):
      names.append('Conv2d_%d' % i)
    elif isinstance(conv_def, DepthSepConv):
      names.extend(['Conv2d_%d_depthwise' % i, 'Conv2d_%d_pointwise' % i])
    else:
      raise ValueError('conv_defs[%d] must be a Conv or DepthSepConv, got '
                       '%r.' % (i, conv_def))
  return names


def mobilenet_v1_base(inputs,
                      final_endpoint='Conv2d_13_pointwise',
                      min_depth=8,
                      depth_multiplier=1.0,
                      conv_defs=None,
                      output_stride=None,
                      use_explicit_padding=False,
                      scope=None):
  """The MobileNet V1 backbone, from the input to `final_endpoint`.

  Args:
    inputs: a [batch, height, width, channels] tensor.
    final_endpoint: the last end_point to build: 'Conv2d_0',
      'Conv2d_1_depthwise', 'Conv2d_1_pointwise', ... 'Conv2d_13_pointwise'.
    min_depth: smallest layer depth under a depth multiplier < 1.
    depth_multiplier: multiplies every layer's depth (> 0).
    conv_defs: list of `Conv` / `DepthSepConv`; defaults to `_CONV_DEFS`.
    output_stride: None, 8, 16 or 32. Once the layers reach this stride the
      following ones keep the resolution and use atrous convolution, the
      rate doubling at each stride they skip.
    use_explicit_padding: pad explicitly and convolve VALID, so the output
      does not depend on the parity of the input size.
    scope: variable scope (name or VariableScope); default 'MobilenetV1'.

  Returns:
    (net, end_points): the `final_endpoint` tensor and a dict of all
    end_points built, in order.

  Raises:
    ValueError: for depth_multiplier <= 0, an unknown final_endpoint, an
      output_stride other than None/8/16/32, inputs not of rank 4, or a
      conv_defs entry that is not Conv/DepthSepConv.
  """
  if depth_multiplier is None or depth_multiplier <= 0:
    raise ValueError('depth_multiplier must be a number > 0 (1.0 is the '
                     'full-width network), got %r.' % (depth_multiplier,))
  if output_stride is not None and output_stride not in _VALID_OUTPUT_STRIDES:
    raise ValueError('output_stride must be None or one of 8, 16, 32, got '
                     '%r.' % (output_stride,))
  _check_rank_4(inputs)
  if conv_defs is None:
    conv_defs = _CONV_DEFS
  valid_endpoints = _endpoint_names(conv_defs)
  if final_endpoint not in valid_endpoints:
    raise ValueError('final_endpoint must be one of %s, got %r.' %
                     (', '.join(valid_endpoints), final_endpoint))

  def depth(d):
    return max(int(d * depth_multiplier), min_depth)

  padding = 'VALID' if use_explicit_padding else 'SAME'
  end_points = {}
  with tf.variable_scope(scope, 'MobilenetV1', [inputs]):
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding=padding):
      current_stride = 1
      rate = 1
      net = inputs
      for i, conv_def in enumerate(conv_defs):
        if output_stride is not None and current_stride == output_stride:
          # Target stride reached: keep the resolution, dilate instead.
          layer_stride, layer_rate = 1, rate
          rate *= conv_def.stride
        else:
          layer_stride, layer_rate = conv_def.stride, 1
          current_stride *= conv_def.stride

        if isinstance(conv_def, Conv):
          end_point = 'Conv2d_%d' % i
          if use_explicit_padding:
            net = conv_blocks.fixed_padding(net, conv_def.kernel, layer_rate)
          net = slim.conv2d(net, depth(conv_def.depth), conv_def.kernel,
                            stride=layer_stride, rate=layer_rate,
                            scope=end_point)
          end_points[end_point] = net
          if end_point == final_endpoint:
            return net, end_points
          continue

        end_point = 'Conv2d_%d_depthwise' % i
        if use_explicit_padding:
          net = conv_blocks.fixed_padding(net, conv_def.kernel, layer_rate)
        # num_outputs=None: depthwise only; the pointwise conv follows.
        net = slim.separable_conv2d(net, None, conv_def.kernel,
                                    depth_multiplier=1, stride=layer_stride,
                                    rate=layer_rate, scope=end_point)
        end_points[end_point] = net
        if end_point == final_endpoint:
          return net, end_points

        end_point = 'Conv2d_%d_pointwise' % i
        net = slim.conv2d(net, depth(conv_def.depth), [1, 1], stride=1,
                          scope=end_point)
        end_points[end_point] = net
        if end_point == final_endpoint:
          return net, end_points
  return net, end_points


def mobilenet_v1(inputs,
                 num_classes=1000,
                 dropout_keep_prob=0.999,
                 is_training=True,
                 min_depth=8,
                 depth_multiplier=1.0,
                 conv_defs=None,
                 prediction_fn=slim.softmax,
                 spatial_squeeze=True,
                 reuse=None,
                 scope='MobilenetV1',
                 global_pool=False,
                 use_explicit_padding=False):
  """The MobileNet V1 classifier.

  Args:
    inputs: a [batch, height, width, channels] tensor.
    num_classes: number of classes (1001 for the released checkpoints);
      0 or None returns the pooled features (before dropout).
    dropout_keep_prob: keep probability of the dropout before the logits.
    is_training: training mode of batch norm and dropout; None leaves it to
      an outer arg_scope.
    min_depth: smallest layer depth under a depth multiplier < 1.
    depth_multiplier: multiplies every layer's depth (> 0).
    conv_defs: list of `Conv` / `DepthSepConv`; defaults to `_CONV_DEFS`.
    prediction_fn: maps logits to `end_points['Predictions']`; None skips it.
    spatial_squeeze: squeeze the logits to [batch, num_classes].
    reuse: reuse the variables of an earlier build in the same scope.
    scope: variable scope.
    global_pool: average over the whole feature map (any input size)
      instead of the 7x7 pool of the 224 network (reduced for inputs whose
      feature map is smaller than 7x7).
    use_explicit_padding: pad symmetrically and convolve VALID (see
      `mobilenet_v1_base`); PyTorch-trained weights (timm's) need it.

  Returns:
    (logits, end_points).

  Raises:
    ValueError: if inputs are not of rank 4 (and see `mobilenet_v1_base`).
  """
  _check_rank_4(inputs)
  layers = conv_defs or _CONV_DEFS
  # Batch norm and dropout follow is_training unless it is None, which
  # leaves their mode to an enclosing arg_scope.
  mode = {} if is_training is None else {'is_training': is_training}
  with tf.variable_scope(scope, 'MobilenetV1', [inputs],
                         reuse=reuse) as net_scope, \
      slim.arg_scope([slim.batch_norm, slim.dropout], **mode):
    features, end_points = mobilenet_v1_base(
        inputs, final_endpoint=_endpoint_names(layers)[-1],
        min_depth=min_depth, depth_multiplier=depth_multiplier,
        conv_defs=conv_defs, use_explicit_padding=use_explicit_padding,
        scope=net_scope)
    with tf.variable_scope('Logits'):
      pool_name, pooled = _pool_features(features, global_pool)
      end_points[pool_name] = pooled
      logits = None
      if num_classes:
        logits = _classify(pooled, num_classes, dropout_keep_prob,
                           spatial_squeeze)
    if logits is None:  # features only: the pooled map, before dropout
      return pooled, end_points
    end_points['Logits'] = logits
    if prediction_fn:
      end_points['Predictions'] = prediction_fn(logits, scope='Predictions')
  return logits, end_points


def _check_rank_4(inputs):
  """Raises ValueError unless `inputs` is [batch, height, width, channels]."""
  if inputs.get_shape().ndims != 4:
    raise ValueError(
        'inputs must be a rank-4 [batch, height, width, channels] tensor, '
        'got shape %s. Add a batch dimension (e.g. tf.expand_dims(image, 0)).'
        % (inputs.get_shape(),))


def _pool_features(features, global_pool):
  """Averages the last feature map to 1x1 for the released input size.

  Args:
    features: the backbone's last [batch, height, width, depth] map.
    global_pool: average over whatever size the map has (end_point
      'global_pool'); otherwise a VALID 7x7 window, shrunk for smaller maps
      (end_point 'AvgPool_1a'), so larger inputs give larger outputs.

  Returns:
    (end_point name, pooled map).
  """
  if global_pool:
    return 'global_pool', tf.reduce_mean(features, [1, 2], keepdims=True,
                                         name='global_pool')
  window = _reduced_kernel_size_for_small_input(features, [7, 7])
  return 'AvgPool_1a', slim.avg_pool2d(features, window, padding='VALID',
                                       scope='AvgPool_1a')


def _classify(pooled, num_classes, keep_prob, spatial_squeeze):
  """Dropout, then a linear 1x1 convolution to `num_classes` scores.

  Args:
    pooled: the pooled [batch, 1, 1, depth] features.
    num_classes: number of scores per example.
    keep_prob: dropout keep probability (dropout runs only in training).
    spatial_squeeze: drop the two 1-sized axes of the result.

  Returns:
    Logits, [batch, num_classes] or [batch, 1, 1, num_classes].
  """
  kept = slim.dropout(pooled, keep_prob=keep_prob, scope='Dropout_1b')
  scores = slim.conv2d(kept, num_classes, [1, 1], activation_fn=None,
                       normalizer_fn=None, scope='Conv2d_1c_1x1')
  if not spatial_squeeze:
    return scores
  return tf.squeeze(scores, [1, 2], name='SpatialSqueeze')


mobilenet_v1.default_image_size = 224


def wrapped_partial(func, *args, **kwargs):
  """`functools.partial` that keeps `func`'s name, doc and attributes.

  The net functions carry `default_image_size`; a bare partial would lose
  it, and nets_factory reads it.
  """
  bound = functools.partial(func, *args, **kwargs)
  functools.update_wrapper(bound, func)
  return bound


mobilenet_v1_075 = wrapped_partial(mobilenet_v1, depth_multiplier=0.75)
mobilenet_v1_050 = wrapped_partial(mobilenet_v1, depth_multiplier=0.50)
mobilenet_v1_025 = wrapped_partial(mobilenet_v1, depth_multiplier=0.25)


def _fixed_padding(inputs, kernel_size, rate=1):
  """Pads `inputs` so a VALID convolution of `kernel_size` acts as SAME.

  The same padding as `conv_blocks.fixed_padding` (kept here under slim's
  name for code that reaches into this module).
  """
  return conv_blocks.fixed_padding(inputs, kernel_size, rate)


def _reduced_kernel_size_for_small_input(input_tensor, kernel_size):
  """The pooling kernel, shrunk to the feature map when that is smaller.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    kernel_size: the desired [height, width].

  Returns:
    The kernel size; unchanged when the spatial shape is not static.
  """
  shape = input_tensor.get_shape().as_list()
  if shape[1] is None or shape[2] is None:
    return kernel_size
  return [min(shape[1], kernel_size[0]), min(shape[2], kernel_size[1])]


def mobilenet_v1_arg_scope(
    is_training=True,
    weight_decay=0.00004,
    stddev=0.09,
    regularize_depthwise=False,
    batch_norm_decay=0.9997,
    batch_norm_epsilon=0.001,
    batch_norm_updates_collections=tf.GraphKeys.UPDATE_OPS,
    normalizer_fn=slim.batch_norm):
  """The arg_scope MobileNet V1 is built and trained with.

  Args:
    is_training: batch norm training mode; None leaves it to an outer scope.
    weight_decay: L2 weight decay of the convolutions.
    stddev: stddev of the truncated-normal weight initializer.
    regularize_depthwise: also apply weight decay to depthwise filters.
    batch_norm_decay: batch norm moving-average decay.
    batch_norm_epsilon: batch norm epsilon.
    batch_norm_updates_collections: collection of the moving-average updates.
    normalizer_fn: the normalizer of the convolutions.

  Returns:
    An arg_scope to use as `with slim.arg_scope(mobilenet_v1_arg_scope()):`.
  """
  batch_norm_params = {
      'center': True,
      'scale': True,
      'decay': batch_norm_decay,
      'epsilon': batch_norm_epsilon,
      'updates_collections': batch_norm_updates_collections,
  }
  if is_training is not None:
    batch_norm_params['is_training'] = is_training
  regularizer = slim.l2_regularizer(weight_decay)
  depthwise_regularizer = regularizer if regularize_depthwise else None
  with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                      weights_initializer=tf.truncated_normal_initializer(
                          stddev=stddev),
                      activation_fn=tf.nn.relu6, normalizer_fn=normalizer_fn):
    with slim.arg_scope([slim.batch_norm], **batch_norm_params):
      with slim.arg_scope([slim.conv2d], weights_regularizer=regularizer):
        with slim.arg_scope([slim.separable_conv2d],
                            weights_regularizer=depthwise_regularizer) as sc:
          return sc
