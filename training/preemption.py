"""Stopping cleanly on SIGTERM, SIGINT (Ctrl-C) and SIGHUP.

Preemptible machines and batch schedulers send SIGTERM and kill the
process some 30 s later; a user presses Ctrl-C. `StopSignals` turns the
first such signal into a request that the training loop (or the evaluator)
reads between steps: the step running finishes, the checkpoint of that step
is written by the ordinary saver, and the process exits with status
128 + the signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP),
as a shell reports a process ended by that signal.

Two things cannot wait for the main thread, because a Python signal
handler only runs once the main thread is back in the interpreter, which a
checkpoint save inside `Session.run` is not: a second signal, which ends
the process at once, and the grace period (`grace_secs`), after which the
save is given up. A watcher thread sees each signal through the wakeup file
descriptor of the `signal` module and does both. Ending the process during
a save leaves the checkpoints already listed readable: a save writes its
files under temporary names and renames them, and the state file is
replaced the same way (the next start removes the temporary files).
"""

import os
import select
import signal
import threading
import time

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors
from training import checkpoints

ref = errors.ref
# The signals that ask for a clean stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Seconds between the first signal and giving up the save: below the 30 s
# that preemptible VMs and Kubernetes give before their SIGKILL.
DEFAULT_GRACE_SECS = 25.0
# A byte no signal number takes: tells the watcher thread to end.
_QUIT = b'\0'


class PreemptionError(errors.InputError):
  """A grace period that cannot work."""


def check_grace_secs(grace_secs):
  """Raises `PreemptionError` unless `grace_secs` > 0."""
  if not grace_secs > 0:
    raise PreemptionError(
        '%s must be > 0: the seconds a stopped run may take to save its '
        'step (25 suits the 30 s that preemptible VMs give).' %
        ref('preemption_grace_secs', grace_secs))


def newest_checkpoint_note(train_dir):
  """'the newest listed checkpoint, <path>, is intact' (or that none is)."""
  newest = tf.train.latest_checkpoint(train_dir)
  if newest is None:
    return 'no checkpoint is listed in %s yet' % train_dir
  return 'the newest listed checkpoint, %s, is intact' % newest


def stopped_line(stop_signals, result):
  """The one line that reports a run stopped by a signal.

  Args:
    stop_signals: the `StopSignals` that caught it.
    result: what `trainer.train` returned.
  """
  step = stop_signals.last_step
  if step is None:
    step = result.get('global_step')
  head = 'interrupted by %s at step %s' % (
      signal_name(stop_signals.signum), '(none yet)' if step is None else step)
  saved = result.get('checkpoint')
  if saved is None:
    what = 'this worker saves no checkpoint (the chief does)'
  elif checkpoints.checkpoint_step(saved) == step:
    what = 'checkpoint %s saved' % saved
  else:
    what = 'the newest checkpoint is %s' % saved
  return '%s; %s; run the same command to resume.' % (head, what)


def exit_status(signum):
  """The exit status of a process stopped by signal `signum` (128 + it)."""
  return 128 + int(signum)


def signal_name(signum):
  """'SIGTERM' for signal.SIGTERM, and so on."""
  try:
    return signal.Signals(signum).name
  except ValueError:
    return 'signal %d' % signum


class StopSignals(object):
  """While entered, the stop signals request a stop instead of killing.

  Attributes:
    signum: the first stop signal received, or None.
    last_step: the latest global step a `StopRequestHook` saw (None before).
  """

  def __init__(self, grace_secs=DEFAULT_GRACE_SECS, describe_state=None,
               at_once=False):
    """Args:
      grace_secs: seconds from the first signal to ending the process
        whatever it is doing.
      describe_state: a function returning a short text on what is left
        on disk (e.g. the newest listed checkpoint), for the line printed
        when the process ends without its save; None: nothing.
      at_once: start in the mode where the first signal ends the process
        at once (see `stop_at_once`).
    """
    if grace_secs <= 0:
      raise ValueError('grace_secs must be > 0, got %s' % grace_secs)
    self._grace_secs = grace_secs
    self._describe_state = describe_state
    self._requested = threading.Event()
    self._abort_actions = []
    self._at_once = at_once
    self._previous_handlers = {}
    self._previous_wakeup_fd = None
    self._fds = None
    self._thread = None
    self.signum = None
    self.last_step = None

  @property
  def requested(self):
    """Whether a stop signal arrived."""
    return self._requested.is_set()

  def wait(self, seconds):
    """Sleeps up to `seconds`; returns early (True) when a stop is requested."""
    return self._requested.wait(seconds)

  def stop_at_once(self):
    """From now on the first signal ends the process at once: while a
    trainer starts (nothing trained yet that a save would keep), or a task
    with nothing to save, such as a parameter server."""
    self._at_once = True

  def stop_between_steps(self):
    """From now on the first signal only requests a stop (`requested`)."""
    self._at_once = False

  def add_abort_action(self, action):
    """Runs `action()` (e.g. releasing a lock) before an immediate exit."""
    self._abort_actions.append(action)

  def __enter__(self):
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
      # Raises ValueError outside the main thread, before anything changed.
      self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd)
    except ValueError:
      os.close(read_fd)
      os.close(write_fd)
      raise
    self._fds = (read_fd, write_fd)
    for signum in STOP_SIGNALS:
      # The Python-level handler does nothing: the watcher thread acts.
      self._previous_handlers[signum] = signal.signal(
          signum, lambda *unused: None)
    self._thread = threading.Thread(target=self._watch, name='stop_signals')
    self._thread.daemon = True
    self._thread.start()
    return self

  def __exit__(self, *unused_exc_info):
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
    self._previous_handlers = {}
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    os.write(self._fds[1], _QUIT)
    self._thread.join()
    for fd in self._fds:
      os.close(fd)

  def _watch(self):
    """The watcher thread: records the signals and enforces the grace."""
    deadline = None
    while True:
      timeout = None if deadline is None else max(0.0,
                                                  deadline - time.time())
      ready, _, _ = select.select([self._fds[0]], [], [], timeout)
      if not ready:
        self._exit_now('gave up saving after %s s' %
                       ref('preemption_grace_secs', self._grace_secs))
        return
      for value in bytearray(os.read(self._fds[0], 64)):
        if value == _QUIT[0]:
          return
        if value not in STOP_SIGNALS:
          continue
        if self.signum is None:
          self.signum = value
          if self._at_once:
            self._exit_now(None)
            return
          deadline = time.time() + self._grace_secs
          self._requested.set()
        else:
          self._exit_now('a second signal (%s) stopped it at once' %
                         signal_name(value))
          return

  def _exit_now(self, why):
    """Ends the process without waiting for the main thread.

    `why`: why a save was given up; None: there was nothing to save.
    """
    for action in self._abort_actions:
      try:
        action()
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('While stopping: %s', e)
    state = ''
    if self._describe_state is not None:
      try:
        state = '; %s' % self._describe_state()
      except Exception:  # pylint: disable=broad-except
        state = ''
    if why is None:
      logging.info('interrupted by %s before this process trained a step; '
                   'nothing to save%s; run the same command to resume.',
                   signal_name(self.signum), state)
    else:
      at_step = ''
      if self.last_step is not None:  # Training: that step is not saved.
        at_step = ' at step %d' % self.last_step
        why += ' without saving that step'
      logging.error('%s%s: %s%s; run the same command to resume.',
                    signal_name(self.signum), at_step, why, state)
    logging.flush()
    os._exit(exit_status(self.signum))  # pylint: disable=protected-access


class StopRequestHook(tf.train.SessionRunHook):
  """Ends the monitored session after the step during which a signal came.

  The session's end runs the other hooks' `end`, so the checkpoint saver
  writes the step reached. Until the session is ready (graph building,
  restoring, the saver writing the restored step again) a signal ends the
  process at once: nothing has been trained that a save would keep.
  """

  def __init__(self, stop_signals, step_after):
    """`step_after`: the global step read after each training step (running
    it runs a step, so the session's start reads the variable instead)."""
    self._stop = stop_signals
    self._global_step = step_after
    self._step_variable = None

  def begin(self):
    self._stop.stop_at_once()
    self._step_variable = tf.train.get_global_step()

  def after_create_session(self, session, coord):
    self._stop.last_step = int(session.run(self._step_variable))
    self._stop.stop_between_steps()
    if self._stop.requested:
      coord.request_stop()

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    self._stop.last_step = int(run_values.results)
    if self._stop.requested:
      run_context.request_stop()
