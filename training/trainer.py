"""Runs training: checks a `TrainConfig`, builds its graph, runs its steps.

`train(config)` is the whole job of one task: it joins the cluster when
there is one (a ps task serves until killed), resumes from the training
directory or initializes from a fine-tuning checkpoint, and runs steps in
a `tf.train.MonitoredSession` until the step limit, saving checkpoints and
summaries on the chief.
"""


import typing
from typing import List, Optional

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from deployment import cluster
from core import errors
from deployment import model_deploy
from training import blowup_recovery
from training import checkpoint_recovery
from training import checkpoint_saving
from training import checkpoints
from training import hooks as training_hooks
from training import model_inputs
from training import optimizers
from training import preemption
from training import train_dir_cleanup
from training import train_dir_guard
from training import train_graph

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

class DeployConfig(typing.NamedTuple):
  """Where and how this task runs.

  ps_hosts/worker_hosts/job_name describe a cluster (else TF_CONFIG may);
  task, num_ps_tasks and worker_replicas are taken from the cluster when
  there is one. The defaults train on this machine alone.
  """
  master: str = ''
  task: int = 0
  num_clones: int = 1
  clone_on_cpu: bool = False
  worker_replicas: int = 1
  num_ps_tasks: int = 0
  ps_hosts: Optional[str] = None
  worker_hosts: Optional[str] = None
  job_name: str = 'worker'
  sync_replicas: bool = False
  replicas_to_aggregate: int = 1
  ps_timeout_secs: int = 60


class TrainConfig(typing.NamedTuple):
  """Everything a training run needs; `train(TrainConfig(...))` runs it.

  Defaults are train_image_classifier.py's flag defaults (tests check it).
  max_number_of_steps None trains until stopped. The scope fields are lists
  of scope names. lock_train_dir: the chief locks train_dir while it trains;
  fsync_checkpoints: each save is flushed to disk (train_dir_guard,
  checkpoint_recovery). save_summaries_steps > 0 writes summaries every that
  many steps instead of every save_summaries_secs (short runs get a curve,
  not one point).
  """
  inputs: model_inputs.InputConfig
  train_dir: str
  deploy: DeployConfig = DeployConfig()
  optimizer: optimizers.OptimizerConfig = optimizers.OptimizerConfig()
  schedule: optimizers.LearningRateConfig = optimizers.LearningRateConfig()
  log_every_n_steps: int = 10
  save_summaries_secs: int = 600
  save_interval_secs: int = 600
  max_number_of_steps: Optional[int] = None
  weight_decay: float = 0.00004
  batch_norm_decay: Optional[float] = None
  label_smoothing: float = 0.0
  moving_average_decay: Optional[float] = None
  quantize_delay: int = -1
  checkpoint_path: Optional[str] = None
  checkpoint_exclude_scopes: Optional[List[str]] = None
  trainable_scopes: Optional[List[str]] = None
  ignore_missing_vars: bool = False
  lock_train_dir: bool = True
  fsync_checkpoints: bool = True
  save_summaries_steps: int = 0

# Checkpoints kept in the training directory.
_CHECKPOINTS_KEPT = 5


class TrainingError(errors.InputError):
  """A training run that cannot start or had to stop."""


def check_config(config):
  """Checks the values of a `TrainConfig` that need no graph.

  Raises:
    TrainingError: naming the bad value.
  """
  positive = dict(batch_size=config.inputs.batch_size,
                  num_clones=config.deploy.num_clones,
                  num_readers=config.inputs.num_readers,
                  num_preprocessing_threads=(
                      config.inputs.num_preprocessing_threads),
                  log_every_n_steps=config.log_every_n_steps,
                  replicas_to_aggregate=config.deploy.replicas_to_aggregate,
                  worker_replicas=config.deploy.worker_replicas)
  for name, value in positive.items():
    if value < 1:
      raise TrainingError('%s must be >= 1, got %d.' % (ref(name), value))
  if config.max_number_of_steps is not None and config.max_number_of_steps < 0:
    raise TrainingError('%s must be >= 0.' % ref('max_number_of_steps'))
  if config.save_summaries_steps < 0:
    raise TrainingError('%s must be >= 0 (0: by %s).' %
                        (ref('save_summaries_steps'),
                         ref('save_summaries_secs')))
  if config.schedule.learning_rate <= 0:
    raise TrainingError('%s must be > 0.' % ref('learning_rate'))
  if not 0.0 <= config.label_smoothing < 1.0:
    raise TrainingError('%s must be in [0, 1).' % ref('label_smoothing'))
  decay = config.moving_average_decay
  if decay is not None and not 0.0 < decay < 1.0:
    raise TrainingError('%s must be in (0, 1), e.g. 0.9999.' %
                        ref('moving_average_decay'))
  _check_environment(config)


def _check_environment(config):
  """Checks what the TensorFlow build and the machine must provide."""
  limit = config.max_number_of_steps
  if limit is not None and config.quantize_delay > limit:
    logging.warning(
        '%s is larger than %s: quantization would start after training '
        'ends, so this run trains in float and its checkpoint has '
        'untrained quantization ranges. Lower %s (0 to fine-tune a trained '
        'float model) or raise %s.', ref('quantize_delay',
                                          config.quantize_delay),
        ref('max_number_of_steps', limit), ref('quantize_delay'),
        ref('max_number_of_steps'))
  deploy = config.deploy
  if deploy.num_clones > 1 and not deploy.clone_on_cpu and not deploy.master:
    gpus = tf.config.experimental.list_physical_devices('GPU')
    if len(gpus) < deploy.num_clones:
      raise TrainingError(
          '%s puts one clone per GPU but %d GPU(s) are visible. Add %s, '
          'or lower %s.' % (ref('num_clones', deploy.num_clones), len(gpus),
                            ref('clone_on_cpu'), ref('num_clones')))


def session_config(task, distributed):
  """Soft placement (devices that do not exist fall back to the CPU), and on
  a cluster device filters so a worker talks only to the ps and itself."""
  config = tf.ConfigProto(allow_soft_placement=True)
  if distributed:
    config.device_filters.extend(['/job:ps', '/job:worker/task:%d' % task])
  return config


def summaries_on(config):
  """Whether the chief writes TensorBoard summaries at all."""
  return config.save_summaries_steps > 0 or config.save_summaries_secs > 0


def make_hooks(config, graph, scaffold, is_chief, loss_upper_bound=None):
  """The session hooks, the NaN/Inf guard first.

  `loss_upper_bound`: a finite loss above it stops training as a NaN does.

  Returns:
    (hooks, the `ProgressHook` among them).
  """
  progress = training_hooks.ProgressHook(
      graph.train_tensor, graph.learning_rate, graph.step,
      config.log_every_n_steps,
      config.inputs.batch_size * config.deploy.num_clones,
      config.max_number_of_steps, config.deploy.task)
  # First, so that no later hook saves a non-finite model.
  guard = training_hooks.NonFiniteLossHook(graph.train_tensor, graph.step,
                                           config.train_dir, loss_upper_bound)
  hooks = [guard, progress]
  if config.max_number_of_steps is not None:
    hooks.append(tf.train.StopAtStepHook(last_step=config.max_number_of_steps))
  if config.deploy.sync_replicas:
    hooks.append(graph.optimizer.make_session_run_hook(is_chief))
  if is_chief:
    if summaries_on(config):
      every = ({'save_steps': config.save_summaries_steps}
               if config.save_summaries_steps > 0 else
               {'save_secs': config.save_summaries_secs})
      hooks.append(tf.train.SummarySaverHook(
          output_dir=config.train_dir, summary_op=graph.summary_op, **every))
    # An interval <= 0 saves only at the start and at the end.
    interval = config.save_interval_secs
    # The weight check first: a save it stops must not be flushed.
    listeners = [guard.saver_listener()]
    if config.fsync_checkpoints:
      listeners.append(checkpoint_recovery.FsyncListener(config.train_dir))
    hooks.append(checkpoint_saving.CheckpointSaverHook(
        config.train_dir, scaffold=scaffold,
        save_secs=interval if interval > 0 else 10 ** 9,
        listeners=listeners))
  return hooks, progress


def _stopped_error(error, config, ps_hosts):
  """The `TrainingError` that explains an OpError ending the run, or None."""
  # TensorFlow's writers raise an OpError; the saver's own .meta and
  # graph.pbtxt writes (core.atomic_files) an OSError.
  text = error.message if isinstance(error, tf.errors.OpError) else str(error)
  full = [m for m in ('No space left on device', 'File too large')
          if m in text]
  if full:  # ENOSPC, or EFBIG from a file-size limit or quota.
    return TrainingError(
        'Writing to %s failed: %s (no space left for the '
        'checkpoint). The last complete checkpoint, %s, is intact (the '
        'checkpoint file lists only complete ones); free some space (or '
        'raise the file-size limit) and rerun to resume from it.' %
        (ref('train_dir', config.train_dir), full[0].lower(),
         tf.train.latest_checkpoint(config.train_dir)))
  if ps_hosts and isinstance(error, cluster.PS_LOST_ERRORS):
    # The monitored session retries these with a new session, whose
    # creator stops on a dead ps; one that escapes anyway means the same.
    return cluster.ParameterServerUnreachableError(
        cluster.ps_unreachable_message(
            ps_hosts, config.deploy.ps_timeout_secs, config.train_dir,
            detail='%s: %s' % (type(error).__name__,
                               error.message.split('\n')[0])))
  if (isinstance(error, tf.errors.InvalidArgumentError) and
      'labels_offset' in error.message):
    return TrainingError(
        'Labels fell outside the model\'s classes: %s does '
        'not fit the labels of %s. Use the offset the '
        'dataset was made for (0 unless label 0 is a background class). %s' %
        (ref('labels_offset', config.inputs.labels_offset),
         ref('dataset_name', config.inputs.dataset_name),
         error.message.split('\n')[0]))
  return None


def run_steps(config, graph, session_creator, hooks, ps_hosts=()):
  """Runs training steps until a hook stops them.

  Raises:
    InputError: damaged data, labels outside the head, a full disk, a
      NaN/Inf loss, or a parameter server that is gone.
  """
  try:
    with model_inputs.explain_input_errors(graph.dataset,
                                           config.inputs.dataset_name,
                                           config.inputs.dataset_dir):
      # sync_replicas queue runners can block on gradients of workers
      # that already stopped; the final save comes before they are joined,
      # so a short grace period is enough.
      with tf.train.MonitoredSession(session_creator=session_creator,
                                     hooks=hooks,
                                     stop_grace_period_secs=2) as session:
        while not session.should_stop():
          session.run(graph.train_tensor)
  except (tf.errors.OpError, OSError) as e:
    explained = _stopped_error(e, config, ps_hosts)
    if explained is None:
      raise
    raise explained


def _already_done(config, checkpoint):
  """The result of a run whose checkpoint is past the step limit, or None."""
  step = checkpoints.checkpoint_step(checkpoint)
  limit = config.max_number_of_steps
  if limit is not None and step is not None and step >= limit:
    logging.info('%s is already at global step %d >= %s; nothing to do.',
                 checkpoint, step, ref('max_number_of_steps', limit))
    return {'global_step': step, 'local_steps': 0, 'history': [],
            'checkpoint': checkpoint, 'task': config.deploy.task}
  logging.info('Resuming from %s (%s already holds a checkpoint, '
               'at global step %s).', checkpoint, ref('train_dir'), step)
  return None


def join_cluster(config):
  """Resolves the cluster and starts this task's server.

  Returns:
    (config with the cluster's task and counts, server or None, session
    target, `cluster.ClusterTask` or None). A ps task never returns.
  """
  deploy = config.deploy
  place = cluster.resolve_cluster(
      deploy.ps_hosts, deploy.worker_hosts, deploy.job_name, deploy.task,
      deploy.num_ps_tasks, deploy.worker_replicas)
  if place is None:
    return config, None, deploy.master, None
  deploy = deploy._replace(task=place.task,
                           num_ps_tasks=len(place.cluster.get('ps', [])),
                           worker_replicas=len(place.cluster['worker']))
  server = cluster.start_server(place)
  return (config._replace(deploy=deploy), server,
          deploy.master or server.target, place)


def _scaffold(graph, init_saver, init_checkpoint):
  """The scaffold: fine-tune initialization, input initialization, saver."""

  def init_fn(unused_scaffold, session):
    if init_saver is not None:
      init_saver.restore(session, init_checkpoint)

  return tf.train.Scaffold(
      init_fn=init_fn,
      local_init_op=tf.group(tf.train.Scaffold.default_local_init_op(),
                             graph.iterator.initializer),
      summary_op=graph.summary_op,
      # Unsharded: merging shards rewrote <prefix>.index in place, and the
      # saver hook re-saves the restored step under the same prefix on each
      # resume, so a kill then truncated the newest listed index. Unsharded
      # saves write each file under a temporary name and rename it.
      saver=checkpoint_saving.Saver(max_to_keep=_CHECKPOINTS_KEPT))


def build(config, is_chief, resume_checkpoint):
  """Builds the graph and scaffold, checking checkpoints as early as can be.

  Returns:
    (`train_graph.TrainGraph`, scaffold).
  """
  deploy = config.deploy
  deploy_config = model_deploy.DeploymentConfig(
      num_clones=deploy.num_clones, clone_on_cpu=deploy.clone_on_cpu,
      replica_id=deploy.task, num_replicas=deploy.worker_replicas,
      num_ps_tasks=deploy.num_ps_tasks)
  init = {'saver': None, 'checkpoint': None}

  def check_model_checkpoints():
    # Only the chief restores (and may see the checkpoints).
    if not is_chief:
      return
    if config.checkpoint_path and resume_checkpoint:
      logging.info('Ignoring %s because %s already holds checkpoint %s; '
                   'resuming from it.',
                   ref('checkpoint_path', config.checkpoint_path),
                   ref('train_dir'), resume_checkpoint)
    elif config.checkpoint_path:
      init['saver'], init['checkpoint'] = checkpoints.fine_tune_saver(
          config.checkpoint_path, config.inputs.model_name,
          config.checkpoint_exclude_scopes, config.ignore_missing_vars)
    if resume_checkpoint:
      _check_resumable(slim.get_model_variables(), resume_checkpoint, config)

  graph = train_graph.build(config, deploy_config, check_model_checkpoints)
  if is_chief and resume_checkpoint:
    # The optimizer's slots and the moving averages must be there too.
    _check_resumable(tf.global_variables(), resume_checkpoint, config)
  return graph, _scaffold(graph, init['saver'], init['checkpoint'])


def _check_resumable(variables, checkpoint, config):
  checkpoints.check_checkpoint_fits(
      {v.op.name: v for v in variables}, checkpoint, 'train_dir',
      config.inputs.model_name, resuming=True)


def _session_creator(config, scaffold, target, place, is_chief,
                     resume_checkpoint):
  """The chief's or a worker's session creator, watching the ps if any.

  The chief restores `resume_checkpoint` (the one `TrainDirGuard` chose,
  not necessarily the newest listed), if any.
  """
  session = session_config(config.deploy.task,
                           bool(config.deploy.num_ps_tasks > 0 or place))
  if is_chief:
    creator = tf.train.ChiefSessionCreator(
        scaffold=scaffold, master=target, config=session,
        checkpoint_filename_with_path=resume_checkpoint)
  else:
    creator = cluster.WorkerSessionCreator(scaffold, target, session)
  ps_hosts = place.cluster.get('ps', []) if place else []
  if ps_hosts and config.deploy.ps_timeout_secs > 0:
    creator = cluster.PsWatchingSessionCreator(
        creator, ps_hosts, config.deploy.ps_timeout_secs, config.train_dir)
  return creator, ps_hosts


def train(config, report_ps_loss=None, on_train_dir_locked=None,
          stop_signals=None, recovery=None):
  """Trains as `config` says.

  Args:
    config: a `TrainConfig`.
    report_ps_loss: `fn(message)` that shows the error before the process
      exits because a parameter server stayed down; None: plain stderr.
    on_train_dir_locked: `fn()` the chief calls once it holds the training
      directory and before it trains (e.g. to write files there); None: no
      call.
    stop_signals: an entered `preemption.StopSignals`: after a signal the
      step running finishes, the chief saves it and `train` returns (with
      `stopped_by`: the signal number); before the first step (and on a
      ps task) the process exits at once. None: the signals act as they
      would.
    recovery: a `blowup_recovery.RecoveryConfig`; None: a blow-up stops.

  Returns:
    A dict: `global_step` (the last one this process saw), `local_steps`
    (steps it ran), `history` (its last (step, loss) pairs), `checkpoint`
    (the newest in the training directory; chief only) and `task`.
    A ps task serves until killed and never returns.

  Raises:
    InputError: bad settings, data or checkpoints, or a NaN/Inf loss.
  """
  check_config(config)
  recovery = recovery or blowup_recovery.NO_RECOVERY
  if stop_signals is not None:  # Nothing to save before the first step.
    stop_signals.stop_at_once()
  config, server, target, place = join_cluster(config)
  # Every name and directory is checked before anything is written (a ps
  # task, which reads no data, never gets here).
  model_inputs.check_inputs(config.inputs, True, 'train_image_size')
  blowup_recovery.check_config(recovery, place is not None)
  is_chief = config.deploy.task == 0
  # The chief locks train_dir, cleans it and picks the checkpoint to resume;
  # a start that fails before the first checkpoint leaves it as it was.
  with train_dir_cleanup.undo_failed_start(config.train_dir,
                                           is_chief) as undo:
    with train_dir_guard.TrainDirGuard(config.train_dir, is_chief,
                                       lock=config.lock_train_dir) as guard:
      undo.armed = True
      if stop_signals is not None:  # An exit without the save frees the lock.
        stop_signals.add_abort_action(
            lambda: guard.__exit__(None, None, None))
      if is_chief and on_train_dir_locked is not None:
        on_train_dir_locked()
      return blowup_recovery.train_with_recovery(
          lambda attempt_config, checkpoint: _train_in_guard(
              attempt_config, server, target, place, is_chief, guard,
              report_ps_loss, checkpoint, stop_signals, recovery),
          config, recovery, guard.checkpoint)


def _train_in_guard(config, server, target, place, is_chief, guard,
                    report_ps_loss, resume_checkpoint=None, stop_signals=None,
                    recovery=blowup_recovery.NO_RECOVERY):
  """The body of `train`, run while the chief holds the directory."""
  if resume_checkpoint:
    done = _already_done(config, resume_checkpoint)
    if done:
      return done
  with tf.Graph().as_default():
    graph, scaffold = build(config, is_chief, resume_checkpoint)
    hooks, progress = make_hooks(config, graph, scaffold, is_chief,
                                 recovery.loss_upper_bound)
    hooks = guard.hooks + hooks  # A lost lock stops before any save.
    if stop_signals is not None:
      hooks.append(preemption.StopRequestHook(stop_signals, graph.step))
    creator, ps_hosts = _session_creator(config, scaffold, target, place,
                                         is_chief, resume_checkpoint)
    _log_start(config, graph.deploy_config)
    watchdog = None
    if ps_hosts and config.deploy.ps_timeout_secs > 0:
      kwargs = {'report': report_ps_loss} if report_ps_loss else {}
      watchdog = cluster.PsWatchdog(ps_hosts, config.deploy.ps_timeout_secs,
                                    config.train_dir, **kwargs).start()
    try:
      run_steps(config, graph, creator, hooks, ps_hosts=ps_hosts)
    finally:
      if watchdog:
        watchdog.stop()
  return _finish(config, progress, is_chief, server, stop_signals)


def _log_start(config, deploy_config):
  # The decay is named because --batch_norm_decay=auto picks it.
  logging.info('Training %s on %s/%s: %d clone(s), task %d of %d, %d ps '
               'task(s), batch %d, %s steps%s.', config.inputs.model_name,
               config.inputs.dataset_name, config.inputs.dataset_split_name,
               deploy_config.num_clones, config.deploy.task,
               deploy_config.num_replicas, deploy_config.num_ps_tasks,
               config.inputs.batch_size,
               config.max_number_of_steps or 'unlimited',
               '' if config.batch_norm_decay is None else
               ', batch-norm decay %g' % config.batch_norm_decay)


def _finish(config, progress, is_chief, unused_server, stop_signals=None):
  """Logs the end of training and returns `train`'s result.

  `unused_server` is taken so that the server lives until training ends.
  A run stopped by a signal logs nothing: its caller reports the stop.
  """
  newest = tf.train.latest_checkpoint(config.train_dir) if is_chief else None
  stopped_by = stop_signals.signum if stop_signals is not None else None
  if stopped_by is None:
    logging.info('Finished training on task %d: %d local steps, global '
                 'step %s%s.', config.deploy.task, progress.local_steps,
                 progress.last_step,
                 ', last checkpoint %s' % newest if newest else '')
  return {'global_step': progress.last_step,
          'local_steps': progress.local_steps,
          'history': list(progress.history),
          'checkpoint': newest,
          'task': config.deploy.task,
          'stopped_by': stopped_by}
