"""MobileNet V3 (Howard et al., 2019, https://arxiv.org/abs/1905.02244) and
MobileNet-EdgeTPU, as tables for the generic builder in
`nets.mobilenet.mobilenet`.

* `V3_LARGE`, `V3_SMALL`: inverted-residual blocks with ReLU or hard-swish,
  squeeze-excite (hard-sigmoid gate) in some blocks, 3x3 or 5x5 depthwise
  kernels, then a 1x1 conv, a 1x1 average pool ("reduce") and a final 1x1
  conv without batch norm before the logits.
* `V3_LARGE_MINIMALISTIC`, `V3_SMALL_MINIMALISTIC`: the same widths with
  ReLU only, no squeeze-excite and 3x3 kernels only.
* `V3_EDGETPU`: "fused" blocks (a full KxK expansion conv, no depthwise) in
  the early stages, plain ReLU blocks later; scope `MobilenetEdgeTPU`.
* `V3_LARGE_DETECTION`, `V3_SMALL_DETECTION`: the last blocks and the 1x1
  conv at half width, as SSD feature extractors use them.

Variable names and end_points match the released checkpoints (scope
`MobilenetV3`). Usage:

    with slim.arg_scope(mobilenet_v3.training_scope(is_training=False)):
      logits, end_points = mobilenet_v3.large(images)
"""


import copy
import functools

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets.mobilenet import conv_blocks as ops
from nets.mobilenet import mobilenet as lib

op = lib.op
expand_input = ops.expand_input_by_factor


def _hard_sigmoid(x):
  # relu6(x + 3) / 6 with the constant the released models were trained with.
  return tf.nn.relu6(x + 3) * 0.16667


# V3's squeeze-excite: a quarter of the channels, ReLU inside, hard-sigmoid
# gate.
squeeze_excite = functools.partial(
    ops.squeeze_excite, squeeze_factor=4, inner_activation_fn=tf.nn.relu,
    gating_fn=_hard_sigmoid)


def _se4(expansion_tensor, input_tensor):
  """`expanded_conv`'s expansion_transform: squeeze-excite, ignoring input."""
  del input_tensor  # The gate depends on the depthwise output alone.
  return squeeze_excite(expansion_tensor)


def hard_swish(x):
  """x * relu6(x + 3) / 6, in a `hard_swish` name scope.

  This form (multiply by the float32 constant 1/6) is the one TFLite's
  converter turns into its HARD_SWISH op.
  """
  with tf.name_scope('hard_swish'):
    return x * tf.nn.relu6(x + np.float32(3)) * np.float32(1. / 6.)


def reduce_to_1x1(input_tensor, default_size=7, **kwargs):
  """Averages a square map down to 1x1 (V3's "reduce" layer).

  A square input of known size is pooled whole; any other input is pooled
  with a default_size x default_size window (the 224 map size).

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    default_size: the window for non-square or unknown sizes.
    **kwargs: passed to `slim.avg_pool2d` (stride, padding, scope). The
      builder's `rate` and `use_explicit_padding` are accepted and ignored:
      a pool over the whole map has nothing to dilate or pad.

  Returns:
    The pooled tensor.
  """
  kwargs.pop('rate', None)
  kwargs.pop('use_explicit_padding', None)
  height, width = input_tensor.get_shape().as_list()[1:3]
  if height is not None and height == width:
    window = [height, height]
  else:
    window = [default_size, default_size]
  return slim.avg_pool2d(input_tensor, kernel_size=window, **kwargs)


def mbv3_op(ef, n, k, s=1, act=tf.nn.relu, se=None, **kwargs):
  """One V3 inverted-residual block as a spec entry.

  Args:
    ef: expansion factor (expanded depth = ef x input depth, rounded).
    n: output depth.
    k: depthwise kernel size (k x k).
    s: depthwise stride.
    act: activation of the expansion and the depthwise conv.
    se: expansion_transform after the depthwise conv (squeeze-excite), or
      None.
    **kwargs: further `conv_blocks.expanded_conv` arguments.

  Returns:
    A spec entry (`mobilenet.op`).
  """
  return op(ops.expanded_conv, expansion_size=expand_input(ef),
            kernel_size=(k, k), stride=s, num_outputs=n,
            inner_activation_fn=act, expansion_transform=se, **kwargs)


def mbv3_fused(ef, n, k, s=1, **kwargs):
  """A "fused" block: a k x k stride-s expansion conv, no depthwise conv.

  Args:
    ef: expansion factor.
    n: output depth.
    k: kernel size of the expansion conv.
    s: its stride.
    **kwargs: passed to `mbv3_op`.

  Returns:
    A spec entry (`mobilenet.op`).
  """
  fused_expansion = functools.partial(slim.conv2d, kernel_size=k, stride=s)
  return mbv3_op(ef, n, k=1, s=s, depthwise_location=None,
                 expansion_fn=fused_expansion, **kwargs)


mbv3_op_se = functools.partial(mbv3_op, se=_se4)

DEFAULTS = {
    (ops.expanded_conv,): dict(normalizer_fn=slim.batch_norm, residual=True),
    (slim.conv2d, slim.fully_connected, slim.separable_conv2d): {
        'normalizer_fn': slim.batch_norm,
        'activation_fn': tf.nn.relu,
    },
    (slim.batch_norm,): {'center': True, 'scale': True},
}

DEFAULTS_GROUP_NORM = {
    (ops.expanded_conv,): dict(normalizer_fn=slim.group_norm, residual=True),
    (slim.conv2d, slim.fully_connected, slim.separable_conv2d): {
        'normalizer_fn': slim.group_norm,
        'activation_fn': tf.nn.relu,
    },
    (slim.batch_norm,): {'center': True, 'scale': True},
}


def _head(last_conv_depth, head_depth, act):
  """The 1x1 conv, the 1x1 reduce pool and the ungated 1x1 conv (no BN)."""
  return [
      op(slim.conv2d, stride=1, kernel_size=[1, 1],
         num_outputs=last_conv_depth, **act),
      op(reduce_to_1x1, default_size=7, stride=1, padding='VALID'),
      op(slim.conv2d, stride=1, kernel_size=[1, 1], num_outputs=head_depth,
         normalizer_fn=None, **act),
  ]


_HSWISH = {'activation_fn': hard_swish}

V3_LARGE = dict(
    defaults=dict(DEFAULTS),
    spec=[
        op(slim.conv2d, stride=2, num_outputs=16, kernel_size=(3, 3),
           activation_fn=hard_swish),
        mbv3_op(ef=1, n=16, k=3),
        mbv3_op(ef=4, n=24, k=3, s=2),
        mbv3_op(ef=3, n=24, k=3, s=1),
        mbv3_op_se(ef=3, n=40, k=5, s=2),
        mbv3_op_se(ef=3, n=40, k=5, s=1),
        mbv3_op_se(ef=3, n=40, k=5, s=1),
        mbv3_op(ef=6, n=80, k=3, s=2, act=hard_swish),
        mbv3_op(ef=2.5, n=80, k=3, s=1, act=hard_swish),
        mbv3_op(ef=184 / 80., n=80, k=3, s=1, act=hard_swish),
        mbv3_op(ef=184 / 80., n=80, k=3, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=112, k=3, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=112, k=3, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=160, k=5, s=2, act=hard_swish),
        mbv3_op_se(ef=6, n=160, k=5, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=160, k=5, s=1, act=hard_swish),
    ] + _head(960, 1280, _HSWISH))

V3_LARGE_MINIMALISTIC = dict(
    defaults=dict(DEFAULTS),
    spec=[
        op(slim.conv2d, stride=2, num_outputs=16, kernel_size=(3, 3)),
        mbv3_op(ef=1, n=16, k=3),
        mbv3_op(ef=4, n=24, k=3, s=2),
        mbv3_op(ef=3, n=24, k=3, s=1),
        mbv3_op(ef=3, n=40, k=3, s=2),
        mbv3_op(ef=3, n=40, k=3, s=1),
        mbv3_op(ef=3, n=40, k=3, s=1),
        mbv3_op(ef=6, n=80, k=3, s=2),
        mbv3_op(ef=2.5, n=80, k=3, s=1),
        mbv3_op(ef=184 / 80., n=80, k=3, s=1),
        mbv3_op(ef=184 / 80., n=80, k=3, s=1),
        mbv3_op(ef=6, n=112, k=3, s=1),
        mbv3_op(ef=6, n=112, k=3, s=1),
        mbv3_op(ef=6, n=160, k=3, s=2),
        mbv3_op(ef=6, n=160, k=3, s=1),
        mbv3_op(ef=6, n=160, k=3, s=1),
    ] + _head(960, 1280, {}))

V3_SMALL = dict(
    defaults=dict(DEFAULTS),
    spec=[
        op(slim.conv2d, stride=2, num_outputs=16, kernel_size=(3, 3),
           activation_fn=hard_swish),
        mbv3_op_se(ef=1, n=16, k=3, s=2),
        mbv3_op(ef=72. / 16, n=24, k=3, s=2),
        mbv3_op(ef=88. / 24, n=24, k=3, s=1),
        mbv3_op_se(ef=4, n=40, k=5, s=2, act=hard_swish),
        mbv3_op_se(ef=6, n=40, k=5, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=40, k=5, s=1, act=hard_swish),
        mbv3_op_se(ef=3, n=48, k=5, s=1, act=hard_swish),
        mbv3_op_se(ef=3, n=48, k=5, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=96, k=5, s=2, act=hard_swish),
        mbv3_op_se(ef=6, n=96, k=5, s=1, act=hard_swish),
        mbv3_op_se(ef=6, n=96, k=5, s=1, act=hard_swish),
    ] + _head(576, 1024, _HSWISH))

V3_SMALL_MINIMALISTIC = dict(
    defaults=dict(DEFAULTS),
    spec=[
        op(slim.conv2d, stride=2, num_outputs=16, kernel_size=(3, 3)),
        mbv3_op(ef=1, n=16, k=3, s=2),
        mbv3_op(ef=72. / 16, n=24, k=3, s=2),
        mbv3_op(ef=88. / 24, n=24, k=3, s=1),
        mbv3_op(ef=4, n=40, k=3, s=2),
        mbv3_op(ef=6, n=40, k=3, s=1),
        mbv3_op(ef=6, n=40, k=3, s=1),
        mbv3_op(ef=3, n=48, k=3, s=1),
        mbv3_op(ef=3, n=48, k=3, s=1),
        mbv3_op(ef=6, n=96, k=3, s=2),
        mbv3_op(ef=6, n=96, k=3, s=1),
        mbv3_op(ef=6, n=96, k=3, s=1),
    ] + _head(576, 1024, {}))

# No reduce layer here: the classifier's global pool follows the 1x1 conv.
V3_EDGETPU = dict(
    defaults=dict(DEFAULTS),
    spec=[
        op(slim.conv2d, stride=2, num_outputs=32, kernel_size=(3, 3)),
        mbv3_fused(k=3, s=1, ef=1, n=16),
        mbv3_fused(k=3, s=2, ef=8, n=32),
        mbv3_fused(k=3, s=1, ef=4, n=32),
        mbv3_fused(k=3, s=1, ef=4, n=32),
        mbv3_fused(k=3, s=1, ef=4, n=32),
        mbv3_fused(k=3, s=2, ef=8, n=48),
        mbv3_fused(k=3, s=1, ef=4, n=48),
        mbv3_fused(k=3, s=1, ef=4, n=48),
        mbv3_fused(k=3, s=1, ef=4, n=48),
        mbv3_op(k=3, s=2, ef=8, n=96),
        mbv3_op(k=3, s=1, ef=4, n=96),
        mbv3_op(k=3, s=1, ef=4, n=96),
        mbv3_op(k=3, s=1, ef=4, n=96),
        mbv3_op(k=3, s=1, ef=8, n=96, residual=False),
        mbv3_op(k=3, s=1, ef=4, n=96),
        mbv3_op(k=3, s=1, ef=4, n=96),
        mbv3_op(k=3, s=1, ef=4, n=96),
        mbv3_op(k=5, s=2, ef=8, n=160),
        mbv3_op(k=5, s=1, ef=4, n=160),
        mbv3_op(k=5, s=1, ef=4, n=160),
        mbv3_op(k=5, s=1, ef=4, n=160),
        mbv3_op(k=3, s=1, ef=8, n=192),
        op(slim.conv2d, stride=1, num_outputs=1280, kernel_size=(1, 1)),
    ])


def _keep_full_width(params, multiplier):
  """multiplier_func that leaves a layer at its spec depth."""
  del multiplier
  return params


@slim.add_arg_scope
def mobilenet(input_tensor,
              num_classes=1001,
              depth_multiplier=1.0,
              scope='MobilenetV3',
              conv_defs=None,
              finegrain_classification_mode=False,
              use_groupnorm=False,
              **kwargs):
  """MobileNet V3 classifier (or backbone with `base_only=True`).

  Builds in inference mode unless an arg scope says otherwise
  (`training_scope()`).

  Args:
    input_tensor: a [batch, height, width, 3] tensor.
    num_classes: number of classes (1001 for the released checkpoints);
      0 or None returns the pooled features.
    depth_multiplier: width multiplier of all layers (> 0).
    scope: variable scope ('MobilenetV3'; the EdgeTPU builders use
      'MobilenetEdgeTPU').
    conv_defs: the network table; defaults to `V3_LARGE`.
    finegrain_classification_mode: keep the last layer of the spec at its
      full width whatever the multiplier (as the released EdgeTPU 0.75
      checkpoint does). Ignored when final_endpoint stops earlier.
    use_groupnorm: replace batch norm by group norm (`groups` in kwargs sets
      the number of groups, 8 by default).
    **kwargs: `is_training`, `reuse`, `prediction_fn`, `base_only`,
      `final_endpoint`, `output_stride`, `use_explicit_padding`,
      `dropout_keep_prob`, `use_reduce_mean_for_pooling`, `groups` (see
      `nets.mobilenet.mobilenet.mobilenet`).

  Returns:
    (logits, end_points).

  Raises:
    ValueError: for `multiplier=` (use depth_multiplier), depth_multiplier
      <= 0, and the errors of `nets.mobilenet.mobilenet.mobilenet_base`.
  """
  if 'multiplier' in kwargs:
    raise ValueError('mobilenet_v3.mobilenet takes depth_multiplier=..., '
                     'not multiplier=.')
  lib.check_depth_multiplier(depth_multiplier)
  if conv_defs is None:
    conv_defs = V3_LARGE
  groups = kwargs.pop('groups', 8)
  if finegrain_classification_mode:
    conv_defs = copy.deepcopy(conv_defs)
    conv_defs['spec'][-1] = conv_defs['spec'][-1]._replace(
        multiplier_func=_keep_full_width)
  if use_groupnorm:
    conv_defs = copy.deepcopy(conv_defs)
    conv_defs['defaults'] = dict(DEFAULTS_GROUP_NORM)
    conv_defs['defaults'][(slim.group_norm,)] = {'groups': groups}
  return lib.mobilenet(input_tensor, num_classes=num_classes,
                       conv_defs=conv_defs, scope=scope,
                       multiplier=depth_multiplier, **kwargs)


mobilenet.default_image_size = 224
training_scope = lib.training_scope


@slim.add_arg_scope
def mobilenet_base(input_tensor, depth_multiplier=1.0, **kwargs):
  """The V3 backbone: `mobilenet(..., base_only=True)` (no pool, no logits)."""
  return mobilenet(input_tensor, depth_multiplier=depth_multiplier,
                   base_only=True, **kwargs)


def wrapped_partial(func, new_defaults=None, **kwargs):
  """`func` with fixed keyword arguments and overridable new defaults.

  Args:
    func: the function to wrap.
    new_defaults: keyword defaults a caller may still override (e.g. the
      EdgeTPU scope name).
    **kwargs: keyword arguments fixed like `functools.partial` (a caller
      may override them too, by keyword).

  Returns:
    A partial with func's name, docstring and attributes (e.g.
    `default_image_size`).
  """
  defaults = dict(new_defaults or {})

  def with_defaults(*args, **call_kwargs):
    merged = dict(defaults)
    merged.update(call_kwargs)
    return func(*args, **merged)

  functools.update_wrapper(with_defaults, func)
  result = functools.partial(with_defaults, **kwargs)
  functools.update_wrapper(result, func)
  return result


large = wrapped_partial(mobilenet, conv_defs=V3_LARGE)
small = wrapped_partial(mobilenet, conv_defs=V3_SMALL)
edge_tpu = wrapped_partial(mobilenet,
                           new_defaults={'scope': 'MobilenetEdgeTPU'},
                           conv_defs=V3_EDGETPU)
edge_tpu_075 = wrapped_partial(mobilenet,
                               new_defaults={'scope': 'MobilenetEdgeTPU'},
                               conv_defs=V3_EDGETPU, depth_multiplier=0.75,
                               finegrain_classification_mode=True)
# No squeeze-excite, no hard-swish, no 5x5 kernels: runs well on hardware
# that lacks them.
# The released 0.75 V3 checkpoints keep the last layer at full width.
large_075 = wrapped_partial(mobilenet, conv_defs=V3_LARGE,
                            depth_multiplier=0.75,
                            finegrain_classification_mode=True)
small_075 = wrapped_partial(mobilenet, conv_defs=V3_SMALL,
                            depth_multiplier=0.75,
                            finegrain_classification_mode=True)
large_minimalistic = wrapped_partial(mobilenet,
                                     conv_defs=V3_LARGE_MINIMALISTIC)
small_minimalistic = wrapped_partial(mobilenet,
                                     conv_defs=V3_SMALL_MINIMALISTIC)


def _reduce_consecutive_layers(conv_defs, start_id, end_id, multiplier=0.5):
  """A copy of conv_defs with layers start_id..end_id (0-based, inclusive)
  scaled to `multiplier` times their depth.

  Raises:
    ValueError: if one of those layers has no `num_outputs`.
  """
  scaled = copy.deepcopy(conv_defs)
  for index in range(start_id, end_id + 1):
    params = scaled['spec'][index].params
    if 'num_outputs' not in params:
      raise ValueError('Layer %d of the spec has no num_outputs to scale.' %
                       index)
    params['num_outputs'] = int(np.round(params['num_outputs'] * multiplier))
  return scaled


V3_LARGE_DETECTION = _reduce_consecutive_layers(V3_LARGE, 13, 16)
V3_SMALL_DETECTION = _reduce_consecutive_layers(V3_SMALL, 9, 12)

__all__ = ['training_scope', 'mobilenet', 'V3_LARGE', 'V3_SMALL', 'large',
           'small', 'V3_LARGE_DETECTION', 'V3_SMALL_DETECTION']
