"""Flags of train_image_classifier.py and eval_image_classifier.py.

Training has most of the project's flags (the cluster, the optimizer and
its schedule, fine-tuning, the train directory's safety, stop signals and
blow-up recovery); these groups live here so that `cli/common_flags.py`
holds only what every entry script uses. `define_train_flags` and
`define_eval_flags` register a whole script's flags; they are built from
the groups below and from the shared ones in `common_flags`.
"""


from absl import flags

from cli import common_flags
from cli.common_flags import define
from deployment import cluster
from training import optimizers


def define_train_flags(flag_values=flags.FLAGS):
  """Every flag of train_image_classifier.py."""
  define_train_run_flags(flag_values)
  define_deployment_flags(flag_values)
  common_flags.define_input_flags(flag_values)
  define_optimizer_flags(flag_values)
  define_learning_rate_flags(flag_values)
  common_flags.define_moving_average_flag(flag_values)
  define_quantize_delay_flag(flag_values)
  common_flags.define_dataset_flags('train', flag_values)
  common_flags.define_model_flags(flag_values)
  common_flags.define_batch_size_flag(32, flag_values)
  common_flags.define_image_size_flag('train_image_size', flag_values)
  define_fine_tune_flags(flag_values)
  define_train_dir_safety_flags(flag_values)
  define_preemption_flag(flag_values)
  define_recovery_flags(flag_values)


def define_eval_flags(flag_values=flags.FLAGS):
  """Every flag of eval_image_classifier.py."""
  define_master_flag(flag_values)
  define(flags.DEFINE_string, 'checkpoint_path', '/tmp/tfmodel/',
         'Checkpoint to score: a prefix, or a folder meaning its newest '
         '(with --eval_interval_secs, each new one as it appears).',
         flag_values)
  define(flags.DEFINE_string, 'eval_dir', '/tmp/tfmodel/',
         'Folder for the TensorBoard events and the metrics JSON files.',
         flag_values)
  define(flags.DEFINE_integer, 'max_num_batches', None,
         'Stop after this many batches; unset: score the whole split.',
         flag_values)
  define(flags.DEFINE_integer, 'eval_interval_secs', None,
         'Watch mode: look in --checkpoint_path (a folder) this often, in '
         'seconds, and score each new checkpoint. Unset: score once.',
         flag_values)
  define(flags.DEFINE_float, 'timeout', None,
         'Watch mode: give up after this many seconds without a new '
         'checkpoint. Unset: wait forever.', flag_values)
  common_flags.define_input_flags(flag_values)
  common_flags.define_moving_average_flag(flag_values)
  common_flags.define_quantize_flag(flag_values)
  common_flags.define_dataset_flags('validation', flag_values)
  common_flags.define_model_flags(flag_values)
  common_flags.define_batch_size_flag(100, flag_values)
  common_flags.define_image_size_flag('eval_image_size', flag_values)
  define_preemption_flag(flag_values)
  define(flags.DEFINE_bool, 'eval_every_checkpoint', False,
         'Watch mode: score every new checkpoint, oldest first. Default: '
         'when several arrived during one evaluation, score the newest and '
         'name the ones skipped.', flag_values)


def define_train_run_flags(flag_values=flags.FLAGS):
  """--train_dir and the logging, summary, checkpoint and stop cadence."""
  define(flags.DEFINE_string, 'train_dir', '/tmp/tfmodel/',
         'Folder for checkpoints and TensorBoard events; a run resumes from '
         'the newest checkpoint already in it.', flag_values)
  define(flags.DEFINE_integer, 'log_every_n_steps', 10,
         'Steps between two progress lines (loss, learning rate, images/s, '
         'ETA).', flag_values)
  define(flags.DEFINE_integer, 'save_summaries_secs', 600,
         'Seconds between TensorBoard summary writes; 0 writes none.',
         flag_values)
  define(flags.DEFINE_integer, 'save_summaries_steps', 0,
         'Steps between TensorBoard summary writes; > 0 replaces '
         '--save_summaries_secs (a short run then gets a curve, not one '
         'point).', flag_values)
  define(flags.DEFINE_integer, 'save_interval_secs', 600,
         'Seconds between checkpoints; 0 saves only at start and end.',
         flag_values)
  define(flags.DEFINE_integer, 'max_number_of_steps', None,
         'Global step at which training ends; unset: train until stopped.',
         flag_values)


def define_deployment_flags(flag_values=flags.FLAGS):
  """Clone and cluster flags of training."""
  define_master_flag(flag_values)
  define(flags.DEFINE_integer, 'num_clones', 1,
         'Copies of the model, each on its own GPU (or on the CPU with '
         '--clone_on_cpu), whose losses are averaged. The learning-rate '
         'schedule counts epochs of one clone\'s batches.', flag_values)
  define(flags.DEFINE_boolean, 'clone_on_cpu', False,
         'Place every clone on the CPU, e.g. to try --num_clones without '
         'GPUs.', flag_values)
  define(flags.DEFINE_integer, 'worker_replicas', 1,
         'Workers training together; taken from the cluster when '
         '--worker_hosts or TF_CONFIG define one.', flag_values)
  define(flags.DEFINE_integer, 'num_ps_tasks', 0,
         'Parameter-server tasks holding the variables; 0 keeps them in '
         'this worker. Taken from the cluster when one is defined.',
         flag_values)
  define(flags.DEFINE_integer, 'task', 0,
         'Index of this process in its job; worker 0 is the chief, which '
         'initializes, saves and writes summaries.', flag_values)
  define(flags.DEFINE_list, 'ps_hosts', None,
         'Parameter servers as host:port,host:port. With --worker_hosts '
         'this defines the cluster; without either, TF_CONFIG may.',
         flag_values)
  define(flags.DEFINE_list, 'worker_hosts', None,
         'Workers as host:port,host:port, the chief first.', flag_values)
  define(flags.DEFINE_enum, 'job_name', 'worker',
         'This process\'s job in a --ps_hosts/--worker_hosts cluster: ps '
         'serves variables until killed, worker trains. (TF_CONFIG\'s '
         'task.type replaces it when TF_CONFIG defines the cluster.)',
         flag_values, enum_values=list(cluster.JOBS))
  define(flags.DEFINE_integer, 'ps_timeout_secs',
         cluster.DEFAULT_PS_TIMEOUT_SECS,
         'Seconds a worker waits for an unreachable parameter server (at '
         'start or after it died) before it stops and says to restart the '
         'cluster. 0 waits forever, as TensorFlow itself does.', flag_values)
  define(flags.DEFINE_bool, 'sync_replicas', False,
         'Apply one update per step from the gradients of '
         '--replicas_to_aggregate workers (SyncReplicasOptimizer) instead '
         'of each worker updating on its own.', flag_values)
  define(flags.DEFINE_integer, 'replicas_to_aggregate', 1,
         'With --sync_replicas: worker gradients averaged into each update.',
         flag_values)


def define_master_flag(flag_values=flags.FLAGS):
  """--master."""
  define(flags.DEFINE_string, 'master', '',
         'Session target such as grpc://host:port; empty runs the graph in '
         'this process.', flag_values)


def define_optimizer_flags(flag_values=flags.FLAGS):
  """--optimizer, --weight_decay, --batch_norm_decay and hyper-parameters."""
  define(flags.DEFINE_float, 'weight_decay', 0.00004,
         'L2 penalty factor on the convolution weights.', flag_values)
  define(flags.DEFINE_string, 'batch_norm_decay', None,
         'Decay of the batch-norm moving mean and variance: a number in '
         '[0, 1), or auto to pick one from --max_number_of_steps (1 - 20 / '
         'steps, at least 0.5, at most the network\'s own); unset: the '
         'network\'s (0.9997 for V1, 0.997 for V2), which needs tens of '
         'thousands of steps before evaluation sees trained statistics.',
         flag_values)
  define(flags.DEFINE_enum, 'optimizer', 'rmsprop',
         'Update rule; its hyper-parameters are the flags named after it.',
         flag_values, enum_values=list(optimizers.OPTIMIZERS))
  define(flags.DEFINE_float, 'adadelta_rho', 0.95,
         'adadelta: decay of the squared-gradient and update averages.',
         flag_values)
  define(flags.DEFINE_float, 'adagrad_initial_accumulator_value', 0.1,
         'adagrad: value its squared-gradient sums start from.', flag_values)
  define(flags.DEFINE_float, 'adam_beta1', 0.9,
         'adam: decay of the mean-gradient estimate.', flag_values)
  define(flags.DEFINE_float, 'adam_beta2', 0.999,
         'adam: decay of the squared-gradient estimate.', flag_values)
  define(flags.DEFINE_float, 'opt_epsilon', 1.0,
         'adadelta, adam, rmsprop: added to the denominator for stability. '
         '1.0 suits rmsprop; adam usually wants about 1e-8.', flag_values)
  define(flags.DEFINE_float, 'ftrl_learning_rate_power', -0.5,
         'ftrl: exponent of the per-coordinate step size (<= 0).',
         flag_values)
  define(flags.DEFINE_float, 'ftrl_initial_accumulator_value', 0.1,
         'ftrl: value its accumulators start from.', flag_values)
  define(flags.DEFINE_float, 'ftrl_l1', 0.0, 'ftrl: L1 penalty strength.',
         flag_values)
  define(flags.DEFINE_float, 'ftrl_l2', 0.0, 'ftrl: L2 penalty strength.',
         flag_values)
  define(flags.DEFINE_float, 'momentum', 0.9,
         'momentum: fraction of the previous update carried into the next.',
         flag_values)
  define(flags.DEFINE_float, 'rmsprop_momentum', 0.9,
         'rmsprop: momentum of its updates.', flag_values)
  define(flags.DEFINE_float, 'rmsprop_decay', 0.9,
         'rmsprop: decay of its squared-gradient average.', flag_values)


def define_learning_rate_flags(flag_values=flags.FLAGS):
  """The learning-rate schedule and --label_smoothing."""
  define(flags.DEFINE_enum, 'learning_rate_decay_type', 'exponential',
         'Schedule: fixed keeps --learning_rate; exponential multiplies it '
         'by --learning_rate_decay_factor every --num_epochs_per_decay; '
         'polynomial falls linearly to --end_learning_rate over that span.',
         flag_values, enum_values=list(optimizers.LEARNING_RATE_DECAY_TYPES))
  define(flags.DEFINE_float, 'learning_rate', 0.01,
         'Learning rate at step 0.', flag_values)
  define(flags.DEFINE_float, 'end_learning_rate', 0.0001,
         'polynomial schedule: the rate it reaches and then keeps.',
         flag_values)
  define(flags.DEFINE_float, 'label_smoothing', 0.0,
         'Share of each one-hot target spread over all classes, in [0, 1).',
         flag_values)
  define(flags.DEFINE_float, 'learning_rate_decay_factor', 0.94,
         'exponential schedule: multiplier applied at each decay.',
         flag_values)
  define(flags.DEFINE_float, 'num_epochs_per_decay', 2.0,
         'Epochs between decays, counted in one clone\'s batches; with '
         '--sync_replicas a step aggregates --replicas_to_aggregate batches.',
         flag_values)


def define_quantize_delay_flag(flag_values=flags.FLAGS):
  """--quantize_delay."""
  define(flags.DEFINE_integer, 'quantize_delay', -1,
         'Step from which training simulates 8-bit quantization '
         '(quantization-aware training, both stacks); -1 trains in float.',
         flag_values)


def define_fine_tune_flags(flag_values=flags.FLAGS):
  """--checkpoint_path (fine-tuning source) and its scope flags."""
  define(flags.DEFINE_string, 'checkpoint_path', None,
         'Checkpoint (prefix, or a folder meaning its newest) whose model '
         'weights start a new run; ignored once --train_dir has its own.',
         flag_values)
  define(flags.DEFINE_string, 'checkpoint_exclude_scopes', None,
         'Comma-separated variable scopes (e.g. MobilenetV1/Logits) left at '
         'their initial values when loading --checkpoint_path.',
         flag_values)
  define(flags.DEFINE_string, 'trainable_scopes', None,
         'Comma-separated variable scopes to update (their batch-norm '
         'statistics too); unset: train every variable.', flag_values)
  define(flags.DEFINE_boolean, 'ignore_missing_vars', False,
         'Variables that --checkpoint_path lacks keep their initial values '
         'instead of stopping the run.', flag_values)


def define_train_dir_safety_flags(flag_values=flags.FLAGS):
  """--lock_train_dir and --fsync_checkpoints (training/train_dir_guard.py)."""
  define(flags.DEFINE_bool, 'lock_train_dir', True,
         'The chief holds a lock file in --train_dir while it trains, so a '
         'second trainer started on the same directory (on any host sharing '
         'it) refuses to start. Turn off only on a filesystem without hard '
         'links.', flag_values)
  define(flags.DEFINE_bool, 'fsync_checkpoints', True,
         'After each checkpoint save, flush its files, the checkpoint state '
         'file and --train_dir itself to disk, so that a power loss cannot '
         'take a listed checkpoint with it (costs ~0.1-0.2 s per save of a '
         'MobileNet v1 checkpoint).', flag_values)


def define_preemption_flag(flag_values=flags.FLAGS):
  """--preemption_grace_secs (training/preemption.py)."""
  define(flags.DEFINE_float, 'preemption_grace_secs', 25.0,
         'On SIGTERM, SIGINT (Ctrl-C) or SIGHUP, training finishes its step, '
         'saves it and exits (status 128 + the signal: 143, 130, 129); the '
         'evaluator stops at its next batch, writing no metrics for a '
         'checkpoint it did not finish. If that takes longer '
         'than this many seconds, the process exits without the save; a '
         'second signal exits at once. Keep it below the time your '
         'scheduler waits before SIGKILL (30 s on most preemptible VMs).',
         flag_values)


def define_recovery_flags(flag_values=flags.FLAGS):
  """Blow-up recovery (training/blowup_recovery.py)."""
  define(flags.DEFINE_integer, 'recover_from_nonfinite', 0,
         'On a NaN/Inf loss or weights (or a loss above --loss_upper_bound), '
         'restore the last good checkpoint and go on with a new shuffle of '
         'the input, at most this many times. 0: stop at the first one.',
         flag_values)
  define(flags.DEFINE_float, 'loss_upper_bound', None,
         'A finite loss above this counts as a blow-up (stops training, or '
         'is recovered from with --recover_from_nonfinite). Unset: no bound.',
         flag_values)
  define(flags.DEFINE_float, 'recovery_learning_rate_factor', 1.0,
         'Multiply the learning rate by this at each recovery, in (0, 1].',
         flag_values)
