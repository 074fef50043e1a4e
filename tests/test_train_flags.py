"""The flags of train_image_classifier.py and eval_image_classifier.py
(cli/common_flags.py, cli/train_flags.py): slim's names and defaults, one
definition per flag, and what the optimizer and learning-rate flags build.

No training runs here: the optimizers and schedules are built in a small
graph and stepped a few times.
"""


from absl import flags
import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import common_flags
from cli import train_flags
import eval_image_classifier as eic
import train_image_classifier as tic
from training import optimizers


def test_flags_have_the_slim_names_and_defaults():
  opts = tic.parse_flags([])
  assert opts.dataset_name == 'imagenet'
  assert opts.model_name == 'mobilenet_v1'
  assert opts.optimizer == 'rmsprop'
  assert opts.learning_rate_decay_type == 'exponential'
  assert opts.batch_size == 32
  assert opts.quantize_delay == -1
  assert opts.num_epochs_per_decay == 2.0
  for name in ('train_dir', 'master', 'num_clones', 'clone_on_cpu',
               'worker_replicas', 'num_ps_tasks', 'task', 'num_readers',
               'num_preprocessing_threads', 'log_every_n_steps',
               'save_summaries_secs', 'save_interval_secs', 'weight_decay',
               'adadelta_rho', 'adagrad_initial_accumulator_value',
               'adam_beta1', 'adam_beta2', 'opt_epsilon',
               'ftrl_learning_rate_power', 'ftrl_initial_accumulator_value',
               'ftrl_l1', 'ftrl_l2', 'momentum', 'rmsprop_momentum',
               'rmsprop_decay', 'learning_rate', 'end_learning_rate',
               'learning_rate_decay_factor', 'label_smoothing',
               'sync_replicas', 'replicas_to_aggregate',
               'moving_average_decay', 'dataset_split_name', 'dataset_dir',
               'labels_offset', 'preprocessing_name', 'train_image_size',
               'max_number_of_steps', 'use_grayscale', 'checkpoint_path',
               'checkpoint_exclude_scopes', 'trainable_scopes',
               'ignore_missing_vars'):
    assert name in opts, name


def test_a_conflicting_flag_definition_raises_and_a_same_one_is_allowed():
  flag_values = flags.FlagValues()
  train_flags.define_eval_flags(flag_values)
  common_flags.define_model_flags(flag_values)  # the same flags again
  with pytest.raises(common_flags.FlagConflictError, match='--batch_size'):
    common_flags.define_batch_size_flag(32, flag_values)  # eval's is 100
  with pytest.raises(common_flags.FlagConflictError, match='--labels_offset'):
    common_flags.define(flags.DEFINE_string, 'labels_offset', '0', 'help',
                        flag_values)


def test_train_and_eval_imported_together_keep_their_own_defaults():
  # Both scripts are imported into this process (at the top of this file).
  assert eic.parse_flags([]).batch_size == 100
  assert tic.parse_flags([]).batch_size == 32
  global_flags = flags.FLAGS

  def value(name):
    return global_flags[name].value

  try:
    common_flags.use_script_defaults(eic.PROGRAM)
    assert value('batch_size') == 100
    assert value('dataset_split_name') == 'validation'
    assert value('checkpoint_path') == '/tmp/tfmodel/'
    common_flags.use_script_defaults(tic.PROGRAM)
    assert value('batch_size') == 32
    assert value('dataset_split_name') == 'train'
    assert value('checkpoint_path') is None
    # A value set explicitly is not replaced by a default.
    global_flags.batch_size = 7
    common_flags.use_script_defaults(eic.PROGRAM)
    assert value('batch_size') == 7
  finally:
    global_flags.unparse_flags()
    common_flags.use_script_defaults(tic.PROGRAM)


# ------------------------------------------------- optimizers and rates ---

def _optimizer(opts, learning_rate):
  return optimizers.optimizer(tic.config_from_flags(opts).optimizer,
                              learning_rate)


def _learning_rate(opts, num_samples, global_step):
  config = tic.config_from_flags(opts)
  steps = optimizers.decay_steps(
      num_samples, config.schedule.num_epochs_per_decay,
      config.inputs.batch_size,
      config.deploy.replicas_to_aggregate if config.deploy.sync_replicas
      else 1)
  return optimizers.learning_rate(config.schedule, global_step, steps)


# Optimizer name -> (class, slot names).
_OPTIMIZER_SLOTS = {
    'adadelta': (tf.train.AdadeltaOptimizer, {'accum', 'accum_update'}),
    'adagrad': (tf.train.AdagradOptimizer, {'accumulator'}),
    'adam': (tf.train.AdamOptimizer, {'m', 'v'}),
    'ftrl': (tf.train.FtrlOptimizer, {'accum', 'linear'}),
    'momentum': (tf.train.MomentumOptimizer, {'momentum'}),
    'rmsprop': (tf.train.RMSPropOptimizer, {'rms', 'momentum'}),
    'sgd': (tf.train.GradientDescentOptimizer, set()),
}


@pytest.mark.parametrize('name', sorted(_OPTIMIZER_SLOTS))
def test_each_optimizer_is_built_from_its_flags_and_minimizes(name):
  opts = tic.parse_flags(['--optimizer=%s' % name, '--learning_rate=0.1'])
  assert name in optimizers.OPTIMIZERS
  target = tf.constant([1.0, -2.0])
  weights = tf.Variable([0.0, 0.0])
  loss = tf.reduce_sum(tf.square(weights - target))
  optimizer = _optimizer(opts, tf.constant(0.1))
  cls, slots = _OPTIMIZER_SLOTS[name]
  assert isinstance(optimizer, cls)
  train_op = optimizer.minimize(loss)
  assert set(optimizer.get_slot_names()) == slots
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    before = sess.run(loss)
    for _ in range(5):
      sess.run(train_op)
    assert sess.run(loss) < before


def test_optimizer_hyper_parameter_flags_reach_the_optimizer():
  # Adagrad's accumulators start at --adagrad_initial_accumulator_value.
  opts = tic.parse_flags(['--optimizer=adagrad',
                          '--adagrad_initial_accumulator_value=0.3'])
  weights = tf.Variable([0.0, 0.0])
  optimizer = _optimizer(opts, tf.constant(0.1))
  optimizer.minimize(tf.reduce_sum(weights))
  accumulator = optimizer.get_slot(weights, 'accumulator')
  # Momentum: two steps on a constant gradient g move by lr * g * (2 + m).
  opts = tic.parse_flags(['--optimizer=momentum', '--momentum=0.5'])
  other = tf.Variable([0.0])
  step = _optimizer(opts, tf.constant(0.1)).minimize(
      tf.reduce_sum(3.0 * other))
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    np.testing.assert_allclose(sess.run(accumulator), [0.3, 0.3])
    sess.run(step)
    sess.run(step)
    np.testing.assert_allclose(sess.run(other), [-0.1 * 3.0 * 2.5],
                               rtol=1e-6)


# 100 samples, batch 10, 2 epochs per decay: the rate decays every 20 steps.
_DECAY_FLAGS = ['--learning_rate=0.1', '--learning_rate_decay_factor=0.5',
                '--num_epochs_per_decay=2', '--batch_size=10',
                '--end_learning_rate=0.01']
_STEPS = [0, 19, 20, 30, 40, 60]


@pytest.mark.parametrize('decay_type, expected', [
    ('fixed', [0.1] * 6),
    ('exponential', [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]),
    # Linear from 0.1 to 0.01 over 20 steps, then constant.
    ('polynomial', [0.1, 0.0145, 0.01, 0.01, 0.01, 0.01]),
])
def test_each_learning_rate_decay_type(decay_type, expected):
  opts = tic.parse_flags(_DECAY_FLAGS + [
      '--learning_rate_decay_type=%s' % decay_type])
  global_step = tf.train.get_or_create_global_step()
  learning_rate = _learning_rate(opts, 100, global_step)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    rates = []
    for step in _STEPS:
      global_step.load(step, sess)
      rates.append(sess.run(learning_rate))
  np.testing.assert_allclose(rates, expected, rtol=1e-5)


def test_sync_replicas_decay_counts_aggregated_steps():
  opts = tic.parse_flags(_DECAY_FLAGS + [
      '--sync_replicas', '--replicas_to_aggregate=2'])
  global_step = tf.train.get_or_create_global_step()
  learning_rate = _learning_rate(opts, 100, global_step)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    global_step.load(10, sess)
    np.testing.assert_allclose(sess.run(learning_rate), 0.05, rtol=1e-6)
