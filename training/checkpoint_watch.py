"""Which checkpoint a watching evaluator scores next.

Training may save several checkpoints while one is being evaluated. By
default the evaluator then scores only the newest of them and names the
others as skipped, so it never falls behind; with `every=True` it scores
each of them, oldest first (each one the trainer's retention has deleted
meanwhile is skipped by the evaluator with a warning).
"""

import re
import time

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

# Longest sleep between two looks at the checkpoint state file.
POLL_SECS = 1.0

_STEP_IN_NAME = re.compile(r'-(\d+)$')


def listed_checkpoints(directory):
  """The checkpoints the state file of `directory` lists, oldest first."""
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths)
  newest = state.model_checkpoint_path
  if newest and newest not in paths:
    paths.append(newest)
  return paths


def _name_step(path):
  match = _STEP_IN_NAME.search(path)
  return int(match.group(1)) if match else None


def newer_than(listed, last):
  """The entries of `listed` (oldest first) that came after `last`.

  Checkpoints are compared by the step in their names; without one, by
  their place in the list. `last` None: all of them.
  """
  if last is None:
    return list(listed)
  last_step = _name_step(last)
  steps = [_name_step(path) for path in listed]
  if last_step is not None and None not in steps:
    return [path for path, step in zip(listed, steps) if step > last_step]
  if last in listed:
    return listed[listed.index(last) + 1:]
  return list(listed)


def _sleep(seconds):
  time.sleep(seconds)
  return False


def watch(directory, interval_secs, timeout_secs=None, every=False,
          wait=None):
  """Yields (checkpoint to score, [checkpoints skipped before it]).

  Args:
    directory: the folder the trainer saves into.
    interval_secs: least time between two yields.
    timeout_secs: stop after this long without a new checkpoint (counted
      from the end of the last evaluation); None: never.
    every: yield each new checkpoint, oldest first, instead of the newest.
    wait: `fn(seconds)` that sleeps and returns True to stop watching
      (e.g. `preemption.StopSignals.wait`); None: a plain sleep.
  """
  wait = wait or _sleep
  last = None
  next_start = 0.0
  waiting_since = time.time()
  while True:
    new = newer_than(listed_checkpoints(directory), last)
    now = time.time()
    if new and now >= next_start:
      chosen, skipped = (new[0], []) if every else (new[-1], new[:-1])
      last = chosen
      next_start = now + interval_secs
      yield chosen, skipped
      waiting_since = time.time()
      continue
    if not new and timeout_secs is not None and (
        now - waiting_since >= timeout_secs):
      return
    pause = POLL_SECS if not new else min(POLL_SECS, next_start - now)
    if wait(max(0.0, pause)):
      return
