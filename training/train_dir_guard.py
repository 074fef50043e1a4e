"""The chief's hold on the training directory while it trains (issue 17).

Before training, `TrainDirGuard` checks that the directory can be written,
locks it (one trainer per directory, `train_dir_lock`), removes the
temporary files of saves that were killed midway, and picks the newest
checkpoint that reads back in full (`checkpoint_recovery`), setting newer
unreadable ones aside. After training it releases the lock. Non-chief
workers get no checkpoint and no hooks from it.
"""


import os

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors
from training import checkpoint_recovery
from training import model_inputs
from training import train_dir_lock

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref


class TrainDirError(errors.InputError):
  """The training directory is in use, was taken over, or cannot resume."""


class LockLostHook(tf.train.SessionRunHook):
  """Stops training, before any later hook saves, once the lock is lost."""

  def __init__(self, lock, train_dir):
    self._lock = lock
    self._train_dir = train_dir

  def after_run(self, run_context, run_values):
    if self._lock.lost:
      raise TrainDirError(
          'The lock of %s was taken over by another trainer '
          '(this one\'s heartbeat had stalled for more than %d s), so this '
          'trainer stopped without saving rather than write checkpoints '
          'beside it. Let one trainer finish, or give each its own %s.' %
          (ref('train_dir', self._train_dir),
           train_dir_lock.DEFAULT_STALE_SECS, ref('train_dir')))


def locked_message(error):
  """The refusal of a trainer whose directory another trainer holds.

  Args:
    error: the `train_dir_lock.TrainDirLockedError`.
  """
  holder = error.holder
  return (
      '%s is in use by another trainer: %s (its lock file %s was '
      'refreshed %.0f s ago). Two trainers in one directory overwrite each '
      'other\'s checkpoints, so this one stopped before touching it. Wait '
      'for that trainer to finish, stop it (kill %s on host %s), or pass '
      'another %s. If that trainer is gone without its host '
      'knowing (e.g. its host went down), its lock counts as stale %d s '
      'after its last heartbeat: rerun then.' %
      (ref('train_dir', error.train_dir),
       train_dir_lock.describe_holder(holder),
       os.path.join(error.train_dir, train_dir_lock.LOCK_NAME),
       max(0.0, error.heartbeat_age_secs), holder.get('pid', '?'),
       holder.get('host', '?'), ref('train_dir'), error.stale_secs))


def resumable_checkpoint(train_dir):
  """The newest readable checkpoint in `train_dir`, or None if none is listed.

  Newer listed checkpoints that do not read back are moved aside.

  Raises:
    TrainDirError: checkpoints are listed but none of them reads back.
  """
  try:
    recovery = checkpoint_recovery.find_resumable_checkpoint(train_dir)
  except checkpoint_recovery.NoReadableCheckpointError as e:
    raise TrainDirError(
        'No checkpoint in %s (%s) can be read, so training cannot '
        'resume: %s. Nothing was changed. Restore these checkpoint files '
        'from a backup, or pass a new %s to start over there.' %
        (ref('train_dir', train_dir), checkpoint_recovery.full_path(train_dir),
         '; '.join('%s: %s' % (checkpoint_recovery.full_path(p), r)
                   for p, r in e.skipped), ref('train_dir')))
  if recovery.skipped:
    aside = checkpoint_recovery.set_aside_unreadable(train_dir, recovery)
    for prefix, reason in recovery.skipped:
      logging.warning('Checkpoint %s cannot be read (%s); its files were '
                      'moved to %s.', checkpoint_recovery.full_path(prefix),
                      reason, checkpoint_recovery.full_path(aside))
    logging.warning('Resuming from %s, the newest readable checkpoint, '
                    'instead of the newest listed one %s.',
                    recovery.checkpoint, recovery.skipped[0][0])
  return recovery.checkpoint


class TrainDirGuard(object):
  """A context manager: the chief's preparation of the training directory.

  Attributes (after entering):
    checkpoint: the checkpoint to resume from (chief only), or None.
    hooks: session hooks to run before all others (the lock watch).
  """

  def __init__(self, train_dir, is_chief, lock=True):
    """`lock`: take the directory's lock (off on filesystems without hard
    links)."""
    self._train_dir = train_dir
    self._is_chief = is_chief
    self._use_lock = lock
    self._lock = None
    self.checkpoint = None
    self.hooks = []

  def __enter__(self):
    if not self._is_chief:
      return self
    model_inputs.check_writable_dir(self._train_dir, 'train_dir')
    if self._use_lock and train_dir_lock.is_local_path(self._train_dir):
      self._acquire()
    try:
      removed = checkpoint_recovery.remove_leftover_temp_files(
          self._train_dir)
      if removed:
        logging.info('Removed %d temporary file(s) of interrupted saves '
                     'from %s: %s', len(removed), self._train_dir,
                     ', '.join(removed))
      self.checkpoint = resumable_checkpoint(self._train_dir)
    except BaseException:
      self.__exit__(None, None, None)
      raise
    return self

  def _acquire(self):
    lock = train_dir_lock.TrainDirLock(self._train_dir)
    try:
      self._lock = lock.acquire()
    except train_dir_lock.TrainDirLockedError as e:
      raise TrainDirError(locked_message(e))
    except OSError as e:
      raise TrainDirError(
          'Cannot create the lock file %s (%s). Fix %s, or pass %s if its '
          'filesystem has no hard links.' %
          (lock.path, e, ref('train_dir'), ref('lock_train_dir', 'false')))
    self.hooks = [LockLostHook(self._lock, self._train_dir)]

  def __exit__(self, *unused_exc_info):
    if self._lock is not None:
      self._lock.release()
      self._lock = None
