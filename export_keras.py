r"""Exports a slim MobileNet checkpoint as a keras.applications model.

    python export_keras.py --checkpoint_path=pretrained/mobilenet_v1/model.ckpt \
      --output=mobilenet_v1.keras

TensorFlow 2 stack (tf-keras). V1, V2 and V3 (Large/Small, minimalistic)
become keras.applications' MobileNet, MobileNetV2 and MobileNetV3Large/Small
with the same outputs. The Keras model takes images in [-1, 1]
(keras.applications.mobilenet_v2.preprocess_input); a 1001-class checkpoint
becomes Keras's 1000 ImageNet classes unless --num_classes=1001.
--model_name and --image_size default to the checkpoint's training record.
"""

from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from cli import common_flags
from training import run_record
from cli import script_utils
from weights import keras_export

PROGRAM = 'export_keras'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  define = common_flags.define
  define(flags.DEFINE_string, 'checkpoint_path', None,
         'The slim checkpoint prefix to export.', flag_values)
  define(flags.DEFINE_string, 'model_name', None,
         'The checkpoint\'s network; default: its training record\'s.',
         flag_values)
  define(flags.DEFINE_string, 'output', None,
         'The Keras model file to write (.keras or .h5).', flag_values)
  define(flags.DEFINE_integer, 'num_classes', None,
         'Classes of the Keras head; default 1000 for a 1001-class '
         'checkpoint (background dropped), else the checkpoint\'s.',
         flag_values)
  define(flags.DEFINE_integer, 'image_size', None,
         'The Keras model\'s input size; default: the record\'s, else 224.',
         flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS

RECORD_FLAGS = {'model_name': 'model_name', 'image_size': 'image_size'}


def run(flag_values):
  """Exports with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors():
    return _run(flag_values)


def _settings(flag_values):
  """model_name and image_size: the flags, else the checkpoint's record."""
  given = {name: flag_values[name].value for name in RECORD_FLAGS.values()
           if flag_values[name].value is not None}
  merged = run_record.merge_with_record(
      flag_values.checkpoint_path, RECORD_FLAGS, given,
      {'model_name': None, 'image_size': 224})
  values = merged.values if merged else dict({'image_size': 224}, **given)
  if not values.get('model_name'):
    raise script_utils.ScriptError(
        '--model_name is required: %s has no training_record.json beside '
        'it to say which network it holds.' % flag_values.checkpoint_path)
  return values['model_name'], values['image_size']


def _run(flag_values):
  for name, what in (('checkpoint_path', 'the slim checkpoint prefix'),
                     ('output', 'the .keras or .h5 file to write')):
    if not flag_values[name].value:
      raise script_utils.ScriptError('--%s is required: %s.' % (name, what))
  keras_export.check_output(flag_values.output)
  model_name, image_size = _settings(flag_values)
  model = keras_export.build_keras_model(
      model_name, flag_values.checkpoint_path, image_size=image_size,
      num_classes=flag_values.num_classes)
  keras_export.save_model(model, flag_values.output)
  print('Wrote %s: keras.applications %s, %dx%d input in [-1, 1] '
        '(keras.applications.mobilenet_v2.preprocess_input), %d classes.' %
        (flag_values.output, model.name, image_size, image_size,
         model.output_shape[-1]))
  return model


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
