"""Session hooks of the training loop: the NaN/Inf guard and progress logs."""


import collections
import datetime
import time

from absl import logging
import numpy as np

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# Recent (global step, loss) pairs a ProgressHook keeps: enough to see a
# trend, small enough that a million-step run stays flat in memory.
DEFAULT_HISTORY_SIZE = 1000


class NonFiniteLossError(errors.InputError):
  """The loss or a weight became NaN or Inf (or the loss passed its upper
  bound); the step was not saved.

  Attributes:
    step: the global step at which it happened.
    what: what happened, e.g. 'the loss became NaN'.
  """

  def __init__(self, message, step=None, what=None):
    super(NonFiniteLossError, self).__init__(message)
    self.step = step
    self.what = what


def finiteness_checks(variables=None):
  """Two scalar bools: every float variable finite; any of them NaN.

  The variables of one device and dtype are flattened into one vector and
  checked there, so only two bools per device cross the network when
  variables live on parameter servers, and the graph gains a few ops per
  variable instead of six (building and first running those was seconds
  of each training start).

  Args:
    variables: the variables to check; default: every global variable.
  """
  if variables is None:
    variables = tf.global_variables()
  groups = collections.OrderedDict()
  for var in variables:
    dtype = var.dtype.base_dtype
    if dtype.is_floating:
      groups.setdefault((var.device, dtype), []).append(var)
  all_finite, any_nan = [], []
  for (device, _), group in groups.items():
    with tf.device(device), tf.name_scope('check_finite'):
      values = tf.concat([tf.reshape(var, [-1]) for var in group], axis=0)
      all_finite.append(tf.reduce_all(tf.is_finite(values)))
      any_nan.append(tf.reduce_any(tf.is_nan(values)))
  if not all_finite:
    return tf.constant(True), tf.constant(False)
  return tf.reduce_all(tf.stack(all_finite)), tf.reduce_any(tf.stack(any_nan))


class NonFiniteLossHook(tf.train.SessionRunHook):
  """Ends training at the first NaN/Inf loss, and never saves NaN/Inf weights.

  The loss is fetched with every step (no extra run). The weights are
  checked only when they are about to be saved, by the checkpoint saver
  listener from `saver_listener()`, so a step costs no second run: the
  loss is computed before the step's update, so an overflowing update (a
  learning rate far too large, say) can leave Inf weights behind a finite
  loss, and only a save could make them last.

  Must be the first hook: an exception from `after_run` skips the
  `after_run` of the hooks after it (the checkpoint saver) and every
  hook's `end` (the final save). An exception from the listener stops
  the save it precedes in the same way.
  """

  def __init__(self, loss, step, train_dir, loss_upper_bound=None):
    """Watches `loss` and the global step `step`; names `train_dir`.

    A finite loss above `loss_upper_bound` (None: no bound) stops training
    as a NaN does.
    """
    self._fetches = {'loss': loss, 'step': step}
    self._train_dir = train_dir
    self._loss_upper_bound = loss_upper_bound
    self._checks = None
    self.last_loss = None

  def begin(self):
    self._checks = finiteness_checks()

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._fetches)

  def after_run(self, run_context, run_values):
    loss = run_values.results['loss']
    step = int(run_values.results['step'])
    if not np.isfinite(loss):
      self._stop('the loss became %s' % ('NaN' if np.isnan(loss) else 'Inf'),
                 step)
    bound = self._loss_upper_bound
    if bound is not None and loss > bound:
      self._stop('the loss, %g, rose above %s' % (
          loss, ref('loss_upper_bound', bound)), step)
    self.last_loss = float(loss)

  def check_weights(self, session, step):
    """Raises `NonFiniteLossError` if a float variable is NaN or Inf now."""
    finite, nan = session.run(self._checks)
    if finite:
      return
    loss = '' if self.last_loss is None else (
        '; the loss, %g, was still finite' % self.last_loss)
    self._stop('the variables became %s' % ('NaN' if nan else 'Inf'), step,
               ' (its update overflowed%s)' % loss)

  def saver_listener(self):
    """A `CheckpointSaverListener` that checks the weights before each save."""
    return _FiniteWeightsListener(self)

  def _stop(self, what, step, detail=''):
    raise NonFiniteLossError(
        '%s at global step %d%s, so training stopped; that step was not '
        'saved. The last good checkpoint is %s. Lower %s, use %s or a '
        'smaller %s, or check the data, then rerun (training resumes from '
        'that checkpoint); or let %s restore it and go on by itself.' %
        (what[0].upper() + what[1:], step, detail,
         tf.train.latest_checkpoint(self._train_dir) or '(none yet)',
         ref('learning_rate'), ref('optimizer', 'sgd'), ref('opt_epsilon'),
         ref('recover_from_nonfinite')), step=step, what=what)


class _FiniteWeightsListener(tf.train.CheckpointSaverListener):
  """Stops a save (and training) when the weights to save are not finite."""

  def __init__(self, guard):
    self._guard = guard

  def before_save(self, session, global_step_value):
    self._guard.check_weights(session, global_step_value)


class ProgressHook(tf.train.SessionRunHook):
  """Logs the step, loss, learning rate, images/s and ETA every n steps.

  Attributes:
    history: the last `history_size` (global step, loss) pairs of this
      process, oldest first.
    local_steps: steps this process ran.
    last_step: the global step after the latest of them (None before).
  """

  def __init__(self, loss, learning_rate, step, every_n_steps,
               images_per_step, max_steps, task,
               history_size=DEFAULT_HISTORY_SIZE):
    self._fetches = {'loss': loss, 'lr': learning_rate, 'step': step}
    self._every_n = max(1, every_n_steps)
    self._images_per_step = images_per_step
    self._max_steps = max_steps
    self._task = task
    self.history = collections.deque(maxlen=history_size)
    self.local_steps = 0
    self.last_step = None
    self._last_log = None

  def begin(self):
    self._last_log = None  # (time, local steps, global step) when logged.

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._fetches)

  def _due(self, step):
    finished = self._max_steps and step >= self._max_steps
    return finished or self.local_steps % self._every_n == 0

  def after_run(self, run_context, run_values):
    step = int(run_values.results['step'])
    loss = float(run_values.results['loss'])
    self.local_steps += 1
    self.last_step = step
    self.history.append((step, loss))
    now = time.time()
    if self._last_log is None:
      self._last_log = (now, self.local_steps, step)
    if not self._due(step):
      return
    logging.info(self._line(now, step, loss, run_values.results['lr']))
    self._last_log = (now, self.local_steps, step)

  def _line(self, now, step, loss, lr):
    """The progress line: rates are over the steps since the last line."""
    then, local_then, global_then = self._last_log
    seconds = now - then
    head = 'task %d step %d' % (self._task, step)
    if self._max_steps:
      head += '/%d' % self._max_steps
    parts = [head, 'loss = %.4f' % loss, 'lr = %.6g' % lr]
    if seconds > 0 and self.local_steps > local_then:
      parts.append('%.1f images/sec' % ((self.local_steps - local_then) *
                                        self._images_per_step / seconds))
      if self._max_steps and step > global_then:
        left = (self._max_steps - step) * seconds / (step - global_then)
        parts.append('ETA %s' % datetime.timedelta(seconds=int(max(0, left))))
    return ', '.join(parts)
