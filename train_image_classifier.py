r"""Trains an image classifier (MobileNet V1/V2) on a TFRecord dataset.

This script only reads flags: it turns them into a `training.trainer`
`TrainConfig` and runs `trainer.train`, which trains in a
`tf.train.MonitoredSession` with hooks for progress logs, summaries,
checkpoints, the NaN/Inf guard and the step limit, identically on TF 1.15
and TF 2 (graph mode). `--helpfull` lists the flags (common_flags.py).

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

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from absl import app
from absl import flags

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)

import common_flags
from deployment import script_utils
from training import model_inputs
from training import optimizers
from training import trainer

PROGRAM = 'train_image_classifier.py'


def define_flags(flag_values=flags.FLAGS):
  """Registers every flag of this script with `flag_values`."""
  common_flags.define_train_flags(flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """A fresh `FlagValues` with this script's flags, parsed from `argv`.

  Lets tests and other Python code train without touching global flags.

  Args:
    argv: flag strings, e.g. ['--train_dir=/tmp/x'].
  """
  return common_flags.parse_flags(define_flags, PROGRAM, argv)


def config_from_flags(opts):
  """The `trainer.TrainConfig` that parsed flags `opts` describe."""
  pick = common_flags.pick
  return pick(
      trainer.TrainConfig, opts,
      inputs=pick(model_inputs.InputConfig, opts,
                  image_size=opts.train_image_size),
      deploy=pick(trainer.DeployConfig, opts),
      optimizer=pick(optimizers.OptimizerConfig, opts),
      schedule=pick(optimizers.LearningRateConfig, opts),
      checkpoint_exclude_scopes=model_inputs.split_scopes(
          opts.checkpoint_exclude_scopes),
      trainable_scopes=model_inputs.split_scopes(opts.trainable_scopes))


def train(opts):
  """Trains as the parsed flags `opts` say (see `trainer.train`).

  Raises:
    ScriptError: for bad flags, data or checkpoints, or a NaN/Inf loss;
      the library's error is its `__cause__`.
  """
  config = config_from_flags(opts)
  with script_utils.command_line_errors():
    return trainer.train(
        config,
        report_ps_loss=lambda text: script_utils.print_error(PROGRAM, text))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s (flags need the --name='
                         'value form).' % ' '.join(argv[1:]))
  common_flags.use_script_defaults(PROGRAM)
  script_utils.run_or_exit(lambda: train(FLAGS), PROGRAM)


if __name__ == '__main__':
  app.run(main)
