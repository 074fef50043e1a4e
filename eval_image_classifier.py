r"""Evaluates a trained image classifier on one split of a dataset.

This script only reads flags: it turns them into a `training.evaluator`
`EvalConfig` and runs `evaluator.evaluate`.

Computes Accuracy (top-1) and Recall_5 (the label is among the 5 highest
logits) over every example of the split exactly once, the last partial batch
included. Results are printed, written as TensorBoard summaries
(`eval/Accuracy`, `eval/Recall_5`) and as JSON in --eval_dir:
`metrics-<global step>.json` for each checkpoint and `metrics.json` for the
latest one.

--checkpoint_path is a checkpoint prefix or a directory (its latest
checkpoint). With --eval_interval_secs the script watches the directory and
evaluates every new checkpoint (beside a running training job) until
--timeout seconds pass without one.

Examples:

  python eval_image_classifier.py --checkpoint_path=/tmp/shapes_v1 \
      --eval_dir=/tmp/shapes_v1/eval --dataset_dir=/tmp/shapes \
      --dataset_name=shapes --model_name=mobilenet_v1_025 --eval_image_size=64

  # Watch mode, beside training:
  python eval_image_classifier.py --checkpoint_path=/tmp/shapes_v1 \
      --eval_dir=/tmp/shapes_v1/eval --dataset_dir=/tmp/shapes \
      --dataset_name=shapes --eval_interval_secs=60 --timeout=3600
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
from cli import script_utils
from cli import train_flags
from training import evaluator
from training import model_inputs
from training import preemption
from training import run_checks

PROGRAM = 'eval_image_classifier.py'


def define_flags(flag_values=flags.FLAGS):
  """Registers every flag of this script with `flag_values`."""
  train_flags.define_eval_flags(flag_values)
  # Not in slim's eval script: the person-detection guide passes it, meaning
  # "evaluate the latest checkpoint here" when --checkpoint_path is absent.
  common_flags.define(
      flags.DEFINE_string, 'train_dir', None,
      'Training directory whose latest checkpoint is evaluated when '
      '--checkpoint_path is not given.', flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """A fresh `FlagValues` with this script's flags, parsed from `argv`.

  Args:
    argv: flag strings, e.g. ['--checkpoint_path=/tmp/x'].
  """
  return common_flags.parse_flags(define_flags, PROGRAM, argv)


# Training record field -> this script's flag.
RECORD_FLAGS = {
    'model_name': 'model_name', 'image_size': 'eval_image_size',
    'preprocessing_name': 'preprocessing_name',
    'dataset_name': 'dataset_name', 'labels_offset': 'labels_offset',
    'moving_average_decay': 'moving_average_decay',
    'use_explicit_padding': 'use_explicit_padding'}


def config_from_flags(opts):
  """The `evaluator.EvalConfig` that parsed flags `opts` describe.

  The image size is always set (the network's default when not given), so
  the result line can name it.
  """
  image_size = (opts.eval_image_size or
                run_checks.default_image_size(opts.model_name))
  return common_flags.pick(
      evaluator.EvalConfig, opts, program=PROGRAM,
      inputs=common_flags.pick(model_inputs.InputConfig, opts,
                               image_size=image_size))


def explain_low_accuracy(results, batch_norm_decay=None):
  """Logs why the last evaluated checkpoint scores near chance, if its
  batch-norm statistics are stale; returns the explanation or None."""
  if not results:
    return None
  last = results[-1]
  message = run_checks.stale_statistics_message(
      last['checkpoint'], last.get('global_step'), batch_norm_decay)
  if message:
    message = script_utils.as_command_line(message)
    logging.warning('%s', message)
  return message


def evaluate(opts, stop_signals=None):
  """Evaluates as the parsed flags `opts` say (see `evaluator.evaluate`).

  Flags the user did not give come from the checkpoint's training record
  when there is one. `stop_signals`: an entered `preemption.StopSignals`,
  or None.

  Returns:
    The list of metrics dicts, one per evaluated checkpoint.

  Raises:
    ScriptError: for bad flags, data or checkpoints; the library's error
      is its `__cause__`.
  """
  if opts.train_dir and not opts['checkpoint_path'].present:
    opts.checkpoint_path = opts.train_dir
  merged, record_path = record_flags.merged_flags(
      opts, opts.checkpoint_path, RECORD_FLAGS)
  decay = None
  if record_path:
    decay = record_flags.read_field(record_path, 'batch_norm_decay')
  with script_utils.command_line_errors():
    results = evaluator.evaluate(
        config_from_flags(merged), stop_signals=stop_signals,
        every_checkpoint=opts.eval_every_checkpoint)
    explain_low_accuracy(results, decay)
    return results


def stop_signals_from_flags(opts):
  """The stop-signal handling of an evaluation (`preemption.StopSignals`)."""
  preemption.check_grace_secs(opts.preemption_grace_secs)
  return preemption.StopSignals(opts.preemption_grace_secs)


def stopped_line(stop_signals, results):
  return ('interrupted by %s after %d evaluation(s); run the same command to '
          'go on.' % (preemption.signal_name(stop_signals.signum),
                      len(results)))


main = common_flags.script_main(
    PROGRAM, evaluate, stop_handling=script_utils.StopHandling(
        signals=stop_signals_from_flags, stopped_line=stopped_line))


if __name__ == '__main__':
  app.run(main)
