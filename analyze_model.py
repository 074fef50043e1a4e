r"""Prints a network's parameters and multiply-adds (MACs), layer by layer.

    python analyze_model.py --model_name=mobilenet_v1 --image_size=224
    python -m nets.model_analysis --model_name=mobilenet_v2 \
        --depth_multiplier=0.5

Both commands are this script: `python -m nets.model_analysis` hands its
command line over here, since nets/ defines no flags. The counting itself
is `nets.model_analysis.analyze`.
"""

from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level

from cli import common_flags
from nets import model_analysis
from nets import nets_factory

PROGRAM = 'analyze_model.py'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  define = common_flags.define
  define(flags.DEFINE_string, 'model_name', 'mobilenet_v1',
         'Network to analyse: one of %s.' %
         ', '.join(nets_factory.model_names()), flag_values)
  define(flags.DEFINE_integer, 'image_size', None,
         'Input height and width; unset: the network\'s default size.',
         flag_values)
  define(flags.DEFINE_float, 'depth_multiplier', None,
         'Width multiplier of the layers; unset: the network\'s own.',
         flag_values)
  define(flags.DEFINE_integer, 'num_classes', 1001,
         'Classes of the logits layer.', flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """This script's flags parsed from `argv` into a `FlagValues` of their own."""
  return common_flags.parse_flags(define_flags, PROGRAM, argv)


def run(flag_values):
  """Prints the table the flags ask for; returns the analysis."""
  result = model_analysis.analyze(
      flag_values.model_name, flag_values.image_size,
      depth_multiplier=flag_values.depth_multiplier,
      num_classes=flag_values.num_classes)
  print(model_analysis.format_table(result))
  return result


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
