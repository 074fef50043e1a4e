"""The cluster a training task belongs to: its spec, server and ps watch.

A cluster is given either as lists of `host:port` addresses (the entry
script's ps_hosts/worker_hosts) or by the TF_CONFIG environment
variable. Worker 0 is the chief. TensorFlow waits forever for a parameter
server that is down; `wait_for_parameter_servers`, `PsWatchingSessionCreator`
and `PsWatchdog` bound that wait so that the workers of a dead cluster stop
with an error instead of hanging.
"""


import collections
import json
import os
import sys
import threading
import time

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors
from deployment import ps_probe

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# Jobs a task can run as.
JOBS = ('worker', 'ps')

# How long a worker waits for an unreachable ps by default: a ps restarted
# at once (or still importing TensorFlow) comes back well within it.
DEFAULT_PS_TIMEOUT_SECS = 60

# TensorFlow's non-chief workers look for the chief's initialized variables
# every 30 s; ours look every second.
WORKER_POLL_SECS = 1

# A step or session fails with one of these when a ps task is gone.
PS_LOST_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
                  tf.errors.DeadlineExceededError)

# cluster: {job: [host:port, ...]}; job and task: this process's place.
ClusterTask = collections.namedtuple('ClusterTask', ['cluster', 'job', 'task'])


class ClusterError(errors.InputError):
  """A cluster definition that is malformed or contradicts itself."""


class ParameterServerUnreachableError(errors.InputError):
  """A parameter server stayed unreachable for the allowed time."""


def _from_tf_config(text):
  """(cluster, job, task) from the JSON of TF_CONFIG; cluster may be None."""
  try:
    config = json.loads(text)
    task = config.get('task', {})
    return (config.get('cluster'), task.get('type', 'worker'),
            int(task.get('index', 0)))
  except (ValueError, AttributeError, TypeError) as e:
    raise ClusterError(
        'TF_CONFIG is not valid JSON of the form {"cluster": {"ps": [...], '
        '"worker": [...]}, "task": {"type": "worker", "index": 0}}: %s' % e)


def _check_tf_config_jobs(cluster):
  if not isinstance(cluster, dict) or 'worker' not in cluster:
    raise ClusterError('TF_CONFIG\'s cluster must have a "worker" job (and '
                       '"ps" for parameter servers); got %r.' % (cluster,))
  unknown = sorted(set(cluster) - set(JOBS))
  if unknown:
    raise ClusterError('TF_CONFIG\'s cluster has job(s) %s; this script '
                       'runs only %s (worker 0 is the chief).' %
                       (', '.join(unknown), ', '.join(JOBS)))


def resolve_cluster(ps_hosts=None, worker_hosts=None, job_name='worker',
                    task=0, num_ps_tasks=0, worker_replicas=1,
                    tf_config=None):
  """Finds this task's cluster and place in it.

  Args:
    ps_hosts: list of the parameter servers' `host:port`, or None.
    worker_hosts: list of the workers' `host:port`, the chief first.
    job_name: this task's job when the hosts are given.
    task: this task's index in its job when the hosts are given.
    num_ps_tasks: a ps count the caller was told; 0 or the cluster's.
    worker_replicas: a worker count the caller was told; 1 or the
      cluster's.
    tf_config: the TF_CONFIG JSON text, used when no hosts are given;
      None reads the environment variable.

  Returns:
    A `ClusterTask`, or None without a cluster (local training).

  Raises:
    ClusterError: a malformed or inconsistent cluster.
  """
  if tf_config is None:
    tf_config = os.environ.get('TF_CONFIG')
  if ps_hosts or worker_hosts:
    if not worker_hosts:
      raise ClusterError('%s needs %s too (comma-separated host:port of '
                         'every worker, the chief first).' %
                         (ref('ps_hosts'), ref('worker_hosts')))
    cluster = {'worker': list(worker_hosts)}
    if ps_hosts:
      cluster['ps'] = list(ps_hosts)
    source = '%s/%s' % (ref('job_name'), ref('task'))
  elif tf_config:
    cluster, job_name, task = _from_tf_config(tf_config)
    if not cluster:
      return None
    _check_tf_config_jobs(cluster)
    source = 'TF_CONFIG task'
  else:
    return None
  if job_name not in cluster:
    raise ClusterError('%s: job %r is not in the cluster %s.' %
                       (source, job_name, cluster))
  if not 0 <= task < len(cluster[job_name]):
    raise ClusterError('%s: task %d is out of range for job %r with %d '
                       'host(s).' % (source, task, job_name,
                                     len(cluster[job_name])))
  _check_counts(cluster, num_ps_tasks, worker_replicas)
  return ClusterTask(cluster, job_name, task)


def _check_counts(cluster, num_ps_tasks, worker_replicas):
  """Counts given besides the cluster must agree with it."""
  num_ps, num_workers = len(cluster.get('ps', [])), len(cluster['worker'])
  if num_ps_tasks not in (0, num_ps):
    raise ClusterError('%s disagrees with the cluster\'s %d '
                       'ps task(s); leave it unset.' %
                       (ref('num_ps_tasks', num_ps_tasks), num_ps))
  if worker_replicas not in (1, num_workers):
    raise ClusterError('%s disagrees with the cluster\'s '
                       '%d worker(s); leave it unset.' %
                       (ref('worker_replicas', worker_replicas), num_workers))


def start_server(cluster_task):
  """Starts the `tf.train.Server` of this task.

  A ps task serves here until the process is killed and never returns.

  Returns:
    The server of a worker task.
  """
  cluster, job, task = cluster_task
  server = tf.train.Server(tf.train.ClusterSpec(cluster), job_name=job,
                           task_index=task,
                           config=tf.ConfigProto(allow_soft_placement=True))
  if job == 'ps':
    logging.info('Parameter server %d serving at %s (stop it with a signal).',
                 task, cluster['ps'][task])
    server.join()
  return server


class WorkerSessionCreator(tf.train.SessionCreator):
  """A non-chief worker's session creator that polls the chief every second.

  `tf.train.WorkerSessionCreator` waits 30 s between looks at whether the
  chief has initialized the variables; this one `WORKER_POLL_SECS`.
  """

  def __init__(self, scaffold, master, config, max_wait_secs=30 * 60):
    self._scaffold = scaffold
    self._master = master
    self._config = config
    self._max_wait_secs = max_wait_secs

  def create_session(self):
    self._scaffold.finalize()
    manager = tf.train.SessionManager(
        local_init_op=self._scaffold.local_init_op,
        ready_op=self._scaffold.ready_op,
        ready_for_local_init_op=self._scaffold.ready_for_local_init_op,
        graph=tf.get_default_graph(),
        recovery_wait_secs=WORKER_POLL_SECS)
    return manager.wait_for_session(self._master, config=self._config,
                                    max_wait_secs=self._max_wait_secs)


def ps_unreachable_message(ps_hosts, waited_secs, train_dir, detail=''):
  """The paragraph a worker prints when its parameter servers are gone.

  Args:
    ps_hosts: the unreachable addresses.
    waited_secs: how long the worker waited for them.
    train_dir: the chief's checkpoint directory.
    detail: the TensorFlow error that ended the session, if one did.
  """
  try:
    last = tf.train.latest_checkpoint(train_dir) if train_dir else None
  except tf.errors.OpError:
    last = None  # This worker may not see the chief's directory.
  reason = detail or (
      'no connection or no answer within %s' %
      ref('ps_timeout_secs', waited_secs))
  return (
      'The parameter server at %s (%s) is unreachable (%s), so this '
      'worker stopped. The ps process died or its host is down; the '
      'variables it held are lost. Restart the whole cluster (the ps, then '
      'every worker, with the same flags): the chief restores the last '
      'checkpoint in %s (now %s) and training continues from '
      'its global step.' %
      (', '.join(ps_hosts), ref('ps_hosts'), reason,
       ref('train_dir', train_dir),
       last or 'none yet: training would start over'))


def unreachable_hosts(hosts, connect_timeout_secs=1.0):
  """The `host:port` entries of `hosts` that refuse or do not answer."""
  # A ps that accepts connections but never answers (frozen process, hung
  # host) counts as down too: the probe waits for its HTTP/2 answer.
  return ps_probe.unanswering_hosts(hosts, connect_timeout_secs)


def wait_for_parameter_servers(ps_hosts, timeout_secs, train_dir):
  """Returns once every ps accepts connections; waits `timeout_secs` at most.

  Args:
    ps_hosts: the parameter servers' `host:port`.
    timeout_secs: the longest wait; <= 0 does not wait at all.
    train_dir: the chief's checkpoint directory (for the message).

  Raises:
    ParameterServerUnreachableError: a ps is still down at the deadline.
  """
  if timeout_secs <= 0 or not ps_hosts:
    return
  deadline = time.time() + timeout_secs
  down = unreachable_hosts(ps_hosts)
  if down:
    logging.warning('Parameter server(s) %s unreachable; waiting for up to '
                    '%d s (%s).', ', '.join(down), timeout_secs,
                    ref('ps_timeout_secs'))
  while down:
    if time.time() >= deadline:
      raise ParameterServerUnreachableError(
          ps_unreachable_message(down, timeout_secs, train_dir))
    time.sleep(1)
    down = unreachable_hosts(down)


class PsWatchingSessionCreator(tf.train.SessionCreator):
  """Waits (boundedly) for the parameter servers before each new session.

  `tf.train.MonitoredSession` replaces its session after an
  `UnavailableError`, and creating one blocks for as long as a ps is
  down. The error this raises after `timeout_secs` is not a preemption
  error, so the monitored session gives up instead of retrying.
  """

  def __init__(self, creator, ps_hosts, timeout_secs, train_dir):
    self._creator = creator
    self._ps_hosts = list(ps_hosts)
    self._timeout_secs = timeout_secs
    self._train_dir = train_dir

  def create_session(self):
    wait_for_parameter_servers(self._ps_hosts, self._timeout_secs,
                               self._train_dir)
    return self._creator.create_session()


def _report_to_stderr(message):
  sys.stderr.write('\nerror: %s\n' % message)
  sys.stderr.flush()


class PsWatchdog(object):
  """A thread that ends the process when a ps stays down too long.

  With a ps gone, TensorFlow may block without a deadline (closing the
  failed session retries its RPCs to the dead task; a new session waits
  for it). Without the ps nothing can be saved anyway, so after
  `timeout_secs` of refused connections the thread reports the error and
  exits the process.
  """

  def __init__(self, ps_hosts, timeout_secs, train_dir,
               report=_report_to_stderr):
    """`report(message)` shows the final error before the exit."""
    self._ps_hosts = list(ps_hosts)
    self._timeout_secs = timeout_secs
    self._train_dir = train_dir
    self._report = report
    self._stopped = threading.Event()
    self._thread = threading.Thread(target=self._watch, name='ps_watchdog')
    self._thread.daemon = True

  def start(self):
    self._thread.start()
    return self

  def stop(self):
    self._stopped.set()

  def _watch(self):
    down_since = None
    while not self._stopped.wait(1.0):
      down = unreachable_hosts(self._ps_hosts)
      if not down:
        down_since = None
        continue
      now = time.time()
      if down_since is None:
        down_since = now
        logging.warning('Parameter server(s) %s unreachable; stopping if '
                        'still down in %d s (%s).', ', '.join(down),
                        self._timeout_secs, ref('ps_timeout_secs'))
      if now - down_since >= self._timeout_secs and not self._stopped.is_set():
        self._report(ps_unreachable_message(down, self._timeout_secs,
                                            self._train_dir))
        sys.stdout.flush()
        # The main thread may be stuck inside TensorFlow: only a hard exit
        # is sure to end the process.
        os._exit(1)  # pylint: disable=protected-access
