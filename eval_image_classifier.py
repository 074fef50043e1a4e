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

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import app
from absl import flags

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)

import common_flags
from deployment import script_utils
from training import evaluator
from training import model_inputs

PROGRAM = 'eval_image_classifier.py'


def define_flags(flag_values=flags.FLAGS):
  """Registers every flag of this script with `flag_values`."""
  common_flags.define_eval_flags(flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """A fresh `FlagValues` with this script's flags, parsed from `argv`.

  Args:
    argv: flag strings, e.g. ['--checkpoint_path=/tmp/x'].
  """
  return common_flags.parse_flags(define_flags, PROGRAM, argv)


def config_from_flags(opts):
  """The `evaluator.EvalConfig` that parsed flags `opts` describe."""
  return common_flags.pick(
      evaluator.EvalConfig, opts, program=PROGRAM,
      inputs=common_flags.pick(model_inputs.InputConfig, opts,
                               image_size=opts.eval_image_size))


def evaluate(opts):
  """Evaluates as the parsed flags `opts` say (see `evaluator.evaluate`).

  Returns:
    The list of metrics dicts, one per evaluated checkpoint.

  Raises:
    ScriptError: for bad flags, data or checkpoints; the library's error
      is its `__cause__`.
  """
  with script_utils.command_line_errors():
    return evaluator.evaluate(config_from_flags(opts))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s (flags need the --name='
                         'value form).' % ' '.join(argv[1:]))
  common_flags.use_script_defaults(PROGRAM)
  script_utils.run_or_exit(lambda: evaluate(FLAGS), PROGRAM)


if __name__ == '__main__':
  app.run(main)
