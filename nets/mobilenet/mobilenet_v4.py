"""MobileNet V4 (Qin et al., 2024, https://arxiv.org/abs/2404.10518) as tables
for the generic builder in `nets.mobilenet.mobilenet`.

Five networks, with the layer tables of timm's `mobilenetv4_*` models (the
only published weights): `V4_CONV_SMALL`, `V4_CONV_MEDIUM`, `V4_CONV_LARGE`
(convolutions only) and `V4_HYBRID_MEDIUM`, `V4_HYBRID_LARGE` (Mobile MQA
attention in the last two stages, layer scale on every block, GELU in
Hybrid Large). The blocks are in `nets.mobilenet.universal_blocks`.

Layer `layer_N` of a table has its variables in scope `MobilenetV4/layer_N`.
The last three layers are V4's head: a 1x1 conv to 960, a global average
pool and a 1x1 conv to 1280, both with batch norm; then come the logits
(`MobilenetV4/Logits/Conv2d_1c_1x1`, with biases).

The networks take images in [-1, 1], like every network of the project
(inception preprocessing), and turn them into the normalization timm's
weights expect as their first op (`input_mean_std`; None skips it). Doing
it inside the graph, before the stem's padding, keeps the padded border
exactly as in timm.

`use_explicit_padding` defaults to True here: timm's weights were trained
with PyTorch's symmetric padding, which explicit padding reproduces; False
gives TensorFlow's SAME padding (as the TF Model Garden builds V4).

    with slim.arg_scope(mobilenet_v4.training_scope(is_training=False)):
      logits, end_points = mobilenet_v4.conv_small(images, num_classes=1000)
"""

import copy
import functools

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets.mobilenet import mobilenet as lib
from nets.mobilenet import mobilenet_v3
from nets.mobilenet import universal_blocks as blocks

op = lib.op
SCOPE = 'MobilenetV4'
# PyTorch's batch norm epsilon, which timm's weights were trained with.
BATCH_NORM_EPSILON = 1e-5
LAYER_SCALE_INIT = 1e-5
# timm's MobileNet V4 weights take images as (x - mean) / std with x in
# [0, 1] (ImageNet statistics, per RGB channel).
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The moving-statistics decay of the training scope (the Model Garden's
# batch norm momentum for MobileNets).
BATCH_NORM_DECAY = 0.99


def _conv(kernel, stride, depth):
  return [op(slim.conv2d, kernel_size=[kernel, kernel], stride=stride,
             num_outputs=depth)]


def _uib(start, middle, expansion, depth, stride=1, repeat=1):
  """`repeat` UIBs; only the first one has `stride` (timm's convention).

  start / middle: kernels of the input and the middle depthwise conv, 0 for
  none: (k, k) ExtraDW, (0, k) IB, (k, 0) ConvNext-like, (0, 0) FFN.
  """
  return [op(blocks.universal_inverted_bottleneck, start_dw_kernel=start,
             middle_dw_kernel=middle, expansion_ratio=expansion,
             num_outputs=depth, stride=stride if index == 0 else 1)
          for index in range(repeat)]


def _fused(kernel, expansion, depth, stride):
  return [op(blocks.fused_inverted_bottleneck, kernel_size=kernel,
             expansion_ratio=expansion, num_outputs=depth, stride=stride)]


def _mqa(heads, key_dim, depth, kv_stride=1):
  return [op(blocks.mobile_mqa, num_heads=heads, key_dim=key_dim,
             value_dim=key_dim, kv_stride=kv_stride, num_outputs=depth,
             stride=1)]


def _head():
  """V4 pools before its last 1x1 conv (timm's conv_head + norm_head)."""
  return _conv(1, 1, 960) + [op(blocks.global_average_pool)] + _conv(
      1, 1, 1280)


def _table(stem_depth, body, activation_fn=tf.nn.relu, layer_scale=None):
  """A conv_defs dict: stem, body, head; each layer scoped `layer_N`."""
  defaults = {
      (slim.conv2d, slim.separable_conv2d): {
          'normalizer_fn': slim.batch_norm,
          'activation_fn': activation_fn,
      },
      (slim.batch_norm,): {'center': True, 'scale': True,
                           'epsilon': BATCH_NORM_EPSILON},
      (blocks.universal_inverted_bottleneck, blocks.mobile_mqa): {
          'layer_scale_init_value': layer_scale,
      },
  }
  return dict(defaults=defaults, layer_scopes=True,
              spec=_conv(3, 2, stem_depth) + body + _head())


V4_CONV_SMALL = _table(32, (
    _conv(3, 2, 32) + _conv(1, 1, 32) +
    _conv(3, 2, 96) + _conv(1, 1, 64) +
    _uib(5, 5, 3, 96, stride=2) + _uib(0, 3, 2, 96, repeat=4) +
    _uib(3, 0, 4, 96) +
    _uib(3, 3, 6, 128, stride=2) + _uib(5, 5, 4, 128) + _uib(0, 5, 4, 128) +
    _uib(0, 5, 3, 128) + _uib(0, 3, 4, 128, repeat=2)))

V4_CONV_MEDIUM = _table(32, (
    _fused(3, 4, 48, stride=2) +
    _uib(3, 5, 4, 80, stride=2) + _uib(3, 3, 2, 80) +
    _uib(3, 5, 6, 160, stride=2) + _uib(3, 3, 4, 160, repeat=2) +
    _uib(3, 5, 4, 160) + _uib(3, 3, 4, 160) + _uib(3, 0, 4, 160) +
    _uib(0, 0, 2, 160) + _uib(3, 0, 4, 160) +
    _uib(5, 5, 6, 256, stride=2) + _uib(5, 5, 4, 256) +
    _uib(3, 5, 4, 256, repeat=2) + _uib(0, 0, 4, 256) + _uib(3, 0, 4, 256) +
    _uib(3, 5, 2, 256) + _uib(5, 5, 4, 256) + _uib(0, 0, 4, 256, repeat=2) +
    _uib(5, 0, 2, 256)))

V4_CONV_LARGE = _table(24, (
    _fused(3, 4, 48, stride=2) +
    _uib(3, 5, 4, 96, stride=2) + _uib(3, 3, 4, 96) +
    _uib(3, 5, 4, 192, stride=2) + _uib(3, 3, 4, 192, repeat=3) +
    _uib(3, 5, 4, 192) + _uib(5, 3, 4, 192, repeat=5) + _uib(3, 0, 4, 192) +
    _uib(5, 5, 4, 512, stride=2, repeat=4) + _uib(5, 0, 4, 512) +
    _uib(5, 3, 4, 512) + _uib(5, 0, 4, 512, repeat=2) + _uib(5, 3, 4, 512) +
    _uib(5, 5, 4, 512) + _uib(5, 0, 4, 512, repeat=3)))

V4_HYBRID_MEDIUM = _table(32, (
    _fused(3, 4, 48, stride=2) +
    _uib(3, 5, 4, 80, stride=2) + _uib(3, 3, 2, 80) +
    _uib(3, 5, 6, 160, stride=2) + _uib(0, 0, 2, 160) + _uib(3, 3, 4, 160) +
    _uib(3, 5, 4, 160) + _mqa(4, 64, 160, kv_stride=2) + _uib(3, 3, 4, 160) +
    _mqa(4, 64, 160, kv_stride=2) + _uib(3, 0, 4, 160) +
    _mqa(4, 64, 160, kv_stride=2) + _uib(3, 3, 4, 160) +
    _mqa(4, 64, 160, kv_stride=2) + _uib(3, 0, 4, 160) +
    _uib(5, 5, 6, 256, stride=2) + _uib(5, 5, 4, 256) +
    _uib(3, 5, 4, 256, repeat=2) + _uib(0, 0, 2, 256) + _uib(3, 5, 2, 256) +
    _uib(0, 0, 2, 256) + _uib(0, 0, 4, 256) + _mqa(4, 64, 256) +
    _uib(3, 0, 4, 256) + _mqa(4, 64, 256) + _uib(5, 5, 4, 256) +
    _mqa(4, 64, 256) + _uib(5, 0, 4, 256) + _mqa(4, 64, 256) +
    _uib(5, 0, 4, 256)), layer_scale=LAYER_SCALE_INIT)

V4_HYBRID_LARGE = _table(24, (
    _fused(3, 4, 48, stride=2) +
    _uib(3, 5, 4, 96, stride=2) + _uib(3, 3, 4, 96) +
    _uib(3, 5, 4, 192, stride=2) + _uib(3, 3, 4, 192, repeat=3) +
    _uib(3, 5, 4, 192) + _uib(5, 3, 4, 192, repeat=2) +
    _mqa(8, 48, 192, kv_stride=2) + _uib(5, 3, 4, 192) +
    _mqa(8, 48, 192, kv_stride=2) + _uib(5, 3, 4, 192) +
    _mqa(8, 48, 192, kv_stride=2) + _uib(5, 3, 4, 192) +
    _mqa(8, 48, 192, kv_stride=2) + _uib(3, 0, 4, 192) +
    _uib(5, 5, 4, 512, stride=2, repeat=4) + _uib(5, 0, 4, 512) +
    _uib(5, 3, 4, 512) + _uib(5, 0, 4, 512, repeat=2) + _uib(5, 3, 4, 512) +
    _uib(5, 5, 4, 512) + _mqa(8, 64, 512) + _uib(5, 0, 4, 512) +
    _mqa(8, 64, 512) + _uib(5, 0, 4, 512) + _mqa(8, 64, 512) +
    _uib(5, 0, 4, 512) + _mqa(8, 64, 512) + _uib(5, 0, 4, 512)),
                          activation_fn=blocks.gelu,
                          layer_scale=LAYER_SCALE_INIT)


def normalize_input(images, mean_std=IMAGENET_MEAN_STD):
  """[-1, 1] images -> ((images + 1) / 2 - mean) / std, per channel.

  Args:
    images: a [batch, height, width, channels] tensor in [-1, 1].
    mean_std: (means, stds), one per channel; None returns images as they
      are.

  Returns:
    The normalized images.
  """
  if mean_std is None:
    return images
  means, stds = (np.asarray(values, dtype=np.float32) for values in mean_std)
  with tf.name_scope('input_normalization'):
    # One multiply-add: x * 0.5 / std + (0.5 - mean) / std.
    return images * (np.float32(0.5) / stds) + (np.float32(0.5) - means) / stds


def _keep_full_width(params, multiplier):
  del multiplier
  return params


@slim.add_arg_scope
def mobilenet(input_tensor,
              num_classes=1001,
              depth_multiplier=1.0,
              scope=SCOPE,
              conv_defs=None,
              finegrain_classification_mode=False,
              use_explicit_padding=True,
              input_mean_std=IMAGENET_MEAN_STD,
              **kwargs):
  """MobileNet V4 classifier (or backbone with `base_only=True`).

  Builds in inference mode unless an arg scope says otherwise
  (`training_scope()`).

  Args:
    input_tensor: a [batch, height, width, 3] tensor.
    num_classes: number of classes (timm's weights: 1000); 0 or None
      returns the pooled 1280-deep features.
    depth_multiplier: width multiplier of all layers (> 0); attention heads
      and key depths stay as the table gives them.
    scope: variable scope.
    conv_defs: the network table; defaults to `V4_CONV_SMALL`.
    finegrain_classification_mode: keep the last layer (the 1280-deep 1x1
      conv) at full width whatever the multiplier, as timm's narrower V4
      models do. Ignored when final_endpoint stops earlier.
    use_explicit_padding: symmetric padding, as PyTorch pads (needed for
      timm's weights); False pads as TensorFlow's SAME.
    input_mean_std: (means, stds) that timm's weights normalize [0, 1]
      images with (default: ImageNet's); the network maps its [-1, 1]
      input to them first. None feeds the input unchanged (training from
      scratch, or timm weights trained with mean = std = 0.5).
    **kwargs: `is_training`, `reuse`, `prediction_fn`, `base_only`,
      `final_endpoint`, `output_stride`, `dropout_keep_prob`,
      `use_reduce_mean_for_pooling` (see `nets.mobilenet.mobilenet`).

  Returns:
    (logits, end_points).

  Raises:
    ValueError: for `multiplier=` (use depth_multiplier), depth_multiplier
      <= 0, and the errors of `nets.mobilenet.mobilenet.mobilenet_base`.
  """
  if 'multiplier' in kwargs:
    raise ValueError('mobilenet_v4.mobilenet takes depth_multiplier=..., '
                     'not multiplier=.')
  lib.check_depth_multiplier(depth_multiplier)
  if conv_defs is None:
    conv_defs = V4_CONV_SMALL
  if finegrain_classification_mode:
    conv_defs = copy.deepcopy(conv_defs)
    conv_defs['spec'][-1] = conv_defs['spec'][-1]._replace(
        multiplier_func=_keep_full_width)
  input_tensor = normalize_input(input_tensor, input_mean_std)
  return lib.mobilenet(input_tensor, num_classes=num_classes,
                       conv_defs=conv_defs, scope=scope,
                       multiplier=depth_multiplier,
                       use_explicit_padding=use_explicit_padding, **kwargs)


mobilenet.default_image_size = 224


@slim.add_arg_scope
def mobilenet_base(input_tensor, depth_multiplier=1.0, **kwargs):
  """The V4 backbone: `mobilenet(..., base_only=True)` (no head pool/logits).

  The table's own head layers (960 conv, pool, 1280 conv) are built unless
  `final_endpoint` stops earlier.
  """
  return mobilenet(input_tensor, depth_multiplier=depth_multiplier,
                   base_only=True, **kwargs)


training_scope = functools.partial(lib.training_scope,
                                   bn_decay=BATCH_NORM_DECAY)


def _network(conv_defs, image_size):
  network = mobilenet_v3.wrapped_partial(mobilenet, conv_defs=conv_defs)
  network.default_image_size = image_size
  return network


# Default image sizes: the resolution of timm's ImageNet-1k weights.
conv_small = _network(V4_CONV_SMALL, 224)
conv_medium = _network(V4_CONV_MEDIUM, 256)
conv_large = _network(V4_CONV_LARGE, 384)
hybrid_medium = _network(V4_HYBRID_MEDIUM, 256)
hybrid_large = _network(V4_HYBRID_LARGE, 384)

__all__ = ['training_scope', 'mobilenet', 'mobilenet_base', 'V4_CONV_SMALL',
           'V4_CONV_MEDIUM', 'V4_CONV_LARGE', 'V4_HYBRID_MEDIUM',
           'V4_HYBRID_LARGE', 'conv_small', 'conv_medium', 'conv_large',
           'hybrid_medium', 'hybrid_large']
