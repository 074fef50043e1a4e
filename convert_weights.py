r"""Converts Keras or timm MobileNet weights into a slim checkpoint.

    # keras.applications weights (.h5) -> 1001-class slim checkpoint
    python convert_weights.py --from=keras \
      --input=mobilenet_1_0_224_tf.h5 --model_name=mobilenet_v1 \
      --output=pretrained/mobilenet_v1/model.ckpt
    # timm weights (.safetensors; .pth needs torch)
    python convert_weights.py --from=timm --timm_name=tf_mobilenetv3_large_100 \
      --input=model.safetensors --model_name=mobilenet_v3_large \
      --output=pretrained/mobilenet_v3_large/model.ckpt

The checkpoint has the released slim layout: 1001 classes, index 0 being
slim's background class with a logit that never wins, unless
--num_classes=1000. A training_record.json beside it tells evaluation,
export and fine-tuning the image size, preprocessing and class count.
"""

from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from cli import common_flags
from cli import script_utils
from weights import convert

PROGRAM = 'convert_weights'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  define = common_flags.define
  define(flags.DEFINE_enum, 'from', None,
         'keras: a Keras .h5 weights or model file; timm: a timm state dict '
         '(.safetensors, or .pth with torch installed).', flag_values,
         enum_values=list(convert.SOURCES))
  define(flags.DEFINE_string, 'input', None, 'The weights file to convert.',
         flag_values)
  define(flags.DEFINE_string, 'model_name', None,
         'The slim network to fill, a name from nets/nets_factory.py; for '
         'timm, default: the one its --timm_name matches.', flag_values)
  define(flags.DEFINE_string, 'timm_name', None,
         'With --from=timm: the timm model name of the weights, e.g. '
         'tf_mobilenetv3_large_100 (says its padding and batch-norm '
         'epsilon).', flag_values)
  define(flags.DEFINE_string, 'output', None,
         'The checkpoint prefix to write, e.g. pretrained/v1/model.ckpt; '
         'training_record.json goes into its directory.', flag_values)
  define(flags.DEFINE_integer, 'num_classes', None,
         'Classes of the checkpoint\'s head; default 1001 for ImageNet '
         'weights (background + 1000). 1000 keeps the source\'s head, to use '
         'with --labels_offset=1.', flag_values)
  define(flags.DEFINE_integer, 'image_size', None,
         'The image size to record (the Keras weights file name says it, '
         'e.g. mobilenet_1_0_160_tf.h5: 160); default: the network\'s.',
         flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS

# The flags whose names differ from the library parameters they set.
FLAG_NAMES = {'source': 'from', 'input_path': 'input',
              'output_prefix': 'output'}


def run(flag_values):
  """Converts with parsed flags; library errors become ScriptErrors."""
  with script_utils.command_line_errors(FLAG_NAMES):
    return _run(flag_values)


def _model_name(flag_values, source):
  if flag_values.model_name:
    return flag_values.model_name
  from weights import timm_source  # pylint: disable=g-import-not-at-top
  name = timm_source.TIMM_TO_FACTORY.get(flag_values.timm_name or '')
  if source == 'timm' and name:
    return name
  raise script_utils.ScriptError(
      '--model_name is required: the slim network the weights fill, e.g. '
      'mobilenet_v1 or mobilenet_v2_140 (names: nets/nets_factory.py).')


def _run(flag_values):
  source = flag_values['from'].value
  for name, what in (('from', 'keras or timm'),
                     ('input', 'the weights file to convert'),
                     ('output', 'the checkpoint prefix to write, e.g. '
                      'pretrained/mobilenet_v1/model.ckpt')):
    if not flag_values[name].value:
      raise script_utils.ScriptError('--%s is required: %s.' % (name, what))
  result = convert.convert(
      source, flag_values.input, _model_name(flag_values, source),
      flag_values.output, num_classes=flag_values.num_classes,
      image_size=flag_values.image_size, timm_name=flag_values.timm_name)
  print('Wrote %s (%d classes) and %s.' % (result.prefix, result.num_classes,
                                           result.record_path))
  for note in result.notes:
    print(script_utils.as_command_line(note, FLAG_NAMES))
  return result


main = common_flags.script_main(PROGRAM, run, FLAG_NAMES)


if __name__ == '__main__':
  app.run(main)
