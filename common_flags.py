"""Command-line flags shared by the train, eval and export entry points.

Each `define_*` function registers one group of absl flags. The names, meanings
and defaults follow the original slim scripts (so existing launch scripts run
unchanged), except that the default dataset is the embedded `shapes` set and
the default model is `mobilenet_v1`.

Every function takes a `flag_values` argument (default: the global
`flags.FLAGS`) so tests can build a fresh `flags.FlagValues()` per run, and is
idempotent: a flag that already exists in `flag_values` is left as it is. That
lets several entry points be imported into one process (e.g. by pytest)
without `DuplicateFlagError`; the first definition wins.

Typical use in a script:

    from absl import flags
    import common_flags

    common_flags.define_dataset_flags(default_split_name='validation')
    common_flags.define_model_flags()
    common_flags.define_batch_size_flag(default=100)
    FLAGS = flags.FLAGS

Other modules may append new `define_*` functions here; existing ones keep
their signatures and defaults.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import flags

DEFAULT_DATASET_NAME = 'shapes'
DEFAULT_MODEL_NAME = 'mobilenet_v1'

OPTIMIZERS = ('adadelta', 'adagrad', 'adam', 'ftrl', 'momentum', 'sgd',
              'rmsprop')
LEARNING_RATE_DECAY_TYPES = ('fixed', 'exponential', 'polynomial')


def _define(define_fn, name, default, help_text, flag_values, **kwargs):
  """Defines one flag unless `flag_values` already has a flag of that name.

  Args:
    define_fn: an absl `flags.DEFINE_*` function.
    name: flag name.
    default: default value.
    help_text: help string.
    flag_values: the `flags.FlagValues` to register with.
    **kwargs: extra arguments for `define_fn` (e.g. `enum_values`).
  """
  if name in flag_values:
    return
  define_fn(name=name, default=default, help=help_text,
            flag_values=flag_values, **kwargs)


def define_dataset_flags(default_split_name='train', flag_values=flags.FLAGS):
  """Defines --dataset_name --dataset_split_name --dataset_dir --labels_offset.

  Args:
    default_split_name: default of --dataset_split_name ('train' for
      training, 'validation' or 'test' for evaluation).
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_string, 'dataset_name', DEFAULT_DATASET_NAME,
          'The name of the dataset to load (see datasets/dataset_factory.py; '
          '"shapes" is the embedded set made by '
          '`download_and_convert_data.py --dataset_name=shapes`).',
          flag_values)
  _define(flags.DEFINE_string, 'dataset_split_name', default_split_name,
          'The name of the split to use (e.g. train, validation, test).',
          flag_values)
  _define(flags.DEFINE_string, 'dataset_dir', None,
          'The directory where the dataset files (TFRecords) are stored.',
          flag_values)
  _define(flags.DEFINE_integer, 'labels_offset', 0,
          'An offset subtracted from every label. Use 1 to train a net '
          'without the background class (0) on ImageNet-style labels, i.e. '
          'a 1000-way head on 1001-class data.', flag_values)


def define_model_flags(flag_values=flags.FLAGS):
  """Defines --model_name --preprocessing_name --use_grayscale.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_string, 'model_name', DEFAULT_MODEL_NAME,
          'The name of the architecture (see nets/nets_factory.py).',
          flag_values)
  _define(flags.DEFINE_string, 'preprocessing_name', None,
          'The name of the preprocessing to use. If left as `None`, '
          '--model_name is used.', flag_values)
  _define(flags.DEFINE_boolean, 'use_grayscale', False,
          'Whether to convert input images to grayscale.', flag_values)


def define_batch_size_flag(default=32, flag_values=flags.FLAGS):
  """Defines --batch_size.

  Args:
    default: default batch size (slim: 32 for training, 100 for eval).
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_integer, 'batch_size', default,
          'The number of samples in each batch.', flag_values)


def define_image_size_flag(name='train_image_size', flag_values=flags.FLAGS):
  """Defines an image-size flag (--train_image_size, --eval_image_size, ...).

  Args:
    name: the flag name.
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_integer, name, None,
          'Image height and width in pixels; default: the network\'s '
          'default_image_size.', flag_values)


def define_input_flags(flag_values=flags.FLAGS):
  """Defines --num_readers --num_preprocessing_threads.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_integer, 'num_readers', 4,
          'The number of parallel readers that read data from the dataset.',
          flag_values)
  _define(flags.DEFINE_integer, 'num_preprocessing_threads', 4,
          'The number of threads used to create the batches.', flag_values)


def define_moving_average_flag(flag_values=flags.FLAGS):
  """Defines --moving_average_decay.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_float, 'moving_average_decay', None,
          'The decay to use for the moving average. If left as None, no '
          'moving average is kept (training) / used (eval, export).',
          flag_values)


def define_quantize_flag(flag_values=flags.FLAGS):
  """Defines --quantize (use a quantized eval/inference graph).

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_bool, 'quantize', False,
          'Whether to build a quantized (fake-quant) eval graph; for '
          'checkpoints trained with --quantize_delay (TF 1.15 only).',
          flag_values)


def define_quantize_delay_flag(flag_values=flags.FLAGS):
  """Defines --quantize_delay (quantization-aware training).

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_integer, 'quantize_delay', -1,
          'Number of steps to start quantized training. Set to -1 would '
          'disable quantized training (TF 1.15 only; on TF 2 use '
          'post-training quantization at export).', flag_values)


def define_master_flag(flag_values=flags.FLAGS):
  """Defines --master.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_string, 'master', '',
          'The address of the TensorFlow master to use, e.g. '
          'grpc://host:port; empty for an in-process session.', flag_values)


def define_deployment_flags(flag_values=flags.FLAGS):
  """Defines clone and cluster flags for training.

  --master --task --num_clones --clone_on_cpu --worker_replicas --num_ps_tasks
  --ps_hosts --worker_hosts --sync_replicas --replicas_to_aggregate.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  define_master_flag(flag_values)
  _define(flags.DEFINE_integer, 'num_clones', 1,
          'Number of model clones to deploy. Note For historical reasons '
          'loss from all clones averaged out and learning rate decay happen '
          'per clone epochs', flag_values)
  _define(flags.DEFINE_boolean, 'clone_on_cpu', False,
          'Use CPUs to deploy clones.', flag_values)
  _define(flags.DEFINE_integer, 'worker_replicas', 1,
          'Number of worker replicas.', flag_values)
  _define(flags.DEFINE_integer, 'num_ps_tasks', 0,
          'The number of parameter servers. If the value is 0, then the '
          'parameters are handled locally by the worker.', flag_values)
  _define(flags.DEFINE_integer, 'task', 0,
          'Task id of the replica running the training (0 is the chief).',
          flag_values)
  _define(flags.DEFINE_list, 'ps_hosts', None,
          'Comma-separated host:port list of the parameter servers; with '
          '--worker_hosts it defines the cluster (else TF_CONFIG does).',
          flag_values)
  _define(flags.DEFINE_list, 'worker_hosts', None,
          'Comma-separated host:port list of the workers, the chief first.',
          flag_values)
  _define(flags.DEFINE_bool, 'sync_replicas', False,
          'Whether or not to synchronize the replicas during training.',
          flag_values)
  _define(flags.DEFINE_integer, 'replicas_to_aggregate', 1,
          'The Number of gradients to collect before updating params.',
          flag_values)


def define_train_run_flags(flag_values=flags.FLAGS):
  """Defines --train_dir, logging, summary and checkpoint cadence flags.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_string, 'train_dir', '/tmp/tfmodel/',
          'Directory where checkpoints and event logs are written to.',
          flag_values)
  _define(flags.DEFINE_integer, 'log_every_n_steps', 10,
          'The frequency with which logs are print.', flag_values)
  _define(flags.DEFINE_integer, 'save_summaries_secs', 600,
          'The frequency with which summaries are saved, in seconds.',
          flag_values)
  _define(flags.DEFINE_integer, 'save_interval_secs', 600,
          'The frequency with which the model is saved, in seconds.',
          flag_values)
  _define(flags.DEFINE_integer, 'max_number_of_steps', None,
          'The maximum number of training steps.', flag_values)


def define_optimizer_flags(flag_values=flags.FLAGS):
  """Defines --optimizer, --weight_decay and every optimizer's hyper-params.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_float, 'weight_decay', 0.00004,
          'The weight decay on the model weights.', flag_values)
  _define(flags.DEFINE_float, 'batch_norm_decay', None,
          'Decay of batch norm moving statistics; default the network\'s '
          '(0.9997 V1, 0.997 V2). Short runs need e.g. 0.99, or evaluation '
          'uses statistics still near their initial values.', flag_values)
  _define(flags.DEFINE_enum, 'optimizer', 'rmsprop',
          'The name of the optimizer.', flag_values,
          enum_values=list(OPTIMIZERS))
  _define(flags.DEFINE_float, 'adadelta_rho', 0.95,
          'The decay rate for adadelta.', flag_values)
  _define(flags.DEFINE_float, 'adagrad_initial_accumulator_value', 0.1,
          'Starting value for the AdaGrad accumulators.', flag_values)
  _define(flags.DEFINE_float, 'adam_beta1', 0.9,
          'The exponential decay rate for the 1st moment estimates.',
          flag_values)
  _define(flags.DEFINE_float, 'adam_beta2', 0.999,
          'The exponential decay rate for the 2nd moment estimates.',
          flag_values)
  _define(flags.DEFINE_float, 'opt_epsilon', 1.0,
          'Epsilon term for the optimizer.', flag_values)
  _define(flags.DEFINE_float, 'ftrl_learning_rate_power', -0.5,
          'The learning rate power.', flag_values)
  _define(flags.DEFINE_float, 'ftrl_initial_accumulator_value', 0.1,
          'Starting value for the FTRL accumulators.', flag_values)
  _define(flags.DEFINE_float, 'ftrl_l1', 0.0,
          'The FTRL l1 regularization strength.', flag_values)
  _define(flags.DEFINE_float, 'ftrl_l2', 0.0,
          'The FTRL l2 regularization strength.', flag_values)
  _define(flags.DEFINE_float, 'momentum', 0.9,
          'The momentum for the MomentumOptimizer and RMSPropOptimizer.',
          flag_values)
  _define(flags.DEFINE_float, 'rmsprop_momentum', 0.9, 'Momentum.',
          flag_values)
  _define(flags.DEFINE_float, 'rmsprop_decay', 0.9,
          'Decay term for RMSProp.', flag_values)


def define_learning_rate_flags(flag_values=flags.FLAGS):
  """Defines the learning-rate schedule and label-smoothing flags.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_enum, 'learning_rate_decay_type', 'exponential',
          'Specifies how the learning rate is decayed.', flag_values,
          enum_values=list(LEARNING_RATE_DECAY_TYPES))
  _define(flags.DEFINE_float, 'learning_rate', 0.01,
          'Initial learning rate.', flag_values)
  _define(flags.DEFINE_float, 'end_learning_rate', 0.0001,
          'The minimal end learning rate used by a polynomial decay '
          'learning rate.', flag_values)
  _define(flags.DEFINE_float, 'label_smoothing', 0.0,
          'The amount of label smoothing.', flag_values)
  _define(flags.DEFINE_float, 'learning_rate_decay_factor', 0.94,
          'Learning rate decay factor.', flag_values)
  _define(flags.DEFINE_float, 'num_epochs_per_decay', 2.0,
          'Number of epochs after which learning rate decays. Note: this '
          'flag counts epochs per clone but aggregates per sync replicas. '
          'So 1.0 means that each clone will pass an epoch in that time.',
          flag_values)


def define_fine_tune_flags(flag_values=flags.FLAGS):
  """Defines --checkpoint_path (fine-tune source) and its scope flags.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  _define(flags.DEFINE_string, 'checkpoint_path', None,
          'The path to a checkpoint (file prefix or directory: its latest) '
          'from which to fine-tune.', flag_values)
  _define(flags.DEFINE_string, 'checkpoint_exclude_scopes', None,
          'Comma-separated list of scopes of variables to exclude when '
          'restoring from a checkpoint.', flag_values)
  _define(flags.DEFINE_string, 'trainable_scopes', None,
          'Comma-separated list of scopes to filter the set of variables to '
          'train. By default, None would train all the variables.',
          flag_values)
  _define(flags.DEFINE_boolean, 'ignore_missing_vars', False,
          'When restoring a checkpoint would ignore missing variables.',
          flag_values)


def define_train_flags(flag_values=flags.FLAGS):
  """Defines every flag of train_image_classifier.py.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
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


def define_eval_flags(flag_values=flags.FLAGS):
  """Defines every flag of eval_image_classifier.py.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  define_master_flag(flag_values)
  _define(flags.DEFINE_string, 'checkpoint_path', '/tmp/tfmodel/',
          'The checkpoint to evaluate: a file prefix, or a directory (its '
          'latest checkpoint; in watch mode every new one).', flag_values)
  _define(flags.DEFINE_string, 'eval_dir', '/tmp/tfmodel/',
          'Directory where the results (summaries, metrics JSON) are saved.',
          flag_values)
  _define(flags.DEFINE_integer, 'max_num_batches', None,
          'Max number of batches to evaluate; by default use all.',
          flag_values)
  _define(flags.DEFINE_integer, 'eval_interval_secs', None,
          'Watch mode: poll --checkpoint_path (a directory) every this many '
          'seconds and evaluate each new checkpoint. Unset: evaluate once.',
          flag_values)
  _define(flags.DEFINE_float, 'timeout', None,
          'Watch mode: stop after this many seconds without a new '
          'checkpoint. Unset: wait forever.', flag_values)
  define_input_flags(flag_values)
  define_moving_average_flag(flag_values)
  define_quantize_flag(flag_values)
  define_dataset_flags('validation', flag_values)
  define_model_flags(flag_values)
  define_batch_size_flag(100, flag_values)
  define_image_size_flag('eval_image_size', flag_values)
