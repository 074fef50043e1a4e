"""Leaves a training directory as it was found when a run fails to start.

A run that stops before it saved any checkpoint has trained nothing worth
keeping, but what it wrote on the way (the training record, the lock, the
text graph, an events file, the directory itself) would make the corrected
rerun believe it resumes an earlier run. `undo_failed_start` removes
exactly the entries that were not there before, and the directory if the
run created it, unless a checkpoint exists by then.
"""

import contextlib
import os
import shutil

from absl import logging

from training import checkpoint_recovery


def _entries(path):
  """The names in directory `path` (None when it does not exist)."""
  try:
    return set(os.listdir(path))
  except OSError:
    return None


def _has_checkpoint(path):
  names = _entries(path) or set()
  return (checkpoint_recovery.STATE_FILE in names or
          any(name.endswith('.index') for name in names))


def _remove(path):
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  else:
    try:
      os.remove(path)
    except OSError:
      pass


def missing_parents(path):
  """`path` and those of its parents that do not exist, deepest first."""
  missing = []
  path = os.path.abspath(path)
  while not os.path.exists(path):
    missing.append(path)
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return missing


def remove_new_entries(train_dir, before, created=()):
  """Removes what appeared in `train_dir` since `before` (its names then).

  Args:
    train_dir: the directory.
    before: the set of names it held (None if it did not exist).
    created: directories (`missing_parents` of it, taken before) to remove
      afterwards, deepest first, each only while it is empty.

  Returns:
    The sorted names removed.
  """
  now = _entries(train_dir)
  if now is None:
    return []
  added = sorted(now - (before or set()))
  for name in added:
    _remove(os.path.join(train_dir, name))
  for directory in created:
    try:
      os.rmdir(directory)
    except OSError:
      break  # Something else is in it now: keep it and its parents.
  return added


class _Undo(object):
  """`armed`: set once this run holds the directory; before that, what
  appears in it may be another trainer's."""

  def __init__(self):
    self.armed = False


@contextlib.contextmanager
def undo_failed_start(train_dir, active=True):
  """Runs the body; if it raises before any checkpoint exists in
  `train_dir`, removes what was added there (see the module docstring).

  Yields an object whose `armed` the body sets to True once it holds the
  directory (its lock): a run refused because another trainer holds it
  must not remove that trainer's files. Only local directories are
  watched; `active=False` (a non-chief worker) turns it off.
  """
  undo = _Undo()
  if not active or '://' in train_dir:
    yield undo
    return
  before = _entries(train_dir)
  created = missing_parents(train_dir)
  try:
    yield undo
  except Exception:
    if undo.armed and not _has_checkpoint(train_dir):
      removed = remove_new_entries(train_dir, before, created)
      if removed:
        logging.debug('Failed start: removed %s from %s.',
                      ', '.join(removed), train_dir)
    raise
