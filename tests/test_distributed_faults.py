"""Faults on a local cluster (1 ps + 2 workers on 127.0.0.1).

One scenario, run once per module, with the real command line (each
process started directly in its own session so that one can be killed
alone):

  1. A non-chief worker is killed with SIGKILL mid-training and restarted;
     it rejoins and the global step goes on. (The chief is paused while
     the new process starts up, and trains on as it connects.)
  2. The parameter server is killed with SIGKILL; both workers stop within
     --ps_timeout_secs with a message naming the ps and what to do.
  3. The whole cluster is restarted with scripts/run_local_cluster.sh (the
     launcher users run, which picks new ports as after a reboot); both
     workers train on the one global step, the chief resumes from its last
     checkpoint, reaches --max_number_of_steps and alone writes
     checkpoints.

The tests below check one phase each (the launcher's normal 2-worker run
is phase 3: one cluster start serves both checks). Every process started
is killed at the end whatever happens.
"""


import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import generate_shapes

PS_TIMEOUT_SECS = 10
# Time allowed for a worker to notice a dead ps beyond --ps_timeout_secs
# (one probe a second, then the exit). Generous: CI has two loaded cores.
PS_EXIT_SLACK_SECS = 30
STARTUP_SECS = 240
RESUME_EXTRA_STEPS = 20
LAUNCHER_TIMEOUT_SECS = 420
# Phase 1 and 2 never reach this; the ps kill ends them.
UNREACHED_MAX_STEPS = 10 ** 6

_STEP_LINE = re.compile(r'task (\d+) step (\d+)')
_FINISHED = re.compile(r'Finished training on task (\d+): (\d+) local steps, '
                       r'global step (\w+)')
_LAUNCHER_LOGS = ['ps0.log', 'worker0.log', 'worker1.log']


def _free_ports(count):
  """`count` free loopback ports (released before the servers bind them)."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _read(path):
  with open(path) as f:
    return f.read()


def _steps(log_text, task):
  """Global steps in the progress lines of `task`, in order."""
  return [int(step) for t, step in _STEP_LINE.findall(log_text)
          if int(t) == task]


def _wait_until(predicate, timeout_secs, what, processes=()):
  """Polls `predicate` until true; fails after `timeout_secs`.

  Fails at once if one of `processes` (name, Popen, log path) exited.
  """
  deadline = time.time() + timeout_secs
  while time.time() < deadline:
    if predicate():
      return
    for name, process, log in processes:
      if process.poll() is not None:
        pytest.fail('%s exited (status %s) while waiting for %s:\n%s' %
                    (name, process.returncode, what, _read(log)[-3000:]))
    time.sleep(0.5)
  pytest.fail('Timed out after %d s waiting for %s' % (timeout_secs, what))


class _LocalCluster(object):
  """Starts train_image_classifier.py tasks of one cluster, one per session."""

  def __init__(self, repo_root, env, log_dir, common_flags):
    self._repo_root = repo_root
    self._env = env
    self._log_dir = log_dir
    self._common_flags = list(common_flags)
    self.processes = []

  def new_ports(self):
    """Gives the cluster fresh ports; returns (ps address, worker addresses)."""
    ports = _free_ports(3)
    self.ps = '127.0.0.1:%d' % ports[0]
    self.workers = ['127.0.0.1:%d' % p for p in ports[1:]]
    return self.ps, self.workers

  def start(self, job, task, log_name, *extra_flags):
    """Starts one task; returns (Popen, log path)."""
    log_path = os.path.join(self._log_dir, log_name)
    with open(log_path, 'w') as log:
      process = subprocess.Popen(
          [sys.executable, 'train_image_classifier.py', '--job_name=' + job,
           '--task=%d' % task, '--ps_hosts=' + self.ps,
           '--worker_hosts=' + ','.join(self.workers)] +
          self._common_flags + list(extra_flags),
          cwd=self._repo_root, env=self._env, stdout=log,
          stderr=subprocess.STDOUT, start_new_session=True)
    self.processes.append(process)
    return process, log_path

  def start_ps(self):
    """Starts the ps and waits until it serves (workers then find it)."""
    process, log = self.start('ps', 0, 'ps_%s.log' % self.ps.split(':')[1])
    _wait_until(lambda: 'serving at' in _read(log), STARTUP_SECS,
                'the ps to serve', [('ps', process, log)])
    return process, log

  @staticmethod
  def kill(process):
    """SIGKILLs the process group of one task (no-op if gone)."""
    try:
      os.killpg(process.pid, signal.SIGKILL)
    except OSError:
      pass
    process.wait()

  def kill_all(self):
    for process in self.processes:
      self.kill(process)


def _checkpoint_step(train_dir):
  checkpoint = tf.train.latest_checkpoint(train_dir)
  if not checkpoint:
    return None
  return int(tf.train.load_checkpoint(checkpoint).get_tensor('global_step'))


def _run_launcher(repo_root, env, dataset_dir, train_dir, max_steps, cluster):
  """Runs scripts/run_local_cluster.sh to `max_steps`; returns its results.

  The launcher's process group joins `cluster`'s processes, so that the
  ps it starts never outlives the module.
  """
  env = dict(env, PYTHON=sys.executable, DATASET_DIR=dataset_dir,
             TRAIN_DIR=train_dir, MODEL_NAME='mobilenet_v1_025',
             IMAGE_SIZE='32', BATCH_SIZE='4', MAX_STEPS=str(max_steps))
  process = subprocess.Popen(
      ['bash', os.path.join('scripts', 'run_local_cluster.sh'),
       '--save_summaries_secs=0', '--log_every_n_steps=5',
       '--num_readers=1', '--num_preprocessing_threads=1'],
      cwd=repo_root, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, universal_newlines=True,
      start_new_session=True)
  cluster.processes.append(process)
  timed_out = False
  try:
    output, _ = process.communicate(timeout=LAUNCHER_TIMEOUT_SECS)
  except subprocess.TimeoutExpired:
    timed_out = True
    cluster.kill(process)
    output, _ = process.communicate()
  logs = {}
  for path in glob.glob(os.path.join(train_dir, 'logs', '*.log')):
    logs[os.path.basename(path)] = _read(path)
  return {'launcher_timed_out': timed_out,
          'launcher_returncode': process.returncode,
          'launcher_output': output, 'launcher_logs': logs,
          'launcher_max_steps': max_steps,
          'checkpoint_after_launcher': tf.train.latest_checkpoint(train_dir)}


def _restart_with_chief_paused(cluster, chief, max_flag, running):
  """Restarts worker 1; returns (Popen, log path).

  The chief is stopped (SIGSTOP) while the new process imports TensorFlow
  and builds its graph, and continued before it connects to the cluster:
  the rejoin still happens while the chief trains, but the chief does not
  spend the start-up (tens of CPU seconds on a loaded machine) stepping.
  """
  os.killpg(chief.pid, signal.SIGSTOP)
  try:
    worker1, log = cluster.start('worker', 1, 'worker1_restarted.log',
                                 max_flag)
    # Logged after the graph is built, before the session is created.
    _wait_until(lambda: 'Training mobilenet_v1_025' in _read(log),
                STARTUP_SECS, 'the restarted worker 1 to build its graph',
                running[:1] + [('restarted worker 1', worker1, log)])
  finally:
    os.killpg(chief.pid, signal.SIGCONT)
  return worker1, log


@pytest.fixture(scope='module')
def scenario(tmp_path_factory):
  """Runs the three phases; returns what each test checks."""
  root = str(tmp_path_factory.mktemp('faults'))
  dataset_dir = os.path.join(root, 'shapes')
  generate_shapes.run(dataset_dir, image_size=32, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  train_dir = os.path.join(root, 'train')
  log_dir = os.path.join(root, 'logs')
  os.makedirs(log_dir)
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=repo_root + os.pathsep +
             os.environ.get('PYTHONPATH', ''))
  cluster = _LocalCluster(repo_root, env, log_dir, [
      '--train_dir=' + train_dir, '--dataset_dir=' + dataset_dir,
      '--dataset_name=shapes',
      '--model_name=mobilenet_v1_025', '--train_image_size=32',
      '--batch_size=4', '--save_summaries_secs=0', '--save_interval_secs=2',
      '--log_every_n_steps=5', '--num_readers=1',
      '--num_preprocessing_threads=1',
      '--ps_timeout_secs=%d' % PS_TIMEOUT_SECS])
  result = {'train_dir': train_dir}
  try:
    # Phase 1: kill worker 1 mid-training, restart it.
    cluster.new_ports()
    result['ps_address'] = cluster.ps
    ps, ps_log = cluster.start_ps()
    max_flag = '--max_number_of_steps=%d' % UNREACHED_MAX_STEPS
    chief, chief_log = cluster.start('worker', 0, 'worker0.log', max_flag)
    worker1, worker1_log = cluster.start('worker', 1, 'worker1.log', max_flag)
    running = [('ps', ps, ps_log), ('chief', chief, chief_log),
               ('worker 1', worker1, worker1_log)]
    _wait_until(lambda: _steps(_read(worker1_log), 1), STARTUP_SECS,
                'worker 1 to train', running)
    cluster.kill(worker1)
    result['step_at_kill'] = max(_steps(_read(chief_log), 0) +
                                 _steps(_read(worker1_log), 1))
    worker1, rejoin_log = _restart_with_chief_paused(cluster, chief,
                                                     max_flag, running)
    running[2] = ('restarted worker 1', worker1, rejoin_log)
    _wait_until(lambda: _steps(_read(rejoin_log), 1), STARTUP_SECS,
                'the restarted worker 1 to train', running)
    rejoin_steps = _steps(_read(rejoin_log), 1)
    # The chief trains on beside it.
    # The chief may not have logged a step yet (a fast machine: worker 1
    # took every step before the kill).
    _wait_until(lambda: max(_steps(_read(chief_log), 0) or [-1]) >
                rejoin_steps[0],
                60, 'the chief to step after the rejoin', running)
    result['rejoin_steps'] = _steps(_read(rejoin_log), 1)
    result['chief_steps_after_rejoin'] = [
        s for s in _steps(_read(chief_log), 0) if s > rejoin_steps[0]]
    _wait_until(lambda: (_checkpoint_step(train_dir) or 0) > 0, 60,
                'a checkpoint after step 0', running)

    # Phase 2: kill the ps; both workers must stop on their own.
    cluster.kill(ps)
    killed_at = time.time()
    exits = {}
    deadline = killed_at + PS_TIMEOUT_SECS + PS_EXIT_SLACK_SECS
    workers = {0: (chief, chief_log), 1: (worker1, rejoin_log)}
    while len(exits) < 2 and time.time() < deadline:
      for task, (process, _) in workers.items():
        if task not in exits and process.poll() is not None:
          exits[task] = (process.returncode, time.time() - killed_at)
      time.sleep(0.2)
    result['ps_loss_exits'] = exits
    result['ps_loss_logs'] = {t: _read(log) for t, (_, log) in workers.items()}
    result['checkpoint_step_after_ps_loss'] = _checkpoint_step(train_dir)
    cluster.kill_all()

    # Phase 3: restart the whole cluster with the launcher (new ports).
    resume_step = result['checkpoint_step_after_ps_loss']
    result.update(_run_launcher(repo_root, env, dataset_dir, train_dir,
                                resume_step + RESUME_EXTRA_STEPS, cluster))
  finally:
    cluster.kill_all()
  return result


@pytest.mark.slow
def test_killed_worker_rejoins_and_training_continues(scenario):
  step_at_kill = scenario['step_at_kill']
  rejoin_steps = scenario['rejoin_steps']
  # The restarted worker stepped on the shared global step, past the kill.
  assert rejoin_steps and rejoin_steps[0] > step_at_kill
  assert rejoin_steps == sorted(rejoin_steps)
  # The chief was not disturbed: it kept stepping after the rejoin.
  assert scenario['chief_steps_after_rejoin']


@pytest.mark.slow
def test_dead_ps_stops_every_worker_with_a_clear_message(scenario):
  exits = scenario['ps_loss_exits']
  logs = scenario['ps_loss_logs']
  assert sorted(exits) == [0, 1], (
      'workers still running %d s after the ps died:\n%s' %
      (PS_TIMEOUT_SECS + PS_EXIT_SLACK_SECS,
       '\n'.join(text[-2000:] for text in logs.values())))
  print('Seconds from the ps kill to each worker\'s exit: %s' % ', '.join(
      'task %d: %.1f' % (t, exits[t][1]) for t in sorted(exits)))
  for task, (returncode, secs) in exits.items():
    text = ' '.join(logs[task].split())
    assert returncode == 1, text[-2000:]
    assert ('train_image_classifier.py: error: The parameter server at %s '
            '(--ps_hosts) is unreachable' % scenario['ps_address']) in text
    assert '--ps_timeout_secs' in text
    assert 'Restart the whole cluster' in text
    assert 'restores the last checkpoint in --train_dir=%s' % (
        scenario['train_dir']) in text
    assert 'Traceback' not in text


def _launcher_logs(scenario):
  """The launcher's logs by name, after checking that it succeeded."""
  logs = scenario['launcher_logs']
  details = scenario['launcher_output'] + '\n'.join(
      '== %s\n%s' % (name, text[-3000:]) for name, text in logs.items())
  assert not scenario['launcher_timed_out'], (
      'The local cluster did not finish in %d s:\n%s' %
      (LAUNCHER_TIMEOUT_SECS, details))
  assert scenario['launcher_returncode'] == 0, details
  assert sorted(logs) == _LAUNCHER_LOGS
  return logs


@pytest.mark.slow
def test_local_cluster_trains_on_both_workers_with_a_shared_step(scenario):
  logs = _launcher_logs(scenario)
  assert re.search(r'ps=127\.0\.0\.1:\d+ workers=127\.0\.0\.1:\d+,'
                   r'127\.0\.0\.1:\d+', scenario['launcher_output'])
  finished = {}
  for name in ('worker0.log', 'worker1.log'):
    match = _FINISHED.search(logs[name])
    assert match, logs[name][-3000:]
    finished[int(match.group(1))] = (int(match.group(2)),
                                     int(match.group(3)))
  (local0, final0), (local1, final1) = finished[0], finished[1]
  max_steps = scenario['launcher_max_steps']
  # Both workers stepped, each on the one global step of the ps.
  assert local0 >= 1 and local1 >= 1
  assert final0 >= max_steps and final1 >= max_steps
  # Only the chief writes checkpoints; its last one holds the shared step,
  # which counts the steps of both workers since the resumed checkpoint.
  checkpoint = scenario['checkpoint_after_launcher']
  assert checkpoint
  step = int(tf.train.load_checkpoint(checkpoint).get_tensor('global_step'))
  resume_step = scenario['checkpoint_step_after_ps_loss']
  assert final0 <= step <= resume_step + local0 + local1
  assert 'last checkpoint %s' % checkpoint in logs['worker0.log']
  assert 'last checkpoint' not in logs['worker1.log']


@pytest.mark.slow
def test_restarted_cluster_resumes_from_the_chiefs_checkpoint(scenario):
  logs = _launcher_logs(scenario)
  chief_log = logs['worker0.log']
  resume_step = scenario['checkpoint_step_after_ps_loss']
  assert resume_step > 0
  assert 'at global step %d).' % resume_step in ' '.join(chief_log.split())
  # Steps continue from the checkpoint, not from 0.
  steps = _steps(chief_log, 0)
  assert steps and min(steps) > resume_step
  finished = _FINISHED.search(chief_log)
  assert finished, chief_log[-3000:]
  assert int(finished.group(3)) >= resume_step + RESUME_EXTRA_STEPS
  assert _read_checkpoint_step(scenario['train_dir']) >= (
      resume_step + RESUME_EXTRA_STEPS)


def _read_checkpoint_step(train_dir):
  step = _checkpoint_step(train_dir)
  assert step is not None, 'no checkpoint in %s' % train_dir
  return step
