"""Tests for training/hooks.py: bounded progress memory over a long run."""


import tracemalloc

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from training import hooks

# Past the history's size, so that the bounded history is full before the
# measured steps.
WARM_UP_STEPS = hooks.DEFAULT_HISTORY_SIZE + 500
STEPS = WARM_UP_STEPS + 1500
# Python memory the steps after the warm-up may add: a history kept for
# every step would add ~120 bytes a step, ~180 KB here; the bounded one
# adds nothing.
MAX_PYTHON_GROWTH_BYTES = 32 * 1024


def test_long_run_keeps_memory_flat_and_history_bounded(tmp_path):
  # Python allocations (tracemalloc), not the process's RSS: TensorFlow's
  # thread pools and the allocator grow the RSS by themselves when the
  # machine is loaded, while what the hooks keep is Python objects.
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    weight = tf.Variable(1.0)
    loss = tf.square(weight - 3.0)
    train_op = tf.train.GradientDescentOptimizer(0.001).minimize(
        loss, global_step=global_step)
    with tf.control_dependencies([train_op]):
      loss_after = tf.identity(loss)
      step = tf.identity(global_step.read_value())
    progress = hooks.ProgressHook(loss_after, tf.constant(0.001), step,
                                  every_n_steps=10 ** 6, images_per_step=1,
                                  max_steps=None, task=0)
    guard = hooks.NonFiniteLossHook(loss_after, step, str(tmp_path))
    tracemalloc.start()
    try:
      with tf.train.MonitoredSession(hooks=[guard, progress]) as session:
        # The warm-up fills the caches and the history; from then on the
        # Python memory in use must stay flat.
        for _ in range(WARM_UP_STEPS):
          session.run(loss_after)
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(STEPS - WARM_UP_STEPS):
          session.run(loss_after)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
      tracemalloc.stop()
  assert progress.local_steps == STEPS
  assert len(progress.history) == hooks.DEFAULT_HISTORY_SIZE < STEPS
  assert progress.history[-1][0] == STEPS  # the newest steps are kept
  assert growth < MAX_PYTHON_GROWTH_BYTES, growth


class _NoRunSession(object):
  """A session stand-in that fails the test if the hook runs anything."""

  def run(self, *unused_args, **unused_kwargs):
    raise AssertionError('the NaN guard ran a second session.run')


class _RunContext(object):
  session = _NoRunSession()


def test_nan_guard_adds_no_session_run_to_a_step(tmp_path):
  with tf.Graph().as_default():
    guard = hooks.NonFiniteLossHook(tf.constant(1.0), tf.constant(3),
                                    str(tmp_path))
    guard.begin()
    results = tf.train.SessionRunValues(results={'loss': 0.5, 'step': 3},
                                        options=None, run_metadata=None)
    guard.after_run(_RunContext(), results)
    assert guard.last_loss == 0.5
    nan = tf.train.SessionRunValues(results={'loss': float('nan'),
                                             'step': 4},
                                    options=None, run_metadata=None)
    with pytest.raises(hooks.NonFiniteLossError,
                       match='loss became NaN at global step 4'):
      guard.after_run(_RunContext(), nan)


def test_weights_that_overflow_behind_a_finite_loss_are_never_saved(
    tmp_path):
  train_dir = str(tmp_path)
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    weight = tf.Variable(1e30)
    # The loss saturates, so it stays finite when the weight overflows.
    loss = tf.minimum(tf.abs(weight), 1.0)
    with tf.control_dependencies([loss]):
      update = tf.group(weight.assign(weight * 1e5),
                        global_step.assign_add(1))
    with tf.control_dependencies([update]):
      loss_after = tf.identity(loss)
      step = tf.identity(global_step.read_value())
    guard = hooks.NonFiniteLossHook(loss_after, step, train_dir)
    saver_hook = tf.train.CheckpointSaverHook(
        train_dir, save_steps=1, listeners=[guard.saver_listener()])
    with pytest.raises(hooks.NonFiniteLossError,
                       match='variables became Inf at global step 2 ') as error:
      with tf.train.MonitoredSession(hooks=[guard, saver_hook]) as session:
        for _ in range(5):
          session.run(loss_after)
  assert 'the loss, 1, was still finite' in str(error.value)
  latest = tf.train.latest_checkpoint(train_dir)
  # 1e30 * 1e5 still fits in float32; the next update overflows.
  assert latest.endswith('-1')
  assert tf.train.load_checkpoint(latest).get_tensor(
      weight.op.name) == pytest.approx(1e35, rel=1e-5)
