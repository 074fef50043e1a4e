"""Frozen-graph inference of TF 1.15 stock vs intel-tensorflow under OpenMP settings.

Usage (repo root, both TF 1.15 environments built):
    python benchmarks/results/experiments/tf1_onednn_threads.py WORK_DIR [ROUNDS]
Exports one frozen mobilenet_v1 (random weights, batch norms folded) with
the stock interpreter, then, for ROUNDS rounds (default 3) with the order
rotated each round, runs the benchmark's `infer` task (batch-1 latency over
15 runs, batch 32 images/s) in a fresh process of each configuration below,
and prints the medians. OpenMP reads its variables at start, so each
configuration is a process of its own.
"""
import json
import os
import subprocess
import sys

STOCK = '.venv/tf1/bin/python'
ONEDNN = '.venv/tf1-onednn/bin/python'
# name -> (interpreter, environment added).
CONFIGS = [
    ('stock', STOCK, {}),
    ('onednn', ONEDNN, {}),
    ('onednn KMP_BLOCKTIME=0', ONEDNN, {'KMP_BLOCKTIME': '0'}),
    ('onednn KMP_BLOCKTIME=1', ONEDNN, {'KMP_BLOCKTIME': '1'}),
    ('onednn OMP_NUM_THREADS=2 KMP_BLOCKTIME=1', ONEDNN,
     {'OMP_NUM_THREADS': '2', 'KMP_BLOCKTIME': '1'}),
    ('onednn OMP_NUM_THREADS=1 KMP_BLOCKTIME=0', ONEDNN,
     {'OMP_NUM_THREADS': '1', 'KMP_BLOCKTIME': '0'}),
]
SETTINGS = {'intra_op_threads': 2, 'inter_op_threads': 2, 'xla': False}
TASK = """
import json, sys
sys.path.insert(0, '.')
from benchmarks import tasks
print('RESULT ' + json.dumps(tasks.run_task(sys.argv[1], json.loads(sys.argv[2]))))
"""


def run_task(python, task, spec, extra_env=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **(extra_env or {}))
  out = subprocess.run([python, '-c', TASK, task, json.dumps(spec)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env, check=False)
  for line in out.stdout.splitlines():
    if line.startswith('RESULT '):
      return json.loads(line[len('RESULT '):])
  raise RuntimeError(out.stderr[-3000:])


def main():
  work_dir = os.path.abspath(sys.argv[1])
  rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
  exported = run_task(STOCK, 'export', {
      'impl': 'ours', 'model_name': 'mobilenet_v1', 'image_size': 224,
      'infer_batch_size': 32, 'int8': False, 'convert_in_process': True,
      'export_dir': os.path.join(work_dir, 'export')})
  spec = {'impl': 'ours', 'model_name': 'mobilenet_v1', 'image_size': 224,
          'format': 'frozen', 'frozen': exported['frozen'],
          'output_name': exported['output_name'], 'infer_batch_size': 32,
          'warmup_iters': 3, 'latency_iters': 15, 'throughput_iters': 2,
          'settings': SETTINGS}
  results = {name: [] for name, _, _ in CONFIGS}
  for round_index in range(rounds):
    shift = round_index % len(CONFIGS)
    for name, python, extra in CONFIGS[shift:] + CONFIGS[:shift]:
      result = run_task(python, 'infer', spec, extra)
      load = os.getloadavg()[0]
      results[name].append((result['latency_ms'], result['images_per_sec']))
      print('round %d %-42s b1 %7.1f ms  b32 %5.1f img/s  (load %.2f)' % (
          round_index + 1, name, result['latency_ms'],
          result['images_per_sec'], load))
      sys.stdout.flush()
  print('medians over %d rounds:' % rounds)
  for name, values in results.items():
    latencies = sorted(v[0] for v in values)
    rates = sorted(v[1] for v in values)
    print('%-42s b1 %7.1f ms  b32 %5.1f img/s' % (
        name, latencies[len(latencies) // 2], rates[len(rates) // 2]))


if __name__ == '__main__':
  main()
