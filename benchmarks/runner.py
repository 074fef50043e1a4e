"""Runs each benchmark task in a process of its own and collects its result.

One process per measurement makes the peak resident memory (VmHWM) that of
one configuration, and keeps the graphs, sessions and thread pools of one
measurement from affecting the next. Two ways to start one
(`multiprocessing` start methods):

* fresh (`spawn`): a new interpreter that imports TensorFlow, the networks
  and Keras itself. Its peak memory is what a user's process would have.
* forked (`forkserver`): a server process imports those modules once and
  forks a child per task, saving the import (seconds on TF 2) each time.
  The timings are the same, but a forked child's resident memory leaves out
  the library pages the server loaded and the child never touches (its
  page tables start without them), so its peak is lower than a fresh
  process's by up to a few hundred MiB.

`START_METHODS`: `fresh` or `forked` for every task, or `auto`: fresh for
the first run of each measurement (whose memory the report uses), forked
for the repeats that only add timings.

This module imports no TensorFlow, so the driver stays light.
"""


import itertools
import multiprocessing
import os
import sys
import time
import traceback

START_METHODS = ('auto', 'fresh', 'forked')
_CONTEXTS = {'fresh': 'spawn', 'forked': 'forkserver'}
_PRELOAD = ['benchmarks.workloads', 'benchmarks.inference']
_LOG_TAIL_CHARS = 3000


class TaskError(RuntimeError):
  """A task failed, died or timed out; the message says which and why."""


def _child_main(task, spec, log_path, conn):
  """Entry point of a task process: runs the task, sends back the result."""
  # TensorFlow's console output goes to the task's log, not the report.
  if log_path:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
  try:
    from benchmarks import tasks  # pylint: disable=g-import-not-at-top
    conn.send(('ok', tasks.run_task(task, spec)))
  except BaseException:  # pylint: disable=broad-except  (reported to parent)
    conn.send(('error', traceback.format_exc()))
  finally:
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: TF 1.15 can crash closing sessions whose
    # tf.data pipeline is still reading (workloads keeps them open), and
    # the result has been sent.
    os._exit(0)  # pylint: disable=protected-access


def _tail(path):
  try:
    with open(path) as f:
      return f.read()[-_LOG_TAIL_CHARS:]
  except (IOError, OSError):
    return ''


class Runner(object):
  """Starts one process per task (`run` may be called from several threads).

  Args:
    start_method: one of `START_METHODS`.
    timeout_s: seconds a task may run before it is killed.
    log_dir: directory for the tasks' console logs (None: inherit the
      console).
  """

  def __init__(self, start_method='auto', timeout_s=600, log_dir=None):
    if start_method not in START_METHODS:
      raise ValueError('start_method must be one of %s, got %r.' %
                       (', '.join(START_METHODS), start_method))
    self.start_method = start_method
    self._contexts = {}
    for kind, method in _CONTEXTS.items():
      if start_method in ('auto', kind):
        self._contexts[kind] = multiprocessing.get_context(method)
    if 'forked' in self._contexts:
      self._contexts['forked'].set_forkserver_preload(_PRELOAD)
    self._timeout_s = timeout_s
    self._log_dir = log_dir
    self._count = itertools.count(1)

  def fresh(self, first_run):
    """Whether a task of this run starts fresh (see `START_METHODS`)."""
    if self.start_method == 'auto':
      return first_run
    return self.start_method == 'fresh'

  def run(self, task, spec, fresh=False):
    """Runs `task` with `spec` in a new process.

    Args:
      task: a task name `benchmarks.tasks.run_task` knows.
      spec: its parameters (picklable dict).
      fresh: start a new interpreter rather than fork one; ignored unless
        the start method is `auto`.

    Returns:
      (result dict, wall seconds).

    Raises:
      TaskError: the task raised, died (e.g. out of memory) or timed out.
    """
    if self.start_method != 'auto':
      fresh = self.start_method == 'fresh'
    context = self._contexts['fresh' if fresh else 'forked']
    log_path = None
    if self._log_dir:
      log_path = os.path.join(self._log_dir,
                              '%03d_%s.log' % (next(self._count), task))
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main,
                                    args=(task, spec, log_path, sender))
    start = time.time()
    process.start()
    sender.close()
    status, payload = None, None
    try:
      if receiver.poll(self._timeout_s):
        status, payload = receiver.recv()
      else:
        status = 'timeout'
    except EOFError:
      status = 'died'
    finally:
      receiver.close()
    if status == 'timeout':
      process.terminate()
    process.join()
    wall_s = time.time() - start
    if status == 'ok':
      return payload, wall_s
    where = ' (log: %s)' % log_path if log_path else ''
    if status == 'timeout':
      message = 'timed out after %d s%s' % (self._timeout_s, where)
    elif status == 'died':
      message = ('died with exit code %s (killed for memory?)%s\n%s' %
                 (process.exitcode, where, _tail(log_path) if log_path else ''))
    else:
      message = 'raised%s:\n%s' % (where, payload)
    raise TaskError('Task %s %s' % (task, message))
