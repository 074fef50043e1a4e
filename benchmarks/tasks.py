"""One benchmark measurement, run in a process of its own.

Dispatches a task name to the module that measures it: `workloads` (the
environment, model analysis, the dataset, training steps), `inference`,
`exports` and `e2e`. It sits above all of them, so none imports it back.
"""

import sys

from benchmarks import e2e
from benchmarks import exports
from benchmarks import inference
from benchmarks import workloads


def _measure(task, spec):
  if task in e2e.TASKS:
    return e2e.TASKS[task](spec)
  if task == 'infer':
    return inference.infer(spec)
  if task == 'export':
    return exports.export_model(spec)
  return workloads.TASKS[task](spec)


def run_task(task, spec):
  """Runs one task in this (fresh) process and adds its memory figures.

  Args:
    task: a key of `workloads.TASKS` or `e2e.TASKS`, 'infer'
      (benchmarks/inference.py) or 'export' (benchmarks/exports.py).
    spec: the task's parameters (a dict); `convert_in_process` True runs
      TF 1.15's TFLite conversions here
      (`workloads.convert_tflite_in_process`).

  Returns:
    The task's result dict plus `rss_start_mib` (resident memory when the
    task started: the interpreter and imported TensorFlow) and
    `peak_rss_mib` (this process's peak resident memory).
  """
  start_memory = workloads.memory_mib()
  if spec.get('convert_in_process'):
    workloads.convert_tflite_in_process()
  result = _measure(task, spec)
  result['rss_start_mib'] = start_memory['rss']
  result.setdefault('peak_rss_mib', workloads.memory_mib()['peak'])
  sys.stdout.flush()
  return result
