"""The watching evaluator keeps up: newest first (skipped ones named), every
checkpoint in order on request, deleted checkpoints skipped, metrics.json
written atomically."""

import errno
import json
import logging
import os

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import eval_image_classifier as eic
from reliability import kill_loop
from tests.train_dir_helpers import train_in_process
from training import checkpoint_watch
from training import evaluator

TRAIN_FLAGS = [
    '--dataset_name=shapes', '--model_name=mobilenet_v1_025',
    '--train_image_size=32', '--batch_size=4', '--save_summaries_secs=0',
    '--save_interval_secs=0', '--log_every_n_steps=1', '--num_readers=1',
    '--num_preprocessing_threads=1', '--optimizer=sgd',
    '--learning_rate=0.01', '--learning_rate_decay_type=fixed',
]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(dataset dir, train dir with checkpoints of steps 0, 1, 2 and 3)."""
  data_dir = str(tmp_path_factory.mktemp('shapes'))
  kill_loop.make_dataset(data_dir)
  train_dir = str(tmp_path_factory.mktemp('train'))
  for steps in (1, 2, 3):  # Each run saves its start and its end.
    train_in_process(TRAIN_FLAGS, data_dir, train_dir,
                     '--max_number_of_steps=%d' % steps)
  # A run lists only its own saves; list all four, as one long run would.
  paths = [os.path.join(train_dir, 'model.ckpt-%d' % s) for s in range(4)]
  tf.train.update_checkpoint_state(train_dir, paths[-1], paths)
  return data_dir, train_dir


def _watch(data_dir, train_dir, eval_dir, *flags):
  opts = eic.parse_flags([
      '--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
      '--dataset_name=shapes', '--dataset_dir=%s' % data_dir,
      '--model_name=mobilenet_v1_025', '--eval_image_size=32',
      '--batch_size=6', '--num_readers=1', '--num_preprocessing_threads=1',
      '--eval_interval_secs=0', '--timeout=0.5'] + list(flags))
  with tf.Graph().as_default():
    return eic.evaluate(opts)


def _steps(results):
  return [r['global_step'] for r in results]


def test_newest_checkpoint_first_and_the_skipped_ones_named(
    trained, tmp_path, caplog):
  data_dir, train_dir = trained
  with caplog.at_level(logging.INFO):
    results = _watch(data_dir, train_dir, str(tmp_path))
  assert _steps(results) == [3]
  assert ('skipped 3 older one(s) not evaluated yet: model.ckpt-0, '
          'model.ckpt-1, model.ckpt-2 (`eval_every_checkpoint` scores each)'
          in caplog.text)  # (The script spells it --eval_every_checkpoint.)


def test_every_checkpoint_in_order_on_request(trained, tmp_path):
  data_dir, train_dir = trained
  results = _watch(data_dir, train_dir, str(tmp_path),
                   '--eval_every_checkpoint')
  assert _steps(results) == [0, 1, 2, 3]
  for step in range(4):
    assert os.path.exists(str(tmp_path / ('metrics-%d.json' % step)))


def test_a_checkpoint_deleted_during_its_evaluation_is_skipped(
    trained, tmp_path, monkeypatch, caplog):
  """As the trainer's retention would: its files vanish after the
  evaluation of it began."""
  data_dir, train_dir = trained
  copy = str(tmp_path / 'train')
  os.makedirs(copy)
  for name in os.listdir(train_dir):
    if name.startswith('model.ckpt'):
      with open(os.path.join(train_dir, name), 'rb') as source, open(
          os.path.join(copy, name), 'wb') as target:
        target.write(source.read())
  paths = [os.path.join(copy, 'model.ckpt-%d' % s) for s in range(4)]
  tf.train.update_checkpoint_state(copy, paths[-1], paths)
  real_count = evaluator._count  # pylint: disable=protected-access

  def count_after_deleting(config, graph, tf_graph, saver, checkpoint,
                           *args):
    if checkpoint.endswith('model.ckpt-1'):
      for name in os.listdir(copy):
        if name.startswith('model.ckpt-1.'):
          os.remove(os.path.join(copy, name))
    return real_count(config, graph, tf_graph, saver, checkpoint, *args)

  monkeypatch.setattr(evaluator, '_count', count_after_deleting)
  with caplog.at_level(logging.WARNING):
    results = _watch(data_dir, copy, str(tmp_path / 'eval'),
                     '--eval_every_checkpoint')
  assert _steps(results) == [0, 2, 3]
  assert 'Skipping checkpoint %s' % os.path.join(copy, 'model.ckpt-1') in (
      caplog.text)


def test_metrics_json_is_replaced_whole_or_not_at_all(trained, tmp_path,
                                                     monkeypatch):
  """A write that fails at the rename leaves the previous metrics.json and
  no partial file."""
  data_dir, train_dir = trained
  eval_dir = str(tmp_path)
  _watch(data_dir, train_dir, eval_dir)
  metrics = os.path.join(eval_dir, 'metrics.json')
  with open(metrics) as f:
    before = f.read()

  def failing_rename(*unused_args, **unused_kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(os, 'replace', failing_rename)
  with pytest.raises(Exception):
    _watch(data_dir, train_dir, eval_dir, '--eval_every_checkpoint')
  with open(metrics) as f:
    assert f.read() == before
  json.loads(before)
  assert not [n for n in os.listdir(eval_dir) if '.tmp' in n]


def test_newer_than_orders_by_step_in_the_name():
  listed = ['d/model.ckpt-5', 'd/model.ckpt-10', 'd/model.ckpt-15']
  assert checkpoint_watch.newer_than(listed, None) == listed
  assert checkpoint_watch.newer_than(listed, 'd/model.ckpt-5') == listed[1:]
  # The last one evaluated was deleted meanwhile: still compared by step.
  assert checkpoint_watch.newer_than(listed, 'd/model.ckpt-7') == listed[1:]
  assert checkpoint_watch.newer_than(listed, 'd/model.ckpt-15') == []
