"""Command-line flags of the entry scripts (train, eval, export, classify).

Only entry scripts import this module. Each `define_*` function registers
one group of absl flags with the `flags.FlagValues` it is given (tests pass
a fresh one). Flag names and defaults are slim's, so launch scripts written
for slim run unchanged; the help texts say what each flag does here.

`define` is the one flag-definition helper. Defining a flag that already
exists is allowed only when it is the same flag (same type and default);
anything else raises `FlagConflictError` instead of keeping either silently.
Entry scripts register with the global `flags.FLAGS` through
`register_script_flags`, which lets scripts whose defaults differ (train's
--batch_size is 32, eval's 100) be imported into one process: each gets its
own defaults back with `use_script_defaults` when its `main` runs.
"""


import sys

from absl import flags

from deployment import cluster
from cli import logs
from cli import script_utils
from training import optimizers

DEFAULT_DATASET_NAME = 'imagenet'
DEFAULT_MODEL_NAME = 'mobilenet_v1'

# {program: {flag name: that program's default}}, from register_script_flags.
_SCRIPT_DEFAULTS = {}


class FlagConflictError(ValueError):
  """A flag defined twice with another type or default."""


def _same_flag(old, new):
  same_choices = (getattr(old.parser, 'enum_values', None) ==
                  getattr(new.parser, 'enum_values', None))
  return (old.flag_type() == new.flag_type() and old.default == new.default
          and same_choices)


def define(define_fn, name, default, help_text, flag_values, **kwargs):
  """Defines a flag; a second, identical definition is a no-op.

  Args:
    define_fn: an absl `flags.DEFINE_*` function.
    name: the flag's name.
    default: its default.
    help_text: its help.
    flag_values: the `flags.FlagValues` to register with.
    **kwargs: more arguments of `define_fn`, e.g. `enum_values`.

  Raises:
    FlagConflictError: `name` exists with another type, default or choices.
  """
  if name not in flag_values:
    define_fn(name=name, default=default, help=help_text,
              flag_values=flag_values, **kwargs)
    return
  probe = flags.FlagValues()
  define_fn(name=name, default=default, help=help_text, flag_values=probe,
            **kwargs)
  old, new = flag_values[name], probe[name]
  if not _same_flag(old, new):
    raise FlagConflictError(
        'Flag --%s is defined twice differently: %s with default %r, then '
        '%s with default %r.' % (name, old.flag_type(), old.default,
                                 new.flag_type(), new.default))


def define_alias(name, original, flag_values):
  """Makes --name another spelling of --original (once)."""
  if name not in flag_values:
    flags.DEFINE_alias(name, original, flag_values=flag_values)


def parse_flags(define_fn, program, argv):
  """A fresh `FlagValues` holding `define_fn`'s flags, parsed from `argv`.

  Args:
    define_fn: `fn(flag_values)` registering a script's flags.
    program: the script's name (argv[0]).
    argv: the flag strings.
  """
  flag_values = flags.FlagValues()
  define_fn(flag_values)
  flag_values([program] + list(argv))
  return flag_values


def register_script_flags(define_fn, program, module_name,
                          flag_values=flags.FLAGS):
  """Registers an entry script's flags with the global flags at import.

  A flag another script registered already is shared when it has the same
  type; its default may differ and is remembered for `use_script_defaults`.

  Args:
    define_fn: `fn(flag_values)` registering the script's flags.
    program: the script's name, the key of its defaults.
    module_name: the script module's `__name__` (its flags are its key
      flags in --help).
    flag_values: where to register; the global flags by default.

  Raises:
    FlagConflictError: a flag of the same name has another type.
  """
  own = flags.FlagValues()
  define_fn(own)
  if module_name == '__main__':
    module_name = sys.argv[0]
  defaults = {}
  for name in own:
    flag = own[name]
    if name != flag.name:
      continue  # An alias: registered with the flag it stands for.
    defaults[name] = flag.default
    if name not in flag_values:
      flag_values[name] = flag
      for alias in own:
        if alias != name and own[alias].name == name:
          flag_values[alias] = own[alias]
    elif flag_values[name].flag_type() != flag.flag_type():
      raise FlagConflictError(
          '%s defines --%s as %s, but another module already defined it as '
          '%s.' % (program, name, flag.flag_type(),
                   flag_values[name].flag_type()))
    flag_values.register_key_flag_for_module(module_name, flag_values[name])
  _SCRIPT_DEFAULTS[program] = defaults


def use_script_defaults(program, flag_values=flags.FLAGS):
  """Gives flags not set on the command line `program`'s own defaults."""
  for name, default in _SCRIPT_DEFAULTS.get(program, {}).items():
    if flag_values[name].default != default:
      flag_values.set_default(name, default)


def pick(config_class, flag_values, **values):
  """A namedtuple `config_class` filled from the flags of its field names.

  Args:
    config_class: a namedtuple class.
    flag_values: parsed flags.
    **values: fields to set otherwise (e.g. nested configs).
  """
  for field in config_class._fields:
    if field not in values:
      values[field] = getattr(flag_values, field)
  return config_class(**values)


def define_dataset_flags(default_split_name='train', flag_values=flags.FLAGS):
  """--dataset_name --dataset_split_name --dataset_dir --labels_offset.

  Args:
    default_split_name: 'train' for training, 'validation' for evaluation.
    flag_values: the `flags.FlagValues` to register with.
  """
  define(flags.DEFINE_string, 'dataset_name', DEFAULT_DATASET_NAME,
         'Which dataset module reads --dataset_dir (datasets/'
         'dataset_factory.py): imagenet (1001 classes with background), '
         'flowers, cifar10, mnist, shapes (the small generated set) or '
         'image_folder.', flag_values)
  define(flags.DEFINE_string, 'dataset_split_name', default_split_name,
         'Which split\'s TFRecord files to read: train, validation (test '
         'for mnist and cifar10).', flag_values)
  define(flags.DEFINE_string, 'dataset_dir', None,
         'Folder with the TFRecord shards (and labels.txt) that '
         'download_and_convert_data.py wrote. Required to train and '
         'evaluate.', flag_values)
  define(flags.DEFINE_integer, 'labels_offset', 0,
         'Subtracted from each stored label before it reaches the head. 1 '
         'drops the background label 0 of 1001-class ImageNet-style data '
         'for a 1000-output head; 0 keeps labels as stored.', flag_values)


def define_model_flags(flag_values=flags.FLAGS):
  """--model_name --preprocessing_name --use_grayscale --use_explicit_padding."""
  define(flags.DEFINE_string, 'model_name', DEFAULT_MODEL_NAME,
         'Network to build, a name from nets/nets_factory.py, e.g. '
         'mobilenet_v1_025 (V1 at width 0.25) or mobilenet_v2_140.',
         flag_values)
  define(flags.DEFINE_string, 'preprocessing_name', None,
         'Image preparation from preprocessing/preprocessing_factory.py; '
         'unset: the one registered for --model_name.', flag_values)
  define(flags.DEFINE_boolean, 'use_grayscale', False,
         'Feed single-channel gray images to the network instead of RGB.',
         flag_values)
  # The TFLite Micro person-detection guide's spelling (slim has none).
  define_alias('input_grayscale', 'use_grayscale', flag_values)
  define(flags.DEFINE_boolean, 'use_explicit_padding', None,
         'Pad every convolution symmetrically, as PyTorch does (timm\'s '
         'non-tf_ MobileNet weights need it), instead of TensorFlow\'s SAME '
         'padding. Unset: the training record\'s setting, else the '
         'network\'s own (SAME; V4: symmetric).', flag_values)


def define_batch_size_flag(default=32, flag_values=flags.FLAGS):
  """--batch_size (slim's default: 32 to train, 100 to evaluate)."""
  define(flags.DEFINE_integer, 'batch_size', default,
         'Images per step (per clone when training with several clones).',
         flag_values)


def define_image_size_flag(name='train_image_size', flag_values=flags.FLAGS):
  """An image-size flag such as --train_image_size or --eval_image_size."""
  define(flags.DEFINE_integer, name, None,
         'Side in pixels of the square images fed to the network (at '
         'least 32); unset: the size the network was designed for (224).',
         flag_values)


def define_input_flags(flag_values=flags.FLAGS):
  """--num_readers --num_preprocessing_threads."""
  define(flags.DEFINE_integer, 'num_readers', 4,
         'TFRecord shards read at the same time by the input pipeline.',
         flag_values)
  define(flags.DEFINE_integer, 'num_preprocessing_threads', 4,
         'Images prepared (decoded, cropped, resized) in parallel.',
         flag_values)


def define_moving_average_flag(flag_values=flags.FLAGS):
  """--moving_average_decay."""
  define(flags.DEFINE_float, 'moving_average_decay', None,
         'Training: keep exponential moving averages of the weights with '
         'this decay (e.g. 0.9999). Eval and export: use the averages saved '
         'in the checkpoint instead of the raw weights. Unset: no averages.',
         flag_values)


def define_quantize_flag(flag_values=flags.FLAGS):
  """--quantize."""
  define(flags.DEFINE_bool, 'quantize', False,
         'Build the graph with fake-quantization ops, for a checkpoint '
         'trained with --quantize_delay.', flag_values)


def define_quantize_delay_flag(flag_values=flags.FLAGS):
  """--quantize_delay."""
  define(flags.DEFINE_integer, 'quantize_delay', -1,
         'Step from which training simulates 8-bit quantization '
         '(quantization-aware training, both stacks); -1 trains in float.',
         flag_values)


def define_master_flag(flag_values=flags.FLAGS):
  """--master."""
  define(flags.DEFINE_string, 'master', '',
         'Session target such as grpc://host:port; empty runs the graph in '
         'this process.', flag_values)


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


def define_train_flags(flag_values=flags.FLAGS):
  """Every flag of train_image_classifier.py."""
  define_train_run_flags(flag_values)
  define_deployment_flags(flag_values)
  define_input_flags(flag_values)
  define_optimizer_flags(flag_values)
  define_learning_rate_flags(flag_values)
  define_moving_average_flag(flag_values)
  define_quantize_delay_flag(flag_values)
  define_dataset_flags('train', flag_values)
  define_model_flags(flag_values)
  define_batch_size_flag(32, flag_values)
  define_image_size_flag('train_image_size', flag_values)
  define_fine_tune_flags(flag_values)
  define_train_dir_safety_flags(flag_values)
  define_preemption_flag(flag_values)
  define_recovery_flags(flag_values)


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
  define_input_flags(flag_values)
  define_moving_average_flag(flag_values)
  define_quantize_flag(flag_values)
  define_dataset_flags('validation', flag_values)
  define_model_flags(flag_values)
  define_batch_size_flag(100, flag_values)
  define_image_size_flag('eval_image_size', flag_values)
  define_preemption_flag(flag_values)
  define(flags.DEFINE_bool, 'eval_every_checkpoint', False,
         'Watch mode: score every new checkpoint, oldest first. Default: '
         'when several arrived during one evaluation, score the newest and '
         'name the ones skipped.', flag_values)


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


def script_main(program, run, flag_names=None, takes_arguments=False,
                stop_handling=None):
  """The `main(argv)` of an entry script: the one skeleton all share.

  Every script does the same around its library call: keep the log to what
  matters, give the flags the script's own defaults, run, and print a
  bad-input error as one paragraph naming the flag (exit status 1).

  Args:
    program: the script's name, which starts its messages.
    run: the script's library call, `run(flag_values)`; with
      takes_arguments `run(flag_values, arguments)`; with stop_handling it
      also gets `stop_signals=` the entered `preemption.StopSignals`.
    flag_names: {parameter name: flag name} where the two differ.
    takes_arguments: whether positional command-line arguments go to `run`;
      otherwise any is a usage error.
    stop_handling: a `script_utils.StopHandling` for scripts that save their work and
      exit on SIGINT, SIGTERM or SIGHUP; its handlers are installed before
      `run` starts.
  """

  def main(argv=None):
    # slim's own tests call main(None) after setting FLAGS by hand.
    arguments = list(argv or [])[1:]
    if arguments and not takes_arguments:
      from absl import app  # pylint: disable=g-import-not-at-top
      raise app.UsageError('Unexpected arguments: %s (flags need the --name='
                           'value form).' % ' '.join(arguments))
    logs.quiet_logging(flags.FLAGS.verbosity)
    use_script_defaults(program)
    run_arguments = [flags.FLAGS] + ([arguments] if takes_arguments else [])
    if stop_handling is None:
      # Nothing is returned: app.run exits with main's return value, so a
      # result object would turn a success into exit status 1 (or its
      # number).
      script_utils.run_or_exit(lambda: run(*run_arguments), program,
                               flag_names)
    else:
      script_utils.run_stoppable(program, lambda **kwargs: run(
          *run_arguments, **kwargs), flag_names, stop_handling)

  return main
