r"""slim's nets/post_training_quantization.py: a full-int8 TFLite model from
a checkpoint, calibrated on images of the project's TFRecords.

  python -m nets.post_training_quantization --model_name=mobilenet_v2 \
      --checkpoint_path=mobilenet_v2_1.0_224.ckpt --dataset_dir=/data/imagenet \
      --output_tflite=/tmp/mobilenet_v2_int8.tflite

The flags and defaults are slim's. slim reads calibration images through
tensorflow_datasets (`imagenet2012`); here --dataset_name is a dataset of
datasets/dataset_factory.py, `imagenet2012` standing for `imagenet`. The
conversion is export_tflite.py's (--quantization=full_integer
--integer_io_type=int8): int8 weights, activations, input and output.

Calibration images are prepared as slim prepares them: by default with the
script's own recipe (`quantization_preprocessing`: a centred square of
image_size / (image_size + 32) of the shorter side, a bicubic resize,
[-1, 1]); with --use_model_specific_preprocessing with the model's
evaluation preprocessing from preprocessing_factory (for every MobileNet a
central 87.5 % crop, a bilinear resize, [-1, 1]). With --enable_ema (slim's
default) the checkpoint's moving averages are used and must be there.
"""

import os
import sys

if __package__ in (None, ''):  # `python nets/post_training_quantization.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from cli import logs  # noqa: E402  (first: TensorFlow's log level)
from core import tf_compat  # noqa: E402,F401
import tensorflow.compat.v1 as tf  # noqa: E402

from cli import common_flags  # noqa: E402
import export_tflite  # noqa: E402
from cli import script_utils  # noqa: E402
from preprocessing import image_ops  # noqa: E402

PROGRAM = 'post_training_quantization.py'
# tensorflow_datasets names -> this project's dataset names.
DATASET_ALIASES = {'imagenet2012': 'imagenet'}
# Any decay marks "use the averages"; its value does not matter for export.
_EMA_MARK = 0.9999
# slim's default calibration crop keeps image_size / (image_size + this) of
# the shorter image side.
CROP_PADDING = 32


def define_flags(flag_values):
  define = common_flags.define
  define(flags.DEFINE_string, 'model_name', None,
         'The network to quantize (a nets_factory name).', flag_values)
  define(flags.DEFINE_string, 'checkpoint_path', None,
         'The trained checkpoint (a prefix, or a directory: its latest).',
         flag_values)
  define(flags.DEFINE_string, 'dataset_name', 'imagenet2012',
         'Calibration dataset: a dataset_factory name (imagenet2012 is '
         'imagenet).', flag_values)
  define(flags.DEFINE_string, 'dataset_dir', None,
         'The dataset\'s TFRecords.', flag_values)
  define(flags.DEFINE_string, 'dataset_split', 'train',
         'Split of the calibration images.', flag_values)
  define(flags.DEFINE_string, 'output_tflite', None,
         'Where to write the .tflite model.', flag_values)
  define(flags.DEFINE_boolean, 'use_model_specific_preprocessing', False,
         'Prepare calibration images with the model\'s evaluation '
         'preprocessing (preprocessing_factory) instead of this script\'s '
         'centre crop of image_size/(image_size+32) with a bicubic resize.',
         flag_values)
  define(flags.DEFINE_boolean, 'enable_ema', True,
         'Use the checkpoint\'s exponential moving averages of the weights.',
         flag_values)
  define(flags.DEFINE_integer, 'num_steps', 1000,
         'Calibration images (one per step).', flag_values)
  define(flags.DEFINE_integer, 'image_size', 224, 'Input height and width.',
         flag_values)
  define(flags.DEFINE_integer, 'num_classes', 1001, 'Outputs of the head.',
         flag_values)


def exporter_argv(opts):
  """The export_tflite.py flags that do what `opts` ask."""
  for name in ('model_name', 'checkpoint_path', 'dataset_dir',
               'output_tflite'):
    if not getattr(opts, name):
      raise script_utils.ScriptError('--%s is required.' % name)
  argv = {
      'model_name': opts.model_name, 'checkpoint_path': opts.checkpoint_path,
      'dataset_name': DATASET_ALIASES.get(opts.dataset_name,
                                          opts.dataset_name),
      'dataset_dir': opts.dataset_dir,
      'dataset_split_name': opts.dataset_split,
      'output_file': opts.output_tflite,
      'num_calibration_images': opts.num_steps,
      'image_size': opts.image_size, 'num_classes': opts.num_classes,
      'quantization': 'full_integer', 'integer_io_type': 'int8',
  }
  if opts.enable_ema:
    argv['moving_average_decay'] = _EMA_MARK
  return ['--%s=%s' % item for item in sorted(argv.items())]


def quantization_preprocessing(use_grayscale=False):
  """slim's default preparation of calibration images.

  Args:
    use_grayscale: whether the network takes 1-channel images.

  Returns:
    `preprocessing_fn(image, output_height, output_width)`: keeps the centred
    square whose side is output_height / (output_height + CROP_PADDING) of
    the image's shorter side, resizes it bicubically to the output size and
    maps [0, 255] to [-1, 1].
  """

  def preprocessing_fn(image, output_height, output_width):
    image = image_ops.prepare_channels(image_ops.to_float(image),
                                       use_grayscale=use_grayscale)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    fraction = output_height / float(output_height + CROP_PADDING)
    side = tf.cast(fraction * tf.cast(tf.minimum(height, width), tf.float32),
                   tf.int32)
    image = tf.image.crop_to_bounding_box(
        image, (height - side + 1) // 2, (width - side + 1) // 2, side, side)
    image = image_ops.resize(image, output_height, output_width,
                             method=tf.image.ResizeMethod.BICUBIC)
    return image_ops.scale_to_minus_one_one(image)

  return preprocessing_fn


def calibration_preprocessing(opts):
  """What export_tflite.run prepares calibration images with, by `opts`.

  None (the model's evaluation preprocessing) with
  --use_model_specific_preprocessing, else `quantization_preprocessing`.
  """
  if opts.use_model_specific_preprocessing:
    return None
  return quantization_preprocessing


def run(opts):
  with script_utils.command_line_errors():
    argv = exporter_argv(opts)
  exporter_opts = common_flags.parse_flags(export_tflite.define_flags,
                                           export_tflite.PROGRAM, argv)
  return export_tflite.run(exporter_opts, calibration_preprocessing(opts))


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
