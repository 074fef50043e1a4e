"""Weights as a list of layers, the common ground of every weight source.

Keras, timm and slim name their tensors differently but build the MobileNets
from the same layers in the same order: a convolution (full or depthwise),
optionally its bias, optionally its batch norm. Each source module turns its
file into a list of `Layer`s in TensorFlow's layouts (HWIO kernels, HWC1
depthwise kernels); `pair_layers` matches that list with the slim network's,
layer by layer, so one checked mapping serves all sources.

Pure numpy: no TensorFlow here.
"""

import numpy as np

from core import errors

CONV = 'conv'
DEPTHWISE = 'depthwise'

# The logit given to slim's background class when 1000-class weights become
# a 1001-class head: exp() of it is 0 in float32 next to any real logit, so
# the 1000 ImageNet probabilities stay exactly the source's.
BACKGROUND_LOGIT = -1e4


# Slim's V3 squeeze-excite gate is relu6(x + 3) * 0.16667
# (nets/mobilenet/mobilenet_v3._hard_sigmoid, the released models' constant);
# Keras and timm gate with relu6(x + 3) / 6. The constant multiplies after
# the clip, so slim's gate is the source's times GATE_RATIO everywhere, and
# the convolution after the gate (linear) takes 1 / GATE_RATIO exactly.
SLIM_GATE_SCALE = np.float32(0.16667)
SOURCE_GATE_SCALE = np.float32(1.0) / np.float32(6.0)
GATE_RATIO = float(SLIM_GATE_SCALE) / float(SOURCE_GATE_SCALE)
_GATE_SCOPE_SUFFIX = 'squeeze_excite/Conv_1'


class WeightsError(errors.InputError):
  """A weights file that cannot be read or does not fit the network."""


class BatchNorm(object):
  """A batch norm's four tensors and its epsilon."""

  def __init__(self, gamma, beta, mean, variance, epsilon):
    self.gamma = np.asarray(gamma, np.float32)
    self.beta = np.asarray(beta, np.float32)
    self.mean = np.asarray(mean, np.float32)
    self.variance = np.asarray(variance, np.float32)
    self.epsilon = float(epsilon)

  def with_epsilon(self, epsilon):
    """The same normalization computed with another `epsilon`.

    gamma / sqrt(variance + eps) must stay the same: the variance absorbs
    the difference where it can stay >= 0, gamma elsewhere.
    """
    if epsilon == self.epsilon:
      return self
    variance = self.variance.astype(np.float64) + self.epsilon - epsilon
    gamma = self.gamma.astype(np.float64)
    negative = variance < 0
    gamma[negative] *= np.sqrt(epsilon / (self.variance[negative] +
                                          self.epsilon))
    variance[negative] = 0.0
    return BatchNorm(gamma, self.beta, self.mean, variance, epsilon)


class Layer(object):
  """One convolution with its optional bias and batch norm.

  Attributes:
    name: where it came from, for messages (a Keras layer, a timm module,
      a slim scope).
    kind: CONV or DEPTHWISE.
    kernel: HWIO (conv) or HWC1 (depthwise) float32 array.
    bias: 1-D array or None.
    batch_norm: a BatchNorm or None.
  """

  def __init__(self, name, kind, kernel, bias=None, batch_norm=None):
    self.name = name
    self.kind = kind
    self.kernel = np.asarray(kernel, np.float32)
    self.bias = None if bias is None else np.asarray(bias, np.float32)
    self.batch_norm = batch_norm

  def describe(self):
    parts = ['%s %s' % (self.kind, list(self.kernel.shape))]
    if self.bias is not None:
      parts.append('bias')
    if self.batch_norm is not None:
      parts.append('batch norm')
    return '%s (%s)' % (self.name, ', '.join(parts))


class SlimLayer(object):
  """The shape of one layer of a slim network and its variable names.

  Attributes:
    scope: e.g. 'MobilenetV1/Conv2d_0'.
    kind: CONV or DEPTHWISE.
    kernel_shape: the kernel's shape.
    variables: role ('kernel', 'bias', 'gamma', 'beta', 'mean',
      'variance') -> variable name.
    epsilon: the batch norm's epsilon, or None without batch norm.
  """

  def __init__(self, scope, kind, kernel_shape, variables, epsilon=None):
    self.scope = scope
    self.kind = kind
    self.kernel_shape = tuple(kernel_shape)
    self.variables = variables
    self.epsilon = epsilon

  @property
  def has_bias(self):
    return 'bias' in self.variables

  @property
  def has_batch_norm(self):
    return 'gamma' in self.variables

  def describe(self):
    parts = ['%s %s' % (self.kind, list(self.kernel_shape))]
    if self.has_bias:
      parts.append('bias')
    if self.has_batch_norm:
      parts.append('batch norm')
    return '%s (%s)' % (self.scope, ', '.join(parts))


_BATCH_NORM_ROLES = {'BatchNorm/gamma': 'gamma', 'BatchNorm/beta': 'beta',
                     'BatchNorm/moving_mean': 'mean',
                     'BatchNorm/moving_variance': 'variance'}


def _epsilon_of(epsilons, scope):
  # Ops may sit in a name scope that repeats the network's ('MobilenetV1/
  # MobilenetV1/Conv2d_0/BatchNorm') while the variables' scope does not.
  for op_scope, epsilon in epsilons.items():
    if op_scope == scope or op_scope.endswith('/' + scope):
      return epsilon
  raise ValueError('no batch-norm op found for %s' % scope)


def group_slim_variables(shapes, epsilons):
  """Slim variables (name -> shape, in creation order) as SlimLayers.

  Args:
    shapes: ordered (name, shape) pairs of the network's variables.
    epsilons: batch-norm op's scope ('.../BatchNorm') -> its epsilon.
  """
  layers = []
  for name, shape in shapes:
    scope, _, leaf = name.rpartition('/')
    if leaf in ('weights', 'depthwise_weights'):
      kind = DEPTHWISE if leaf == 'depthwise_weights' else CONV
      layers.append(SlimLayer(scope, kind, shape, {'kernel': name}))
    elif leaf == 'biases':
      layers[-1].variables['bias'] = name
    else:
      layer_scope, _, tail = scope.rpartition('/')
      role = _BATCH_NORM_ROLES.get(tail + '/' + leaf)
      if role is None or not layers or layers[-1].scope != layer_scope:
        raise ValueError('unexpected slim variable %s' % name)
      layers[-1].variables[role] = name
      layers[-1].epsilon = _epsilon_of(epsilons, scope)
  return layers


def _fits(slim_layer, layer, is_last):
  """Whether `layer` can fill `slim_layer` (the class count may differ)."""
  if (slim_layer.kind != layer.kind or
      slim_layer.has_bias != (layer.bias is not None) or
      slim_layer.has_batch_norm != (layer.batch_norm is not None)):
    return False
  if is_last:
    return slim_layer.kernel_shape[:-1] == layer.kernel.shape[:-1]
  return slim_layer.kernel_shape == layer.kernel.shape


def first_mismatches(slim_layers, layers, count=3):
  """Up to `count` (slim, source) description pairs that do not fit.

  The lists fit when both have the same length and every pair fits; a
  missing layer on either side is described as 'nothing'.
  """
  found = []
  for index in range(max(len(slim_layers), len(layers))):
    slim_layer = slim_layers[index] if index < len(slim_layers) else None
    layer = layers[index] if index < len(layers) else None
    is_last = index == len(slim_layers) - 1
    if slim_layer and layer and _fits(slim_layer, layer, is_last):
      continue
    found.append((slim_layer.describe() if slim_layer else 'nothing',
                  layer.describe() if layer else 'nothing'))
    if len(found) == count:
      break
  return found


def head_classes(layers):
  """The class count of a layer list's classifier (its last layer)."""
  return int(layers[-1].kernel.shape[-1])


def adapt_head(layer, num_classes):
  """The classifier `layer` with `num_classes` outputs.

  1000 source classes become 1001 by adding slim's background class at
  index 0, with zero weights and a bias that never wins.

  Raises:
    WeightsError: for any other change of the class count.
  """
  classes = layer.kernel.shape[-1]
  if classes == num_classes:
    return layer
  if classes == 1000 and num_classes == 1001:
    kernel = np.concatenate(
        [np.zeros(layer.kernel.shape[:-1] + (1,), np.float32), layer.kernel],
        axis=-1)
    bias = np.concatenate([[BACKGROUND_LOGIT], layer.bias])
    return Layer(layer.name, layer.kind, kernel, bias, layer.batch_norm)
  raise WeightsError(
      'the weights have %d classes, but %s asks for %d. Pass %s (the '
      'class count of the weights)%s.' %
      (classes, errors.ref('num_classes', num_classes), num_classes,
       errors.ref('num_classes', classes),
       ' or 1001 (the 1000 ImageNet classes plus slim\'s background class '
       'at index 0)' if classes == 1000 else ''))


def _gate_ratio_after(slim_layer):
  """How much larger slim's output after `slim_layer` is than the source's."""
  return (GATE_RATIO if slim_layer.scope.endswith(_GATE_SCOPE_SUFFIX)
          else 1.0)


def slim_values(slim_layers, layers):
  """{slim variable name: array} filling `slim_layers` from `layers`.

  The caller has checked that the lists fit (first_mismatches is empty);
  the head must already have the slim network's class count.
  """
  values = {}
  gate_ratio = 1.0
  for slim_layer, layer in zip(slim_layers, layers):
    names = slim_layer.variables
    values[names['kernel']] = (layer.kernel / gate_ratio).astype(np.float32)
    gate_ratio = _gate_ratio_after(slim_layer)
    if slim_layer.has_bias:
      values[names['bias']] = layer.bias
    if slim_layer.has_batch_norm:
      norm = layer.batch_norm.with_epsilon(slim_layer.epsilon)
      values[names['gamma']] = norm.gamma.astype(np.float32)
      values[names['beta']] = norm.beta.astype(np.float32)
      values[names['mean']] = norm.mean.astype(np.float32)
      values[names['variance']] = norm.variance.astype(np.float32)
  return values


def layers_from_slim_values(slim_layers, values):
  """The inverse of slim_values: Layers read from slim variable values."""
  layers = []
  gate_ratio = 1.0
  for slim_layer in slim_layers:
    names = slim_layer.variables
    kernel = values[names['kernel']] * gate_ratio
    gate_ratio = _gate_ratio_after(slim_layer)
    norm = None
    if slim_layer.has_batch_norm:
      norm = BatchNorm(values[names['gamma']], values[names['beta']],
                       values[names['mean']], values[names['variance']],
                       slim_layer.epsilon)
    layers.append(Layer(slim_layer.scope, slim_layer.kind, kernel,
                        values[names['bias']] if slim_layer.has_bias else None,
                        norm))
  return layers
