"""The loss/accuracy plot: what it reads from a run's folders, and the PNG."""

import json
import os
import time

import pytest

from core import tf_compat  # noqa: F401  (before tensorflow)
import tensorflow.compat.v1 as tf

from training import curves


def _write_losses(train_dir, points):
  """One events file with a total-loss summary per (step, value)."""
  writer = tf.summary.FileWriter(train_dir)
  for step, value in points:
    summary = tf.Summary(value=[tf.Summary.Value(tag=curves.LOSS_TAG,
                                                 simple_value=value)])
    writer.add_summary(summary, step)
  writer.close()
  time.sleep(1.1)  # A second file of the same second would share its name.


def _write_metrics(eval_dir, step, accuracy):
  os.makedirs(eval_dir, exist_ok=True)
  with open(os.path.join(eval_dir, 'metrics-%d.json' % step), 'w') as f:
    json.dump({'Accuracy': accuracy, 'global_step': step}, f)


def test_a_resumed_run_is_one_curve_with_each_evaluation(tmp_path):
  train_dir, eval_dir = str(tmp_path / 'train'), str(tmp_path / 'eval')
  _write_losses(train_dir, [(1, 2.0), (50, 1.5)])
  _write_losses(train_dir, [(100, 1.0), (150, 0.5)])  # the resumed run
  _write_metrics(eval_dir, 150, 0.9)
  _write_metrics(eval_dir, 100, 0.75)
  with open(os.path.join(eval_dir, 'metrics.json'), 'w') as f:
    f.write('{"Accuracy": 0.1}')  # the latest copy: not a point of its own
  with open(os.path.join(eval_dir, 'metrics-7.json'), 'w') as f:
    f.write('{"Accura')  # damaged: skipped
  found = curves.read_curves(train_dir, eval_dir)
  assert found.loss == [(1, 2.0), (50, 1.5), (100, 1.0), (150, 0.5)]
  assert found.accuracy == [(100, 0.75), (150, 0.9)]
  output = str(tmp_path / 'plots' / 'curves.png')
  assert curves.write_plot(found, output, title='test') == output
  with open(output, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert os.listdir(str(tmp_path / 'plots')) == ['curves.png']


def test_a_plot_without_evaluations_has_the_loss_alone(tmp_path):
  train_dir = str(tmp_path / 'train')
  _write_losses(train_dir, [(1, 2.0), (2, 1.0)])
  found = curves.read_curves(train_dir, str(tmp_path / 'no_eval'))
  assert found.accuracy == []
  curves.write_plot(found, str(tmp_path / 'loss.png'))
  assert os.path.getsize(str(tmp_path / 'loss.png')) > 1000


def test_a_folder_without_summaries_says_how_to_get_them(tmp_path):
  with pytest.raises(curves.CurvesError, match='save_summaries_steps'):
    curves.read_curves(str(tmp_path))
  with pytest.raises(curves.CurvesError, match='not a directory'):
    curves.read_curves(str(tmp_path / 'missing'))
