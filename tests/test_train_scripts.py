"""Tests for the shell launchers in scripts/."""


import glob
import json
import os
import re
import subprocess
import sys

import pytest

from datasets import generate_shapes

# The launchers of this lane (scripts/main_job.sh is the lead's).
LAUNCHERS = ['train_mobilenet_on_shapes.sh', 'train_mobilenet_on_cifar10.sh',
             'finetune_mobilenet_v1_on_flowers.sh', 'eval_mobilenet.sh',
             'export_mobilenet.sh', 'run_local_cluster.sh']


@pytest.mark.parametrize('name', LAUNCHERS)
def test_launcher_is_valid_bash_with_paths_as_variables(repo_root, name):
  path = os.path.join(repo_root, 'scripts', name)
  assert os.access(path, os.X_OK), '%s is not executable' % name
  subprocess.check_call(['bash', '-n', path])
  with open(path) as f:
    text = f.read()
  assert 'set -euo pipefail' in text
  # Every path is a variable with a default that the environment overrides.
  # PYTHON defaults to the project's environment (python_env.sh decides).
  assert re.search(r'^source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/'
                   r'python_env\.sh"$', text, re.M)
  assert re.search(r'^REPO_DIR=\$\{REPO_DIR:-', text, re.M)
  for line in text.splitlines():
    if line.startswith(('"${PYTHON}"', 'cd ')):
      assert '/tmp' not in line, line


@pytest.mark.slow
def test_shapes_launcher_trains_and_evaluates(repo_root, script_env,
                                              tmp_path):
  dataset_dir = str(tmp_path / 'shapes')
  generate_shapes.run(dataset_dir, image_size=32, train_per_class=2,
                      validation_per_class=2, train_shards=1,
                      validation_shards=1, num_workers=1)
  train_dir = str(tmp_path / 'train')
  env = dict(script_env, PYTHON=sys.executable, DATASET_DIR=dataset_dir,
             TRAIN_DIR=train_dir, MODEL_NAME='mobilenet_v1_025',
             IMAGE_SIZE='32', BATCH_SIZE='4', MAX_STEPS='2')
  process = subprocess.run(
      ['bash', os.path.join('scripts', 'train_mobilenet_on_shapes.sh'),
       '--save_summaries_secs=0', '--num_readers=1'],
      cwd=repo_root, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, universal_newlines=True, timeout=400)
  assert process.returncode == 0, process.stdout[-5000:]
  assert glob.glob(os.path.join(train_dir, 'model.ckpt-2.index'))
  with open(os.path.join(train_dir, 'eval', 'metrics.json')) as f:
    metrics = json.load(f)
  assert metrics['global_step'] == 2
  assert metrics['num_examples'] == 12
  assert metrics['model_name'] == 'mobilenet_v1_025'
