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
from typing import Callable

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
  """
  builder: Callable
  arg_scope: Callable
  batch_norm_decay_keyword: str
  batch_norm_decay: float
  preprocessing: str
  scope: str

  @property
  def default_image_size(self):
    return getattr(self.builder, 'default_image_size', 224)


def _family(arg_scope, keyword, decay, scope, builders):
  return {name: NetworkRecord(builder, arg_scope, keyword, decay,
                              'inception', scope)
          for name, builder in builders.items()}


# One record per name. Every MobileNet takes inception-style [-1, 1] inputs
# (V4 turns them into timm's mean/std normalization itself).
NETWORKS = dict(
    **_family(mobilenet_v1.mobilenet_v1_arg_scope, 'batch_norm_decay', 0.9997,
              'MobilenetV1', {
                  'mobilenet_v1': mobilenet_v1.mobilenet_v1,
                  'mobilenet_v1_075': mobilenet_v1.mobilenet_v1_075,
                  'mobilenet_v1_050': mobilenet_v1.mobilenet_v1_050,
                  'mobilenet_v1_025': mobilenet_v1.mobilenet_v1_025}),
    **_family(mobilenet_v2.training_scope, 'bn_decay', 0.997, 'MobilenetV2', {
        'mobilenet_v2': mobilenet_v2.mobilenet,
        'mobilenet_v2_140': mobilenet_v2.mobilenet_v2_140,
        'mobilenet_v2_050': mobilenet_v2.mobilenet_v2_050,
        'mobilenet_v2_035': mobilenet_v2.mobilenet_v2_035,
        'mobilenet_v2_075': mobilenet_v2.mobilenet_v2_075,
        'mobilenet_v2_130': mobilenet_v2.mobilenet_v2_130}),
    **_family(mobilenet_v3.training_scope, 'bn_decay', 0.997, 'MobilenetV3', {
        'mobilenet_v3_large': mobilenet_v3.large,
        'mobilenet_v3_small': mobilenet_v3.small,
        'mobilenet_v3_large_075': mobilenet_v3.large_075,
        'mobilenet_v3_small_075': mobilenet_v3.small_075,
        'mobilenet_v3_large_minimalistic': mobilenet_v3.large_minimalistic,
        'mobilenet_v3_small_minimalistic': mobilenet_v3.small_minimalistic}),
    **_family(mobilenet_v3.training_scope, 'bn_decay', 0.997,
              'MobilenetEdgeTPU', {
                  'mobilenet_edgetpu': mobilenet_v3.edge_tpu,
                  'mobilenet_edgetpu_075': mobilenet_v3.edge_tpu_075}),
    **_family(mobilenet_v4.training_scope, 'bn_decay', 0.99, 'MobilenetV4', {
        'mobilenet_v4_conv_small': mobilenet_v4.conv_small,
        'mobilenet_v4_conv_medium': mobilenet_v4.conv_medium,
        'mobilenet_v4_conv_large': mobilenet_v4.conv_large,
        'mobilenet_v4_hybrid_medium': mobilenet_v4.hybrid_medium,
        'mobilenet_v4_hybrid_large': mobilenet_v4.hybrid_large}),
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
  return sorted(networks_map)


def depth_multiplier_of(name):
  """The depth multiplier that network `name` is built with (1.0 if unset)."""
  check_model_name(name)
  keywords = getattr(networks_map[name], 'keywords', None) or {}
  return keywords.get('depth_multiplier', 1.0)


def width_variants(name):
  """{network name: depth multiplier} of `name` and its other widths.

  Width variants share a name up to a three-digit width suffix
  ('mobilenet_v1' and 'mobilenet_v1_025', 'mobilenet_v3_large_075').
  """
  family = re.sub(r'_\d{3}$', '', name)
  return {other: depth_multiplier_of(other) for other in networks_map
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
  if name in networks_map:
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
    name: a key of `networks_map`, e.g. 'mobilenet_v1', 'mobilenet_v2_140'
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
  func = networks_map[name]
  arg_scope_fn = arg_scopes_map[name]
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

  network_fn.default_image_size = getattr(func, 'default_image_size', 224)
  return network_fn
