r"""Trains an image classifier (MobileNet V1/V2) on a TFRecord dataset.

Flags and their meanings follow the original slim script (see
`common_flags.py`; `--helpfull` lists them). Training runs in a
`tf.train.MonitoredSession` with hooks for progress logging, summaries,
checkpoints, NaN/Inf detection and the stop step, identically on TF 1.15
and TF 2 (graph mode).

Examples:

  # Train MobileNet V1 (0.25 width) on the embedded shapes set:
  python train_image_classifier.py --train_dir=/tmp/shapes_v1 \
      --dataset_dir=/tmp/shapes --model_name=mobilenet_v1_025 \
      --train_image_size=64 --max_number_of_steps=1000

  # Fine-tune an ImageNet checkpoint on flowers, new head only:
  python train_image_classifier.py --train_dir=/tmp/flowers \
      --dataset_name=flowers --dataset_dir=/tmp/flowers_data \
      --checkpoint_path=/tmp/mobilenet_v1_1.0_224.ckpt \
      --checkpoint_exclude_scopes=MobilenetV1/Logits \
      --trainable_scopes=MobilenetV1/Logits

  # One worker of a cluster (see scripts/run_local_cluster.sh):
  python train_image_classifier.py --ps_hosts=h0:2222 \
      --worker_hosts=h1:2222,h2:2222 --job_name=worker --task=0 ...
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import datetime
import json
import os
import sys
import threading
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

import common_flags
from deployment import model_deploy
from deployment import script_utils
from training import checkpoint_recovery  # (issue 17)
from training import ps_probe  # (issue 17)
from training import train_dir_lock  # (issue 17)

PROGRAM = 'train_image_classifier.py'

# Optimizer name -> builder(learning_rate, opts). The one place optimizer
# names map to code; hyper-parameters come from the matching flags.
_OPTIMIZERS = {
    'adadelta': lambda lr, o: tf.train.AdadeltaOptimizer(
        lr, rho=o.adadelta_rho, epsilon=o.opt_epsilon),
    'adagrad': lambda lr, o: tf.train.AdagradOptimizer(
        lr, initial_accumulator_value=o.adagrad_initial_accumulator_value),
    'adam': lambda lr, o: tf.train.AdamOptimizer(
        lr, beta1=o.adam_beta1, beta2=o.adam_beta2, epsilon=o.opt_epsilon),
    'ftrl': lambda lr, o: tf.train.FtrlOptimizer(
        lr, learning_rate_power=o.ftrl_learning_rate_power,
        initial_accumulator_value=o.ftrl_initial_accumulator_value,
        l1_regularization_strength=o.ftrl_l1,
        l2_regularization_strength=o.ftrl_l2),
    'momentum': lambda lr, o: tf.train.MomentumOptimizer(
        lr, momentum=o.momentum, name='Momentum'),
    'rmsprop': lambda lr, o: tf.train.RMSPropOptimizer(
        lr, decay=o.rmsprop_decay, momentum=o.rmsprop_momentum,
        epsilon=o.opt_epsilon),
    'sgd': lambda lr, o: tf.train.GradientDescentOptimizer(lr),
}

# Job names of a cluster this script can run as.
_JOBS = ('worker', 'ps')

# Default of --ps_timeout_secs: long enough for a ps that is restarted at
# once (or still importing TensorFlow at start), short enough that workers
# of a dead cluster stop instead of hanging.
DEFAULT_PS_TIMEOUT_SECS = 60

# A non-chief worker polls this often for the chief to initialize variables
# (TensorFlow's default is 30 s).
_WORKER_POLL_SECS = 1


def define_flags(flag_values=flags.FLAGS):
  """Defines every flag of this script.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  common_flags.define_train_flags(flag_values)
  if 'job_name' not in flag_values:
    flags.DEFINE_enum(
        'job_name', 'worker', list(_JOBS),
        'With --ps_hosts/--worker_hosts: the job this process runs in the '
        'cluster. "ps" serves variables until killed; "worker" trains. '
        '(TF_CONFIG\'s task.type takes its place when TF_CONFIG is used.)',
        flag_values=flag_values)
  if 'ps_timeout_secs' not in flag_values:
    flags.DEFINE_integer(
        'ps_timeout_secs', DEFAULT_PS_TIMEOUT_SECS,
        'On a cluster with parameter servers: how long a worker waits for an '
        'unreachable ps (at start, or after the ps died) before it stops '
        'with an error saying to restart the cluster. 0 waits forever '
        '(TensorFlow\'s own behaviour: the worker hangs while the ps is '
        'down).', flag_values=flag_values)
  # --- issue 17 (reliability round 2): flags -------------------------------
  if 'lock_train_dir' not in flag_values:
    flags.DEFINE_bool(
        'lock_train_dir', True,
        'The chief holds a lock file in --train_dir while it trains, so a '
        'second trainer started on the same directory (on any host sharing '
        'it) refuses to start. Turn off only on a filesystem without hard '
        'links.', flag_values=flag_values)
  if 'fsync_checkpoints' not in flag_values:
    flags.DEFINE_bool(
        'fsync_checkpoints', True,
        'After each checkpoint save, flush its files, the checkpoint state '
        'file and --train_dir itself to disk, so that a power loss cannot '
        'take a listed checkpoint with it (costs ~0.1-0.2 s per save of a '
        'MobileNet v1 checkpoint).', flag_values=flag_values)
  # --- end issue 17 ----------------------------------------------------------


define_flags()
# --helpshort lists the flags defined in common_flags too.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """Parses `argv` into a fresh FlagValues with this script's flags.

  Lets tests and other Python code run `train()` without global state.

  Args:
    argv: list of flag strings, e.g. ['--train_dir=/tmp/x'].

  Returns:
    A parsed `flags.FlagValues`.
  """
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  flag_values([PROGRAM] + list(argv))
  return flag_values


class NonFiniteLossError(script_utils.ScriptError):
  """The loss or a variable became NaN or Inf; training stopped unsaved."""


def _finiteness_checks():
  """Ops telling whether every float global variable is finite.

  Returns:
    (all_finite, any_nan) scalar bool tensors.
  """
  finite, nan = [], []
  for var in tf.global_variables():
    if not var.dtype.base_dtype.is_floating:
      continue
    # Reduced where the variable lives; only two bools travel (ps jobs).
    with tf.device(var.device), tf.name_scope('check_finite'):
      finite.append(tf.reduce_all(tf.is_finite(var)))
      nan.append(tf.reduce_any(tf.is_nan(var)))
  if not finite:
    return tf.constant(True), tf.constant(False)
  return tf.reduce_all(tf.stack(finite)), tf.reduce_any(tf.stack(nan))


class _NonFiniteLossHook(tf.train.SessionRunHook):
  """Stops training at the first NaN/Inf, before any hook saves it.

  Checks the loss and, after the step, every float variable: the loss is
  computed before the step's update, so an update that overflows (e.g. a
  huge learning rate) leaves Inf weights while the loss is still finite,
  and a save due at that step would store them. The variables are checked
  in a separate run after the step's, which is sure to see the updated
  values (on TF 1.15 a fetch beside the train op, even with a control
  dependency on it, saw the values from before the update).

  Placed first among the hooks: raising in `after_run` skips the later
  hooks' `after_run` (the checkpoint saver), and an exception skips every
  hook's `end()` (the final save), so no NaN checkpoint is written.
  """

  def __init__(self, loss, step, train_dir):
    self._fetches = {'loss': loss, 'step': step}
    self._train_dir = train_dir
    self._checks = None

  def begin(self):
    self._checks = _finiteness_checks()

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._fetches)

  def after_run(self, run_context, run_values):
    results = run_values.results
    loss = results['loss']
    step = results['step']
    if not np.isfinite(loss):
      what = 'The loss became %s at global step %d' % (
          'NaN' if np.isnan(loss) else 'Inf', step)
    else:
      finite, nan = run_context.session.run(self._checks)
      if finite:
        return
      what = ('The variables became %s at global step %d (its update '
              'overflowed; the loss, %g, was still finite)' %
              ('NaN' if nan else 'Inf', step, loss))
    last = tf.train.latest_checkpoint(self._train_dir)
    raise NonFiniteLossError(
        '%s, so training stopped; that step was not saved. The last good '
        'checkpoint is %s. Lower --learning_rate, use --optimizer=sgd or a '
        'smaller --opt_epsilon, or check the data, then rerun (training '
        'resumes from that checkpoint).' % (what, last or '(none yet)'))


class _ProgressHook(tf.train.SessionRunHook):
  """Logs step, loss, learning rate, images/sec and ETA every n steps.

  Also keeps the (global step, loss) history of this process, which
  `train()` returns.
  """

  def __init__(self, loss, learning_rate, step, every_n_steps,
               images_per_step, max_steps, task):
    self._fetches = {'loss': loss, 'lr': learning_rate, 'step': step}
    self._every_n = max(1, every_n_steps)
    self._images_per_step = images_per_step
    self._max_steps = max_steps
    self._task = task
    self.history = []
    self.local_steps = 0
    self.last_step = None

  def begin(self):
    self._mark = None  # (time, local step, global step) of the last log.

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._fetches)

  def after_run(self, run_context, run_values):
    results = run_values.results
    step, loss = int(results['step']), float(results['loss'])
    self.local_steps += 1
    self.last_step = step
    self.history.append((step, loss))
    now = time.time()
    if self._mark is None:
      self._mark = (now, self.local_steps, step)
    if self.local_steps % self._every_n and not (
        self._max_steps and step >= self._max_steps):
      return
    last_time, last_local, last_global = self._mark
    elapsed = now - last_time
    parts = ['task %d step %d' % (self._task, step)]
    if self._max_steps:
      parts[0] += '/%d' % self._max_steps
    parts.append('loss = %.4f' % loss)
    parts.append('lr = %.6g' % results['lr'])
    if elapsed > 0 and self.local_steps > last_local:
      parts.append('%.1f images/sec' % (
          (self.local_steps - last_local) * self._images_per_step / elapsed))
      if self._max_steps and step > last_global:
        secs = (self._max_steps - step) * elapsed / (step - last_global)
        parts.append('ETA %s' % datetime.timedelta(seconds=int(max(0, secs))))
    logging.info(', '.join(parts))
    self._mark = (now, self.local_steps, step)


class _WorkerSessionCreator(tf.train.SessionCreator):
  """Session creator of a non-chief worker that polls every second.

  Like `tf.train.WorkerSessionCreator`, but checks for the chief's
  initialized variables every `_WORKER_POLL_SECS` instead of every 30 s.
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
        recovery_wait_secs=_WORKER_POLL_SECS)
    return manager.wait_for_session(self._master, config=self._config,
                                    max_wait_secs=self._max_wait_secs)


class ParameterServerUnreachableError(script_utils.ScriptError):
  """A parameter server stayed unreachable for --ps_timeout_secs."""


# Errors with which a step or a session fails when a ps task is gone.
_PS_LOST_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
                   tf.errors.DeadlineExceededError)


def _ps_unreachable_message(ps_hosts, waited_secs, train_dir, detail=''):
  """The one-paragraph error of a worker whose parameter server is gone.

  Args:
    ps_hosts: list of the unreachable ps addresses.
    waited_secs: how long the worker waited for them.
    train_dir: --train_dir (the chief's checkpoints).
    detail: the TensorFlow error that ended the session, if any (else
      the wait is the reason).

  Returns:
    The message.
  """
  try:
    last = tf.train.latest_checkpoint(train_dir) if train_dir else None
  except tf.errors.OpError:
    last = None  # A worker need not see the chief's --train_dir.
  reason = detail or (
      'no connection or no answer within --ps_timeout_secs=%d' % waited_secs)
  return (
      'The parameter server at %s (--ps_hosts) is unreachable (%s), so this '
      'worker stopped. The ps '
      'process died or its host is down; the variables it held are lost. '
      'Restart the whole cluster (the ps, then every worker, with the same '
      'flags): the chief restores the last checkpoint in --train_dir=%s '
      '(now %s) and training continues from its global step.' %
      (', '.join(ps_hosts), reason, train_dir,
       last or 'none yet: training would start over'))


def _unreachable_hosts(hosts, connect_timeout_secs=1.0):
  """The `host:port` addresses of `hosts` that refuse or do not answer."""
  # issue 17: a ps that accepts connections but never answers (frozen,
  # hung host) counts as down too; the probe waits for its HTTP/2 answer.
  return ps_probe.unanswering_hosts(hosts, connect_timeout_secs)


def wait_for_parameter_servers(ps_hosts, timeout_secs, train_dir):
  """Waits until every ps accepts connections, at most `timeout_secs`.

  TensorFlow itself waits forever for a ps (CreateSession retries without
  a deadline), so a worker whose ps died would hang; this bounds it.

  Args:
    ps_hosts: list of `host:port` of the parameter servers.
    timeout_secs: how long to wait; <= 0 returns at once.
    train_dir: --train_dir, named in the error.

  Raises:
    ParameterServerUnreachableError: if a ps is still unreachable.
  """
  if timeout_secs <= 0 or not ps_hosts:
    return
  deadline = time.time() + timeout_secs
  down = _unreachable_hosts(ps_hosts)
  if down:
    logging.warning('Parameter server(s) %s unreachable; waiting for up to '
                    '%d s (--ps_timeout_secs).', ', '.join(down),
                    timeout_secs)
  while down:
    if time.time() >= deadline:
      raise ParameterServerUnreachableError(
          _ps_unreachable_message(down, timeout_secs, train_dir))
    time.sleep(1)
    down = _unreachable_hosts(down)


class _PsWatchingSessionCreator(tf.train.SessionCreator):
  """Checks that the parameter servers are up before each session.

  `tf.train.MonitoredSession` recreates its session after an
  `UnavailableError` (a ps or worker died), and creating it blocks without
  a deadline while a ps is down. Each (re)creation first waits for the ps
  tasks for at most --ps_timeout_secs, then fails with a clear error
  (not a preemption error, so MonitoredSession does not retry it).
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


class _PsWatchdog(object):
  """Exits the process when a parameter server stays down too long.

  When a ps dies, TensorFlow can block inside the session without a
  deadline: closing the failed session retries its cleanup RPCs to the
  dead ps, and a new session waits for it forever. Nothing can be saved
  without the ps (it held the variables), so after --ps_timeout_secs of
  refused connections this thread prints the error and ends the process.
  """

  def __init__(self, ps_hosts, timeout_secs, train_dir):
    self._ps_hosts = list(ps_hosts)
    self._timeout_secs = timeout_secs
    self._train_dir = train_dir
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
      down = _unreachable_hosts(self._ps_hosts)
      if not down:
        down_since = None
        continue
      now = time.time()
      if down_since is None:
        down_since = now
        logging.warning('Parameter server(s) %s unreachable; stopping if '
                        'still down in %d s (--ps_timeout_secs).',
                        ', '.join(down), self._timeout_secs)
      if now - down_since >= self._timeout_secs and not self._stopped.is_set():
        script_utils.print_error(PROGRAM, _ps_unreachable_message(
            down, self._timeout_secs, self._train_dir))
        sys.stdout.flush()
        # The main thread may be blocked in TensorFlow; only a hard exit
        # is sure to end the process.
        os._exit(1)  # pylint: disable=protected-access


def _configure_learning_rate(opts, num_samples_per_epoch, global_step):
  """Builds the learning-rate tensor of --learning_rate_decay_type.

  Args:
    opts: parsed flags.
    num_samples_per_epoch: examples in the training split.
    global_step: the global step tensor.

  Returns:
    A scalar learning-rate tensor.

  Raises:
    ScriptError: for an unknown decay type.
  """
  # Decay every num_epochs_per_decay epochs of this worker's batches; with
  # sync replicas, one step aggregates replicas_to_aggregate batches.
  decay_steps = num_samples_per_epoch * opts.num_epochs_per_decay
  decay_steps /= opts.batch_size
  if opts.sync_replicas:
    decay_steps /= opts.replicas_to_aggregate
  decay_steps = max(1, int(decay_steps))
  decay_type = opts.learning_rate_decay_type
  if decay_type == 'exponential':
    return tf.train.exponential_decay(
        opts.learning_rate, global_step, decay_steps,
        opts.learning_rate_decay_factor, staircase=True,
        name='exponential_decay_learning_rate')
  if decay_type == 'fixed':
    return tf.constant(opts.learning_rate, name='fixed_learning_rate')
  if decay_type == 'polynomial':
    return tf.train.polynomial_decay(
        opts.learning_rate, global_step, decay_steps, opts.end_learning_rate,
        power=1.0, cycle=False, name='polynomial_decay_learning_rate')
  raise script_utils.ScriptError(
      '--learning_rate_decay_type=%s is not one of %s.' %
      (decay_type, ', '.join(common_flags.LEARNING_RATE_DECAY_TYPES)))


def _configure_optimizer(opts, learning_rate):
  """Builds the optimizer named by --optimizer.

  Args:
    opts: parsed flags.
    learning_rate: scalar learning-rate tensor.

  Returns:
    A `tf.train.Optimizer`.

  Raises:
    ScriptError: for an unknown optimizer.
  """
  if opts.optimizer not in _OPTIMIZERS:
    raise script_utils.ScriptError(
        '--optimizer=%s is not one of %s.' %
        (opts.optimizer, ', '.join(sorted(_OPTIMIZERS))))
  return _OPTIMIZERS[opts.optimizer](learning_rate, opts)


def _variables_to_train(opts):
  """Returns the trainable variables under --trainable_scopes (all if unset).

  Raises:
    ScriptError: if a scope matches no trainable variable.
  """
  scopes = script_utils.split_scopes(opts.trainable_scopes)
  if not scopes:
    return tf.trainable_variables()
  variables = []
  for scope in scopes:
    found = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope)
    if not found:
      tops = sorted(set('/'.join(v.op.name.split('/')[:2])
                        for v in tf.trainable_variables()))
      raise script_utils.ScriptError(
          '--trainable_scopes: scope %r matches no trainable variable of '
          '--model_name=%s. Scopes look like: %s.' %
          (scope, opts.model_name, ', '.join(tops[:8])))
    variables.extend(v for v in found if v not in variables)
  return variables


def _fine_tune_saver(opts, train_dir_checkpoint):
  """Builds the saver that initializes the model from --checkpoint_path.

  Only model variables are restored (not the optimizer's slots or the
  global step), minus --checkpoint_exclude_scopes. A variable whose
  ExponentialMovingAverage shadow is in the checkpoint is restored from the
  shadow, the better estimate of the weights.

  Args:
    opts: parsed flags.
    train_dir_checkpoint: the latest checkpoint in --train_dir, or None.

  Returns:
    (saver, checkpoint) or (None, None) when there is nothing to restore.

  Raises:
    ScriptError: if the checkpoint does not fit the model.
  """
  if not opts.checkpoint_path:
    return None, None
  if train_dir_checkpoint:
    logging.info('Ignoring --checkpoint_path=%s because --train_dir already '
                 'holds checkpoint %s; resuming from it.',
                 opts.checkpoint_path, train_dir_checkpoint)
    return None, None
  checkpoint = script_utils.resolve_checkpoint(opts.checkpoint_path)
  exclusions = script_utils.split_scopes(opts.checkpoint_exclude_scopes)
  variables = [v for v in slim.get_model_variables()
               if not any(v.op.name.startswith(e) for e in exclusions)]
  shapes = script_utils.checkpoint_shapes(checkpoint)
  var_to_source = {}
  num_averaged = 0
  for var in variables:
    name = var.op.name
    if name + script_utils.EMA_SUFFIX in shapes:
      var_to_source[name + script_utils.EMA_SUFFIX] = var
      num_averaged += 1
    else:
      var_to_source[name] = var
  restore = script_utils.check_checkpoint_fits(
      var_to_source, checkpoint, '--checkpoint_path', opts.model_name,
      ignore_missing=opts.ignore_missing_vars, fine_tuning=True)
  if not restore:
    logging.warning('Nothing to restore from %s.', checkpoint)
    return None, None
  logging.info('Fine-tuning from %s: restoring %d variables (%d from their '
               'moving averages), excluding scopes %s.', checkpoint,
               len(restore), num_averaged, exclusions or 'none')
  return tf.train.Saver(restore, name='fine_tune_saver'), checkpoint


def _resolve_cluster(opts):
  """Reads the cluster from --ps_hosts/--worker_hosts or TF_CONFIG.

  Args:
    opts: parsed flags.

  Returns:
    (cluster dict {job: [host:port]}, job name, task index), or None when
    no cluster is defined (local training, or --master alone).

  Raises:
    ScriptError: for a malformed or inconsistent cluster.
  """
  if opts.ps_hosts or opts.worker_hosts:
    if not opts.worker_hosts:
      raise script_utils.ScriptError(
          '--ps_hosts needs --worker_hosts too (comma-separated host:port '
          'of every worker, the chief first).')
    cluster = {'worker': list(opts.worker_hosts)}
    if opts.ps_hosts:
      cluster['ps'] = list(opts.ps_hosts)
    job, task, source = opts.job_name, opts.task, '--job_name/--task'
  elif os.environ.get('TF_CONFIG'):
    try:
      config = json.loads(os.environ['TF_CONFIG'])
      cluster = config.get('cluster')
      job = config.get('task', {}).get('type', 'worker')
      task = int(config.get('task', {}).get('index', 0))
    except (ValueError, AttributeError, TypeError) as e:
      raise script_utils.ScriptError(
          'TF_CONFIG is not valid JSON of the form {"cluster": {"ps": [...], '
          '"worker": [...]}, "task": {"type": "worker", "index": 0}}: %s' % e)
    if not cluster:
      return None
    if not isinstance(cluster, dict) or 'worker' not in cluster:
      raise script_utils.ScriptError(
          'TF_CONFIG\'s cluster must have a "worker" job (and "ps" for '
          'parameter servers); got %r.' % (cluster,))
    unknown = sorted(set(cluster) - set(_JOBS))
    if unknown:
      raise script_utils.ScriptError(
          'TF_CONFIG\'s cluster has job(s) %s; this script runs only %s '
          '(worker 0 is the chief).' % (', '.join(unknown), ', '.join(_JOBS)))
    source = 'TF_CONFIG task'
  else:
    return None
  if job not in cluster:
    raise script_utils.ScriptError(
        '%s: job %r is not in the cluster %s.' % (source, job, cluster))
  if not 0 <= task < len(cluster[job]):
    raise script_utils.ScriptError(
        '%s: task %d is out of range for job %r with %d host(s).' %
        (source, task, job, len(cluster[job])))
  num_ps = len(cluster.get('ps', []))
  num_workers = len(cluster['worker'])
  if opts.num_ps_tasks not in (0, num_ps):
    raise script_utils.ScriptError(
        '--num_ps_tasks=%d disagrees with the cluster\'s %d ps task(s); '
        'leave it unset.' % (opts.num_ps_tasks, num_ps))
  if opts.worker_replicas not in (1, num_workers):
    raise script_utils.ScriptError(
        '--worker_replicas=%d disagrees with the cluster\'s %d worker(s); '
        'leave it unset.' % (opts.worker_replicas, num_workers))
  return cluster, job, task


def _add_summaries(end_points, first_clone_scope, learning_rate):
  """Adds activation, sparsity, loss, variable and learning-rate summaries.

  Args:
    end_points: end_points of the first clone.
    first_clone_scope: its name scope ('' for one clone).
    learning_rate: the learning-rate tensor.
  """
  for name, tensor in end_points.items():
    tf.summary.histogram('activations/' + name, tensor)
    tf.summary.scalar('sparsity/' + name, tf.nn.zero_fraction(tensor))
  prefix = first_clone_scope + '/' if first_clone_scope else None
  for loss in tf.get_collection(tf.GraphKeys.LOSSES, prefix):
    tf.summary.scalar('losses/%s' % loss.op.name, loss)
  for variable in slim.get_model_variables():
    tf.summary.histogram('variables/' + variable.op.name, variable)
  tf.summary.scalar('learning_rate', learning_rate)


def _build_model_fn(opts, network_fn, iterator, num_classes, inputs_device):
  """Returns the per-clone model function: one batch, logits and the loss.

  Args:
    opts: parsed flags.
    network_fn: the network function.
    iterator: a `tf.data` iterator of (images, labels) batches.
    num_classes: classes of the network's head.
    inputs_device: device of the input pipeline.
  """

  def clone_fn():
    """Reads this clone's batch, builds the net and adds its loss."""
    with tf.device(inputs_device):
      images, labels = iterator.get_next()
      labels = tf.cast(labels, tf.int64)
      # A wrong --labels_offset makes labels fall outside the head; fail
      # loudly instead of training on all-zero one-hot targets.
      check = tf.Assert(
          tf.reduce_all(tf.logical_and(labels >= 0, labels < num_classes)),
          ['Labels outside [0, %d) after --labels_offset=%d:' %
           (num_classes, opts.labels_offset), labels], name='check_labels')
      with tf.control_dependencies([check]):
        labels = tf.identity(labels)
    logits, end_points = network_fn(images)
    one_hot = tf.one_hot(labels, num_classes)
    tf.losses.softmax_cross_entropy(
        one_hot, logits, label_smoothing=opts.label_smoothing, weights=1.0)
    return end_points

  return clone_fn


def _update_ops(first_clone_scope, trainable_scopes):
  """The first clone's batch-norm updates, limited to the trained scopes.

  With --trainable_scopes, statistics outside those scopes are frozen too,
  so a frozen body stays bit-identical (slim kept updating them).

  Args:
    first_clone_scope: name scope of the first clone ('' for one clone).
    trainable_scopes: list of scopes, empty for all.

  Returns:
    A list of ops.
  """
  prefix = first_clone_scope + '/' if first_clone_scope else ''
  ops = []
  for op in tf.get_collection(tf.GraphKeys.UPDATE_OPS, prefix or None):
    name = op.name[len(prefix):]
    if not trainable_scopes or any(name.startswith(s)
                                   for s in trainable_scopes):
      ops.append(op)
  return ops


def _build_train_op(opts, deploy_config, clones, optimizer, global_step,
                    variable_averages, moving_average_variables):
  """Builds the op that runs one training step.

  Args:
    opts: parsed flags.
    deploy_config: the `DeploymentConfig`.
    clones: the clones from `model_deploy.create_clones`.
    optimizer: the (possibly SyncReplicas-wrapped) optimizer.
    global_step: the global step variable.
    variable_averages: an `ExponentialMovingAverage` or None.
    moving_average_variables: the variables it averages, or None.

  Returns:
    (train_tensor, step): the total loss and the global step, both read
    after the step's updates ran.
  """
  variables_to_train = _variables_to_train(opts)
  update_ops = _update_ops(deploy_config.clone_scope(0),
                           script_utils.split_scopes(opts.trainable_scopes))
  if variable_averages is not None and not opts.sync_replicas:
    # (SyncReplicasOptimizer applies the averages itself, on the chief.)
    with tf.device(deploy_config.variables_device()):
      update_ops.append(variable_averages.apply(moving_average_variables))
  with tf.device(deploy_config.optimizer_device()):
    total_loss, grads_and_vars = model_deploy.optimize_clones(
        clones, optimizer, var_list=variables_to_train)
    update_ops.append(optimizer.apply_gradients(grads_and_vars,
                                                global_step=global_step))
    with tf.control_dependencies([tf.group(*update_ops)]):
      train_tensor = tf.identity(total_loss, name='train_op')
      step = tf.identity(global_step.read_value(), name='step_after')
  return train_tensor, step


def _summary_op(deploy_config, clones, learning_rate):
  """Merges the summaries of the first clone and the shared ones.

  Args:
    deploy_config: the `DeploymentConfig`.
    clones: the clones.
    learning_rate: the learning-rate tensor.

  Returns:
    The merged summary op.
  """
  _add_summaries(clones[0].outputs, deploy_config.clone_scope(0),
                 learning_rate)
  other_clones = [c.scope + '/' for c in clones[1:]]
  summaries = [s for s in tf.get_collection(tf.GraphKeys.SUMMARIES)
               if not any(s.op.name.startswith(p) for p in other_clones)]
  return tf.summary.merge(summaries, name='summary_op')


def _build_graph(opts, is_chief, train_dir_checkpoint):
  """Builds the whole training graph in the default graph.

  Args:
    opts: parsed flags.
    is_chief: whether this worker is the chief (task 0).
    train_dir_checkpoint: the latest checkpoint in --train_dir, or None.

  Returns:
    A dict of the tensors, ops and objects `train()` runs.
  """
  deploy_config = model_deploy.DeploymentConfig(
      num_clones=opts.num_clones, clone_on_cpu=opts.clone_on_cpu,
      replica_id=opts.task, num_replicas=opts.worker_replicas,
      num_ps_tasks=opts.num_ps_tasks)
  with tf.device(deploy_config.variables_device()):
    global_step = tf.train.get_or_create_global_step()

  dataset = script_utils.get_dataset(opts)
  script_utils.check_labels_offset(dataset, opts.labels_offset,
                                   opts.dataset_name)
  num_classes = dataset.num_classes - opts.labels_offset
  network_fn = script_utils.get_network_fn(
      opts, num_classes, weight_decay=opts.weight_decay, is_training=True)
  preprocessing_fn = script_utils.get_preprocessing_fn(opts, is_training=True)
  image_size = opts.train_image_size or network_fn.default_image_size
  script_utils.check_image_size(image_size, '--train_image_size')

  with tf.device(deploy_config.inputs_device()):
    data = script_utils.make_input_dataset(
        opts, dataset, preprocessing_fn, image_size, is_training=True)
    iterator = tf.data.make_initializable_iterator(data)

  clone_fn = _build_model_fn(opts, network_fn, iterator, num_classes,
                             deploy_config.inputs_device())
  clones = model_deploy.create_clones(deploy_config, clone_fn)

  if opts.quantize_delay >= 0:
    # Fake quantization must wrap the forward graph before gradients exist.
    # tf.contrib exists only on TF 1.15 (_check_flags stops TF 2 earlier).
    from tensorflow.contrib import quantize as contrib_quantize
    contrib_quantize.create_training_graph(quant_delay=opts.quantize_delay)

  # Checkpoints are checked now, before the optimizer exists, to fail fast
  # on a mismatch. Only the chief restores (and may see the checkpoints).
  fine_tune_saver, fine_tune_checkpoint = None, None
  if is_chief:
    fine_tune_saver, fine_tune_checkpoint = _fine_tune_saver(
        opts, train_dir_checkpoint)
  if is_chief and train_dir_checkpoint:
    script_utils.check_checkpoint_fits(
        {v.op.name: v for v in slim.get_model_variables()},
        train_dir_checkpoint, '--train_dir', opts.model_name, resuming=True)

  moving_average_variables, variable_averages = None, None
  if opts.moving_average_decay:
    moving_average_variables = slim.get_model_variables()
    with tf.device(deploy_config.variables_device()):
      variable_averages = tf.train.ExponentialMovingAverage(
          opts.moving_average_decay, global_step)

  with tf.device(deploy_config.optimizer_device()):
    learning_rate = _configure_learning_rate(opts, dataset.num_samples,
                                             global_step)
    optimizer = _configure_optimizer(opts, learning_rate)
    if opts.sync_replicas:
      optimizer = tf.train.SyncReplicasOptimizer(
          opt=optimizer, replicas_to_aggregate=opts.replicas_to_aggregate,
          total_num_replicas=opts.worker_replicas,
          variable_averages=variable_averages,
          variables_to_average=moving_average_variables)

  train_tensor, step_after = _build_train_op(
      opts, deploy_config, clones, optimizer, global_step,
      variable_averages, moving_average_variables)
  summary_op = _summary_op(deploy_config, clones, learning_rate)

  if is_chief and train_dir_checkpoint:
    # The optimizer's slots and moving averages must be there too.
    script_utils.check_checkpoint_fits(
        {v.op.name: v for v in tf.global_variables()},
        train_dir_checkpoint, '--train_dir', opts.model_name, resuming=True)

  def init_fn(unused_scaffold, session):
    if fine_tune_saver is not None:
      fine_tune_saver.restore(session, fine_tune_checkpoint)

  scaffold = tf.train.Scaffold(
      init_fn=init_fn,
      local_init_op=tf.group(tf.train.Scaffold.default_local_init_op(),
                             iterator.initializer),
      summary_op=summary_op,
      # Not sharded: a sharded save merges its shards by rewriting
      # <prefix>.index in place, and on every resume the saver hook saves
      # the restored step again under the same prefix, so a kill at that
      # moment truncated the index of the newest listed checkpoint. An
      # unsharded save writes each file to a temporary name and renames it.
      saver=tf.train.Saver(max_to_keep=5))
  return {
      'deploy_config': deploy_config,
      'scaffold': scaffold,
      'train_tensor': train_tensor,
      'step': step_after,
      'global_step': global_step,
      'learning_rate': learning_rate,
      'optimizer': optimizer,
      'summary_op': summary_op,
      'dataset': dataset,
  }


def _checkpoint_step(checkpoint):
  """The global step stored in `checkpoint`, or None if it has none."""
  reader = tf.train.load_checkpoint(checkpoint)
  if reader.has_tensor('global_step'):
    return int(reader.get_tensor('global_step'))
  return None


def _session_config(opts, cluster_job_task):
  """Session config: soft placement; device filters on a cluster."""
  config = tf.ConfigProto(allow_soft_placement=True)
  if opts.num_ps_tasks > 0 or cluster_job_task:
    # A worker only talks to the ps tasks and itself, so it does not wait
    # for the other workers.
    config.device_filters.extend(['/job:ps', '/job:worker/task:%d' % opts.task])
  return config


def _check_flags(opts):
  """Checks flag values that need no graph.

  Raises:
    ScriptError: naming the bad flag.
  """
  positive = ['batch_size', 'num_clones', 'num_readers',
              'num_preprocessing_threads', 'log_every_n_steps',
              'replicas_to_aggregate', 'worker_replicas']
  for name in positive:
    if getattr(opts, name) < 1:
      raise script_utils.ScriptError('--%s must be >= 1, got %d.' %
                                     (name, getattr(opts, name)))
  if opts.max_number_of_steps is not None and opts.max_number_of_steps < 0:
    raise script_utils.ScriptError('--max_number_of_steps must be >= 0.')
  if opts.learning_rate <= 0:
    raise script_utils.ScriptError('--learning_rate must be > 0.')
  if not 0.0 <= opts.label_smoothing < 1.0:
    raise script_utils.ScriptError('--label_smoothing must be in [0, 1).')
  if opts.moving_average_decay is not None and not (
      0.0 < opts.moving_average_decay < 1.0):
    raise script_utils.ScriptError('--moving_average_decay must be in '
                                   '(0, 1), e.g. 0.9999.')
  if opts.quantize_delay >= 0 and tf_compat.IS_TF2:
    raise script_utils.ScriptError(
        '--quantize_delay (quantization-aware training) needs '
        'tf.contrib.quantize, which exists only on TensorFlow 1.15; this is '
        'TensorFlow %s. Train without --quantize_delay and quantize after '
        'training, at export (post-training quantization with the TFLite '
        'converter, see export_tflite.py), or train on the TF 1.15 stack.' %
        tf.__version__)
  if opts.num_clones > 1 and not opts.clone_on_cpu and not opts.master:
    gpus = tf.config.experimental.list_physical_devices('GPU')
    if len(gpus) < opts.num_clones:
      raise script_utils.ScriptError(
          '--num_clones=%d puts one clone per GPU but %d GPU(s) are '
          'visible. Add --clone_on_cpu, or lower --num_clones.' %
          (opts.num_clones, len(gpus)))


def _start_server(opts):
  """Starts this task's server when a cluster is defined.

  Args:
    opts: parsed flags; --task, --num_ps_tasks and --worker_replicas are set
      from the cluster.

  Returns:
    (server or None, session target, cluster definition or None). A ps task
    serves here until it is killed and never returns.
  """
  cluster_job_task = _resolve_cluster(opts)
  if not cluster_job_task:
    return None, opts.master, None
  cluster, job, task = cluster_job_task
  opts.task = task
  opts.num_ps_tasks = len(cluster.get('ps', []))
  opts.worker_replicas = len(cluster['worker'])
  server = tf.train.Server(tf.train.ClusterSpec(cluster), job_name=job,
                           task_index=task,
                           config=tf.ConfigProto(allow_soft_placement=True))
  if job == 'ps':
    logging.info('Parameter server %d serving at %s (stop it with a signal).',
                 task, cluster['ps'][task])
    server.join()
  return server, opts.master or server.target, cluster_job_task


def _make_hooks(opts, model, is_chief):
  """The session hooks, the NaN check first.

  Args:
    opts: parsed flags.
    model: the dict from `_build_graph`.
    is_chief: whether this worker writes checkpoints and summaries.

  Returns:
    (hooks, the `_ProgressHook` among them).
  """
  progress = _ProgressHook(model['train_tensor'], model['learning_rate'],
                           model['step'], opts.log_every_n_steps,
                           opts.batch_size * opts.num_clones,
                           opts.max_number_of_steps, opts.task)
  # The NaN check comes first so that no later hook saves a NaN model.
  hooks = [_NonFiniteLossHook(model['train_tensor'], model['step'],
                              opts.train_dir), progress]
  if opts.max_number_of_steps is not None:
    hooks.append(tf.train.StopAtStepHook(last_step=opts.max_number_of_steps))
  if opts.sync_replicas:
    hooks.append(model['optimizer'].make_session_run_hook(is_chief))
  if is_chief:
    if opts.save_summaries_secs > 0:
      hooks.append(tf.train.SummarySaverHook(
          save_secs=opts.save_summaries_secs, output_dir=opts.train_dir,
          summary_op=model['summary_op']))
    hooks.append(tf.train.CheckpointSaverHook(
        opts.train_dir, scaffold=model['scaffold'],
        listeners=_checkpoint_listeners(opts),  # issue 17: fsync.
        # <= 0 saves only at the start and the end.
        save_secs=opts.save_interval_secs if opts.save_interval_secs > 0
        else 10 ** 9))
  return hooks, progress


def _run(opts, model, session_creator, hooks, ps_hosts=()):
  """Runs training steps until a hook stops them.

  Args:
    opts: parsed flags.
    model: the dict from `_build_graph`.
    session_creator: a `tf.train.SessionCreator`.
    hooks: the session hooks.
    ps_hosts: addresses of the cluster's parameter servers, if any.

  Raises:
    ScriptError: damaged data, labels outside the head, a full disk, a
      NaN/Inf loss, or a parameter server that is gone.
  """
  try:
    with script_utils.explain_input_errors(opts, model['dataset']):
      # Queue runners of --sync_replicas may block on gradients of workers
      # that already stopped; the final checkpoint is saved before they
      # are joined, so do not wait for them for long.
      with tf.train.MonitoredSession(session_creator=session_creator,
                                     hooks=hooks,
                                     stop_grace_period_secs=2) as session:
        while not session.should_stop():
          session.run(model['train_tensor'])
  except tf.errors.OpError as e:
    # ENOSPC, or EFBIG from a file-size limit (ulimit -f, quotas).
    full = [m for m in ('No space left on device', 'File too large')
            if m in e.message]
    if full:
      raise script_utils.ScriptError(
          'Writing to --train_dir=%s failed: %s (no space left for the '
          'checkpoint). The last complete checkpoint, %s, is intact (the '
          'checkpoint file lists only complete ones); free some space (or '
          'raise the file-size limit) and rerun to resume from it.' %
          (opts.train_dir, full[0].lower(),
           tf.train.latest_checkpoint(opts.train_dir)))
    if ps_hosts and isinstance(e, _PS_LOST_ERRORS):
      # MonitoredSession retries these by recreating the session, and
      # the session creator stops on a dead ps; one that escapes anyway
      # (e.g. while closing) means the same.
      raise ParameterServerUnreachableError(_ps_unreachable_message(
          ps_hosts, opts.ps_timeout_secs, opts.train_dir,
          detail='%s: %s' % (type(e).__name__, e.message.split('\n')[0])))
    if (isinstance(e, tf.errors.InvalidArgumentError) and
        'labels_offset' in e.message):
      raise script_utils.ScriptError(
          'Labels fell outside the model\'s classes: --labels_offset=%d '
          'does not fit the labels of --dataset_name=%s. Use the offset '
          'the dataset was made for (0 unless label 0 is a background '
          'class). %s' % (opts.labels_offset, opts.dataset_name,
                          e.message.split('\n')[0]))
    raise


# --- issue 17 (reliability round 2): the chief's hold on --train_dir -------


class _LockLostHook(tf.train.SessionRunHook):
  """Stops training, before any hook saves, once the lock was taken over."""

  def __init__(self, lock, train_dir):
    self._lock = lock
    self._train_dir = train_dir

  def after_run(self, run_context, run_values):
    if self._lock.lost:
      raise script_utils.ScriptError(
          'The lock of --train_dir=%s was taken over by another trainer '
          '(this one\'s heartbeat had stalled for more than %d s), so this '
          'trainer stopped without saving rather than write checkpoints '
          'beside it. Let one trainer finish, or give each its own '
          '--train_dir.' % (self._train_dir,
                            train_dir_lock.DEFAULT_STALE_SECS))


def _locked_message(error):
  """The one-paragraph refusal of a trainer whose --train_dir is in use."""
  holder = error.holder
  return (
      '--train_dir=%s is in use by another trainer: %s (its lock file %s was '
      'refreshed %.0f s ago). Two trainers in one directory overwrite each '
      'other\'s checkpoints, so this one stopped before touching it. Wait '
      'for that trainer to finish, stop it (kill %s on host %s), or pass '
      'another --train_dir. If that trainer is gone without its host '
      'knowing (e.g. its host went down), its lock counts as stale %d s '
      'after its last heartbeat: rerun then.' %
      (error.train_dir, train_dir_lock.describe_holder(holder),
       os.path.join(error.train_dir, train_dir_lock.LOCK_NAME),
       max(0.0, error.heartbeat_age_secs), holder.get('pid', '?'),
       holder.get('host', '?'), error.stale_secs))


def _resumable_checkpoint(train_dir):
  """The newest readable checkpoint; sets unreadable newer ones aside."""
  try:
    recovery = checkpoint_recovery.find_resumable_checkpoint(train_dir)
  except checkpoint_recovery.NoReadableCheckpointError as e:
    raise script_utils.ScriptError(
        'No checkpoint in --train_dir=%s can be read, so training cannot '
        'resume: %s. Nothing was changed. Restore the files from a backup, '
        'or move them away (or pass a new --train_dir) to start over.' %
        (train_dir, '; '.join('%s: %s' % (os.path.basename(p), r)
                              for p, r in e.skipped)))
  if recovery.skipped:
    aside = checkpoint_recovery.set_aside_unreadable(train_dir, recovery)
    for prefix, reason in recovery.skipped:
      logging.warning('Checkpoint %s cannot be read (%s); its files were '
                      'moved to %s.', prefix, reason, aside)
    logging.warning('Resuming from %s, the newest readable checkpoint, '
                    'instead of the newest listed one %s.',
                    recovery.checkpoint, recovery.skipped[0][0])
  return recovery.checkpoint


class _TrainDirGuard(object):
  """What the chief does to --train_dir before training, and undoes after.

  Locks it (one trainer per directory), removes temporary files of killed
  saves, and finds the checkpoint to resume from. Other workers only get
  `checkpoint = None` and no hooks.
  """

  def __init__(self, opts, is_chief):
    self._opts = opts
    self._is_chief = is_chief
    self._lock = None
    self.checkpoint = None
    self.hooks = []

  def __enter__(self):
    opts = self._opts
    if not self._is_chief:
      return self
    script_utils.check_writable_dir(opts.train_dir, '--train_dir')
    if opts.lock_train_dir and train_dir_lock.is_local_path(opts.train_dir):
      lock = train_dir_lock.TrainDirLock(opts.train_dir)
      try:
        self._lock = lock.acquire()
      except train_dir_lock.TrainDirLockedError as e:
        raise script_utils.ScriptError(_locked_message(e))
      except OSError as e:
        raise script_utils.ScriptError(
            'Cannot create the lock file %s (%s). Fix --train_dir, or pass '
            '--nolock_train_dir if its filesystem has no hard links.' %
            (lock.path, e))
      self.hooks = [_LockLostHook(self._lock, opts.train_dir)]
    try:
      removed = checkpoint_recovery.remove_leftover_temp_files(
          opts.train_dir)
      if removed:
        logging.info('Removed %d temporary file(s) of interrupted saves '
                     'from %s: %s', len(removed), opts.train_dir,
                     ', '.join(removed))
      self.checkpoint = _resumable_checkpoint(opts.train_dir)
    except BaseException:
      self.__exit__(None, None, None)
      raise
    return self

  def __exit__(self, *unused_exc_info):
    if self._lock is not None:
      self._lock.release()
      self._lock = None


def _checkpoint_listeners(opts):
  """Listeners of the chief's CheckpointSaverHook (fsync after each save)."""
  if opts.fsync_checkpoints:
    return [checkpoint_recovery.FsyncListener(opts.train_dir)]
  return []


# --- end issue 17 ------------------------------------------------------------


def train(opts):
  """Trains the model described by the parsed flags `opts`.

  Args:
    opts: parsed flags (e.g. from `parse_flags`).

  Returns:
    A dict: `global_step` (the last global step this process saw),
    `local_steps` (steps this process ran), `history` (list of (step, loss)),
    `checkpoint` (the latest checkpoint in --train_dir, chief only), `task`.
    A `--job_name=ps` task never returns (it serves until killed).

  Raises:
    ScriptError: for bad flags, data, checkpoints or a NaN/Inf loss.
  """
  _check_flags(opts)
  server, target, cluster_job_task = _start_server(opts)
  is_chief = opts.task == 0
  # issue 17: lock --train_dir, clean it, pick the checkpoint to resume.
  with _TrainDirGuard(opts, is_chief) as guard:
    return _train_in_guard(opts, server, target, cluster_job_task, is_chief,
                           guard)


def _train_in_guard(opts, server, target, cluster_job_task, is_chief, guard):
  """The body of `train()`, run while the chief holds --train_dir."""
  train_dir_checkpoint = guard.checkpoint
  if train_dir_checkpoint:
    step = _checkpoint_step(train_dir_checkpoint)
    if (opts.max_number_of_steps is not None and step is not None and
        step >= opts.max_number_of_steps):
      logging.info('%s is already at global step %d >= '
                   '--max_number_of_steps=%d; nothing to do.',
                   train_dir_checkpoint, step, opts.max_number_of_steps)
      return {'global_step': step, 'local_steps': 0, 'history': [],
              'checkpoint': train_dir_checkpoint, 'task': opts.task}
    logging.info('Resuming from %s (--train_dir already holds a '
                 'checkpoint, at global step %s).', train_dir_checkpoint,
                 step)

  with tf.Graph().as_default():
    model = _build_graph(opts, is_chief, train_dir_checkpoint)
    hooks, progress = _make_hooks(opts, model, is_chief)
    hooks = guard.hooks + hooks  # issue 17: stop first if the lock is lost.
    config = _session_config(opts, cluster_job_task)
    if is_chief:
      creator = tf.train.ChiefSessionCreator(
          scaffold=model['scaffold'], master=target, config=config,
          checkpoint_dir=opts.train_dir)
    else:
      creator = _WorkerSessionCreator(model['scaffold'], target, config)
    ps_hosts = cluster_job_task[0].get('ps', []) if cluster_job_task else []
    if ps_hosts and opts.ps_timeout_secs > 0:
      creator = _PsWatchingSessionCreator(creator, ps_hosts,
                                          opts.ps_timeout_secs,
                                          opts.train_dir)
    deploy_config = model['deploy_config']
    logging.info('Training %s on %s/%s: %d clone(s), task %d of %d, %d ps '
                 'task(s), batch %d, %s steps.', opts.model_name,
                 opts.dataset_name, opts.dataset_split_name,
                 deploy_config.num_clones, opts.task,
                 deploy_config.num_replicas, deploy_config.num_ps_tasks,
                 opts.batch_size, opts.max_number_of_steps or 'unlimited')
    watchdog = None
    if ps_hosts and opts.ps_timeout_secs > 0:
      watchdog = _PsWatchdog(ps_hosts, opts.ps_timeout_secs,
                             opts.train_dir).start()
    try:
      _run(opts, model, creator, hooks, ps_hosts=ps_hosts)
    finally:
      if watchdog:
        watchdog.stop()
  checkpoint = tf.train.latest_checkpoint(opts.train_dir) if is_chief else None
  logging.info('Finished training on task %d: %d local steps, global step '
               '%s%s.', opts.task, progress.local_steps, progress.last_step,
               ', last checkpoint %s' % checkpoint if checkpoint else '')
  del server  # Kept alive until training ends.
  return {
      'global_step': progress.last_step,
      'local_steps': progress.local_steps,
      'history': progress.history,
      'checkpoint': checkpoint,
      'task': opts.task,
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s (flags need the --name='
                         'value form).' % ' '.join(argv[1:]))
  script_utils.run_or_exit(lambda: train(FLAGS), PROGRAM)


if __name__ == '__main__':
  app.run(main)
