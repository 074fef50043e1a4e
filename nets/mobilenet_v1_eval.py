r"""slim's nets/mobilenet_v1_eval.py: MobileNet V1 on the ImageNet validation set.

  python -m nets.mobilenet_v1_eval --dataset_dir=/data/imagenet \
      --checkpoint_dir=/tmp/mobilenet_v1_train --eval_dir=/tmp/eval \
      [--depth_multiplier=0.25] [--quantize]

The flags and defaults are slim's; the evaluation is eval_image_classifier.py's
(Accuracy and Recall_5, summaries and metrics JSON in --eval_dir) of the
latest checkpoint in --checkpoint_dir (or a checkpoint prefix), over the
first ceil(num_examples / batch_size) batches of the validation split.
"""

import math
import os
import sys

if __package__ in (None, ''):  # `python nets/mobilenet_v1_eval.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from cli import logs  # noqa: E402  (first: TensorFlow's log level)
from core import tf_compat  # noqa: E402,F401

from cli import common_flags  # noqa: E402
import eval_image_classifier  # noqa: E402
from cli import script_utils  # noqa: E402
from nets import mobilenet_v1_train  # noqa: E402

PROGRAM = 'mobilenet_v1_eval.py'


def define_flags(flag_values):
  define = common_flags.define
  define(flags.DEFINE_string, 'master', '', 'Session master.', flag_values)
  define(flags.DEFINE_integer, 'batch_size', 250, 'Batch size.', flag_values)
  define(flags.DEFINE_integer, 'num_classes', 1001,
         'Classes of the head: 1001 (ImageNet with background) or 1000.',
         flag_values)
  define(flags.DEFINE_integer, 'num_examples', 50000,
         'Validation images to evaluate (rounded up to whole batches).',
         flag_values)
  define(flags.DEFINE_integer, 'image_size', 224, 'Input resolution.',
         flag_values)
  define(flags.DEFINE_float, 'depth_multiplier', 1.0,
         'Width of the network: 1.0, 0.75, 0.5 or 0.25.', flag_values)
  define(flags.DEFINE_bool, 'quantize', False,
         'Evaluate a quantization-aware-trained checkpoint (TF 1.15).',
         flag_values)
  define(flags.DEFINE_string, 'checkpoint_dir', '',
         'Checkpoint to evaluate: a directory (its latest) or a prefix.',
         flag_values)
  define(flags.DEFINE_string, 'eval_dir', '',
         'Where summaries and metrics go.', flag_values)
  define(flags.DEFINE_string, 'dataset_dir', '',
         'ImageNet TFRecords (download_and_convert_data.py '
         '--dataset_name=imagenet).', flag_values)


def evaluator_argv(opts):
  """The eval_image_classifier.py flags that do what `opts` ask."""
  for name in ('checkpoint_dir', 'eval_dir'):
    if not getattr(opts, name):
      raise script_utils.ScriptError('--%s is required.' % name)
  argv = {
      'master': opts.master, 'checkpoint_path': opts.checkpoint_dir,
      'eval_dir': opts.eval_dir, 'dataset_name': 'imagenet',
      'dataset_split_name': 'validation', 'dataset_dir': opts.dataset_dir,
      'labels_offset': mobilenet_v1_train.labels_offset(opts.num_classes),
      'model_name': mobilenet_v1_train.model_name(opts.depth_multiplier),
      'preprocessing_name': 'mobilenet_v1',
      'eval_image_size': opts.image_size, 'batch_size': opts.batch_size,
      'max_num_batches': int(math.ceil(opts.num_examples /
                                       float(opts.batch_size))),
      'quantize': opts.quantize,
  }
  return ['--%s=%s' % item for item in sorted(argv.items())]


def run(opts):
  with script_utils.command_line_errors():
    argv = evaluator_argv(opts)
  return eval_image_classifier.evaluate(eval_image_classifier.parse_flags(argv))


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
