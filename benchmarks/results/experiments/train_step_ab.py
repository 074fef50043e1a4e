"""In-process A/B of one training step's time: batch-norm kind, inter-op threads.

Usage (repo root): python benchmarks/results/experiments/train_step_ab.py
    MODEL FUSED INTER_OP   e.g. mobilenet_v2 false 2
FUSED: true / false / none (slim picks); INTER_OP: inter-op threads (intra 2).
Runs the benchmark's own training task (`workloads.train`: synthetic batch of
16 at 224x224, RMSProp, 6 classes) with slim's batch norm set to FUSED, and
prints the median of 8 steps after 3 untimed ones.
"""
import os
import sys

sys.path.insert(0, os.getcwd())
from core import tf_compat  # noqa: F401,E402  (before tf_slim)
import numpy as np  # noqa: E402
import tf_slim as slim  # noqa: E402

from benchmarks import workloads  # noqa: E402

model, fused, inter_op = sys.argv[1], sys.argv[2], int(sys.argv[3])
fused = {'true': True, 'false': False, 'none': None}[fused]
spec = {'impl': 'ours', 'model_name': model, 'input': 'synthetic',
        'image_size': 224, 'train_batch_size': 16, 'num_classes': 6,
        'warmup_steps': 3, 'train_steps': 8,
        'settings': {'intra_op_threads': 2, 'inter_op_threads': inter_op}}
# The task builds its graph inside this call, so the scope reaches it.
with slim.arg_scope([slim.batch_norm], fused=fused):
  result = workloads.train(spec)
step = np.median(result['step_times_s'])
print('%s fused=%s inter_op=%d: %.3f s per step, %.1f images/s' %
      (model, fused, inter_op, step, 16 / step))
