"""Training curves as a PNG, for people who do not open TensorBoard.

`read_curves` takes the total loss from a training directory's TensorBoard
events (tensorboard's own event reader, which also handles the several
events files of a resumed run) and the accuracy of each evaluated
checkpoint from the `metrics-<step>.json` files an evaluation directory
holds. `write_plot` draws both against the global step with matplotlib's
Agg canvas (no display needed) and writes the file atomically.
"""

import collections
import contextlib
import glob
import io
import json
import logging
import os
import re

from core import atomic_files
from core import errors

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

LOSS_TAG = 'Losses/total_loss'
_METRICS_FILE = re.compile(r'^metrics-(\d+)\.json$')

# Each a list of (global step, value), by step.
Curves = collections.namedtuple('Curves', ['loss', 'accuracy'])


class CurvesError(errors.InputError):
  """No curve to draw, or the plot cannot be written."""


@contextlib.contextmanager
def _quiet(*logger_names):
  """Holds back INFO and WARNING records of the named Python loggers:
  tensorboard's reader notes each graph event of a resumed run, and
  matplotlib that it built its font cache; neither needs an action."""
  loggers = [logging.getLogger(name) for name in logger_names]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def read_loss(train_dir):
  """(step, total loss) of every summary written to `train_dir`."""
  if not glob.glob(os.path.join(train_dir, '*tfevents*')):
    return []  # (tensorboard 1.15's reader fails on a folder without any)
  # Imported here: tensorboard is needed only by whoever plots.
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  accumulator = event_accumulator.EventAccumulator(
      train_dir, size_guidance={event_accumulator.SCALARS: 0})
  with _quiet('tensorboard'):
    accumulator.Reload()
  if LOSS_TAG not in accumulator.Tags().get('scalars', []):
    return []
  by_step = {e.step: e.value for e in accumulator.Scalars(LOSS_TAG)}
  return sorted(by_step.items())


def read_accuracy(eval_dir):
  """(step, accuracy) of each `metrics-<step>.json` in `eval_dir`."""
  points = []
  for path in glob.glob(os.path.join(eval_dir, 'metrics-*.json')):
    match = _METRICS_FILE.match(os.path.basename(path))
    if not match:
      continue
    try:
      with open(path) as f:
        accuracy = json.load(f).get('Accuracy')
    except (OSError, ValueError):
      continue  # A damaged file is skipped, not plotted.
    if isinstance(accuracy, (int, float)):
      points.append((int(match.group(1)), float(accuracy)))
  return sorted(points)


def read_curves(train_dir, eval_dir=None):
  """The `Curves` of a run.

  Raises:
    CurvesError: `train_dir` holds no loss summary.
  """
  if not os.path.isdir(train_dir):
    raise CurvesError('%s is not a directory.' % ref('train_dir', train_dir))
  loss = read_loss(train_dir)
  if not loss:
    raise CurvesError(
        '%s holds no %s summary to plot: it was trained with summaries off '
        '(save_summaries_secs=0), or has not written one yet. Train with '
        'summaries on, e.g. %s.' % (ref('train_dir', train_dir), LOSS_TAG,
                                    ref('save_summaries_steps', 50)))
  accuracy = read_accuracy(eval_dir) if eval_dir else []
  return Curves(loss, accuracy)


def _figure(curves, title):
  """The matplotlib figure of `curves`, on an Agg canvas: no pyplot, so no
  display is needed and no user backend is changed."""
  from matplotlib import figure  # pylint: disable=g-import-not-at-top
  from matplotlib.backends import backend_agg  # pylint: disable=g-import-not-at-top
  fig = figure.Figure(figsize=(7, 4))
  backend_agg.FigureCanvasAgg(fig)
  loss_axes = fig.add_subplot(1, 1, 1)
  steps, values = zip(*curves.loss)
  loss_axes.plot(steps, values, color='tab:blue', label='training loss')
  loss_axes.set_xlabel('global step')
  loss_axes.set_ylabel('total loss (training batches)', color='tab:blue')
  if curves.accuracy:
    accuracy_axes = loss_axes.twinx()
    steps, values = zip(*curves.accuracy)
    accuracy_axes.plot(steps, [100.0 * v for v in values], 'o-',
                       color='tab:red', label='evaluation accuracy')
    accuracy_axes.set_ylim(0, 100)
    accuracy_axes.set_ylabel('evaluation accuracy (%)', color='tab:red')
    for step, value in curves.accuracy[-1:]:
      accuracy_axes.annotate('%.1f %%' % (100.0 * value), (step, 100 * value),
                             textcoords='offset points', xytext=(-40, -14))
  if title:
    loss_axes.set_title(title)
  fig.tight_layout()
  return fig


def write_plot(curves, output_file, title=None):
  """Draws `curves` into the PNG `output_file` (written atomically).

  Raises:
    CurvesError: the file cannot be written.
  """
  data = io.BytesIO()
  with _quiet('matplotlib'):
    _figure(curves, title).savefig(data, format='png', dpi=100)
  directory = os.path.dirname(output_file)
  try:
    if directory:
      os.makedirs(directory, exist_ok=True)
    atomic_files.write_atomically(output_file, data.getvalue())
  except Exception as e:  # pylint: disable=broad-except
    raise CurvesError('Cannot write %s: %s' %
                      (ref('output_file', output_file),
                       str(e).split('\n')[0]))
  return output_file
