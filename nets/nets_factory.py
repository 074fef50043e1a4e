"""Maps network names to their builders and arg scopes.

This is the one place that knows which name means which network:

    network_fn = nets_factory.get_network_fn('mobilenet_v1', num_classes=1001,
                                             is_training=False)
    logits, end_points = network_fn(images)
    network_fn.default_image_size  # 224
"""


import difflib
import functools
import re
import typing
from typing import Callable, Dict

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tf_slim as slim

from nets import mobilenet_v1
from nets import mobilenet_v2
from nets.mobilenet import mobilenet_v3
from nets.mobilenet import mobilenet_v4

class NetworkRecord(typing.NamedTuple):
  """Everything the project knows about one factory network name.

  builder: `builder(images, num_classes, is_training, ...)`, slim's network
    function (with `default_image_size`).
  arg_scope: the arg-scope function the network is built under.
  batch_norm_decay_keyword: the arg scope's keyword for the batch-norm decay.
  batch_norm_decay: the network's own decay (the arg scope's default).
  preprocessing: the preprocessing_factory name its images take.
  scope: the variable scope, which prefixes every end point name.
  backbone_end_points: {output stride: end point name}, the features a
    detection or segmentation head reads (SSD's first two feature maps).
  """
  builder: Callable
  arg_scope: Callable
  batch_norm_decay_keyword: str
  batch_norm_decay: float
  preprocessing: str
  scope: str
  backbone_end_points: Dict[int, str]

  @property
  def default_image_size(self):
    return getattr(self.builder, 'default_image_size', 224)


def _family(arg_scope, keyword, decay, scope, builders):
  """Records of networks sharing an arg scope, decay and variable scope.

  Args:
    builders: {network name: (builder, backbone_end_points)}.
  """
  return {name: NetworkRecord(builder, arg_scope, keyword, decay,
                              'inception', scope, end_points)
          for name, (builder, end_points) in builders.items()}


# Backbone features at output strides 16 and 32: for V1, V2, V3 and EdgeTPU
# the end points the TF Object Detection API's SSD feature extractors read;
# for V4 (not in that API) the last stride-16 block and the last layer
# before pooling, the features timm's `features_only` gives at those strides.
_V1_FEATURES = {16: 'Conv2d_11_pointwise', 32: 'Conv2d_13_pointwise'}
_V2_FEATURES = {16: 'layer_15/expansion_output', 32: 'layer_19'}
_V3_LARGE_FEATURES = {16: 'layer_14/expansion_output', 32: 'layer_17'}
_V3_SMALL_FEATURES = {16: 'layer_10/expansion_output', 32: 'layer_13'}
_EDGETPU_FEATURES = {16: 'layer_18/expansion_output', 32: 'layer_23'}

# One record per name. Every MobileNet takes inception-style [-1, 1] inputs
# (V4 turns them into timm's mean/std normalization itself).
NETWORKS = dict(
    **_family(mobilenet_v1.mobilenet_v1_arg_scope, 'batch_norm_decay', 0.9997,
              'MobilenetV1', {
                  'mobilenet_v1': (mobilenet_v1.mobilenet_v1, _V1_FEATURES),
                  'mobilenet_v1_075': (mobilenet_v1.mobilenet_v1_075,
                                       _V1_FEATURES),
                  'mobilenet_v1_050': (mobilenet_v1.mobilenet_v1_050,
                                       _V1_FEATURES),
                  'mobilenet_v1_025': (mobilenet_v1.mobilenet_v1_025,
                                       _V1_FEATURES)}),
    **_family(mobilenet_v2.training_scope, 'bn_decay', 0.997, 'MobilenetV2', {
        'mobilenet_v2': (mobilenet_v2.mobilenet, _V2_FEATURES),
        'mobilenet_v2_140': (mobilenet_v2.mobilenet_v2_140, _V2_FEATURES),
        'mobilenet_v2_050': (mobilenet_v2.mobilenet_v2_050, _V2_FEATURES),
        'mobilenet_v2_035': (mobilenet_v2.mobilenet_v2_035, _V2_FEATURES),
        'mobilenet_v2_075': (mobilenet_v2.mobilenet_v2_075, _V2_FEATURES),
        'mobilenet_v2_130': (mobilenet_v2.mobilenet_v2_130, _V2_FEATURES)}),
    **_family(mobilenet_v3.training_scope, 'bn_decay', 0.997, 'MobilenetV3', {
        'mobilenet_v3_large': (mobilenet_v3.large, _V3_LARGE_FEATURES),
        'mobilenet_v3_small': (mobilenet_v3.small, _V3_SMALL_FEATURES),
        'mobilenet_v3_large_075': (mobilenet_v3.large_075,
                                   _V3_LARGE_FEATURES),
        'mobilenet_v3_small_075': (mobilenet_v3.small_075,
                                   _V3_SMALL_FEATURES),
        'mobilenet_v3_large_minimalistic': (mobilenet_v3.large_minimalistic,
                                            _V3_LARGE_FEATURES),
        'mobilenet_v3_small_minimalistic': (mobilenet_v3.small_minimalistic,
                                            _V3_SMALL_FEATURES)}),
    **_family(mobilenet_v3.training_scope, 'bn_decay', 0.997,
              'MobilenetEdgeTPU', {
                  'mobilenet_edgetpu': (mobilenet_v3.edge_tpu,
                                        _EDGETPU_FEATURES),
                  'mobilenet_edgetpu_075': (mobilenet_v3.edge_tpu_075,
                                            _EDGETPU_FEATURES)}),
    **_family(mobilenet_v4.training_scope, 'bn_decay', 0.99, 'MobilenetV4', {
        'mobilenet_v4_conv_small': (mobilenet_v4.conv_small,
                                    {16: 'layer_11', 32: 'layer_18'}),
        'mobilenet_v4_conv_medium': (mobilenet_v4.conv_medium,
                                     {16: 'layer_12', 32: 'layer_24'}),
        'mobilenet_v4_conv_large': (mobilenet_v4.conv_large,
                                    {16: 'layer_15', 32: 'layer_29'}),
        'mobilenet_v4_hybrid_medium': (mobilenet_v4.hybrid_medium,
                                       {16: 'layer_16', 32: 'layer_33'}),
        'mobilenet_v4_hybrid_large': (mobilenet_v4.hybrid_large,
                                      {16: 'layer_19', 32: 'layer_38'})}),
)

# slim's two maps, derived from the records.
networks_map = {name: record.builder for name, record in NETWORKS.items()}
arg_scopes_map = {name: record.arg_scope for name, record in NETWORKS.items()}


def network_record(name):
  """The `NetworkRecord` of factory name `name` (ValueError if unknown)."""
  check_model_name(name)
  return NETWORKS[name]


def model_names():
  """The valid network names, sorted."""
  return sorted(NETWORKS)


def depth_multiplier_of(name):
  """The depth multiplier that network `name` is built with (1.0 if unset)."""
  check_model_name(name)
  keywords = getattr(NETWORKS[name].builder, 'keywords', None) or {}
  return keywords.get('depth_multiplier', 1.0)


def width_variants(name):
  """{network name: depth multiplier} of `name` and its other widths.

  Width variants share a name up to a three-digit width suffix
  ('mobilenet_v1' and 'mobilenet_v1_025', 'mobilenet_v3_large_075').
  """
  family = re.sub(r'_\d{3}$', '', name)
  return {other: depth_multiplier_of(other) for other in NETWORKS
          if re.sub(r'_\d{3}$', '', other) == family}


def closest_width_variant(name, channel_ratio):
  """The width variant of `name` closest to `channel_ratio` times its width.

  Args:
    name: the network a checkpoint did not fit.
    channel_ratio: saved channels / built channels of a mismatched layer.
  """
  wanted = depth_multiplier_of(name) * channel_ratio
  variants = width_variants(name)
  return min(sorted(variants), key=lambda other: abs(variants[other] - wanted))


def check_model_name(name):
  """Raises ValueError naming the closest valid name unless `name` is known.

  Args:
    name: a network name, e.g. a model_name setting.

  Raises:
    ValueError: for an unknown name; the message suggests the closest valid
      name (if any is close) and lists all valid names, each once.
  """
  if name in NETWORKS:
    return
  close = difflib.get_close_matches(str(name), model_names(), n=1)
  hint = ' Did you mean %r?' % close[0] if close else ''
  raise ValueError('Unknown network name %r.%s Valid names: %s.' %
                   (name, hint, ', '.join(model_names())))


def get_network_fn(name, num_classes, weight_decay=0.0, is_training=False,
                   batch_norm_decay=None):
  """Returns `network_fn(images, **kwargs) -> (logits, end_points)`.

  The function builds the named network inside its arg scope.

  Args:
    name: a key of `NETWORKS`, e.g. 'mobilenet_v1', 'mobilenet_v2_140'
      or 'mobilenet_v3_large'.
    num_classes: number of classes; 0 or None returns the pooled features.
    weight_decay: L2 weight decay of the convolutions.
    is_training: build for training (batch norm statistics, dropout).
    batch_norm_decay: decay of batch norm's moving statistics; None keeps the
      network's default (0.9997 for V1; 0.997 for V2, V3 and EdgeTPU; 0.99 for
      V4). Short runs (a few
      thousand steps) need a smaller one such as 0.99, or the moving
      statistics used at evaluation are still near their initial values.

  Returns:
    `network_fn(images, **kwargs)`; kwargs go to the network (for example
    `depth_multiplier`, `global_pool`, `reuse`). It has `default_image_size`.

  Raises:
    ValueError: if `name` is not a known network.
  """
  record = network_record(name)
  func = record.builder
  arg_scope_fn = record.arg_scope
  arg_scope_kwargs = {'weight_decay': weight_decay}
  if batch_norm_decay is not None:
    if not 0.0 < batch_norm_decay < 1.0:
      raise ValueError('batch_norm_decay must be in (0, 1), got %r.' %
                       (batch_norm_decay,))
    arg_scope_kwargs[record.batch_norm_decay_keyword] = batch_norm_decay

  @functools.wraps(func)
  def network_fn(images, **kwargs):
    kwargs.setdefault('is_training', is_training)
    with slim.arg_scope(arg_scope_fn(**arg_scope_kwargs)):
      return func(images, num_classes=num_classes, **kwargs)

  network_fn.default_image_size = record.default_image_size
  return network_fn
