"""Catches the batch-norm pitfall of short training runs.

Batch norm keeps moving averages of each channel's mean and variance for
use at evaluation, updated every step as
    moving = decay * moving + (1 - decay) * batch_statistic,
starting from mean 0 and variance 1. After n steps the initial value still
makes up decay**n of the average. With the networks' own decays
(0.9997 for V1; 0.997 for V2, V3 and EdgeTPU; 0.99 for V4) that is 64 %
after 1,500 steps of V1: the network trains well, but evaluation
normalizes with statistics that are mostly 0 / 1 and scores near chance.

* Before training, `check_convergence` says whether the planned
  max_number_of_steps lets the statistics converge (at most
  RESIDUAL_LIMIT of the initial value left) and which decay to use.
* A batch_norm_decay of `auto` (`resolve_decay`) picks
      decay = clip(1 - AUTO_WINDOWS / max_number_of_steps,
                   AUTO_MIN_DECAY, the network's own decay),
  rounded down to 4 decimals: the averages then span about the last
  1/AUTO_WINDOWS (5 %) of the run and keep e**-20 (about 2e-9) of their
  initial value at the end; long runs keep the network's decay.
* After training, `find_stale_statistics` looks at a checkpoint's moving
  statistics: since every moving variance is at least the share of the
  initial value left (share * 1 + (1 - share) * variance >= share), the
  smallest one bounds that share; `explain_stale` words the diagnosis.

Pure Python (numpy only); no TensorFlow, no flags. Errors: `DecayError`, a
ValueError whose message names parameters with `errors.ref`.
"""


import math
from typing import Iterable, List, Mapping, Optional, Tuple

import numpy as np

from core import errors
from nets import nets_factory

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# Training warns when more than this share of the initial values would be
# left in the moving statistics at the last step.
RESIDUAL_LIMIT = 0.01
# Evaluation reports statistics whose smallest moving variance is above
# this (an upper bound on the share of initial value; lenient on purpose,
# since fine-tuned models start from trained statistics).
STALE_LIMIT = 0.2
# batch_norm_decay=auto: the averaging window is 1/AUTO_WINDOWS of the run.
AUTO_WINDOWS = 20
AUTO_MIN_DECAY = 0.5
AUTO = 'auto'


class DecayError(errors.InputError):
  """A batch-norm decay setting that cannot be used."""


# The released networks' own moving-statistics decays (their arg scopes'
# defaults), by factory-name family.
_MEAN = 'moving_mean'
_VARIANCE = 'moving_variance'


def network_decay(model_name):
  # type: (str) -> float
  """The own batch-norm decay of a nets_factory name, e.g. mobilenet_v1_025.

  Raises:
    ValueError: for a name the factory does not know.
  """
  try:
    nets_factory.check_model_name(model_name)
  except ValueError as e:  # Its message suggests the closest known name.
    raise DecayError('Bad %s: %s' % (ref('model_name', model_name), e))
  return nets_factory.NETWORKS[model_name].batch_norm_decay


def initial_share(decay, steps):
  # type: (float, int) -> float
  """Share of the initial value left in a moving average after `steps`."""
  return float(decay) ** max(0, int(steps))


def steps_to_converge(decay, limit=RESIDUAL_LIMIT):
  # type: (float, float) -> int
  """Fewest steps after which at most `limit` of the initial value is left."""
  if decay <= 0.0:
    return 1
  return int(math.ceil(math.log(limit) / math.log(decay)))


def auto_decay(max_number_of_steps, network_decay):
  # type: (Optional[int], float) -> float
  """The decay that batch_norm_decay `auto` uses (see the module docstring).

  Args:
    max_number_of_steps: planned training steps; None (unlimited) keeps
      the network's decay.
    network_decay: the network's own decay (0.9997 V1, 0.997 V2).
  """
  if not max_number_of_steps:
    return network_decay
  decay = 1.0 - AUTO_WINDOWS / float(max_number_of_steps)
  decay = math.floor(decay * 1e4) / 1e4
  return min(network_decay, max(AUTO_MIN_DECAY, decay))


def resolve_decay(value, max_number_of_steps, network_decay):
  # type: (object, Optional[int], float) -> Optional[float]
  """Turns a batch_norm_decay setting into the decay to build the net with.

  Args:
    value: None or '' (the network's own decay), 'auto', or a number in
      [0, 1) (as a float or a string).
    max_number_of_steps: planned steps (for 'auto').
    network_decay: the network's own decay.

  Returns:
    The decay, or None for the network's own.

  Raises:
    ValueError: for anything else, naming the accepted values.
  """
  if value is None or value == '':
    return None
  if isinstance(value, str) and value.strip().lower() == AUTO:
    return auto_decay(max_number_of_steps, network_decay)
  try:
    decay = float(value)
  except (TypeError, ValueError):
    decay = None
  if decay is None or not 0.0 <= decay < 1.0:
    raise DecayError('%s: use a number in [0, 1) such as 0.99, or auto '
                     '(chosen from %s).' % (ref('batch_norm_decay', value),
                                            ref('max_number_of_steps')))
  return decay


class Convergence(object):
  """Whether the moving statistics converge within a planned run.

  Attributes:
    decay: the batch-norm decay checked.
    steps: the planned steps (None: unlimited).
    share: initial value left at the last step (None if unlimited).
    converged: False when share > RESIDUAL_LIMIT.
    steps_needed: steps after which the decay would converge.
    suggested_decay: what `auto` picks for the planned steps.
  """

  def __init__(self, decay, steps, network_decay):
    # type: (float, Optional[int], float) -> None
    self.decay = decay
    self.steps = steps
    self.share = initial_share(decay, steps) if steps else None
    self.converged = self.share is None or self.share <= RESIDUAL_LIMIT
    self.steps_needed = steps_to_converge(decay)
    self.suggested_decay = auto_decay(steps, network_decay)

  def warning(self):
    # type: () -> Optional[str]
    """The warning to print before training, or None when converged."""
    if self.converged:
      return None
    if self.decay <= self.suggested_decay:
      # Already the lowest decay auto would pick: only more steps help.
      advice = 'Train at least %d steps' % self.steps_needed
    else:
      advice = 'Use %s (or auto), or train at least %d steps' % (
          ref('batch_norm_decay', '%g' % self.suggested_decay),
          self.steps_needed)
    return ('%s is too short for batch-norm decay %g: '
            'at the last step the moving mean and variance used at '
            'evaluation would still be %.0f%% their initial values (0 and '
            '1), so evaluation would score near chance however well the '
            'loss falls. %s.' % (ref('max_number_of_steps', self.steps),
                                 self.decay, 100 * self.share, advice))


def check_convergence(max_number_of_steps, batch_norm_decay, network_decay):
  # type: (Optional[int], Optional[float], float) -> Convergence
  """Checks a planned run (call before training starts).

  Args:
    max_number_of_steps: planned steps (None or 0: unlimited, which is
      reported as converged).
    batch_norm_decay: the decay the net is built with (None: its own).
    network_decay: the network's own decay.

  The caller skips the check when the moving statistics are restored from
  a checkpoint (fine-tuning): they start trained, not at 0 / 1.
  """
  decay = network_decay if batch_norm_decay is None else batch_norm_decay
  return Convergence(decay, max_number_of_steps or None, network_decay)


def moving_statistics_names(variable_names):
  # type: (Iterable[str]) -> List[Tuple[str, str]]
  """(moving_mean, moving_variance) name pairs of a checkpoint's batch norms.

  ExponentialMovingAverage shadows and unpaired names are left out.
  """
  names = set(variable_names)
  pairs = []
  for name in sorted(names):
    if name.endswith('/' + _MEAN):
      partner = name[:-len(_MEAN)] + _VARIANCE
      if partner in names:
        pairs.append((name, partner))
  return pairs


class StaleStatistics(object):
  """Moving statistics found near their initial values.

  Attributes:
    layers: number of batch-norm layers looked at.
    max_share: upper bound of the initial value's share (smallest variance).
    untouched: every mean is 0 and every variance 1 exactly (never updated).
  """

  def __init__(self, layers, max_share, untouched):
    # type: (int, float, bool) -> None
    self.layers = layers
    self.max_share = max_share
    self.untouched = untouched


def find_stale_statistics(moving_means, moving_variances, limit=STALE_LIMIT):
  # type: (Mapping[str, object], Mapping[str, object], float) -> Optional[StaleStatistics]
  """Detects moving statistics still near their initial values.

  Args:
    moving_means: layer name -> moving_mean values (any array-like).
    moving_variances: layer name -> moving_variance values.
    limit: report when the smallest variance is above this.

  Returns:
    A StaleStatistics, or None when they look trained (or there are none).
  """
  if not moving_variances:
    return None
  variances = [np.asarray(v, np.float64).ravel()
               for v in moving_variances.values()]
  means = [np.asarray(m, np.float64).ravel() for m in moving_means.values()]
  smallest = min((float(v.min()) for v in variances if v.size), default=None)
  if smallest is None:
    return None
  untouched = (all(np.all(v == 1.0) for v in variances) and
               all(np.all(m == 0.0) for m in means))
  if smallest <= limit and not untouched:
    return None
  return StaleStatistics(len(variances), min(1.0, smallest), untouched)


def explain_stale(stale, checkpoint, global_step=None, decay=None):
  # type: (StaleStatistics, str, Optional[int], Optional[float]) -> str
  """One paragraph saying why accuracy is low and what to change."""
  if stale.untouched:
    return ('The batch-norm moving statistics in %s were never updated (every '
            'moving mean is 0 and every moving variance 1), so evaluation, '
            'which normalizes with them, scores near chance. The training '
            'step did not run the batch-norm update ops '
            '(tf.GraphKeys.UPDATE_OPS).' % checkpoint)
  why = ''
  if global_step is not None and decay is not None:
    why = (' With batch-norm decay %g, %d steps keep %.0f%% of the initial '
           'values.' % (decay, global_step,
                        100 * initial_share(decay, global_step)))
  advice = 'Train with %s (or e.g. 0.99)' % ref('batch_norm_decay', 'auto')
  if global_step and decay is not None:
    advice += ' or for at least %d steps' % steps_to_converge(decay)
  return ('The batch-norm moving statistics in %s are still close to their '
          'initial values (mean 0, variance 1): every moving variance is at '
          'least %.2f, so up to %.0f%% of each is the initial value, and '
          'evaluation, which normalizes with them, scores near chance '
          'however well training went.%s %s.' %
          (checkpoint, stale.max_share, 100 * stale.max_share, why, advice))
