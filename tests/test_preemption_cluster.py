"""Stop signals on a local cluster (1 ps + 2 workers on 127.0.0.1): the
non-chief exits cleanly, the chief saves the step it reached, the ps exits
at once."""

import os
import re
import signal

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import pytest
import tensorflow.compat.v1 as tf

from datasets import generate_shapes
from tests import test_distributed_faults as faults
from tests.train_dir_helpers import subprocess_env

_SAVED = re.compile(r'interrupted by SIGTERM at step (\d+); checkpoint (\S+) '
                    r'saved; run the same command to resume\.')


def _stop(process, log_path):
  """SIGTERMs one task; returns (exit status, its log)."""
  process.send_signal(signal.SIGTERM)
  code = process.wait(timeout=120)
  return code, faults._read(log_path)  # pylint: disable=protected-access


@pytest.mark.slow
def test_sigterm_stops_each_task_of_a_cluster_cleanly(tmp_path):
  dataset_dir = str(tmp_path / 'shapes')
  generate_shapes.run(dataset_dir, image_size=32, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  train_dir = str(tmp_path / 'train')
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  cluster = faults._LocalCluster(repo_root, subprocess_env(), str(tmp_path), [  # pylint: disable=protected-access
      '--train_dir=' + train_dir, '--dataset_dir=' + dataset_dir,
      '--dataset_name=shapes', '--model_name=mobilenet_v1_025',
      '--train_image_size=32', '--batch_size=4', '--save_summaries_secs=0',
      '--save_interval_secs=600', '--log_every_n_steps=1',
      '--num_readers=1', '--num_preprocessing_threads=1',
      '--max_number_of_steps=1000000'])
  try:
    cluster.new_ports()
    ps, ps_log = cluster.start_ps()
    chief, chief_log = cluster.start('worker', 0, 'worker0.log')
    worker, worker_log = cluster.start('worker', 1, 'worker1.log')
    running = [('ps', ps, ps_log), ('chief', chief, chief_log),
               ('worker 1', worker, worker_log)]
    for task, log in ((0, chief_log), (1, worker_log)):
      faults._wait_until(  # pylint: disable=protected-access
          lambda t=task, l=log: faults._steps(faults._read(l), t),  # pylint: disable=protected-access
          faults.STARTUP_SECS, 'task %d to train' % task, running)

    code, text = _stop(worker, worker_log)
    assert code == 143, text
    assert ('this worker saves no checkpoint (the chief does); run the same '
            'command to resume.') in text, text
    assert 'Traceback' not in text

    code, text = _stop(chief, chief_log)
    assert code == 143, text
    match = _SAVED.search(text)
    assert match, text
    newest = tf.train.latest_checkpoint(train_dir)
    assert newest == match.group(2) and newest.endswith('-' + match.group(1))
    assert not os.path.exists(os.path.join(train_dir, '.trainer.lock'))

    code, text = _stop(ps, ps_log)
    assert code == 143, text
    assert 'interrupted by SIGTERM before this process trained a step' in text
  finally:
    cluster.kill_all()
