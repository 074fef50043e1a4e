"""Stop signals (SIGTERM, SIGINT, SIGHUP) in training and evaluation.

Real signals go to real processes: `reliability.signal_loop` stops training
at random moments and checks each resume; the other tests aim a signal at
one moment (a second signal mid-save, a grace period too short for the
save, an evaluator between checkpoints).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from reliability import kill_loop
from reliability import signal_loop
from tests.train_dir_helpers import subprocess_env
from training import preemption

REPO_ROOT = kill_loop.REPO_ROOT


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('shapes'))
  kill_loop.make_dataset(path)
  return path


def _start(command, log_path):
  with open(log_path, 'w') as log:
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            env=subprocess_env(), cwd=REPO_ROOT)


def _read(path):
  with open(path) as f:
    return f.read()


def _wait_for(predicate, process, seconds, what):
  deadline = time.time() + seconds
  while time.time() < deadline:
    if predicate():
      return
    assert process.poll() is None, 'the process ended before %s' % what
    time.sleep(0.02)
  process.kill()
  pytest.fail('no %s within %d s' % (what, seconds))


def _step_seen(log_path):
  return lambda: kill_loop._STEP_RE.search(_read(log_path))  # pylint: disable=protected-access


@pytest.mark.slow
def test_signal_loop_resumes_at_the_step_saved_at_the_signal(tmp_path):
  """Every mode and signal once (seeded moments), then a short last run."""
  lines = []
  summary = signal_loop.run_signal_loop(
      str(tmp_path), trials=4, seed=3,
      modes=['training', 'second_signal', 'startup', 'training'],
      log=lines.append)
  assert summary['final_step'] is not None, lines
  trained = [s for m, s in zip(summary['modes'], summary['stopped_steps'])
             if m == 'training']
  # Each stop during training reported the step it saved.
  assert len(trained) == 2 and None not in trained, lines
  assert summary['final_step'] > max(trained), lines


def test_stop_check_rejects_a_wrong_status_and_a_step_not_saved(tmp_path):
  """The loop's check fails when the run exits 1 or names another step."""
  line = ('interrupted by SIGTERM at step 7; checkpoint /x/model.ckpt-7 '
          'saved; run the same command to resume.')
  check = signal_loop._check_stop  # pylint: disable=protected-access
  assert check(143, signal.SIGTERM, line, 'training', False,
               str(tmp_path), 7) == 7
  with pytest.raises(kill_loop.CrashSafetyError, match='exit status 1'):
    check(1, signal.SIGTERM, line, 'training', False, str(tmp_path), 7)
  with pytest.raises(kill_loop.CrashSafetyError, match='newest listed'):
    check(143, signal.SIGTERM, line, 'training', False, str(tmp_path), 6)
  with pytest.raises(kill_loop.CrashSafetyError, match='no "interrupted'):
    check(143, signal.SIGTERM, 'nothing', 'training', False, str(tmp_path),
          6)


def _train_command(shapes_dir, train_dir, *flags):
  return kill_loop.train_command(shapes_dir, train_dir, 100000) + list(flags)


def _stop_with_a_second_signal(command, log_path, train_dir):
  """SIGINT, then SIGTERM once the stop's save has begun.

  Returns:
    (exit status, log text), or None when the signal could not be aimed:
    the save ended before the watcher saw it (or before SIGTERM landed),
    which a loaded machine allows; the run then stopped as after one
    signal, with its checkpoint saved.
  """
  process = _start(command, log_path)
  _wait_for(_step_seen(log_path), process, 240, 'training step')
  # Before the signal: a save that starts at once is still new.
  before = kill_loop._temp_files(train_dir)  # pylint: disable=protected-access
  process.send_signal(signal.SIGINT)
  temp = signal_loop._wait_for_temp_file(  # pylint: disable=protected-access
      process, train_dir, time.time() + 60, before)
  if temp:
    process.send_signal(signal.SIGTERM)
  code = process.wait(timeout=60)
  text = _read(log_path)
  assert 'Traceback' not in text
  if not temp or code == -signal.SIGTERM:
    assert signal_loop._STOPPED_RE.search(text), text  # pylint: disable=protected-access
    return None
  return code, text


@pytest.mark.slow
def test_second_signal_during_the_save_exits_at_once(shapes_dir, tmp_path):
  """SIGINT, then SIGTERM while the stop's save writes: exit 130 at once,
  listed checkpoints readable, the lock released; the rerun resumes."""
  train_dir = str(tmp_path / 'train')
  # A model whose save takes long enough to be caught mid-write.
  flags = ['--model_name=mobilenet_v1_075', '--optimizer=adam',
           '--learning_rate=0.0001', '--save_interval_secs=0']
  command = _train_command(shapes_dir, train_dir, *flags)
  # Each try that misses the save resumes from the checkpoint it saved.
  for attempt in range(3):
    stopped = _stop_with_a_second_signal(
        command, str(tmp_path / ('train%d.log' % attempt)), train_dir)
    if stopped:
      break
  assert stopped, 'no try caught the save of the stop in 3'
  code, text = stopped
  assert code == 130, text
  assert 'a second signal (SIGTERM) stopped it at once' in text, text
  assert not os.path.exists(os.path.join(train_dir, '.trainer.lock'))
  newest, _, listed = kill_loop.check_checkpoints(train_dir)
  assert listed and newest is not None
  assert 'the newest listed checkpoint, %s, is intact' % (
      tf.train.latest_checkpoint(train_dir)) in text


@pytest.mark.slow
def test_grace_period_too_short_gives_up_the_save(shapes_dir, tmp_path):
  """With a grace period shorter than a step, the run says it gave up and
  the newest listed checkpoint is the one before the signal."""
  train_dir = str(tmp_path / 'train')
  log_path = str(tmp_path / 'train.log')
  process = _start(_train_command(
      shapes_dir, train_dir, '--save_interval_secs=0',
      '--preemption_grace_secs=0.001'), log_path)
  _wait_for(_step_seen(log_path), process, 240, 'training step')
  process.send_signal(signal.SIGTERM)
  code = process.wait(timeout=60)
  text = _read(log_path)
  assert code == 143, text
  assert 'gave up saving after --preemption_grace_secs=0.001 s' in text, text
  assert 'Traceback' not in text
  newest, _, _ = kill_loop.check_checkpoints(train_dir)
  assert newest == 0  # Only the start's checkpoint: the stop saved nothing.
  assert not os.path.exists(os.path.join(train_dir, '.trainer.lock'))


def test_bad_grace_period_is_one_paragraph(shapes_dir, tmp_path):
  result = subprocess.run(
      _train_command(shapes_dir, str(tmp_path / 'train'),
                     '--preemption_grace_secs=0'),
      env=subprocess_env(), cwd=REPO_ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, universal_newlines=True, timeout=240)
  assert result.returncode == 1, result.stdout
  assert '--preemption_grace_secs=0' in result.stdout
  assert 'Traceback' not in result.stdout
  assert not os.path.exists(str(tmp_path / 'train'))


@pytest.mark.slow
def test_evaluator_stops_between_checkpoints(shapes_dir, tmp_path):
  """SIGTERM to a watching evaluator: exit 143, one line, whole metrics."""
  train_dir = str(tmp_path / 'train')
  subprocess.run(kill_loop.train_command(shapes_dir, train_dir, 2),
                 env=subprocess_env(), cwd=REPO_ROOT, check=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                 timeout=240)
  eval_dir = str(tmp_path / 'eval')
  log_path = str(tmp_path / 'eval.log')
  process = _start(kill_loop.eval_command(shapes_dir, train_dir, eval_dir,
                                          600), log_path)
  metrics = os.path.join(eval_dir, 'metrics.json')
  _wait_for(lambda: os.path.exists(metrics), process, 240, 'metrics.json')
  process.send_signal(signal.SIGTERM)
  code = process.wait(timeout=30)
  text = _read(log_path)
  assert code == 143, text
  assert 'interrupted by SIGTERM after 1 evaluation(s)' in text, text
  assert 'Traceback' not in text
  with open(metrics) as f:
    assert json.load(f)['global_step'] == 2
  assert sorted(os.listdir(eval_dir)) == sorted(
      [n for n in os.listdir(eval_dir) if '.tmp' not in n])


def test_stop_signals_turn_a_signal_into_a_request():
  """In this process: the first signal sets `requested` and kills nothing;
  leaving restores the previous handlers."""
  before = signal.getsignal(signal.SIGTERM)
  with preemption.StopSignals(grace_secs=60) as stop:
    assert not stop.requested
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.wait(10)
    assert stop.signum == signal.SIGTERM
  assert signal.getsignal(signal.SIGTERM) is before
  assert preemption.exit_status(signal.SIGINT) == 130
  assert preemption.exit_status(signal.SIGTERM) == 143


def test_ctrl_c_before_handlers_ends_quietly(tmp_path):
  """SIGINT while the script still imports: no KeyboardInterrupt traceback."""
  log_path = str(tmp_path / 'log')
  process = _start([sys.executable,
                    os.path.join(REPO_ROOT, 'train_image_classifier.py'),
                    '--train_dir=%s' % tmp_path], log_path)
  time.sleep(1.0)  # Past the interpreter's start, inside TensorFlow's import.
  process.send_signal(signal.SIGINT)
  code = process.wait(timeout=60)
  assert code in (-signal.SIGINT, 130), _read(log_path)
  assert 'Traceback' not in _read(log_path)
