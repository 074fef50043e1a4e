"""The lock that keeps a second trainer out of a --train_dir."""


import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from training import train_dir_lock as tdl


def _write_lock(train_dir, age_secs=0.0, **record):
  """Writes a lock file as another trainer would, `age_secs` old."""
  holder = {'host': 'other-host', 'pid': 4242, 'started': time.time() - 3600,
            'token': 'f' * 32}
  holder.update(record)
  path = os.path.join(train_dir, tdl.LOCK_NAME)
  with open(path, 'w') as f:
    json.dump(holder, f)
  then = time.time() - age_secs
  os.utime(path, (then, then))
  return path, holder


def _dead_pid():
  process = subprocess.Popen([sys.executable, '-c', 'pass'])
  process.wait()
  return process.pid


def _lock(train_dir, **kwargs):
  kwargs.setdefault('heartbeat_secs', 0.2)
  kwargs.setdefault('stale_secs', 2.0)
  return tdl.TrainDirLock(str(train_dir), **kwargs)


def _holder(train_dir):
  with open(os.path.join(str(train_dir), tdl.LOCK_NAME)) as f:
    return json.load(f)


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path):
  train_dir = tmp_path / 'train'
  lock = _lock(train_dir).acquire()
  try:
    holder = _holder(train_dir)
    assert holder['host'] == socket.gethostname()
    assert holder['pid'] == os.getpid()
    assert abs(holder['started'] - time.time()) < 60
    # Only the lock itself is left: the private file was removed.
    assert os.listdir(str(train_dir)) == [tdl.LOCK_NAME]
  finally:
    lock.release()
  assert os.listdir(str(train_dir)) == []


def test_a_live_holder_on_this_host_blocks_a_second_lock(tmp_path):
  first = _lock(tmp_path).acquire()
  try:
    with pytest.raises(tdl.TrainDirLockedError) as error:
      _lock(tmp_path).acquire()
    assert error.value.holder['pid'] == os.getpid()
    assert error.value.train_dir == str(tmp_path)
    first.check()  # Still ours.
  finally:
    first.release()
  _lock(tmp_path).acquire().release()


def test_a_dead_process_on_this_host_does_not_block(tmp_path):
  _write_lock(str(tmp_path), host=socket.gethostname(), pid=_dead_pid())
  lock = _lock(tmp_path).acquire()
  assert _holder(tmp_path)['pid'] == os.getpid()
  lock.release()


def test_a_reused_pid_on_this_host_does_not_block(tmp_path):
  # The parent is alive, but it started before the recorded start time.
  _write_lock(str(tmp_path), host=socket.gethostname(), pid=os.getppid(),
              proc_start=tdl._process_start_ticks(os.getppid()) + 12345)
  _lock(tmp_path).acquire().release()


def test_a_foreign_host_with_a_fresh_heartbeat_blocks(tmp_path):
  _, holder = _write_lock(str(tmp_path), age_secs=0.5)
  with pytest.raises(tdl.TrainDirLockedError) as error:
    _lock(tmp_path, stale_secs=30).acquire()
  assert error.value.holder['host'] == 'other-host'
  assert error.value.holder['pid'] == 4242
  assert 0 <= error.value.heartbeat_age_secs < 30
  assert 'pid 4242 on host other-host, running since' in str(error.value)
  assert _holder(tmp_path) == holder  # Untouched.


def test_a_foreign_host_with_a_stale_heartbeat_does_not_block(tmp_path):
  _write_lock(str(tmp_path), age_secs=120)
  lock = _lock(tmp_path, stale_secs=30).acquire()
  assert _holder(tmp_path)['host'] == socket.gethostname()
  lock.release()


def test_the_heartbeat_keeps_the_lock_fresh(tmp_path):
  lock = _lock(tmp_path, heartbeat_secs=0.2, stale_secs=1.0).acquire()
  try:
    path = os.path.join(str(tmp_path), tdl.LOCK_NAME)
    then = time.time() - 100
    os.utime(path, (then, then))
    time.sleep(1.0)
    assert time.time() - os.stat(path).st_mtime < 1.0
    # So a second lock, which would take over a 1 s old lock, does not.
    with pytest.raises(tdl.TrainDirLockedError):
      _lock(tmp_path, heartbeat_secs=0.2, stale_secs=1.0).acquire()
  finally:
    lock.release()


def test_a_taken_over_lock_is_reported_lost_and_left_alone(tmp_path):
  lock = _lock(tmp_path).acquire()
  path, holder = _write_lock(str(tmp_path))  # Another trainer took it.
  deadline = time.time() + 10
  while not lock.lost and time.time() < deadline:
    time.sleep(0.05)
  assert lock.lost
  with pytest.raises(tdl.TrainDirLockLostError):
    lock.check()
  lock.release()
  assert _holder(tmp_path) == holder


def test_only_one_of_many_racing_trainers_takes_a_stale_lock(tmp_path):
  _write_lock(str(tmp_path), age_secs=120)
  won, lost = [], []
  start = threading.Event()

  def contend():
    start.wait()
    try:
      won.append(_lock(tmp_path, stale_secs=30).acquire())
    except tdl.TrainDirLockedError:
      lost.append(1)

  threads = [threading.Thread(target=contend) for _ in range(8)]
  for thread in threads:
    thread.start()
  start.set()
  for thread in threads:
    thread.join()
  assert len(won) == 1 and len(lost) == 7
  won[0].release()
