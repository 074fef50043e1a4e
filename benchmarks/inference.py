"""The `infer` task: how fast an exported model classifies.

Batch-1 latency and batch-N throughput of one model in one of
`workloads.FORMATS`: the checkpoint's inference graph, the frozen graph, or
a float or int8 TFLite model (made by the `export` task,
benchmarks/exports.py). Run by `tasks.run_task` in a process of its own.
"""


import time

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from benchmarks import workloads
from export import freeze
from export import inference_graph
from export import onnx_model
from export import tflite

INPUT_NAME = inference_graph.INPUT_NODE_NAME
NUM_CLASSES = workloads.NUM_CLASSES


class _GraphRunner(object):
  """Runs a checkpoint graph or frozen graph on numpy batches."""

  def __init__(self, spec, fmt):
    self._graph = tf.Graph()
    with self._graph.as_default():
      if fmt == 'frozen':
        tf.import_graph_def(freeze.load_graph_def(spec['frozen']), name='')
        self._images = self._graph.get_tensor_by_name(INPUT_NAME + ':0')
        self._output = self._graph.get_tensor_by_name(
            spec['output_name'] + ':0')
      elif spec['impl'] == 'ours':
        net = inference_graph.build_inference_graph(
            spec['model_name'], NUM_CLASSES, image_size=spec['image_size'])
        self._images, self._output = net.images, net.predictions
      else:
        self._images = tf.placeholder(
            tf.float32, [None, spec['image_size'], spec['image_size'], 3],
            name=INPUT_NAME)
        _, self._output, _ = workloads.build_network(
            'keras', spec['model_name'], self._images, False)
      saver = tf.train.Saver() if fmt == 'checkpoint' else None
    self._graph.finalize()
    self._sess = tf.Session(graph=self._graph,
                            config=workloads.session_config(spec['settings']))
    workloads.keep_open(self._sess)
    if saver is not None:
      saver.restore(self._sess, spec['checkpoint'])

  def prepare(self, batch):
    return batch

  def run(self, batch):
    return self._sess.run(self._output, {self._images: batch})

  def profile(self, batch, trace_path):
    return workloads.traced_run(self._sess, self._output,
                                {self._images: batch}, trace_path)

  def close(self):
    pass  # See workloads.keep_open.


class _TFLiteRunner(object):
  """Runs a TFLite model (fixed batch) on numpy batches."""

  def __init__(self, path, num_threads):
    self._interpreter = tflite.make_interpreter(model_path=path,
                                                num_threads=num_threads)
    self._interpreter.allocate_tensors()
    details = self._interpreter.get_input_details()[0]
    self._input = details['index']
    self._input_dtype = details['dtype']
    self._input_quantization = details['quantization']
    self._output = self._interpreter.get_output_details()[0]['index']

  def prepare(self, batch):
    """`batch` in the model's input type (quantized for integer models)."""
    return workloads.quantize_input(batch, self._input_dtype,
                                    self._input_quantization)

  def run(self, batch):
    self._interpreter.set_tensor(self._input, batch)
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output)

  def close(self):
    self._interpreter = None


class _OnnxRunner(object):
  """Runs an ONNX model (any batch size) in ONNX Runtime."""

  def __init__(self, path, num_threads):
    self._runner = onnx_model.OnnxRunner(model_path=path,
                                         num_threads=num_threads)

  def prepare(self, batch):
    return batch

  def run(self, batch):
    return self._runner.run(batch)

  def close(self):
    self._runner = None


def _random_batch(batch_size, image_size):
  rng = np.random.RandomState(workloads.SEED)
  return rng.uniform(-1, 1, [batch_size, image_size, image_size, 3]).astype(
      np.float32)


def infer(spec):
  """Batch-1 latency and batch-N throughput of one exported model.

  Batch 1 runs first, so the peak memory read after it is batch 1's.

  Args:
    spec: dict with `impl`, `model_name`, `format` ('checkpoint', 'frozen',
      'tflite', 'tflite_int8' or 'onnx'), `image_size`, `infer_batch_size`,
      `warmup_iters`, `latency_iters`, `throughput_iters`, `settings`, and
      the paths from `export`. 'tflite_int8' takes the float images
      quantized to its uint8 input (before timing).

  Returns:
    dict with `latency_ms` (median), `latency_ms_p90`, `images_per_sec`
    and `images_per_cpu_sec` (batch N), `peak_rss_b1_mib`, `load_s`, and
    with `profile` in the spec (graph formats), the `profile` of one more
    batch-N run (a Chrome trace goes to `trace_path` if given).
  """
  fmt = spec['format']
  if fmt not in workloads.FORMATS:
    raise ValueError('format must be one of %s, got %r.' %
                     (', '.join(workloads.FORMATS), fmt))
  image_size, batch_size = spec['image_size'], spec['infer_batch_size']
  threads = spec['settings']['intra_op_threads']

  start = time.time()
  if fmt.startswith('tflite'):
    runner = _TFLiteRunner(spec[fmt + '_b1'], threads)
  elif fmt == 'onnx':
    runner = _OnnxRunner(spec['onnx'], threads)
  else:
    runner = _GraphRunner(spec, fmt)
  load_s = time.time() - start

  one = runner.prepare(_random_batch(1, image_size))
  probabilities = runner.run(one)
  if probabilities.shape != (1, NUM_CLASSES):
    raise ValueError('%s %s output shape %s, expected (1, %d).' %
                     (spec['impl'], fmt, probabilities.shape, NUM_CLASSES))
  for _ in range(spec['warmup_iters']):
    runner.run(one)
  latencies = []
  for _ in range(spec['latency_iters']):
    start = time.perf_counter()
    runner.run(one)
    latencies.append(time.perf_counter() - start)
  peak_b1 = workloads.memory_mib()['peak']

  if fmt.startswith('tflite'):
    runner.close()
    runner = _TFLiteRunner(spec[fmt + '_bN'], threads)
  batch = runner.prepare(_random_batch(batch_size, image_size))
  runner.run(batch)  # Warm-up: kernels are set up per input shape.
  cpu_start = workloads.cpu_seconds()
  start = time.perf_counter()
  for _ in range(spec['throughput_iters']):
    runner.run(batch)
  elapsed = time.perf_counter() - start
  cpu_s = workloads.cpu_seconds() - cpu_start
  images = batch_size * spec['throughput_iters']
  latencies_ms = np.array(latencies) * 1000.0
  result = {'latency_ms': float(np.median(latencies_ms)),
            'latency_ms_p90': float(np.percentile(latencies_ms, 90)),
            'images_per_sec': images / elapsed,
            'images_per_cpu_sec': images / cpu_s, 'cpu_s': cpu_s,
            'peak_rss_b1_mib': peak_b1, 'load_s': load_s,
            # Before any tracing:
            'peak_rss_mib': workloads.memory_mib()['peak']}
  if spec.get('profile') and fmt in ('checkpoint', 'frozen'):
    result['profile'] = runner.profile(batch, spec.get('trace_path'))
  runner.close()
  return result
