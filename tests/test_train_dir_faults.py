"""Faults around a --train_dir, end to end through the scripts.

* One trainer per --train_dir: a second trainer refuses and the first is
  untouched; after a SIGKILL of the first, a restart takes over its lock at
  once (and removes the temporary files of killed saves); a lock of another
  host blocks while its heartbeat is fresh, not once it is stale.
* Resume past a damaged newest checkpoint; the evaluator skips it; saves
  are fsynced.
* A ps that accepts connections but never answers ends the worker after
  --ps_timeout_secs.
"""


import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from deployment import cluster
from deployment import ps_probe
from cli import script_utils
import eval_image_classifier as eic
import train_image_classifier as tic
from reliability import kill_loop
from tests.train_dir_helpers import copy_train_dir
from tests.train_dir_helpers import record_fsyncs
from tests.train_dir_helpers import step_of
from tests.train_dir_helpers import subprocess_env
from training import checkpoint_recovery
from training import train_dir_guard
from training import train_dir_lock

FLAGS = ['--dataset_name=shapes', '--model_name=mobilenet_v1_025',
         '--train_image_size=32',
         '--batch_size=4', '--save_summaries_secs=0', '--log_every_n_steps=1',
         '--num_readers=1', '--num_preprocessing_threads=1',
         '--learning_rate_decay_type=fixed']
STARTUP_SECS = 300
_STEP = re.compile(r'task 0 step (\d+)')
PS_TIMEOUT_SECS = 5


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('shapes'))
  kill_loop.make_dataset(path)
  return path


def _command(script, *flags):
  return [sys.executable, os.path.join(kill_loop.REPO_ROOT, script)] + list(
      flags)


def _train_command(shapes_dir, train_dir, *flags):
  return _command('train_image_classifier.py', '--dataset_dir=' + shapes_dir,
                  '--train_dir=' + train_dir, *(FLAGS + list(flags)))


def _read(path):
  with open(path) as f:
    return f.read()


def _steps(path):
  return [int(s) for s in _STEP.findall(_read(path))]


def _wait_until(predicate, timeout_secs, what, process=None, log=None):
  deadline = time.time() + timeout_secs
  while time.time() < deadline:
    if predicate():
      return
    if process is not None and process.poll() is not None:
      pytest.fail('exited (%s) while waiting for %s:\n%s' %
                  (process.returncode, what, _read(log)[-3000:]))
    time.sleep(0.2)
  pytest.fail('timed out waiting for %s' % what)


def _run(command, timeout=STARTUP_SECS):
  started = time.time()
  result = subprocess.run(command, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True,
                          env=subprocess_env(), timeout=timeout)
  return result, time.time() - started


@contextlib.contextmanager
def _absl_log():
  """Collects what absl logs at INFO and above while the block runs.

  Yields:
    A StringIO holding the log lines.
  """
  log = io.StringIO()
  handler = logging.StreamHandler(log)
  logger = logging.getLogger('absl')
  level = logger.level
  logger.addHandler(handler)
  logger.setLevel(logging.INFO)
  try:
    yield log
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)


def _error_paragraph(output):
  assert 'Traceback' not in output, output[-3000:]
  start = output.index('train_image_classifier.py: error:')
  return ' '.join(output[start:].split())


# ------------------------------------------- one trainer per train_dir ---

LEFTOVERS = ['model.ckpt-1.index.tempstate123456789',
             'model.ckpt-1.data-00000-of-00001.tempstate42',
             'checkpoint.tmp' + 'ab' * 16]


@pytest.fixture(scope='module')
def two_trainers(shapes_dir, tmp_path_factory):
  """Trainer A runs; B starts on its train_dir; A is SIGKILLed; C restarts."""
  root = str(tmp_path_factory.mktemp('two'))
  train_dir = os.path.join(root, 'train')
  log_a = os.path.join(root, 'a.log')
  out = {'train_dir': train_dir}
  with open(log_a, 'w') as log:
    first = subprocess.Popen(
        _train_command(shapes_dir, train_dir, '--save_interval_secs=1',
                       '--max_number_of_steps=1000000'),
        stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
        start_new_session=True)
  try:
    _wait_until(lambda: _steps(log_a), STARTUP_SECS, 'trainer A to step',
                first, log_a)
    out['a_pid'] = first.pid
    second, out['b_secs'] = _run(_train_command(
        shapes_dir, train_dir, '--save_interval_secs=1',
        '--max_number_of_steps=1000000'))
    out['b_returncode'], out['b_output'] = second.returncode, second.stdout
    with open(os.path.join(train_dir, train_dir_lock.LOCK_NAME)) as f:
      out['holder_after_b'] = json.load(f)
    step_after_b = max(_steps(log_a))
    _wait_until(lambda: max(_steps(log_a)) > step_after_b + 2, 120,
                'trainer A to step on', first, log_a)
    out['a_alive'] = first.poll() is None
    _wait_until(lambda: tf.train.latest_checkpoint(train_dir), 60,
                'a checkpoint of A', first, log_a)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    out['a_log'] = _read(log_a)
  finally:
    if first.poll() is None:
      os.killpg(first.pid, signal.SIGKILL)
      first.wait()
  for name in LEFTOVERS:
    open(os.path.join(train_dir, name), 'w').close()
  latest = tf.train.latest_checkpoint(train_dir)
  out['killed_at'] = step_of(latest)
  out['leftovers_before'] = sorted(
      n for n in os.listdir(train_dir)
      if any(p.match(n) for p in checkpoint_recovery._LEFTOVER_PATTERNS))
  # The restart runs in this process: what it is checked for (taking over
  # the dead trainer's lock, removing leftovers, resuming, fsyncing each
  # save) is its log, its files and its result, not its exit status.
  started = time.time()
  with _absl_log() as log_c, pytest.MonkeyPatch.context() as patch:
    out['c_synced'] = record_fsyncs(patch)
    tic.train(tic.parse_flags(FLAGS + [
        '--dataset_dir=' + shapes_dir, '--train_dir=' + train_dir,
        '--save_interval_secs=0',
        '--max_number_of_steps=%d' % (out['killed_at'] + 2)]))
  out['c_secs'] = time.time() - started
  out['c_output'] = log_c.getvalue()
  out['files_after_c'] = os.listdir(train_dir)
  print('A pid %d; B refused after %.1f s; A killed at saved step %d; C '
        'restarted and finished in %.1f s' % (out['a_pid'], out['b_secs'],
                                               out['killed_at'],
                                               out['c_secs']))
  return out


@pytest.mark.slow
def test_second_trainer_refuses_naming_the_first(two_trainers):
  assert two_trainers['b_returncode'] == 1, two_trainers['b_output'][-3000:]
  message = _error_paragraph(two_trainers['b_output'])
  print(message)
  assert ('--train_dir=%s is in use by another trainer: pid %d on host %s, '
          'running since' % (two_trainers['train_dir'], two_trainers['a_pid'],
                             socket.gethostname())) in message
  assert 'Wait for that trainer to finish' in message
  assert 'another --train_dir' in message
  # It stopped before building anything.
  assert 'Training mobilenet_v1_025' not in two_trainers['b_output']


@pytest.mark.slow
def test_the_first_trainer_is_untouched(two_trainers):
  assert two_trainers['a_alive']
  assert two_trainers['holder_after_b']['pid'] == two_trainers['a_pid']
  steps = [int(s) for s in _STEP.findall(two_trainers['a_log'])]
  assert steps == sorted(steps) and len(set(steps)) == len(steps)


@pytest.mark.slow
def test_restart_after_sigkill_takes_the_lock_and_removes_leftovers(
    two_trainers):
  # Its train() returned (it raised nothing) and logged:
  output = two_trainers['c_output']
  assert re.search(r'Took over the lock .* pid %d on host .*: its process '
                   r'\(pid %d on this host\) is gone' %
                   (two_trainers['a_pid'], two_trainers['a_pid']), output)
  assert 'Resuming from' in output
  assert set(LEFTOVERS) <= set(two_trainers['leftovers_before'])
  assert ('Removed %d temporary file(s)' %
          len(two_trainers['leftovers_before'])) in output
  files = two_trainers['files_after_c']
  assert not set(two_trainers['leftovers_before']) & set(files)
  assert train_dir_lock.LOCK_NAME not in files  # Released at the end.
  assert step_of(tf.train.latest_checkpoint(
      two_trainers['train_dir'])) == two_trainers['killed_at'] + 2


def _foreign_lock(train_dir, age_secs):
  if not os.path.isdir(train_dir):
    os.makedirs(train_dir)
  path = os.path.join(train_dir, train_dir_lock.LOCK_NAME)
  with open(path, 'w') as f:
    json.dump({'host': 'other-host.example', 'pid': 31337,
               'started': time.time() - 7200, 'token': 'e' * 32}, f)
  then = time.time() - age_secs
  os.utime(path, (then, then))
  return path


@pytest.mark.slow
def test_foreign_host_lock_with_a_fresh_heartbeat_blocks(shapes_dir,
                                                         tmp_path):
  train_dir = str(tmp_path / 'train')
  path = _foreign_lock(train_dir, age_secs=5)
  before = _read(path)
  # In-process (the script's train()); the command-line form of such a
  # refusal is checked end to end by
  # test_second_trainer_refuses_naming_the_first.
  with pytest.raises(script_utils.ScriptError) as error:
    tic.train(tic.parse_flags(FLAGS + [
        '--dataset_dir=' + shapes_dir, '--train_dir=' + train_dir,
        '--max_number_of_steps=1']))
  assert isinstance(error.value.__cause__, train_dir_guard.TrainDirError)
  message = ' '.join(str(error.value).split())
  assert 'pid 31337 on host other-host.example' in message
  assert 'kill 31337 on host other-host.example' in message
  assert _read(path) == before
  assert sorted(os.listdir(train_dir)) == [train_dir_lock.LOCK_NAME]


@pytest.mark.slow
def test_foreign_host_lock_with_a_stale_heartbeat_does_not_block(
    resumed_run):
  # resumed_run started on a train_dir locked by another host 10 min ago.
  assert resumed_run['result']['global_step'] == resumed_run['final_step']
  assert re.search(r'Took over the lock .*other-host.example.*heartbeat '
                   r'stopped \d+ s ago', resumed_run['log'])


def test_only_the_chief_takes_the_lock(tmp_path):
  """Other workers of a cluster share the chief's train_dir unhindered."""
  train_dir = str(tmp_path / 'train')
  _foreign_lock(train_dir, age_secs=1)
  with train_dir_guard.TrainDirGuard(train_dir, is_chief=False) as guard:
    assert guard.checkpoint is None and guard.hooks == []
  with pytest.raises(train_dir_guard.TrainDirError, match='in use by'):
    with train_dir_guard.TrainDirGuard(train_dir, is_chief=True):
      pass


# ------------------------------------------- damaged newest checkpoint ---


def _truncate_data(prefix):
  with open(prefix + '.data-00000-of-00001', 'r+b') as f:
    f.truncate(1000)


def _listed(train_dir):
  """The checkpoint prefixes the state file lists, oldest first."""
  return list(tf.train.get_checkpoint_state(
      train_dir).all_model_checkpoint_paths)


@pytest.fixture(scope='module')
def resumed_run(two_trainers, shapes_dir, tmp_path_factory):
  """A resume past two damaged checkpoints, which several tests share.

  In a copy of the restarted trainer's train_dir (see two_trainers), a
  checkpoint model.ckpt-999999 is listed as the newest but has no files
  and the data of the newest real one is truncated; another host holds
  the directory's lock, its heartbeat stopped 10 minutes ago. The run must
  take over the lock, pass over both damaged checkpoints, resume from the
  one below them and train 3 steps.
  """
  train_dir = copy_train_dir(two_trainers['train_dir'], str(
      tmp_path_factory.mktemp('resumed') / 'train'))
  listed = _listed(train_dir)
  assert len(listed) >= 2, listed
  truncated, readable = listed[-1], listed[-2]
  missing = os.path.join(train_dir, 'model.ckpt-999999')
  _truncate_data(truncated)
  tf.train.update_checkpoint_state(train_dir, missing, listed + [missing])
  assert not tf.gfile.Glob(missing + '.*')
  damaged = dict((os.path.basename(p), _read_binary(p))
                 for p in tf.gfile.Glob(truncated + '.*'))
  _foreign_lock(train_dir, age_secs=10 * 60)
  final_step = step_of(readable) + 3
  with _absl_log() as log:
    result = tic.train(tic.parse_flags(FLAGS + [
        '--dataset_dir=' + shapes_dir, '--train_dir=' + train_dir,
        '--max_number_of_steps=%d' % final_step, '--save_interval_secs=0']))
  return {'train_dir': train_dir, 'result': result, 'log': log.getvalue(),
          'missing': missing, 'truncated': truncated, 'readable': readable,
          'damaged': damaged, 'final_step': final_step}


@pytest.mark.slow
def test_training_resumes_from_the_newest_readable_checkpoint(resumed_run):
  """Both kinds of damage in one run, newest first: a listed checkpoint
  whose files are missing, then one with truncated data."""
  run = resumed_run
  log = ' '.join(run['log'].split())
  print(re.findall(r'Checkpoint \S+ cannot be read[^\n]*', run['log']))
  for unreadable in (run['missing'], run['truncated']):
    assert 'Checkpoint %s cannot be read' % unreadable in log
  assert ('Resuming from %s, the newest readable checkpoint, instead of the '
          'newest listed one %s' % (run['readable'], run['missing'])) in log
  # Training went on from the readable checkpoint: three steps.
  assert run['result']['local_steps'] == 3
  assert run['result']['global_step'] == run['final_step']
  assert step_of(tf.train.latest_checkpoint(
      run['train_dir'])) == run['final_step']
  aside = os.path.join(run['train_dir'], checkpoint_recovery.UNREADABLE_DIR)
  assert run['damaged']
  for name, content in run['damaged'].items():
    assert _read_binary(os.path.join(aside, name)) == content


def _read_binary(path):
  with open(path, 'rb') as f:
    return f.read()


@pytest.mark.slow
def test_evaluator_skips_an_unreadable_checkpoint(two_trainers,
                                                  shapes_dir, tmp_path,
                                                  caplog):
  train_dir = copy_train_dir(two_trainers['train_dir'],
                             str(tmp_path / 'train'))
  newest = tf.train.latest_checkpoint(train_dir)
  _truncate_data(newest)
  # A trainer holds the directory: evaluators take no lock.
  lock = train_dir_lock.TrainDirLock(train_dir).acquire()
  caplog.set_level(logging.INFO)
  try:
    results = _evaluate(train_dir, shapes_dir, tmp_path)
  finally:
    lock.release()
  assert results == []
  assert re.search(r'Skipping checkpoint %s: its tensor \S+ cannot be read' %
                   re.escape(newest), caplog.text), caplog.text[-3000:]


def _evaluate(train_dir, shapes_dir, tmp_path):
  return eic.evaluate(eic.parse_flags([
      '--checkpoint_path=' + train_dir, '--eval_dir=' + str(tmp_path / 'ev'),
      '--dataset_dir=' + shapes_dir, '--dataset_name=shapes',
      '--model_name=mobilenet_v1_025',
      '--eval_image_size=32', '--batch_size=6', '--num_readers=1',
      '--num_preprocessing_threads=1', '--eval_interval_secs=0',
      '--timeout=1']))


@pytest.mark.slow
def test_each_save_is_fsynced(two_trainers):
  # The restart's two saves: the restored step again, then its last step.
  train_dir = two_trainers['train_dir']
  names = set(os.path.relpath(p, train_dir) for p in two_trainers['c_synced'])
  for step in (two_trainers['killed_at'], two_trainers['killed_at'] + 2):
    for suffix in ('.index', '.data-00000-of-00001', '.meta'):
      assert 'model.ckpt-%d%s' % (step, suffix) in names, sorted(names)
  assert {'.', 'checkpoint'} <= names


# ------------------------------------------------ a ps that never answers ---


class _SilentServer(object):
  """Accepts TCP connections and never sends a byte."""

  def __init__(self):
    self._socket = socket.socket()
    self._socket.bind(('127.0.0.1', 0))
    self._socket.listen(64)
    self.address = '127.0.0.1:%d' % self._socket.getsockname()[1]
    self.connections = []
    thread = threading.Thread(target=self._accept)
    thread.daemon = True
    thread.start()

  def _accept(self):
    while True:
      try:
        connection, _ = self._socket.accept()
      except OSError:
        return
      self.connections.append(connection)

  def close(self):
    self._socket.close()
    for connection in self.connections:
      connection.close()


@pytest.mark.slow
def test_a_ps_that_never_answers_stops_the_worker(shapes_dir, tmp_path):
  ps = _SilentServer()
  worker = socket.socket()
  worker.bind(('127.0.0.1', 0))
  worker_address = '127.0.0.1:%d' % worker.getsockname()[1]
  worker.close()
  train_dir = str(tmp_path / 'train')
  try:
    result, secs = _run(_train_command(
        shapes_dir, train_dir, '--max_number_of_steps=5',
        '--ps_hosts=' + ps.address, '--worker_hosts=' + worker_address,
        '--job_name=worker', '--task=0',
        '--ps_timeout_secs=%d' % PS_TIMEOUT_SECS), timeout=420)
  finally:
    ps.close()
  ended = time.time()
  waiting = re.search(r'^W\d{4} (\d\d):(\d\d):(\d\d\.\d+) .*unreachable; '
                      r'waiting', result.stdout, re.M)
  if waiting:
    hours, minutes, seconds = waiting.groups()
    since = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    now = time.localtime(ended)
    now = now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec + ended % 1
    print('worker stopped %.1f s after it began waiting for the ps' %
          ((now - since) % 86400))
  print('worker stopped after %.1f s (incl. start-up); %d probe '
        'connections accepted' % (secs, len(ps.connections)))
  assert result.returncode == 1, result.stdout[-3000:]
  message = _error_paragraph(result.stdout)
  assert ('The parameter server at %s (--ps_hosts) is unreachable (no '
          'connection or no answer within --ps_timeout_secs=%d)' %
          (ps.address, PS_TIMEOUT_SECS)) in message
  assert 'Restart the whole cluster' in message
  assert ps.connections  # It did accept: only the answer was missing.


def test_the_ps_probe_tells_a_silent_server_from_a_live_one():
  """The watchdog's check: connecting is not enough, the ps must answer."""
  live = tf.train.Server.create_local_server()
  live_address = live.target[len('grpc://'):]
  silent = _SilentServer()
  closed = socket.socket()
  closed.bind(('127.0.0.1', 0))
  closed_address = '127.0.0.1:%d' % closed.getsockname()[1]
  closed.close()
  try:
    assert cluster.unreachable_hosts([live_address]) == []
    assert cluster.unreachable_hosts([silent.address, closed_address,
                                      live_address]) == [silent.address,
                                                         closed_address]
    assert 'no answer' in ps_probe.probe(silent.address, timeout_secs=0.5)
    assert silent.connections
  finally:
    silent.close()
