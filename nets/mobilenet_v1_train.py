r"""slim's nets/mobilenet_v1_train.py: MobileNet V1 on ImageNet TFRecords.

  python -m nets.mobilenet_v1_train --dataset_dir=/data/imagenet \
      --checkpoint_dir=/tmp/mobilenet_v1_train [--depth_multiplier=0.25] \
      [--quantize] [--fine_tune_checkpoint=mobilenet_v1_1.0_224.ckpt]

The flags and defaults are slim's; the run is train_image_classifier.py's
(the project's trainer: same checkpoints, logs and resumption), with the
settings slim's script hard-codes: plain SGD, learning rate 0.045 (1e-4 when
fine-tuning) decayed by 0.94 every 2.5 epochs of the train split, and with
--quantize quantization-aware training after 250,000 steps (at once when
fine-tuning; TF 1.15 only, as in the main scripts).
"""

import os
import sys

if __package__ in (None, ''):  # `python nets/mobilenet_v1_train.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from cli import logs  # noqa: E402  (first: TensorFlow's log level)
from core import tf_compat  # noqa: E402,F401

from cli import common_flags  # noqa: E402
import train_image_classifier  # noqa: E402
from cli import script_utils  # noqa: E402

PROGRAM = 'mobilenet_v1_train.py'

# Depth multiplier -> factory name; slim's script builds any multiplier, the
# factory (and the released checkpoints) has these four.
MODEL_NAMES = {1.0: 'mobilenet_v1', 0.75: 'mobilenet_v1_075',
               0.5: 'mobilenet_v1_050', 0.25: 'mobilenet_v1_025'}
# Steps before fake quantization starts when training from scratch.
QUANT_DELAY_FROM_SCRATCH = 250000


def define_flags(flag_values):
  define = common_flags.define
  define(flags.DEFINE_string, 'master', '', 'Session master.', flag_values)
  define(flags.DEFINE_integer, 'task', 0, 'Task index.', flag_values)
  define(flags.DEFINE_integer, 'ps_tasks', 0, 'Number of ps tasks.',
         flag_values)
  define(flags.DEFINE_integer, 'batch_size', 64, 'Batch size.', flag_values)
  define(flags.DEFINE_integer, 'num_classes', 1001,
         'Classes of the head: 1001 (ImageNet with background) or 1000.',
         flag_values)
  define(flags.DEFINE_integer, 'number_of_steps', None,
         'Steps to train (default: no limit).', flag_values)
  define(flags.DEFINE_integer, 'image_size', 224, 'Input resolution.',
         flag_values)
  define(flags.DEFINE_float, 'depth_multiplier', 1.0,
         'Width of the network: 1.0, 0.75, 0.5 or 0.25.', flag_values)
  define(flags.DEFINE_bool, 'quantize', False,
         'Quantization-aware training (TF 1.15).', flag_values)
  define(flags.DEFINE_string, 'fine_tune_checkpoint', '',
         'Checkpoint to start from (variables it lacks keep their initial '
         'values; the step count starts at 0).', flag_values)
  define(flags.DEFINE_string, 'checkpoint_dir', '',
         'Where checkpoints and summaries go.', flag_values)
  define(flags.DEFINE_string, 'dataset_dir', '',
         'ImageNet TFRecords (download_and_convert_data.py '
         '--dataset_name=imagenet).', flag_values)
  define(flags.DEFINE_integer, 'log_every_n_steps', 100,
         'Steps between two progress lines.', flag_values)
  define(flags.DEFINE_integer, 'save_summaries_secs', 100,
         'Seconds between summaries.', flag_values)
  define(flags.DEFINE_integer, 'save_interval_secs', 100,
         'Seconds between checkpoints.', flag_values)


def model_name(depth_multiplier):
  name = MODEL_NAMES.get(depth_multiplier)
  if name is None:
    raise script_utils.ScriptError(
        '--depth_multiplier=%s has no MobileNet V1 in nets_factory; use one '
        'of %s.' % (depth_multiplier, ', '.join(
            str(m) for m in sorted(MODEL_NAMES))))
  return name


def labels_offset(num_classes):
  if num_classes not in (1000, 1001):
    raise script_utils.ScriptError(
        '--num_classes=%d does not fit ImageNet: 1001 keeps the background '
        'class 0, 1000 drops it.' % num_classes)
  return 1001 - num_classes


def trainer_argv(opts):
  """The train_image_classifier.py flags that do what `opts` ask."""
  if not opts.checkpoint_dir:
    raise script_utils.ScriptError(
        '--checkpoint_dir is required: where checkpoints are written.')
  fine_tune = bool(opts.fine_tune_checkpoint)
  argv = {
      'master': opts.master, 'task': opts.task,
      'num_ps_tasks': opts.ps_tasks, 'train_dir': opts.checkpoint_dir,
      'dataset_name': 'imagenet', 'dataset_split_name': 'train',
      'dataset_dir': opts.dataset_dir,
      'labels_offset': labels_offset(opts.num_classes),
      'model_name': model_name(opts.depth_multiplier),
      'preprocessing_name': 'mobilenet_v1',
      'train_image_size': opts.image_size, 'batch_size': opts.batch_size,
      'optimizer': 'sgd', 'learning_rate': 1e-4 if fine_tune else 0.045,
      'learning_rate_decay_type': 'exponential',
      'learning_rate_decay_factor': 0.94, 'num_epochs_per_decay': 2.5,
      'log_every_n_steps': opts.log_every_n_steps,
      'save_summaries_secs': opts.save_summaries_secs,
      'save_interval_secs': opts.save_interval_secs,
  }
  if opts.number_of_steps:
    argv['max_number_of_steps'] = opts.number_of_steps
  if fine_tune:
    argv.update(checkpoint_path=opts.fine_tune_checkpoint,
                ignore_missing_vars=True)
  if opts.quantize:
    argv['quantize_delay'] = 0 if fine_tune else QUANT_DELAY_FROM_SCRATCH
  return ['--%s=%s' % item for item in sorted(argv.items())]


def run(opts):
  with script_utils.command_line_errors():
    argv = trainer_argv(opts)
  return train_image_classifier.train(train_image_classifier.parse_flags(argv))


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
