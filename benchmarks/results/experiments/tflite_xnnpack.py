"""TFLite batch-1 latency of mobilenet_v1 1.0/224: XNNPACK on/off, 1 or 2 threads (see the .txt)."""
import os, sys, time, tempfile
sys.path.insert(0, os.getcwd())  # Run from the repo root.
import numpy as np
from benchmarks import workloads
import tensorflow.compat.v1 as tf
d = tempfile.mkdtemp()
paths = workloads.export_model({'impl': 'ours', 'model_name': 'mobilenet_v1', 'image_size': 224,
                                'infer_batch_size': 1, 'export_dir': d})
x = np.random.RandomState(0).uniform(-1, 1, [1, 224, 224, 3]).astype(np.float32)
R = tf.lite.experimental.OpResolverType
for name, kw in [('default(xnnpack) t2', dict(num_threads=2)),
                 ('default(xnnpack) t1', dict(num_threads=1)),
                 ('builtin no delegates t2', dict(num_threads=2, experimental_op_resolver_type=R.BUILTIN_WITHOUT_DEFAULT_DELEGATES)),
                 ('builtin no delegates t1', dict(num_threads=1, experimental_op_resolver_type=R.BUILTIN_WITHOUT_DEFAULT_DELEGATES))]:
  it = tf.lite.Interpreter(model_path=paths['tflite_b1'], **kw)
  it.allocate_tensors()
  i = it.get_input_details()[0]['index']
  for _ in range(3):
    it.set_tensor(i, x); it.invoke()
  ts = []
  for _ in range(20):
    s = time.perf_counter(); it.set_tensor(i, x); it.invoke(); ts.append(time.perf_counter() - s)
  print('%-26s median %.2f ms  min %.2f ms' % (name, 1000 * np.median(ts), 1000 * min(ts)))
