"""The generic, table-driven MobileNet builder (V2, V3, EdgeTPU and V4).

A network is described by a `conv_defs` dict:

* `defaults`: a mapping from tuples of layer functions to keyword arguments,
  entered as nested `slim.arg_scope`s around the whole network;
* `spec`: the list of layers, each made by `op(layer_fn, **params)`; layer
  `i` (from 0) becomes end_point `layer_{i+1}`;
* optionally `overrides`, entered after `defaults`;
* optionally `layer_scopes`: when True, layer `i` builds in variable scope
  `layer_{i+1}`, its end_point name (V4), rather than under its
  function's default name (V2 / V3, whose released checkpoints use those).

`mobilenet_base` builds the layers of a spec with a depth multiplier, an
optional output stride (atrous convolution) and explicit padding;
`mobilenet` adds the classifier head. Channel counts under a depth multiplier
come from the arg-scopable `depth_multiplier`, so callers can change
`min_depth` / `divisible_by` with
`slim.arg_scope([mobilenet.depth_multiplier], min_depth=...)`.
"""


import collections
import contextlib
import inspect

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets.mobilenet import conv_blocks

VALID_OUTPUT_STRIDES = (8, 16, 32)

_Op = collections.namedtuple('Op', ['op', 'params', 'multiplier_func'])


@slim.add_arg_scope
def depth_multiplier(output_params, multiplier, divisible_by=8, min_depth=8,
                     **unused_kwargs):
  """Scales `output_params['num_outputs']` in place by the depth multiplier.

  Arg-scopable, so detection and segmentation code can set `min_depth` and
  `divisible_by` for a whole network.

  Args:
    output_params: the keyword arguments of one layer (a dict, modified).
    multiplier: the depth multiplier.
    divisible_by: depths are rounded to a multiple of this.
    min_depth: the smallest depth.
    **unused_kwargs: ignored (room for arg-scope extras).
  """
  if 'num_outputs' not in output_params:
    return
  output_params['num_outputs'] = conv_blocks.make_divisible(
      output_params['num_outputs'] * multiplier, divisible_by, min_depth)


def op(opfunc, multiplier_func=depth_multiplier, **params):
  """Describes one layer of a spec: `opfunc(net, **params)`.

  Args:
    opfunc: the layer function, e.g. `slim.conv2d` or
      `conv_blocks.expanded_conv`.
    multiplier_func: how the depth multiplier changes `params`
      (default: scale and round `num_outputs`).
    **params: keyword arguments of the layer.

  Returns:
    An `Op(op, params, multiplier_func)` namedtuple.
  """
  multiplier_func = params.pop('multiplier_transform', multiplier_func)
  return _Op(opfunc, params=params, multiplier_func=multiplier_func)


@contextlib.contextmanager
def _nested_arg_scopes(scopes):
  """Enters `slim.arg_scope(funcs, **kwargs)` for each (funcs, kwargs) item."""
  items = list(scopes.items()) if hasattr(scopes, 'items') else list(scopes)
  with contextlib.ExitStack() as stack:
    for funcs, kwargs in items:
      stack.enter_context(slim.arg_scope(funcs, **kwargs))
    yield


@slim.add_arg_scope
def apply_activation(x, name=None, activation_fn=None):
  """`activation_fn(x, name=name)`, or x itself when there is no activation.

  Arg-scopable, so a spec can set one activation for all its uses.
  """
  if not activation_fn:
    return x
  return activation_fn(x, name=name)


class NoOpScope(object):
  """A context manager that does nothing (what an empty arg scope becomes)."""

  def __enter__(self):
    return None

  def __exit__(self, exc_type, exc_value, traceback):
    return False


def safe_arg_scope(funcs, **kwargs):
  """`slim.arg_scope` that leaves out arguments whose value is None.

  `is_training=None` therefore leaves batch norm's mode to an outer scope.

  Args:
    funcs: the functions to scope.
    **kwargs: their defaults; None values are dropped.

  Returns:
    The arg_scope context manager, or a `NoOpScope` when every value was
    None.
  """
  given = {}
  for key, value in kwargs.items():
    if value is not None:
      given[key] = value
  if not given:
    return NoOpScope()
  return slim.arg_scope(funcs, **given)


def _check_rank4(inputs, name):
  if inputs.get_shape().ndims != 4:
    raise ValueError(
        '%s must be a rank-4 [batch, height, width, channels] tensor, got '
        'shape %s. Add a batch dimension (e.g. tf.expand_dims(image, 0)).' %
        (name, inputs.get_shape()))


def check_depth_multiplier(value, name='depth_multiplier'):
  """Raises ValueError unless `value` is a positive number."""
  if value is None or value <= 0:
    raise ValueError('%s must be a number > 0 (1.0 is the full-width '
                     'network), got %r.' % (name, value))


def check_output_stride(output_stride):
  """Raises ValueError unless `output_stride` is None or 8, 16, 32."""
  if output_stride is not None and output_stride not in VALID_OUTPUT_STRIDES:
    raise ValueError(
        'output_stride must be None or one of %s, got %r.' %
        (', '.join(str(s) for s in VALID_OUTPUT_STRIDES), output_stride))


def _layer_outputs(new_ops, layer_scope, end_point):
  """(name, tensor) of the '*output' ops a layer made in its own scope."""
  found = []
  for operation in new_ops:
    scope_name, _, base = operation.name.rpartition('/')
    if scope_name == layer_scope and base.endswith('output'):
      found.append(('%s/%s' % (end_point, base), operation.outputs[0]))
  return found


class _StridePlanner(object):
  """Chooses each layer's stride and atrous rate under an output stride.

  Layers keep the strides of the spec until the strides applied so far
  multiply up to `output_stride`. Every later layer runs at stride 1, and
  the stride it gives up multiplies the dilation of the layers after it.
  """

  def __init__(self, output_stride):
    self._target = output_stride
    self._applied = 1
    self._dilation = 1

  def place(self, spec_stride):
    """Returns (stride, rate) for a layer whose spec asks for spec_stride."""
    if self._target is None or self._applied != self._target:
      self._applied *= spec_stride
      return spec_stride, 1
    rate = self._dilation
    self._dilation *= spec_stride
    return 1, rate


def _prepare_layer(opdef, multiplier, planner, use_explicit_padding):
  """The keyword arguments of one spec layer, and the padding it needs.

  Returns:
    (params, padding): padding is None, or (kernel_size, rate) when the
    builder must pad the layer's input itself (explicit padding of a plain
    convolution; blocks pad internally and get `use_explicit_padding`).
  """
  params = dict(opdef.params)
  opdef.multiplier_func(params, multiplier)
  stride, rate = planner.place(params.get('stride', 1))
  if 'stride' in params:
    params['stride'] = stride
  # A 1x1 kernel sees no neighbours, so dilating it changes nothing.
  if rate > 1 and tuple(params.get('kernel_size', ())) != (1, 1):
    params['rate'] = rate
  padding = None
  if use_explicit_padding and _takes_explicit_padding(opdef.op):
    # Blocks pad in front of their own spatial convolutions. Padding their
    # input instead would grow the map at every block (V3 specs give blocks
    # a kernel_size).
    params['use_explicit_padding'] = True
  elif use_explicit_padding and 'kernel_size' in params:
    padding = (params['kernel_size'], rate)
  elif use_explicit_padding:
    params['use_explicit_padding'] = True
  return params, padding


def _takes_explicit_padding(func):
  """Whether `func` has a `use_explicit_padding` parameter."""
  try:
    parameters = inspect.signature(func).parameters
  except (TypeError, ValueError):
    return False
  return 'use_explicit_padding' in parameters


@contextlib.contextmanager
def _network_scopes(inputs, scope, is_training, conv_defs,
                    use_explicit_padding):
  """Enters the network's variable scope and the spec's arg scopes.

  Ops go to the variable scope's own name scope ('MobilenetV2/Conv/...', as
  in the released graphs), even when `scope` is a VariableScope re-entered
  from inside itself.
  """
  overrides = dict(conv_defs.get('overrides', {}))
  if use_explicit_padding:
    overrides[(slim.conv2d, slim.separable_conv2d)] = {'padding': 'VALID'}
  with contextlib.ExitStack() as stack:
    var_scope = stack.enter_context(tf.variable_scope(
        scope, default_name='Mobilenet', values=[inputs]))
    stack.enter_context(tf.name_scope(var_scope.original_name_scope))
    stack.enter_context(
        safe_arg_scope([slim.batch_norm], is_training=is_training))
    stack.enter_context(_nested_arg_scopes(conv_defs.get('defaults', {})))
    stack.enter_context(_nested_arg_scopes(overrides))
    yield var_scope


@slim.add_arg_scope
def mobilenet_base(inputs,
                   conv_defs,
                   multiplier=1.0,
                   final_endpoint=None,
                   output_stride=None,
                   use_explicit_padding=False,
                   scope=None,
                   is_training=False):
  """Builds the layers of `conv_defs['spec']` (no classifier).

  Args:
    inputs: a [batch, height, width, channels] tensor.
    conv_defs: the network description (see the module docstring).
    multiplier: depth multiplier for all layers (see `depth_multiplier`).
    final_endpoint: stop after this layer, 'layer_1' ... 'layer_N'; None
      builds all.
    output_stride: None, 8, 16 or 32; once the layers reach this stride the
      following ones run with stride 1 and an atrous rate that doubles at
      each stride they skip.
    use_explicit_padding: pad explicitly and run convolutions VALID.
    scope: variable scope (name or VariableScope); default 'Mobilenet'.
    is_training: batch norm mode; None leaves it to an outer arg_scope.

  Returns:
    (net, end_points): the last tensor, and a dict of `layer_N` tensors
    followed by the blocks' named outputs (`layer_N/expansion_output`,
    `layer_N/depthwise_output`, `layer_N/output`).

  Raises:
    ValueError: for a multiplier <= 0, an unknown final_endpoint, an
      output_stride other than None/8/16/32, or inputs not of rank 4.
  """
  check_depth_multiplier(multiplier)
  check_output_stride(output_stride)
  _check_rank4(inputs, 'inputs')
  spec = conv_defs['spec']
  layer_names = ['layer_%d' % number for number in range(1, len(spec) + 1)]
  if final_endpoint is not None and final_endpoint not in layer_names:
    raise ValueError('final_endpoint must be one of layer_1 ... layer_%d, '
                     'got %r.' % (len(spec), final_endpoint))
  if final_endpoint is not None:
    layer_count = layer_names.index(final_endpoint) + 1
  else:
    layer_count = len(spec)

  graph = inputs.graph
  planner = _StridePlanner(output_stride)
  layer_outputs = {}
  named_outputs = []
  net = inputs
  with _network_scopes(inputs, scope, is_training, conv_defs,
                       use_explicit_padding):
    for name, opdef in zip(layer_names[:layer_count], spec):
      params, padding = _prepare_layer(opdef, multiplier, planner,
                                       use_explicit_padding)
      if conv_defs.get('layer_scopes'):
        params.setdefault('scope', name)
      if padding is not None:
        net = conv_blocks.fixed_padding(net, *padding)
      ops_before = len(graph.get_operations())
      net = opdef.op(net, **params)
      layer_outputs[name] = net
      named_outputs += _layer_outputs(graph.get_operations()[ops_before:],
                                      net.op.name.rpartition('/')[0], name)
  # The released models list every layer_N before the blocks' named outputs.
  end_points = dict(layer_outputs)
  end_points.update(named_outputs)
  return net, end_points


def global_pool(input_tensor, pool_op=tf.nn.avg_pool):
  """Pools over the whole spatial extent, keeping a 1x1 spatial shape.

  Args:
    input_tensor: a [batch, height, width, channels] tensor.
    pool_op: the pooling op for static shapes (`tf.nn.avg_pool` or
      `tf.nn.max_pool`); dynamic shapes use a mean.

  Returns:
    A [batch, 1, 1, channels] tensor.
  """
  shape = input_tensor.get_shape().as_list()
  if shape[1] is None or shape[2] is None:
    return tf.reduce_mean(input_tensor, [1, 2], keepdims=True,
                          name='global_pool')
  return pool_op(input_tensor, ksize=[1, shape[1], shape[2], 1],
                 strides=[1, 1, 1, 1], padding='VALID')


@slim.add_arg_scope
def mobilenet(inputs,
              num_classes=1001,
              prediction_fn=slim.softmax,
              reuse=None,
              scope='Mobilenet',
              base_only=False,
              use_reduce_mean_for_pooling=False,
              **mobilenet_args):
  """A MobileNet classifier: `mobilenet_base`, global pool, dropout, logits.

  Args:
    inputs: a [batch, height, width, channels] tensor.
    num_classes: number of classes; 0 or None returns the pooled features.
    prediction_fn: maps logits to `end_points['Predictions']`; None skips it.
    reuse: reuse the variables of an earlier build in the same scope.
    scope: variable scope (name or VariableScope).
    base_only: return after `mobilenet_base` (no pooling, no logits).
    use_reduce_mean_for_pooling: pool with a mean instead of an AvgPool op.
    **mobilenet_args: passed to `mobilenet_base` (`conv_defs`, `multiplier`,
      `final_endpoint`, `output_stride`, `use_explicit_padding`,
      `is_training`), except `dropout_keep_prob`: the keep probability of
      the dropout before the logits (None, the default, leaves it to an
      outer arg_scope; `training_scope` sets 0.8).

  Returns:
    (logits, end_points); logits are [batch, num_classes].

  Raises:
    ValueError: if inputs are not of rank 4 (and see `mobilenet_base`).
  """
  is_training = mobilenet_args.get('is_training', False)
  dropout_keep_prob = mobilenet_args.pop('dropout_keep_prob', None)
  _check_rank4(inputs, 'inputs')
  with tf.variable_scope(scope, 'Mobilenet', [inputs], reuse=reuse) as scope:
    # Named as slim names them (<scope>/input, <scope>/embedding,
    # <scope>/Logits/ReduceMean, <scope>/Logits/output): graph consumers
    # fetch tensors by these names.
    inputs = tf.identity(inputs, 'input')
    net, end_points = mobilenet_base(inputs, scope=scope, **mobilenet_args)
    if base_only:
      return net, end_points
    net = tf.identity(net, name='embedding')
    with tf.variable_scope('Logits'):
      if use_reduce_mean_for_pooling:
        net = tf.reduce_mean(net, [1, 2], keepdims=True, name='ReduceMean')
      else:
        net = global_pool(net)
      end_points['global_pool'] = net
      if not num_classes:
        return net, end_points
      dropout_args = {}
      if is_training is not None:
        dropout_args['is_training'] = is_training
      if dropout_keep_prob is not None:
        dropout_args['keep_prob'] = dropout_keep_prob
      net = slim.dropout(net, scope='Dropout', **dropout_args)
      logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                           normalizer_fn=None,
                           biases_initializer=tf.zeros_initializer(),
                           scope='Conv2d_1c_1x1')
      logits = tf.identity(tf.squeeze(logits, [1, 2]), name='output')
    end_points['Logits'] = logits
    if prediction_fn:
      end_points['Predictions'] = prediction_fn(logits, 'Predictions')
  return logits, end_points


def training_scope(is_training=True,
                   weight_decay=0.00004,
                   stddev=0.09,
                   dropout_keep_prob=0.8,
                   bn_decay=0.997):
  """The arg_scope MobileNet V2, V3 and EdgeTPU were trained with (V4 has its own).

  Args:
    is_training: training mode of batch norm, dropout and the builders;
      None leaves it to an outer arg_scope.
    weight_decay: L2 weight decay of the (non-depthwise) convolutions.
    stddev: stddev of the truncated-normal initializer; < 0 uses Xavier.
    dropout_keep_prob: keep probability of dropout; None leaves it open.
    bn_decay: batch norm moving-average decay.

  Returns:
    An arg_scope to use as `with slim.arg_scope(training_scope()):`.
  """
  # Only training-time settings belong here: anything that changes the
  # inference graph goes into the conv_defs instead.
  regularized = [slim.conv2d]
  weighted_layers = [slim.conv2d, slim.fully_connected, slim.separable_conv2d]
  if stddev >= 0:
    initializer = tf.truncated_normal_initializer(stddev=stddev)
  else:
    initializer = slim.initializers.xavier_initializer()
  # Batch norm and dropout drop None values (left to an outer scope); the
  # last scope entered must be a real one, since its dict is the result.
  scopes = [
      safe_arg_scope([slim.batch_norm], decay=bn_decay,
                     is_training=is_training),
      safe_arg_scope([slim.dropout], is_training=is_training,
                     keep_prob=dropout_keep_prob),
      slim.arg_scope(weighted_layers, weights_initializer=initializer,
                     normalizer_fn=slim.batch_norm),
      slim.arg_scope([mobilenet_base, mobilenet], is_training=is_training),
      slim.arg_scope(regularized,
                     weights_regularizer=slim.l2_regularizer(weight_decay)),
      # Depthwise filters have few weights; decaying them hurts accuracy.
      slim.arg_scope([slim.separable_conv2d], weights_regularizer=None),
  ]
  with contextlib.ExitStack() as stack:
    for arg_scope in scopes:
      current = stack.enter_context(arg_scope)
    return current
