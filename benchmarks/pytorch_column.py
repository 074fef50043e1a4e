"""The benchmark's optional PyTorch column: finding torch, running, reporting.

PyTorch is never a requirement of the project. When an interpreter with
torch, torchvision and timm is at hand (`--pytorch_python`, by default this
interpreter if it can import torch), the benchmark adds, for each model that
has a PyTorch equivalent (`models.PYTORCH_EQUIVALENTS`), the implementations
`pytorch_nchw` and `pytorch_channels_last` to its `train_synthetic` and
`infer_frozen` measurements, interleaved with ours and Keras in the same
plan. Each PyTorch measurement runs `benchmarks/pytorch_tasks.py` in a
process of that interpreter; without one, the column is left out with a
note saying how to add it.

This module imports neither TensorFlow nor torch.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import models
from benchmarks import report
from benchmarks import runner

TASKS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'pytorch_tasks.py')
IMPLEMENTATIONS = models.PYTORCH_IMPLEMENTATIONS
INSTALL_HINT = (
    'To add it, install PyTorch in any Python 3 environment (e.g. `python3 '
    '-m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch '
    'torchvision timm --index-url https://download.pytorch.org/whl/cpu '
    '--extra-index-url https://pypi.org/simple`) and pass '
    '--pytorch_python=/tmp/torchenv/bin/python.')
# Goals: our training images/s over PyTorch's best layout.
TRAIN_VS_PYTORCH = 1.5


class PyTorchRunner(object):
  """Runs pytorch_tasks.py tasks in a process of interpreter `python`.

  Args:
    python: the interpreter (path or command) that has torch.
    timeout_s: seconds a task may run before it is killed.
    log_dir: where each task's console output goes (None: discarded).
  """

  def __init__(self, python, timeout_s=600, log_dir=None):
    self.python = python
    self._timeout_s = timeout_s
    self._log_dir = log_dir
    self._count = 0

  def run(self, task, spec):
    """(result dict, wall seconds); raises runner.TaskError on failure."""
    self._count += 1
    scratch = tempfile.mkdtemp(prefix='pytorch_task_')
    spec_path = os.path.join(scratch, 'spec.json')
    result_path = os.path.join(scratch, 'result.json')
    with open(spec_path, 'w') as f:
      json.dump(spec, f)
    log_path = (os.path.join(self._log_dir, 'pytorch_%03d_%s.log' % (
        self._count, task)) if self._log_dir else os.devnull)
    start = time.time()
    try:
      with open(log_path, 'w') as log:
        returncode = subprocess.call(
            [self.python, TASKS_SCRIPT, task, spec_path, result_path],
            stdout=log, stderr=subprocess.STDOUT, timeout=self._timeout_s)
      if returncode == 0 and os.path.exists(result_path):
        with open(result_path) as f:
          return json.load(f), time.time() - start
      message = 'exited with status %d' % returncode
    except subprocess.TimeoutExpired:
      message = 'timed out after %d s' % self._timeout_s
    except OSError as e:
      message = 'could not start %s: %s' % (self.python, e)
    finally:
      for path in (spec_path, result_path):
        if os.path.exists(path):
          os.remove(path)
      os.rmdir(scratch)
    tail = ''
    if self._log_dir and os.path.exists(log_path):
      with open(log_path) as f:
        tail = '\n' + f.read()[-3000:]
    raise runner.TaskError('PyTorch task %s (%s) %s (log: %s)%s' % (
        task, self.python, message, log_path, tail))


def find_interpreter(flag_value, current=sys.executable):
  """The interpreter to run PyTorch in, or None with the reason.

  Args:
    flag_value: --pytorch_python: '' (this interpreter if it has torch),
      'none' (no PyTorch column), or an interpreter.
    current: this interpreter.

  Returns:
    (interpreter or None, note explaining a None).
  """
  if flag_value == 'none':
    return None, 'PyTorch column off (--pytorch_python=none).'
  if flag_value:
    return flag_value, ''
  if importlib.util.find_spec('torch') is not None:
    return current, ''
  return None, ('PyTorch column skipped: this interpreter (%s) has no torch. '
                '%s' % (current, INSTALL_HINT))


def probe(flag_value, timeout_s=600, log_dir=None, current=sys.executable):
  """Finds PyTorch and asks it for its versions.

  Returns:
    (PyTorchRunner or None, environment dict or None, note). A given
    --pytorch_python that cannot run the tasks raises instead.

  Raises:
    runner.TaskError: --pytorch_python names an interpreter that failed.
  """
  python, note = find_interpreter(flag_value, current)
  if python is None:
    return None, None, note
  tasks = PyTorchRunner(python, timeout_s, log_dir)
  try:
    environment, _ = tasks.run('environment', {})
  except runner.TaskError as e:
    if flag_value:
      raise runner.TaskError(
          '--pytorch_python=%s cannot run the PyTorch tasks; it needs torch, '
          'torchvision and timm. %s\n%s' % (flag_value, INSTALL_HINT, e))
    return None, None, ('PyTorch column skipped: torch is importable here '
                        'but the tasks failed (%s). %s' % (
                            str(e).splitlines()[0], INSTALL_HINT))
  return tasks, environment, ''


def implementations_for(model, measurement):
  """The PyTorch implementations a (model, measurement) gets."""
  if (model in models.PYTORCH_EQUIVALENTS and
      measurement in models.PYTORCH_MEASUREMENTS):
    return list(IMPLEMENTATIONS)
  return []


def measure_spec(opts, model, measurement, impl):
  """(task, spec) of one PyTorch measurement, sized as ours and Keras."""
  task = models.PYTORCH_MEASUREMENTS[measurement]
  spec = {'model_name': model, 'image_size': opts['image_size'],
          'settings': opts['settings'],
          'layout': impl[len('pytorch_'):]}
  if task == 'train':
    spec.update(train_batch_size=opts['train_batch_size'],
                warmup_steps=opts['warmup_steps'],
                train_steps=opts['train_steps'])
  else:
    spec.update(infer_batch_size=opts['infer_batch_size'],
                warmup_iters=opts['warmup_iters'],
                latency_iters=opts['latency_iters'],
                throughput_iters=opts['throughput_iters'])
  return task, spec


def _median_of(records, key):
  values = [r['result'][key] for r in records if key in r.get('result', {})]
  return report.median(values) if values else None


def summarize(records, model_names):
  """Medians per (model, measurement) of every implementation, and ratios.

  Args:
    records: the benchmark's raw runs (all implementations).
    model_names: models in report order.

  Returns:
    A list of rows: `model`, `measurement`, `medians` ({impl: {metric:
    median}} of the implementations with a successful run) and, where
    PyTorch ran, `ours_vs_pytorch` (ours / the faster PyTorch layout, in
    images/s) and `best_pytorch` (that layout).
  """
  rows = []
  for model in model_names:
    for measurement in models.PYTORCH_MEASUREMENTS:
      medians = {}
      for impl in models.IMPLEMENTATIONS + IMPLEMENTATIONS:
        group = [r for r in records if 'result' in r and
                 (r['model'], r['measurement'], r['impl']) ==
                 (model, measurement, impl)]
        if group:
          medians[impl] = {key: _median_of(group, key) for key in (
              'images_per_sec', 'latency_ms', 'first_step_s')}
          medians[impl]['runs'] = len(group)
      ran = [impl for impl in IMPLEMENTATIONS if impl in medians]
      if not ran:
        continue
      row = {'model': model, 'measurement': measurement, 'medians': medians}
      best = max(ran, key=lambda impl: medians[impl]['images_per_sec'])
      row['best_pytorch'] = best
      if 'ours' in medians:
        row['ours_vs_pytorch'] = (medians['ours']['images_per_sec'] /
                                  medians[best]['images_per_sec'])
      rows.append(row)
  return rows


def check_targets(rows):
  """Training images/s ours / PyTorch's best layout >= TRAIN_VS_PYTORCH."""
  targets = []
  for row in rows:
    if row['measurement'] != 'train_synthetic':
      continue
    value = row.get('ours_vs_pytorch')
    targets.append({
        'target': 'train_vs_pytorch', 'model': row['model'], 'value': value,
        'goal': TRAIN_VS_PYTORCH, 'higher_is_better': True,
        'met': None if value is None else value >= TRAIN_VS_PYTORCH,
        'description': 'training img/s ours/PyTorch %s (synthetic input)' %
                       row['best_pytorch'][len('pytorch_'):]})
  return targets


def _cell(metrics, key, digits):
  if not metrics or metrics.get(key) is None:
    return '-'
  return '%.*f' % (digits, metrics[key])


def markdown(section):
  """The PyTorch column's Markdown (the `pytorch` entry of the results)."""
  lines = ['### Against PyTorch', '']
  if not section.get('environment'):
    return lines + [section.get('note') or 'PyTorch column not run.', '']
  env = section['environment']
  lines.append('- PyTorch %s (torchvision %s, timm %s, Python %s) in `%s`; '
               'CPU capability %s; %s' % (
                   env['torch'], env['torchvision'], env['timm'],
                   env['python'], section['python'], env['cpu_capability'],
                   env['onednn']))
  lines.append('- Same threads, batch, steps and RMSProp as ours; `train`: '
               'forward, cross-entropy, backward, update on a synthetic '
               'batch; `infer`: eager `torch.inference_mode` beside our '
               'frozen graph; images/s (batch-1 ms for inference)')
  lines.append('')
  header = ['model', 'measurement', 'ours', 'keras', 'pytorch NCHW',
            'pytorch channels_last', 'ours/pytorch best']
  table = []
  for row in section['rows']:
    medians = row['medians']
    cells = [row['model'], report.LABELS[row['measurement']]]
    for impl in models.IMPLEMENTATIONS + IMPLEMENTATIONS:
      metrics = medians.get(impl)
      cell = _cell(metrics, 'images_per_sec', 1)
      if row['measurement'] != 'train_synthetic' and metrics:
        cell += ' (%s ms)' % _cell(metrics, 'latency_ms', 1)
      cells.append(cell)
    ratio = row.get('ours_vs_pytorch')
    cells.append('-' if ratio is None else '%.2fx' % ratio)
    table.append(cells)
  lines.extend(report._table(header, table))  # pylint: disable=protected-access
  lines.append('')
  return lines
