"""Distributed training on a local cluster: 1 ps + 2 workers on 127.0.0.1.

Runs scripts/run_local_cluster.sh (the launcher users run) for a few steps
on a tiny shapes set, bounded in time; every process it started is killed
at the end whatever happens (they share one process group).
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import glob
import os
import re
import signal
import subprocess
import sys

import pytest

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import generate_shapes

MAX_STEPS = 20
TIMEOUT_SECS = 420
_FINISHED = re.compile(r'Finished training on task (\d+): (\d+) local steps, '
                       r'global step (\d+)')


def _kill_group(process):
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except OSError:
    pass  # Already gone.


@pytest.mark.slow
def test_local_cluster_trains_on_both_workers_with_a_shared_step(
    repo_root, script_env, tmp_path):
  dataset_dir = str(tmp_path / 'shapes')
  generate_shapes.run(dataset_dir, image_size=32, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  train_dir = str(tmp_path / 'cluster')
  env = dict(script_env, PYTHON=sys.executable, DATASET_DIR=dataset_dir,
             TRAIN_DIR=train_dir, MODEL_NAME='mobilenet_v1_025',
             IMAGE_SIZE='32', BATCH_SIZE='4', MAX_STEPS=str(MAX_STEPS))
  process = subprocess.Popen(
      ['bash', os.path.join('scripts', 'run_local_cluster.sh'),
       '--save_summaries_secs=0', '--log_every_n_steps=5',
       '--num_readers=1', '--num_preprocessing_threads=1'],
      cwd=repo_root, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, universal_newlines=True,
      start_new_session=True)
  try:
    output, _ = process.communicate(timeout=TIMEOUT_SECS)
  except subprocess.TimeoutExpired:
    _kill_group(process)
    output, _ = process.communicate()
    pytest.fail('The local cluster did not finish in %d s:\n%s' %
                (TIMEOUT_SECS, output))
  finally:
    _kill_group(process)  # The ps (and anything left) never outlives this.

  logs = {}
  for path in glob.glob(os.path.join(train_dir, 'logs', '*.log')):
    with open(path) as f:
      logs[os.path.basename(path)] = f.read()
  assert process.returncode == 0, output + '\n'.join(
      '== %s\n%s' % (name, text[-3000:]) for name, text in logs.items())
  assert sorted(logs) == ['ps0.log', 'worker0.log', 'worker1.log']
  assert re.search(r'ps=127\.0\.0\.1:\d+ workers=127\.0\.0\.1:\d+,'
                   r'127\.0\.0\.1:\d+', output)

  finished = {}
  for name in ('worker0.log', 'worker1.log'):
    match = _FINISHED.search(logs[name])
    assert match, logs[name][-3000:]
    finished[int(match.group(1))] = (int(match.group(2)),
                                     int(match.group(3)))
  (local0, final0), (local1, final1) = finished[0], finished[1]
  # Both workers stepped, each on the one global step of the ps.
  assert local0 >= 1 and local1 >= 1
  assert final0 >= MAX_STEPS and final1 >= MAX_STEPS
  # Only the chief writes checkpoints; its last one holds the shared step,
  # which counts the steps of both workers.
  checkpoint = tf.train.latest_checkpoint(train_dir)
  assert checkpoint
  step = int(tf.train.load_checkpoint(checkpoint).get_tensor('global_step'))
  assert final0 <= step <= local0 + local1
  assert 'last checkpoint %s' % checkpoint in logs['worker0.log']
  assert 'last checkpoint' not in logs['worker1.log']
