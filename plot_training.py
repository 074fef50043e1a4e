r"""Draws a run's training loss and evaluation accuracy into a PNG.

For people who do not open TensorBoard: the total loss comes from the
TensorBoard summaries in --train_dir, the accuracy of each evaluated
checkpoint from the metrics-<step>.json files in --eval_dir (optional).

    python plot_training.py --train_dir=out/tf1/train --eval_dir=out/tf1/eval \
      --output_file=out/tf1/training_curves.png
"""

from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level

from cli import common_flags
from cli import script_utils
from training import curves

PROGRAM = 'plot_training.py'


def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  define = common_flags.define
  define(flags.DEFINE_string, 'train_dir', None,
         'The training directory whose TensorBoard summaries hold the loss.',
         flag_values)
  define(flags.DEFINE_string, 'eval_dir', None,
         'Optional: the evaluation directory whose metrics-<step>.json files '
         'hold the accuracy of each evaluated checkpoint.', flag_values)
  define(flags.DEFINE_string, 'output_file', None,
         'Where to write the PNG.', flag_values)
  define(flags.DEFINE_string, 'title', None, 'Optional title of the plot.',
         flag_values)


common_flags.register_script_flags(define_flags, PROGRAM, __name__)
FLAGS = flags.FLAGS


def run(flag_values):
  """Reads the curves and writes the plot; returns the `curves.Curves`."""
  with script_utils.command_line_errors():
    for name in ('train_dir', 'output_file'):
      if not flag_values[name].value:
        raise script_utils.ScriptError(
            '--%s is required (see --helpshort).' % name)
    found = curves.read_curves(flag_values.train_dir, flag_values.eval_dir)
    curves.write_plot(found, flag_values.output_file, flag_values.title)
  last_step, last_loss = found.loss[-1]
  accuracy = ('; accuracy %.1f %% at step %d' %
              (100.0 * found.accuracy[-1][1], found.accuracy[-1][0])
              if found.accuracy else '')
  print('Wrote %s: loss at %d points up to step %d (last %.3f)%s.' %
        (flag_values.output_file, len(found.loss), last_step, last_loss,
         accuracy))
  return found


main = common_flags.script_main(PROGRAM, run)


if __name__ == '__main__':
  app.run(main)
