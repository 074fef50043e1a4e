"""One trainer per training directory: a lock file with a heartbeat.

The chief trainer holds `<train_dir>/.trainer.lock` while it runs. The file
holds JSON naming the holder (host, pid, start time, a random token); a
background thread refreshes the file's mtime every `heartbeat_secs`.

A second trainer finds the file and refuses (`TrainDirLockedError`),
unless the lock is stale:

  * its holder ran on this host and that process is gone (or the pid now
    belongs to a process started later), or
  * its heartbeat is older than `stale_secs`, measured against the
    filesystem's own clock (the mtime of a file this process has just
    written in the same directory), so that hosts with skewed clocks
    sharing the directory over NFS agree.

Creating the lock is atomic on local filesystems and on NFS: the content is
written to a private file first and then hard-linked to the lock name,
which fails if the name exists. A stale lock is renamed away (one rename
of a name succeeds) and its token checked, so two trainers restarting at
once cannot both take it.
"""


import datetime
import errno
import json
import os
import socket
import sys
import threading
import time
import uuid

from absl import logging

LOCK_NAME = '.trainer.lock'
# The heartbeat refreshes the lock this often; a lock whose heartbeat is
# older than DEFAULT_STALE_SECS belongs to a trainer that is gone.
DEFAULT_HEARTBEAT_SECS = 10.0
DEFAULT_STALE_SECS = 60.0


class TrainDirLockError(Exception):
  """Base class of this module's errors."""


class TrainDirLockedError(TrainDirLockError):
  """Another trainer holds the lock of the directory.

  Attributes:
    train_dir: the directory.
    holder: the holder's record (dict: host, pid, started, token, ...).
    heartbeat_age_secs: seconds since its last heartbeat (filesystem clock).
    stale_secs: after how long without a heartbeat the lock counts as stale.
  """

  def __init__(self, train_dir, holder, heartbeat_age_secs, stale_secs):
    self.train_dir = train_dir
    self.holder = holder
    self.heartbeat_age_secs = heartbeat_age_secs
    self.stale_secs = stale_secs
    super(TrainDirLockedError, self).__init__(
        '%s is locked by the trainer %s (heartbeat %.0f s ago)' %
        (train_dir, describe_holder(holder), heartbeat_age_secs))


class TrainDirLockLostError(TrainDirLockError):
  """The lock this trainer held was taken over by another process."""


def describe_holder(holder):
  """'pid 123 on host h, running since 2026-12-01 21:30:00 UTC'."""
  started = holder.get('started')
  since = 'an unknown time'
  if isinstance(started, (int, float)):
    since = datetime.datetime.utcfromtimestamp(started).strftime(
        '%Y-%m-%d %H:%M:%S UTC')
  return 'pid %s on host %s, running since %s' % (
      holder.get('pid', '?'), holder.get('host', '?'), since)


def is_local_path(path):
  """Whether `path` is on a filesystem the os module can lock (not gs://)."""
  return '://' not in path


def _process_start_ticks(pid):
  """Start time of process `pid` in clock ticks since boot (Linux), or None."""
  try:
    with open('/proc/%d/stat' % pid) as f:
      stat = f.read()
  except (IOError, OSError):
    return None
  # Field 22; the command name (field 2) may hold spaces, so count from ')'.
  fields = stat[stat.rfind(')') + 2:].split()
  try:
    return int(fields[19])
  except (IndexError, ValueError):
    return None


def _pid_alive(pid):
  try:
    os.kill(pid, 0)
  except OSError as e:
    return e.errno == errno.EPERM  # Alive, owned by another user.
  return True


def _read_json(path):
  """The record in the lock file and its mtime, or (None, None) if gone."""
  try:
    # open() revalidates the attributes on NFS (close-to-open), so fstat
    # sees the current mtime, not a cached one.
    with open(path) as f:
      mtime = os.fstat(f.fileno()).st_mtime
      text = f.read()
  except (IOError, OSError) as e:
    if e.errno == errno.ENOENT:
      return None, None
    raise
  try:
    record = json.loads(text)
  except ValueError:
    record = None
  if not isinstance(record, dict):
    # Half-written by hand or damaged: only its age can tell.
    record = {'host': '?', 'pid': '?', 'token': None}
  return record, mtime


class TrainDirLock(object):
  """The lock of one training directory (use `acquire()` / `release()`).

  Also a context manager: `with TrainDirLock(dir): ...`.
  """

  def __init__(self, train_dir, heartbeat_secs=DEFAULT_HEARTBEAT_SECS,
               stale_secs=DEFAULT_STALE_SECS):
    if stale_secs <= 2 * heartbeat_secs:
      raise ValueError('stale_secs (%s) must exceed two heartbeats (%s s)' %
                       (stale_secs, heartbeat_secs))
    self.train_dir = train_dir
    self.path = os.path.join(train_dir, LOCK_NAME)
    self._heartbeat_secs = heartbeat_secs
    self._stale_secs = stale_secs
    self._record = None
    self._stop = threading.Event()
    self._thread = None
    self.lost = False

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *unused_exc_info):
    self.release()

  def _new_record(self):
    record = {'host': socket.gethostname(), 'pid': os.getpid(),
              'started': time.time(), 'token': uuid.uuid4().hex,
              'proc_start': _process_start_ticks(os.getpid()),
              'heartbeat_secs': self._heartbeat_secs,
              'stale_secs': self._stale_secs,
              'command': ' '.join(sys.argv)[:500]}
    return record

  def acquire(self, attempts=5):
    """Takes the lock, taking over a stale one.

    Returns:
      self.

    Raises:
      TrainDirLockedError: a live trainer holds it.
      OSError: the directory cannot be written.
    """
    if not os.path.isdir(self.train_dir):
      os.makedirs(self.train_dir)
    record = self._new_record()
    private = '%s.%s.%d.%s' % (self.path, record['host'], record['pid'],
                               record['token'][:8])
    with open(private, 'w') as f:
      json.dump(record, f)
    try:
      for _ in range(attempts):
        if self._link(private):
          self._record = record
          self._start_heartbeat()
          return self
        holder, mtime = _read_json(self.path)
        if holder is None:
          continue  # Released meanwhile; try again.
        # The private file was just written: its mtime is the filesystem's
        # "now", on the same clock as the holder's heartbeat.
        age = os.stat(private).st_mtime - mtime
        reason = self._stale_reason(holder, age)
        if reason is None:
          raise TrainDirLockedError(self.train_dir, holder, age,
                                    self._stale_secs)
        self._break(holder, reason, private)
      raise TrainDirLockedError(self.train_dir, holder or {}, 0.0,
                                self._stale_secs)
    finally:
      try:
        os.remove(private)
      except OSError:
        pass

  def _link(self, private):
    """Links `private` to the lock name; False if the name exists."""
    try:
      os.link(private, self.path)
      return True
    except OSError as e:
      if e.errno != errno.EEXIST:
        raise
    # NFS may report EEXIST for a link whose reply was lost although the
    # link was made; the private file then has two links.
    return os.stat(private).st_nlink == 2

  def _stale_reason(self, holder, heartbeat_age):
    """Why the lock of `holder` is stale, or None if it is live."""
    if holder.get('host') == socket.gethostname():
      pid = holder.get('pid')
      if isinstance(pid, int):
        if not _pid_alive(pid):
          return 'its process (pid %d on this host) is gone' % pid
        start = holder.get('proc_start')
        if start is not None and _process_start_ticks(pid) not in (None,
                                                                   start):
          return ('pid %d on this host now belongs to another process' %
                  pid)
    if heartbeat_age > self._stale_secs:
      return 'its heartbeat stopped %.0f s ago (stale after %.0f s)' % (
          heartbeat_age, self._stale_secs)
    return None

  def _break(self, holder, reason, private):
    """Removes a stale lock, one breaker at a time.

    Breakers serialize on a second hard link, so none can remove a lock
    that another racer has just taken.
    """
    breaker = self.path + '.break'
    try:
      os.link(private, breaker)
    except OSError as e:
      if e.errno != errno.EEXIST:
        raise
      _, since = _read_json(breaker)
      if since is not None and time.time() - since > self._stale_secs:
        try:  # Left by a breaker that died.
          os.remove(breaker)
        except OSError:
          pass
      time.sleep(0.1)
      return
    try:
      current, _ = _read_json(self.path)
      if current is not None and current.get('token') == holder.get('token'):
        os.remove(self.path)
        logging.warning('Took over the lock %s of the trainer %s: %s.',
                        self.path, describe_holder(holder), reason)
    finally:
      os.remove(breaker)

  def _start_heartbeat(self):
    self._stop.clear()
    self._thread = threading.Thread(target=self._beat,
                                    name='train_dir_lock_heartbeat')
    self._thread.daemon = True
    self._thread.start()

  def _beat(self):
    while not self._stop.wait(self._heartbeat_secs):
      try:
        self.check()
        os.utime(self.path, None)
      except TrainDirLockLostError as e:
        self.lost = True
        logging.error('%s', e)
        return
      except OSError as e:
        # A short outage of a network filesystem: try again next beat.
        logging.warning('Cannot refresh the lock %s: %s', self.path, e)

  def check(self):
    """Raises `TrainDirLockLostError` if the lock file is no longer ours."""
    holder, _ = _read_json(self.path)
    if self._record is None or holder is None or (
        holder.get('token') != self._record['token']):
      raise TrainDirLockLostError(
          'The lock %s of this trainer was removed or taken over by %s '
          '(its heartbeat stalled for more than %.0f s?); another trainer '
          'may now write to %s.' %
          (self.path, describe_holder(holder) if holder else 'nobody',
           self._stale_secs, self.train_dir))

  def release(self):
    """Stops the heartbeat and removes the lock file if it is still ours."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    if self._record is None:
      return
    try:
      self.check()
      os.remove(self.path)
    except (TrainDirLockLostError, OSError):
      pass
    self._record = None
