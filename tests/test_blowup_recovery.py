"""Blow-up recovery: --recover_from_nonfinite, --loss_upper_bound and
--recovery_learning_rate_factor, with a blow-up injected into the graph."""

import logging

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import script_utils
from reliability import kill_loop
from tests.train_dir_helpers import checkpoint_values
from tests.train_dir_helpers import train_in_process
from training import train_graph

BASE_FLAGS = [
    '--dataset_name=shapes', '--model_name=mobilenet_v1_025',
    '--train_image_size=32', '--batch_size=4', '--save_summaries_secs=0',
    '--save_interval_secs=0', '--log_every_n_steps=1', '--num_readers=1',
    '--num_preprocessing_threads=1', '--optimizer=sgd',
    '--learning_rate=0.01', '--learning_rate_decay_type=fixed',
]
# The step after which the injected blow-up sets a weight to NaN.
BLOW_UP_STEP = 3


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('shapes'))
  kill_loop.make_dataset(path)
  return path


def inject_blow_up(monkeypatch, builds_that_blow_up):
  """Makes the first `builds_that_blow_up` training graphs write NaN into a
  weight after step BLOW_UP_STEP; returns the list of learning rates each
  build was given."""
  real_build = train_graph.build
  rates = []

  def build(config, deploy_config, before_optimizer=None):
    graph = real_build(config, deploy_config, before_optimizer)
    rates.append(config.schedule.learning_rate)
    if len(rates) > builds_that_blow_up:
      return graph
    weight = tf.trainable_variables()[0]
    with tf.control_dependencies([graph.train_tensor]):
      poison = tf.cond(tf.equal(graph.step, BLOW_UP_STEP),
                       lambda: tf.group(weight.assign(weight * np.nan)),
                       tf.no_op)
    with tf.control_dependencies([poison]):
      loss = tf.identity(graph.train_tensor)
    return graph._replace(train_tensor=loss)

  monkeypatch.setattr(train_graph, 'build', build)
  return rates


def _all_finite(checkpoint):
  return all(np.all(np.isfinite(value))
             for value in checkpoint_values(checkpoint).values()
             if np.issubdtype(np.asarray(value).dtype, np.floating))


def test_a_blow_up_is_recovered_from_and_training_finishes(
    shapes_dir, tmp_path, monkeypatch, caplog):
  rates = inject_blow_up(monkeypatch, 1)
  with caplog.at_level(logging.INFO):
    result = train_in_process(
        BASE_FLAGS, shapes_dir, str(tmp_path), '--max_number_of_steps=6',
        '--recover_from_nonfinite=2', '--recovery_learning_rate_factor=0.5')
  assert result['global_step'] == 6
  assert len(result['recoveries']) == 1
  step, what, restored = result['recoveries'][0]
  # The NaN weight shows in the next step's loss.
  assert step == BLOW_UP_STEP + 1 and what == 'the loss became NaN'
  assert restored.endswith('model.ckpt-0')  # The start's checkpoint.
  assert rates == [0.01, 0.005]
  newest = tf.train.latest_checkpoint(str(tmp_path))
  assert newest.endswith('model.ckpt-6') and _all_finite(newest)
  assert ('Recovery 1 of at most 2: the loss became NaN at global step 4; '
          'restoring %s' % restored) in caplog.text
  assert 'learning rate now 0.005' in caplog.text
  assert 'Training recovered from 1 blow-up(s)' in caplog.text


@pytest.mark.slow
def test_recoveries_run_out_with_a_message_saying_how_many(
    shapes_dir, tmp_path, monkeypatch):
  rates = inject_blow_up(monkeypatch, 10)
  with pytest.raises(script_utils.ScriptError) as error:
    train_in_process(BASE_FLAGS, shapes_dir, str(tmp_path),
                     '--max_number_of_steps=6', '--recover_from_nonfinite=1')
  assert len(rates) == 2  # The first run and one recovery.
  message = str(error.value)
  assert 'loss became NaN at global step 4' in message
  assert 'after 1 recoveries, the most --recover_from_nonfinite' in message
  assert _all_finite(tf.train.latest_checkpoint(str(tmp_path)))


def test_without_recovery_a_blow_up_still_stops(shapes_dir, tmp_path,
                                                monkeypatch):
  rates = inject_blow_up(monkeypatch, 1)
  with pytest.raises(script_utils.ScriptError,
                     match='--recover_from_nonfinite restore it'):
    train_in_process(BASE_FLAGS, shapes_dir, str(tmp_path),
                     '--max_number_of_steps=6')
  assert len(rates) == 1


def test_a_loss_above_the_bound_counts_as_a_blow_up(shapes_dir, tmp_path):
  # The loss of 6 classes starts near log(6) = 1.8, far above 0.01.
  with pytest.raises(script_utils.ScriptError) as error:
    train_in_process(BASE_FLAGS, shapes_dir, str(tmp_path),
                     '--max_number_of_steps=3', '--loss_upper_bound=0.01')
  assert 'rose above --loss_upper_bound=0.01 at global step 1' in str(
      error.value)
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith('model.ckpt-0')


@pytest.mark.parametrize('flag, words', [
    ('--recover_from_nonfinite=-1', 'must be >= 0'),
    ('--loss_upper_bound=0', 'must be > 0'),
    ('--recovery_learning_rate_factor=1.5', 'must be in (0, 1]'),
])
def test_bad_recovery_flags_name_the_flag(shapes_dir, tmp_path, flag, words):
  with pytest.raises(script_utils.ScriptError) as error:
    train_in_process(BASE_FLAGS, shapes_dir, str(tmp_path / 'train'),
                     '--max_number_of_steps=1', flag)
  assert flag in str(error.value) and words in str(error.value)
