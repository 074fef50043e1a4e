"""Going on after a blow-up: restore the last good checkpoint and retry.

A long run whose loss turns NaN or Inf once (or jumps above a bound) should
not wait for a person. `train_with_recovery` runs training; when the
NaN/Inf guard (`hooks.NonFiniteLossHook`) stops it, it starts again from
the newest checkpoint in the training directory, which the guard never
lets hold non-finite weights, at most `max_recoveries` times.

Starting again builds a new graph and session, so the input pipeline starts
over with a new shuffle: the batches that led to the blow-up do not come
back in the same order. The learning rate may be scaled at each recovery
(`learning_rate_factor`), for this process only: a later run started by
hand uses the configured rate again.
"""

import collections

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors
from training import hooks

ref = errors.ref

# max_recoveries: restarts allowed (0: stop at the first blow-up, as
# before); loss_upper_bound: a finite loss above it counts as a blow-up
# (None: no bound); learning_rate_factor: multiplies the learning rate (and
# the polynomial schedule's end rate) at each recovery.
RecoveryConfig = collections.namedtuple('RecoveryConfig', [
    'max_recoveries', 'loss_upper_bound', 'learning_rate_factor'])

# What `train` does when it is given no `RecoveryConfig`.
NO_RECOVERY = RecoveryConfig(max_recoveries=0, loss_upper_bound=None,
                             learning_rate_factor=1.0)


class RecoveryError(errors.InputError):
  """Recovery settings that cannot work."""


def check_config(recovery, distributed):
  """Raises `RecoveryError` naming a bad value of a `RecoveryConfig`.

  Args:
    recovery: the `RecoveryConfig`.
    distributed: whether training runs on a cluster.
  """
  if recovery.max_recoveries < 0:
    raise RecoveryError('%s must be >= 0 (0 stops at the first NaN/Inf).' %
                        ref('recover_from_nonfinite', recovery.max_recoveries))
  bound = recovery.loss_upper_bound
  if bound is not None and not bound > 0:
    raise RecoveryError('%s must be > 0, e.g. 10 times the loss at the '
                        'start; leave it unset for no bound.' %
                        ref('loss_upper_bound', bound))
  if not 0 < recovery.learning_rate_factor <= 1:
    raise RecoveryError('%s must be in (0, 1], e.g. 0.5 to halve the '
                        'learning rate at each recovery.' %
                        ref('recovery_learning_rate_factor',
                            recovery.learning_rate_factor))
  if distributed and recovery.max_recoveries > 0:
    # Workers share the variables: one restoring them while others go on
    # from the bad ones would spend the recoveries without curing anything.
    raise RecoveryError(
        '%s works for training on one machine (clones included), not on a '
        'cluster. Drop it there; a blow-up stops the cluster and a rerun '
        'resumes from the last good checkpoint.' %
        ref('recover_from_nonfinite', recovery.max_recoveries))


def scaled_learning_rate(config, factor):
  """`config` (a `TrainConfig`) with its learning rates multiplied."""
  schedule = config.schedule._replace(
      learning_rate=config.schedule.learning_rate * factor,
      end_learning_rate=config.schedule.end_learning_rate * factor)
  return config._replace(schedule=schedule)


def train_with_recovery(run_attempt, config, recovery, checkpoint):
  """Runs `run_attempt`, restarting it after blow-ups.

  Args:
    run_attempt: `fn(config, checkpoint)` that trains from `checkpoint`
      (None: from scratch or the fine-tuning checkpoint) and returns the
      result dict; it raises `hooks.NonFiniteLossError` on a blow-up.
    config: the `TrainConfig`.
    recovery: the `RecoveryConfig`.
    checkpoint: the checkpoint the first attempt starts from.

  Returns:
    `run_attempt`'s result, with 'recoveries': the list of (global step,
    what happened, checkpoint restored) of each recovery.

  Raises:
    hooks.NonFiniteLossError: a blow-up with no recovery left; its message
      says how many recoveries came before it.
  """
  done = []
  while True:
    try:
      result = run_attempt(config, checkpoint)
    except hooks.NonFiniteLossError as e:
      restored = tf.train.latest_checkpoint(config.train_dir)
      if len(done) >= recovery.max_recoveries or restored is None:
        if done:
          e.args = ('%s (This was the blow-up after %d recoveries, the most '
                    '%s allows.)' % (e.args[0], len(done),
                                     ref('recover_from_nonfinite')),)
        raise
      config = scaled_learning_rate(config, recovery.learning_rate_factor)
      done.append((e.step, e.what, restored))
      _log_recovery(len(done), recovery, e, restored, config)
      checkpoint = restored
      continue
    result['recoveries'] = done
    if done:
      logging.warning('Training recovered from %d blow-up(s) (%s).',
                      len(done), '; '.join('%s at step %s' % (what, step)
                                           for step, what, _ in done))
    return result


def _log_recovery(count, recovery, error, restored, config):
  rate = ''
  if recovery.learning_rate_factor != 1:
    rate = ', learning rate now %g' % config.schedule.learning_rate
  logging.warning(
      'Recovery %d of at most %d: %s at global step %s; restoring %s and '
      'going on with a new shuffle of the input%s.', count,
      recovery.max_recoveries, error.what, error.step, restored, rate)
