"""Optimizers and learning-rate schedules, each built from its name.

`OPTIMIZERS` and `LEARNING_RATE_DECAY_TYPES` are the only lists of the
names; the flag definitions take their choices from here.
"""


import collections
import typing

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

class OptimizerConfig(typing.NamedTuple):
  """Hyper-parameters of every optimizer; each optimizer reads its own.

  Defaults are the training script's flag defaults (slim's).
  """
  optimizer: str = 'rmsprop'
  opt_epsilon: float = 1.0
  adadelta_rho: float = 0.95
  adagrad_initial_accumulator_value: float = 0.1
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  ftrl_learning_rate_power: float = -0.5
  ftrl_initial_accumulator_value: float = 0.1
  ftrl_l1: float = 0.0
  ftrl_l2: float = 0.0
  momentum: float = 0.9
  rmsprop_momentum: float = 0.9
  rmsprop_decay: float = 0.9


class LearningRateConfig(typing.NamedTuple):
  """The schedule: a base rate and how it falls with the global step."""
  learning_rate_decay_type: str = 'exponential'
  learning_rate: float = 0.01
  end_learning_rate: float = 0.0001
  learning_rate_decay_factor: float = 0.94
  num_epochs_per_decay: float = 2.0


def _adadelta(lr, c):
  return tf.train.AdadeltaOptimizer(lr, rho=c.adadelta_rho,
                                    epsilon=c.opt_epsilon)


def _adagrad(lr, c):
  return tf.train.AdagradOptimizer(
      lr, initial_accumulator_value=c.adagrad_initial_accumulator_value)


def _adam(lr, c):
  return tf.train.AdamOptimizer(lr, beta1=c.adam_beta1, beta2=c.adam_beta2,
                                epsilon=c.opt_epsilon)


def _ftrl(lr, c):
  return tf.train.FtrlOptimizer(
      lr, learning_rate_power=c.ftrl_learning_rate_power,
      initial_accumulator_value=c.ftrl_initial_accumulator_value,
      l1_regularization_strength=c.ftrl_l1,
      l2_regularization_strength=c.ftrl_l2)


def _momentum(lr, c):
  return tf.train.MomentumOptimizer(lr, momentum=c.momentum, name='Momentum')


def _rmsprop(lr, c):
  return tf.train.RMSPropOptimizer(lr, decay=c.rmsprop_decay,
                                   momentum=c.rmsprop_momentum,
                                   epsilon=c.opt_epsilon)


def _sgd(lr, unused_config):
  return tf.train.GradientDescentOptimizer(lr)


# Optimizer name -> builder(learning_rate, OptimizerConfig).
_BUILDERS = collections.OrderedDict([
    ('adadelta', _adadelta), ('adagrad', _adagrad), ('adam', _adam),
    ('ftrl', _ftrl), ('momentum', _momentum), ('sgd', _sgd),
    ('rmsprop', _rmsprop)])

OPTIMIZERS = tuple(_BUILDERS)
LEARNING_RATE_DECAY_TYPES = ('fixed', 'exponential', 'polynomial')


class UnknownNameError(errors.InputError):
  """An optimizer or learning-rate schedule that does not exist."""


def decay_steps(num_samples_per_epoch, num_epochs_per_decay, batch_size,
                replicas_to_aggregate=1):
  """Global steps between two decays of the learning rate (at least 1).

  An epoch counts this worker's batches; a synchronous step aggregates
  `replicas_to_aggregate` of them, so it covers that many batches.
  """
  steps = num_samples_per_epoch * num_epochs_per_decay / batch_size
  return max(1, int(steps / replicas_to_aggregate))


def learning_rate(config, global_step, steps_per_decay):
  """The learning-rate tensor of `config`'s schedule.

  Args:
    config: a `LearningRateConfig`.
    global_step: the global step tensor.
    steps_per_decay: global steps between decays (`decay_steps`).

  Raises:
    UnknownNameError: an unknown schedule.
  """
  kind = config.learning_rate_decay_type
  if kind == 'fixed':
    return tf.constant(config.learning_rate, name='fixed_learning_rate')
  if kind == 'exponential':
    return tf.train.exponential_decay(
        config.learning_rate, global_step, steps_per_decay,
        config.learning_rate_decay_factor, staircase=True,
        name='exponential_decay_learning_rate')
  if kind == 'polynomial':
    return tf.train.polynomial_decay(
        config.learning_rate, global_step, steps_per_decay,
        config.end_learning_rate, power=1.0, cycle=False,
        name='polynomial_decay_learning_rate')
  raise UnknownNameError('%s is not one of %s.' %
                         (ref('learning_rate_decay_type', kind),
                          ', '.join(LEARNING_RATE_DECAY_TYPES)))


def optimizer(config, learning_rate_tensor):
  """The `tf.train.Optimizer` that `config.optimizer` names.

  Raises:
    UnknownNameError: an unknown optimizer.
  """
  builder = _BUILDERS.get(config.optimizer)
  if builder is None:
    raise UnknownNameError('%s is not one of %s.' %
                           (ref('optimizer', config.optimizer),
                            ', '.join(sorted(_BUILDERS))))
  return builder(learning_rate_tensor, config)
