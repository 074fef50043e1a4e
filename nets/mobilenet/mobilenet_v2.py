"""MobileNet V2 (Sandler et al., 2018, https://arxiv.org/abs/1801.04381).

A 3x3 stride-2 convolution to 32 channels, 17 inverted-residual blocks, a
1x1 convolution to 1280 channels, global average pooling, dropout and 1x1
logits. Variable names and end_points match the released slim checkpoints
(scope `MobilenetV2`).

The network is the table `V2_DEF` run by the generic builder in
`nets.mobilenet.mobilenet`. Detection code deep-copies `V2_DEF` and replaces
layers; segmentation code passes its own `conv_defs` (or uses the group-norm
backbone `mobilenet_base_group_norm`). This module lives at slim's path,
`nets.mobilenet.mobilenet_v2`; `nets.mobilenet_v2` re-exports its names.

Usage:

    with slim.arg_scope(mobilenet_v2.training_scope(is_training=False)):
      logits, end_points = mobilenet_v2.mobilenet(images)
"""


import copy
import functools

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets.mobilenet import conv_blocks as ops
from nets.mobilenet import mobilenet as lib

op = lib.op
expand_input = ops.expand_input_by_factor

# The architecture. `defaults` are arg scopes entered around the layers;
# each `spec` entry is one end_point `layer_N` (N from 1). Depths are those
# of the 1.0 network; `depth_multiplier` scales them.
V2_DEF = dict(
    defaults={
        # Batch norm with a learned scale and offset.
        (slim.batch_norm,): {'center': True, 'scale': True},
        (slim.conv2d, slim.fully_connected, slim.separable_conv2d): {
            'normalizer_fn': slim.batch_norm, 'activation_fn': tf.nn.relu6
        },
        (ops.expanded_conv,): {
            'expansion_size': expand_input(6),
            'split_expansion': 1,
            'normalizer_fn': slim.batch_norm,
            'residual': True
        },
        (slim.conv2d, slim.separable_conv2d): {'padding': 'SAME'}
    },
    spec=[
        op(slim.conv2d, stride=2, num_outputs=32, kernel_size=[3, 3]),
        op(ops.expanded_conv,
           expansion_size=expand_input(1, divisible_by=1),
           num_outputs=16),
        op(ops.expanded_conv, stride=2, num_outputs=24),
        op(ops.expanded_conv, stride=1, num_outputs=24),
        op(ops.expanded_conv, stride=2, num_outputs=32),
        op(ops.expanded_conv, stride=1, num_outputs=32),
        op(ops.expanded_conv, stride=1, num_outputs=32),
        op(ops.expanded_conv, stride=2, num_outputs=64),
        op(ops.expanded_conv, stride=1, num_outputs=64),
        op(ops.expanded_conv, stride=1, num_outputs=64),
        op(ops.expanded_conv, stride=1, num_outputs=64),
        op(ops.expanded_conv, stride=1, num_outputs=96),
        op(ops.expanded_conv, stride=1, num_outputs=96),
        op(ops.expanded_conv, stride=1, num_outputs=96),
        op(ops.expanded_conv, stride=2, num_outputs=160),
        op(ops.expanded_conv, stride=1, num_outputs=160),
        op(ops.expanded_conv, stride=1, num_outputs=160),
        op(ops.expanded_conv, stride=1, num_outputs=320),
        op(slim.conv2d, stride=1, kernel_size=[1, 1], num_outputs=1280)
    ],
)


# V2 with group norm in place of batch norm (no moving statistics, so it
# trains with small per-device batches, as segmentation does).
V2_DEF_GROUP_NORM = copy.deepcopy(V2_DEF)
V2_DEF_GROUP_NORM['defaults'] = {
    (slim.conv2d, slim.fully_connected, slim.separable_conv2d): {
        'normalizer_fn': slim.group_norm, 'activation_fn': tf.nn.relu6
    },
    (ops.expanded_conv,): {
        'expansion_size': expand_input(6),
        'split_expansion': 1,
        'normalizer_fn': slim.group_norm,
        'residual': True
    },
    (slim.conv2d, slim.separable_conv2d): {'padding': 'SAME'}
}


def _with_activation(conv_defs, activation_fn):
  """A copy of conv_defs whose convolutions use `activation_fn`."""
  conv_defs = copy.deepcopy(conv_defs)
  defaults = conv_defs.setdefault('defaults', {})
  scoped = [params for params in defaults.values() if 'activation_fn' in params]
  if not scoped:
    scoped = [defaults.setdefault(
        (slim.conv2d, slim.fully_connected, slim.separable_conv2d), {})]
  for params in scoped:
    params['activation_fn'] = activation_fn
  return conv_defs


@slim.add_arg_scope
def mobilenet(input_tensor,
              num_classes=1001,
              depth_multiplier=1.0,
              scope='MobilenetV2',
              conv_defs=None,
              finegrain_classification_mode=False,
              min_depth=None,
              divisible_by=None,
              activation_fn=None,
              **kwargs):
  """MobileNet V2 classifier (or backbone with `base_only=True`).

  Args:
    input_tensor: a [batch, height, width, 3] tensor.
    num_classes: number of classes (1001 for the released checkpoints);
      0 or None returns the pooled features.
    depth_multiplier: width multiplier of all layers (> 0).
    scope: variable scope.
    conv_defs: network description; defaults to `V2_DEF`.
    finegrain_classification_mode: with depth_multiplier < 1, keep the last
      1x1 layer at its full width (1280), as the released 0.5 / 0.35
      checkpoints do. Ignored when final_endpoint stops earlier.
    min_depth: smallest layer depth (default 8).
    divisible_by: layer depths are rounded to multiples of this (default 8).
    activation_fn: replaces ReLU6 in all convolutions.
    **kwargs: `is_training`, `reuse`, `prediction_fn`, `base_only`,
      `final_endpoint`, `output_stride`, `use_explicit_padding`,
      `dropout_keep_prob`, `use_reduce_mean_for_pooling` (see
      `nets.mobilenet.mobilenet.mobilenet`). `global_pool=True` is accepted
      for symmetry with V1: V2 always pools globally.

  Returns:
    (logits, end_points).

  Raises:
    ValueError: for depth_multiplier <= 0, global_pool=False, and the
      errors of `nets.mobilenet.mobilenet.mobilenet_base`.
  """
  lib.check_depth_multiplier(depth_multiplier)
  if 'multiplier' in kwargs:
    raise ValueError('mobilenet_v2.mobilenet takes depth_multiplier=..., '
                     'not multiplier=.')
  if not kwargs.pop('global_pool', True):
    raise ValueError('global_pool=False is not supported by MobileNet V2: it '
                     'always pools globally. Leave global_pool unset or True.')
  if conv_defs is None:
    conv_defs = V2_DEF
  if finegrain_classification_mode and depth_multiplier < 1:
    conv_defs = copy.deepcopy(conv_defs)
    last = conv_defs['spec'][-1].params
    if 'num_outputs' in last:
      # Undo the multiplier for the last layer only.
      last['num_outputs'] /= depth_multiplier
  if activation_fn:
    conv_defs = _with_activation(conv_defs, activation_fn)

  depth_args = {}
  if min_depth is not None:
    depth_args['min_depth'] = min_depth
  if divisible_by is not None:
    depth_args['divisible_by'] = divisible_by
  with slim.arg_scope((lib.depth_multiplier,), **depth_args):
    return lib.mobilenet(input_tensor, num_classes=num_classes,
                         conv_defs=conv_defs, scope=scope,
                         multiplier=depth_multiplier, **kwargs)


mobilenet.default_image_size = 224


@slim.add_arg_scope
def mobilenet_base(input_tensor, depth_multiplier=1.0, **kwargs):
  """The V2 backbone: `mobilenet(..., base_only=True)`.

  Args:
    input_tensor: a [batch, height, width, 3] tensor.
    depth_multiplier: width multiplier (> 0).
    **kwargs: `final_endpoint`, `output_stride`, `use_explicit_padding`,
      `conv_defs`, `min_depth`, `divisible_by`, `scope`, `is_training`, ...
      as for `mobilenet`.

  Returns:
    (net, end_points).
  """
  return mobilenet(input_tensor, depth_multiplier=depth_multiplier,
                   base_only=True, **kwargs)


@slim.add_arg_scope
def mobilenet_base_group_norm(input_tensor, depth_multiplier=1.0, **kwargs):
  """The V2 backbone with group norm (`V2_DEF_GROUP_NORM`).

  Args:
    input_tensor: a [batch, height, width, 3] tensor.
    depth_multiplier: width multiplier (> 0).
    **kwargs: as for `mobilenet_base`, plus `groups` (number of group-norm
      groups, default 8). A `conv_defs` given here is replaced.

  Returns:
    (net, end_points).
  """
  conv_defs = copy.deepcopy(V2_DEF_GROUP_NORM)
  conv_defs['defaults'][(slim.group_norm,)] = {
      'groups': kwargs.pop('groups', 8)}
  kwargs['conv_defs'] = conv_defs
  return mobilenet(input_tensor, depth_multiplier=depth_multiplier,
                   base_only=True, **kwargs)


def wrapped_partial(func, *args, **kwargs):
  """`functools.partial` that keeps func's name, docstring and attributes.

  The attributes include `default_image_size`, which the factory reads.
  """
  partial = functools.partial(func, *args, **kwargs)
  functools.update_wrapper(partial, func)
  return partial


mobilenet_v2_100 = wrapped_partial(mobilenet, depth_multiplier=1.00)
mobilenet_v2_140 = wrapped_partial(mobilenet, depth_multiplier=1.40)
mobilenet_v2_050 = wrapped_partial(mobilenet, depth_multiplier=0.50,
                                   finegrain_classification_mode=True)
mobilenet_v2_035 = wrapped_partial(mobilenet, depth_multiplier=0.35,
                                   finegrain_classification_mode=True)
# The other widths keras.applications publishes V2 weights at.
mobilenet_v2_075 = wrapped_partial(mobilenet, depth_multiplier=0.75,
                                   finegrain_classification_mode=True)
mobilenet_v2_130 = wrapped_partial(mobilenet, depth_multiplier=1.30)


def training_scope(**kwargs):
  """V2's training arg scope: `nets.mobilenet.mobilenet.training_scope`.

  Args:
    **kwargs: `is_training`, `weight_decay`, `stddev`, `dropout_keep_prob`,
      `bn_decay` (see there).

  Returns:
    The arg_scope.
  """
  return lib.training_scope(**kwargs)


__all__ = ['training_scope', 'mobilenet_base', 'mobilenet', 'V2_DEF']
