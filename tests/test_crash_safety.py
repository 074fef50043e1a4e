"""Crash safety of training and evaluation: SIGKILL, NaN, full disk.

The SIGKILL loop itself lives in reliability/kill_loop.py (the long version
runs with `python -m reliability.kill_loop --trials=N`); here a short,
seeded version runs with the evaluator watching beside training.
"""


import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import script_utils
from reliability import kill_loop
from tests.train_dir_helpers import can_mount_tmpfs
from tests.train_dir_helpers import checkpoint_values
from tests.train_dir_helpers import copy_train_dir
from tests.train_dir_helpers import repoint_checkpoint_state
from tests.train_dir_helpers import step_of
from tests.train_dir_helpers import subprocess_env
from tests.train_dir_helpers import train_in_process
from training import checkpoint_saving
from training import hooks

IMAGE_SIZE = 32
BASE_FLAGS = [
    '--dataset_name=shapes',
    '--train_image_size=%d' % IMAGE_SIZE,
    '--batch_size=4',
    '--save_summaries_secs=0',
    '--save_interval_secs=0',
    '--log_every_n_steps=1',
    '--num_readers=1',
    '--num_preprocessing_threads=1',
    '--learning_rate_decay_type=fixed',
]
# A model whose checkpoint data (~22 MB with Adam's two slots) is larger
# than anything else training writes (graph.pbtxt ~2.7 MB, events ~5 MB),
# so a limit between the two makes the checkpoint save the write that fails.
BIG_CHECKPOINT_FLAGS = ['--model_name=mobilenet_v1_075', '--optimizer=adam',
                        '--learning_rate=0.001', '--opt_epsilon=1e-8']
FILE_SIZE_LIMIT = 10 * 1024 * 1024


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  """The tiny shapes set: 12 training, 6 validation images, 32x32."""
  path = str(tmp_path_factory.mktemp('shapes'))
  kill_loop.make_dataset(path)
  return path


def _train(shapes_dir, train_dir, *flags):
  return train_in_process(BASE_FLAGS, shapes_dir, train_dir, *flags)


def _train_command(shapes_dir, train_dir, *flags):
  return [sys.executable,
          os.path.join(kill_loop.REPO_ROOT, 'train_image_classifier.py')
         ] + BASE_FLAGS + ['--dataset_dir=%s' % shapes_dir,
                           '--train_dir=%s' % train_dir] + list(flags)


# ------------------------------------------------------------- SIGKILL ---


# Steps of the last run of the loop, past the newest checkpoint the kills
# left: it must resume and finish (and the evaluator score its end); 150
# steps there cost as much as all the kills together, and added nothing.
FINAL_STEPS = 20


@pytest.mark.slow
def test_sigkill_loop_resumes_from_the_newest_complete_checkpoint(
    tmp_path):
  """3 SIGKILLs (one at the first save of a resumed run, i.e. the re-save of
  the restored checkpoint under its own name; one at a later save; one at a
  random moment), then a run FINAL_STEPS steps past the newest checkpoint,
  the evaluator watching throughout.

  run_kill_loop checks after every kill that each listed checkpoint is
  complete, that the newest step never decreased, and that the restarted
  run logged "Resuming from <newest listed>" and continued at the next
  step; and that the evaluator never failed and evaluated only complete,
  consistent checkpoints. It raises CrashSafetyError otherwise.
  """
  lines = []
  summary = kill_loop.run_kill_loop(
      # max_steps only bounds the killed launches (final_steps ends the
      # loop): far beyond what any launch reaches before its kill, even on a
      # fast machine (1000 steps of this tiny network took under 15 s on an
      # AVX-512 EPYC, so a `random` kill came after the run had ended).
      str(tmp_path), trials=3, seed=1, max_steps=1000000, with_eval=True,
      modes=['step_save', 'random', 'first_save'], log=lines.append,
      # Generous: the suite runs on every core, so one launch (graph build,
      # 150 steps) took up to 180 s under that load.
      launch_timeout_secs=360, final_steps=FINAL_STEPS)
  print('\n'.join(lines))
  assert summary['trials'] == 3
  # At least one kill hit a checkpoint write in progress.
  assert summary['kills_at_save'] >= 1, lines
  # Every restart after the first checkpoint resumed from one.
  assert summary['resumed_from'][0] is None
  assert all(summary['resumed_from'][2:]), summary['resumed_from']
  # The last run went on from the newest checkpoint to its end.
  # (By its name: the final run's saves may have deleted it.)
  resumed_step = int(re.search(r'-(\d+)$', summary['resumed_from'][-1])
                     .group(1))
  assert summary['final_step'] == resumed_step + FINAL_STEPS
  assert summary['evaluated_steps'][-1] == summary['final_step']
  assert len(summary['evaluated_steps']) >= 2


def test_kill_loop_check_rejects_a_listed_checkpoint_with_a_truncated_index(
    tmp_path):
  """The checker is not vacuous: a damaged listed checkpoint is reported."""
  prefix = str(tmp_path / 'model.ckpt-3')
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    tf.get_variable('w', [10])
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      saver = tf.train.Saver()
      saver.save(sess, prefix)
  assert kill_loop.check_checkpoints(str(tmp_path))[0] == 0
  with open(prefix + '.index', 'r+b') as f:
    f.truncate(10)
  with pytest.raises(kill_loop.CrashSafetyError, match='unreadable'):
    kill_loop.check_checkpoints(str(tmp_path))


@pytest.mark.slow
def test_resume_rewrites_the_restored_checkpoint_only_by_rename(
    big_checkpoint_dir, shapes_dir, tmp_path):
  """On resume, the saver hook saves the restored step again, under the
  name of the newest listed checkpoint. Each of its files must be replaced
  by a rename (new inode), never truncated and rewritten in place (the
  sharded Saver rewrote `.index` in place: a kill then left the newest
  listed checkpoint unreadable and training could not resume)."""
  train_dir = copy_train_dir(big_checkpoint_dir, str(tmp_path / 'train'))
  latest = tf.train.latest_checkpoint(train_dir)
  assert step_of(latest) == 2
  inodes = dict((suffix, os.stat(latest + suffix).st_ino)
                for suffix in ('.index', '.data-00000-of-00001'))
  before = checkpoint_values(latest)
  _train(shapes_dir, train_dir, '--max_number_of_steps=3',
         *BIG_CHECKPOINT_FLAGS)
  assert step_of(tf.train.latest_checkpoint(train_dir)) == 3
  for suffix, inode in inodes.items():
    assert os.stat(latest + suffix).st_ino != inode, suffix
  after = checkpoint_values(latest)
  assert sorted(after) == sorted(before)
  for name in before:
    np.testing.assert_array_equal(after[name], before[name])


# ----------------------------------------------------------- NaN / Inf ---


@pytest.mark.slow
def test_nan_at_a_step_due_for_a_save_is_not_saved(big_checkpoint_dir,
                                                   shapes_dir, tmp_path,
                                                   monkeypatch):
  """With a save due after every step, the NaN/Inf step is still never
  saved: the NaN hook runs before the saver hook. Every saved checkpoint is
  finite, and the newest is the step just before the failure."""
  train_dir = copy_train_dir(big_checkpoint_dir, str(tmp_path / 'train'))
  resumed_step = step_of(tf.train.latest_checkpoint(train_dir))
  real_hook = checkpoint_saving.CheckpointSaverHook

  def save_every_step(checkpoint_dir, save_secs=None, **kwargs):
    del save_secs
    return real_hook(checkpoint_dir, save_steps=1, **kwargs)

  monkeypatch.setattr(checkpoint_saving, 'CheckpointSaverHook',
                      save_every_step)
  with pytest.raises(script_utils.ScriptError) as error:
    # Adam moves every weight by about the learning rate: past float32
    # within a few steps.
    _train(shapes_dir, train_dir, '--max_number_of_steps=1000',
           *(BIG_CHECKPOINT_FLAGS[:2] + ['--learning_rate=1e38',
                                         '--opt_epsilon=1e-8']))
  match = re.search(r'became (NaN|Inf) at global step (\d+)',
                    str(error.value))
  assert match, str(error.value)
  assert isinstance(error.value.__cause__, hooks.NonFiniteLossError)
  bad_step = int(match.group(2))
  assert bad_step > resumed_step  # A step of this run, not the restore.
  latest = tf.train.latest_checkpoint(train_dir)
  assert step_of(latest) == bad_step - 1
  assert latest in str(error.value)
  for path in tf.train.get_checkpoint_state(
      train_dir).all_model_checkpoint_paths:
    assert step_of(path) < bad_step
    for name, value in checkpoint_values(path).items():
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        assert np.all(np.isfinite(value)), (path, name)


# ----------------------------------------------------------- full disk ---


@pytest.fixture(scope='module')
def big_checkpoint_dir(shapes_dir, tmp_path_factory):
  """A train_dir at step 2 whose checkpoint data exceeds FILE_SIZE_LIMIT.

  Shared read-only: the tests that resume it work in a copy
  (copy_train_dir).
  """
  train_dir = str(tmp_path_factory.mktemp('big') / 'train')
  _train(shapes_dir, train_dir, '--max_number_of_steps=2',
         *BIG_CHECKPOINT_FLAGS)
  latest = tf.train.latest_checkpoint(train_dir)
  assert os.path.getsize(latest + '.data-00000-of-00001') > FILE_SIZE_LIMIT
  return train_dir


def _limit_file_size():
  """In the child: writes past FILE_SIZE_LIMIT fail with EFBIG."""
  # Ignored, SIGXFSZ does not kill the process; write() returns EFBIG.
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE,
                     (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _check_full_disk_failure(result, train_dir, previous, previous_values,
                             reason):
  """The run failed with one clear paragraph; `previous` survived intact."""
  output = result.stdout + result.stderr
  assert result.returncode == 1, output[-3000:]
  assert 'Traceback' not in output, output[-3000:]
  message = output[output.index('train_image_classifier.py: error:'):]
  message = ' '.join(message.split())  # The paragraph is wrapped.
  assert reason in message
  assert 'free some space' in message
  assert os.path.basename(previous) in message
  state = tf.train.get_checkpoint_state(train_dir)
  listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
  assert os.path.basename(state.model_checkpoint_path) == os.path.basename(
      previous)
  assert os.path.basename(previous) in listed
  for name in listed:
    tf.train.load_checkpoint(os.path.join(train_dir, name))
  values = checkpoint_values(
      os.path.join(train_dir, os.path.basename(previous)))
  assert sorted(values) == sorted(previous_values)
  for name, value in previous_values.items():
    np.testing.assert_array_equal(values[name], value)


@pytest.mark.slow
def test_file_size_limit_while_saving_keeps_the_last_checkpoint(
    big_checkpoint_dir, shapes_dir, tmp_path):
  """RLIMIT_FSIZE (unprivileged): the checkpoint write fails with EFBIG."""
  train_dir = str(tmp_path / 'train')
  shutil.copytree(big_checkpoint_dir, train_dir)
  repoint_checkpoint_state(train_dir)
  previous = tf.train.latest_checkpoint(train_dir)
  previous_values = checkpoint_values(previous)
  result = subprocess.run(
      _train_command(shapes_dir, train_dir, '--max_number_of_steps=4',
                     *BIG_CHECKPOINT_FLAGS),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True, env=subprocess_env(),
      preexec_fn=_limit_file_size,
      timeout=300)
  _check_full_disk_failure(result, train_dir, previous, previous_values,
                           'file too large')


@pytest.mark.slow
def test_no_space_left_while_saving_keeps_the_last_checkpoint(
    big_checkpoint_dir, shapes_dir, tmp_path):
  """A real ENOSPC: train_dir is a tmpfs (in a private mount namespace)
  with room for the other files but not for a new checkpoint."""
  if not can_mount_tmpfs(tmp_path):
    pytest.skip('cannot mount a tmpfs (no user namespaces); the '
                'RLIMIT_FSIZE test covers the same path')
  previous = tf.train.latest_checkpoint(big_checkpoint_dir)
  previous_values = checkpoint_values(previous)
  used_kb = sum(os.path.getsize(os.path.join(big_checkpoint_dir, n))
                for n in os.listdir(big_checkpoint_dir)) // 1024
  # Room for graph.pbtxt and the events file, not for 22 MB of checkpoint.
  size_kb = used_kb + 10 * 1024
  staging = str(tmp_path / 'staging')
  result_dir = str(tmp_path / 'after')
  shutil.copytree(big_checkpoint_dir, staging)
  train_dir = big_checkpoint_dir  # The `checkpoint` file's absolute paths.
  # In the namespace, the tmpfs hides the original train_dir; its content
  # after the run is copied out before the namespace (and tmpfs) goes.
  script = ('train_dir="$1"; staging="$2"; out="$3"; shift 3; '
            'mount -t tmpfs -o size=%dk none "$train_dir" || exit 99; '
            'cp -a "$staging"/. "$train_dir"/ || exit 98; '
            '"$@"; status=$?; mkdir -p "$out"; cp -a "$train_dir"/. "$out"/; '
            'exit $status' % size_kb)
  command = ['unshare', '-rm', 'sh', '-c', script, 'sh', train_dir, staging,
             result_dir] + _train_command(
                 shapes_dir, train_dir, '--max_number_of_steps=4',
                 *BIG_CHECKPOINT_FLAGS)
  result = subprocess.run(command, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=subprocess_env(), timeout=300)
  assert result.returncode not in (98, 99), result.stderr[-2000:]
  repoint_checkpoint_state(result_dir)
  _check_full_disk_failure(result, result_dir, previous, previous_values,
                           'no space left on device')
  # The original train_dir was never touched.
  assert tf.train.latest_checkpoint(train_dir) == previous
