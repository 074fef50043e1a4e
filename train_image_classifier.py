r"""Trains a MobileNet (V1, V2, V3, EdgeTPU or V4) on a TFRecord dataset.

This script only reads flags: it turns them into a `training.trainer`
`TrainConfig` and runs `trainer.train`, which trains in a
`tf.train.MonitoredSession` with hooks for progress logs, summaries,
checkpoints, the NaN/Inf guard and the step limit, identically on TF 1.15
and TF 2 (graph mode). `--helpfull` lists the flags (cli/train_flags.py).

Examples:

  # Train MobileNet V1 (0.25 width) on the embedded shapes set:
  python train_image_classifier.py --train_dir=/tmp/shapes_v1 \
      --dataset_name=shapes --dataset_dir=/tmp/shapes \
      --model_name=mobilenet_v1_025 --train_image_size=64 \
      --max_number_of_steps=1000

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


import signal

if __name__ == '__main__':
  # Until main() installs its handlers, Ctrl-C ends the script quietly (it
  # has nothing to save yet) instead of raising inside an import.
  signal.signal(signal.SIGINT, signal.SIG_DFL)

from absl import app
from absl import flags
from absl import logging

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from cli import common_flags
from cli import record_flags
from training import batch_norm_check
from training import run_record
from cli import script_utils
from cli import train_flags
from training import model_inputs
from training import blowup_recovery
from training import optimizers
from training import preemption
from training import run_checks
from training import trainer

PROGRAM = 'train_image_classifier.py'


def define_flags(flag_values=flags.FLAGS):
  """Registers every flag of this script with `flag_values`."""
  train_flags.define_train_flags(flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """A fresh `FlagValues` with this script's flags, parsed from `argv`.

  Lets tests and other Python code train without touching global flags.

  Args:
    argv: flag strings, e.g. ['--train_dir=/tmp/x'].
  """
  return common_flags.parse_flags(define_flags, PROGRAM, argv)


def resolve_batch_norm_decay(opts):
  """The --batch_norm_decay value to build the network with (None: its own).

  Raises:
    ScriptError: an unknown --model_name (named first: a misspelled network
      gets no batch-norm advice), or a value that is neither a number in
      [0, 1) nor auto.
  """
  with script_utils.command_line_errors():
    own = batch_norm_check.network_decay(opts.model_name)
  try:
    return batch_norm_check.resolve_decay(opts.batch_norm_decay,
                                          opts.max_number_of_steps, own)
  except ValueError as e:
    raise script_utils.ScriptError(script_utils.as_command_line(e))


def config_from_flags(opts, batch_norm_decay=None):
  """The `trainer.TrainConfig` that parsed flags `opts` describe.

  Args:
    opts: the parsed flags.
    batch_norm_decay: the resolved decay (resolve_batch_norm_decay).
  """
  pick = common_flags.pick
  return pick(
      trainer.TrainConfig, opts,
      inputs=pick(model_inputs.InputConfig, opts,
                  image_size=opts.train_image_size),
      deploy=pick(trainer.DeployConfig, opts),
      optimizer=pick(optimizers.OptimizerConfig, opts),
      schedule=pick(optimizers.LearningRateConfig, opts),
      batch_norm_decay=batch_norm_decay,
      checkpoint_exclude_scopes=model_inputs.split_scopes(
          opts.checkpoint_exclude_scopes),
      trainable_scopes=model_inputs.split_scopes(opts.trainable_scopes))


# What a fine-tuning run keeps from the record of its --checkpoint_path
# unless given: how the weights saw images (converted timm weights need
# ImageNet's mean/std and symmetric padding).
FINE_TUNE_RECORD_FLAGS = {'preprocessing_name': 'preprocessing_name',
                          'use_explicit_padding': 'use_explicit_padding'}


def fine_tune_flags(opts):
  """`opts` completed from the record of --checkpoint_path, if it has one."""
  if not opts.checkpoint_path:
    return opts
  merged, _ = record_flags.merged_flags(opts, opts.checkpoint_path,
                                        FINE_TUNE_RECORD_FLAGS)
  return merged


def warn_if_short(config):
  """Logs the batch-norm convergence warning for a run from scratch."""
  if config.checkpoint_path:
    return None  # Fine-tuning: the moving statistics start trained.
  try:
    own = batch_norm_check.network_decay(config.inputs.model_name)
  except ValueError:
    return None
  warning = batch_norm_check.check_convergence(
      config.max_number_of_steps, config.batch_norm_decay, own).warning()
  if warning:
    warning = script_utils.as_command_line(warning)
    logging.warning('%s', warning)
  return warning


def record_training(config):
  """Writes the training record into --train_dir (chief only).

  A record already there that disagrees (a resumed run with other flags)
  is reported and kept until training succeeds with the new values.

  Returns:
    A function to call after training: it writes the record when it was
    held back.
  """
  inputs = config.inputs
  model_inputs.check_writable_dir(config.train_dir, 'train_dir')
  num_classes, image_size = run_checks.trained_shape(inputs)
  existing = None
  try:
    record = run_record.make_record(
        inputs.model_name, image_size,
        inputs.preprocessing_name or inputs.model_name, inputs.dataset_name,
        num_classes, inputs.labels_offset, config.batch_norm_decay,
        config.moving_average_decay or None, inputs.use_explicit_padding)
    existing = run_record.find_record(config.train_dir)
    conflicts = run_record.write_unless_contradicted(config.train_dir, record)
  except run_record.RecordError as e:
    raise script_utils.ScriptError(
        '%s.%s' % (e, ' Delete it to start a new record.' if existing else ''))
  for conflict in conflicts:
    logging.warning('Resuming with other settings than recorded: %s',
                    script_utils.as_command_line(conflict))
  if conflicts:
    return lambda: run_record.write_record(config.train_dir, record)
  return lambda: None


def recovery_from_flags(opts):
  """The `blowup_recovery.RecoveryConfig` of parsed flags `opts`."""
  return blowup_recovery.RecoveryConfig(
      max_recoveries=opts.recover_from_nonfinite,
      loss_upper_bound=opts.loss_upper_bound,
      learning_rate_factor=opts.recovery_learning_rate_factor)


def train(opts, stop_signals=None):
  """Trains as the parsed flags `opts` say (see `trainer.train`).

  `stop_signals`: an entered `preemption.StopSignals`, or None.

  Raises:
    ScriptError: for bad flags, data or checkpoints, or a NaN/Inf loss;
      the library's error is its `__cause__`.
  """
  config = config_from_flags(fine_tune_flags(opts),
                             resolve_batch_norm_decay(opts))
  with script_utils.command_line_errors():
    trainer.check_config(config)  # Bad values fail before the record.
    finish_record = []  # Set once the chief holds --train_dir.

    def on_train_dir_locked():
      # Only the chief that holds the lock warns and writes the record: a
      # refused second trainer says nothing but why it was refused, and
      # leaves the directory untouched.
      warn_if_short(config)
      finish_record.append(record_training(config))

    result = trainer.train(
        config,
        report_ps_loss=lambda text: script_utils.print_error(PROGRAM, text),
        on_train_dir_locked=on_train_dir_locked,
        stop_signals=stop_signals, recovery=recovery_from_flags(opts))
    for finish in finish_record:
      finish()
    return result


def stop_signals_from_flags(opts):
  """The stop-signal handling of a training run (`preemption.StopSignals`)."""
  preemption.check_grace_secs(opts.preemption_grace_secs)
  train_dir = opts.train_dir
  return preemption.StopSignals(
      opts.preemption_grace_secs,
      lambda: preemption.newest_checkpoint_note(train_dir), at_once=True)


main = common_flags.script_main(
    PROGRAM, train, stop_handling=script_utils.StopHandling(
        signals=stop_signals_from_flags,
        stopped_line=preemption.stopped_line))


if __name__ == '__main__':
  app.run(main)
