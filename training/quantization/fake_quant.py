"""Fake-quantization ops with learnt ranges, inserted after a producer op.

Each inserted quantizer owns two scalar variables, `<prefix>/min` and
`<prefix>/max` (initial values -6/+6 unless told otherwise, not trainable).
In eval graphs they are only read. In training graphs weights take the
range of the current batch (clamped to include 0) and activations an
exponential moving average of it (decay 0.999), as `tf.contrib.quantize`
does, so checkpoints of either restore into the other.
"""

from core import tf_compat  # noqa: F401  (must run before TensorFlow is used)
import tensorflow.compat.v1 as tf
from tensorflow.python.training import moving_averages

from training.quantization import rewiring

FAKE_QUANT_TYPES = frozenset(['FakeQuantWithMinMaxVars',
                              'FakeQuantWithMinMaxArgs',
                              'FakeQuantWithMinMaxVarsPerChannel'])
STEP_NAME = 'fake_quantization_step'
EMA_DECAY = 0.999
NUM_BITS = 8


class Settings(object):
  """What one rewrite inserts: training or eval ops, bits, delay."""

  def __init__(self, is_training, quant_delay=None, num_bits=NUM_BITS,
               ema_decay=EMA_DECAY):
    self.is_training = is_training
    self.quant_delay = quant_delay
    self.num_bits = num_bits
    self.ema_decay = ema_decay
    # Ops whose output is a (possibly delayed) quantized tensor.
    self.quantized_outputs = set()


def quantization_step(graph):
  """The step counter that delays quantization; incremented once per run."""
  try:
    return graph.get_tensor_by_name(STEP_NAME + '/Identity:0')
  except KeyError:
    pass
  with graph.name_scope(None):
    step = tf.get_variable(
        STEP_NAME, shape=[], dtype=tf.int64,
        initializer=tf.zeros_initializer(), trainable=False,
        collections=[tf.GraphKeys.GLOBAL_VARIABLES],
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    with graph.name_scope(step.op.name + '/'):
      # Through an identity, ref and resource variables give the same name.
      return tf.identity(tf.assign_add(step, 1))


def _followed_by_fake_quant(tensor):
  pending = list(tensor.consumers())
  while pending:
    op = pending.pop()
    if op.type in FAKE_QUANT_TYPES:
      return True
    if op.type in ('Reshape', 'Identity'):
      for output in op.outputs:
        pending.extend(output.consumers())
  return False


def _range_variable(name, initial):
  return tf.get_variable(
      name, shape=[], initializer=tf.constant_initializer(initial),
      collections=[tf.GraphKeys.GLOBAL_VARIABLES], trainable=False,
      aggregation=tf.VariableAggregation.MEAN)


def _quantize(inputs, settings, prefix, moving_average, init_min, init_max,
              narrow_range):
  with tf.variable_scope(None, default_name=prefix, values=[inputs]) as scope:
    scope.set_partitioner(None)
    low = _range_variable('min', init_min)
    high = _range_variable('max', init_max)
    if settings.is_training:
      # The range always includes zero, so that zero is exact.
      batch_low = tf.minimum(tf.reduce_min(inputs, name='BatchMin'), 0.0)
      batch_high = tf.maximum(tf.reduce_max(inputs, name='BatchMax'), 0.0)
      if moving_average:
        low = moving_averages.assign_moving_average(
            low, batch_low, settings.ema_decay, name='AssignMinEma')
        high = moving_averages.assign_moving_average(
            high, batch_high, settings.ema_decay, name='AssignMaxEma')
      else:
        low = tf.assign(low, batch_low, name='AssignMinLast')
        high = tf.assign(high, batch_high, name='AssignMaxLast')
    return tf.quantization.fake_quant_with_min_max_vars(
        inputs, low, high, num_bits=settings.num_bits,
        narrow_range=narrow_range)


def _delay(quantized, inputs, settings, prefix):
  """Before `quant_delay` steps the float `inputs` pass instead."""
  graph = quantized.graph
  active = tf.greater_equal(quantization_step(graph), settings.quant_delay,
                            name=prefix + '/activate_quant')
  output = tf.cond(active, lambda: quantized, lambda: inputs,
                   name=prefix + '/delayed_quant')
  # TF 2's functional cond ends in an Identity of its If op: remember both.
  settings.quantized_outputs.add(output.op)
  if output.op.type == 'Identity':
    settings.quantized_outputs.add(output.op.inputs[0].op)
  return output


def insert(settings, context, name, producer, consumers, moving_average=True,
           init_min=-6.0, init_max=6.0, narrow_range=False):
  """Quantizes `producer`'s first output for `consumers`.

  Variables go under `<context>/<name>` (uniquified like any variable
  scope). Nothing is inserted when the output already feeds a fake quant.

  Raises:
    QuantizationError: if a consumer does not read the output.
  """
  prefix = context + '/' + name if context else name
  current = tf.get_default_graph().get_name_scope()
  if current and prefix.startswith(current + '/'):
    prefix = prefix[len(current) + 1:]
  inputs = producer.outputs[0]
  if _followed_by_fake_quant(inputs):
    return
  output = _quantize(inputs, settings, prefix, moving_average, init_min,
                     init_max, narrow_range)
  if settings.quant_delay and settings.quant_delay > 0:
    output = _delay(output, inputs, settings, prefix)
  if consumers:
    if rewiring.reroute(output, inputs, only=consumers) < len(consumers):
      raise rewiring.QuantizationError(
          'Could not quantize the input of %s: it does not read %s.' %
          (', '.join(sorted(c.name for c in consumers)), inputs.name))
