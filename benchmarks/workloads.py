"""What one benchmark process measures: a training step or an inference run.

`benchmark.py` runs each measurement in a process of its own, which calls
`benchmarks.tasks.run_task(task, spec)`, so that peak memory (the process's
VmHWM) is that of one configuration. The tasks:

* `environment`: versions of Python, TensorFlow and Keras.
* `analyze`: multiply-adds and parameters per image (`nets.model_analysis`).
* `dataset`: writes a TFRecord set of larger `shapes` JPEGs.
* `export` (benchmarks/exports.py): a random-weight checkpoint, its frozen
  graph and float and int8 TFLite models, for our network (with the
  project's `export` package) or for Keras.
* `train`: images/s of training steps (RMSProp, softmax cross-entropy) on a
  synthetic in-memory batch or on TFRecords through `input_pipeline` with
  inception preprocessing.
* `infer` (benchmarks/inference.py): batch-1 latency and batch-N throughput
  of a checkpoint graph, a frozen graph or a TFLite model.

"ours" is the slim network from `nets_factory`; "keras" is the matching
`keras.applications` model (same width, input size, 1001 classes) built in
the same graph-mode TensorFlow: `tf.keras` on TF 1.15, and on TF 2 the
`tf_keras` package (Keras 2, which `tf.keras` is with TF_USE_LEGACY_KERAS=1),
because Keras 3 cannot build graph-mode (tf.compat.v1) models.
"""


import collections
import os
import platform
import resource
import sys
import time

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from benchmarks import models
from datasets import dataset_factory
from datasets import generate_shapes
from datasets import input_pipeline
from nets import model_analysis
from nets import nets_factory
from preprocessing import preprocessing_factory

if tf_compat.IS_TF2:
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  KERAS_DESCRIPTION = ('tf_keras %s (Keras 2: what tf.keras is with '
                       'TF_USE_LEGACY_KERAS=1; Keras 3 has no graph mode)' %
                       keras.__version__)
else:
  keras = tf.keras
  KERAS_DESCRIPTION = 'tf.keras %s' % keras.__version__

NUM_CLASSES = 1001
IMPLEMENTATIONS = models.IMPLEMENTATIONS
KERAS_EQUIVALENTS = models.KERAS_EQUIVALENTS
INPUTS = ('synthetic', 'tfrecord')
FORMATS = ('checkpoint', 'frozen', 'tflite', 'tflite_int8', 'onnx')

# The training script's default optimizer (train_image_classifier.py).
_RMSPROP = dict(learning_rate=0.01, decay=0.9, momentum=0.9, epsilon=1.0)
SEED = 0

# Sessions of measurements stay open until the process exits: on TF 1.15,
# closing a session while the training input pipeline (parallel TFRecord
# reads with large read buffers) is still running can crash the process.
_OPEN_SESSIONS = []


def keep_open(sess):
  """Holds `sess` open until the process exits (see _OPEN_SESSIONS)."""
  _OPEN_SESSIONS.append(sess)
  return sess


# ---------------------------------------------------------------- utilities


def memory_mib():
  """Current and peak resident memory of this process, in MiB.

  Returns:
    dict with `rss` (VmRSS) and `peak` (VmHWM; ru_maxrss where there is no
    /proc).
  """
  values = {}
  try:
    with open('/proc/self/status') as f:
      for line in f:
        key, _, rest = line.partition(':')
        if key in ('VmRSS', 'VmHWM'):
          values[key] = int(rest.split()[0]) / 1024.0  # kB -> MiB.
  except (IOError, OSError):
    pass
  if 'VmHWM' not in values:
    # Linux reports ru_maxrss in kB.
    values['VmHWM'] = resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024.0
  return {'rss': values.get('VmRSS', values['VmHWM']),
          'peak': values['VmHWM']}


def cpu_seconds():
  """User + system CPU time of this process (all its threads) so far."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def session_config(settings):
  """The tf.ConfigProto every measured session uses (ours and Keras alike).

  Args:
    settings: dict with `intra_op_threads`, `inter_op_threads` and `xla`
      (compile clusters with XLA: `global_jit_level=ON_1`).

  Returns:
    A `tf.ConfigProto`.
  """
  config = tf.ConfigProto(
      intra_op_parallelism_threads=settings['intra_op_threads'],
      inter_op_parallelism_threads=settings['inter_op_threads'],
      allow_soft_placement=True)
  if settings.get('xla'):
    config.graph_options.optimizer_options.global_jit_level = (
        tf.OptimizerOptions.ON_1)
  return config


def _op_type(node, graph):
  """The op type of a traced node (its timeline label, else the graph)."""
  label = node.timeline_label  # Usually "name = OpType(inputs)".
  if ' = ' in label:
    return label.split(' = ', 1)[1].split('(', 1)[0]
  name = node.node_name.split(':')[0]
  try:
    return graph.get_operation_by_name(name).type
  except (KeyError, ValueError):
    return name  # A node that graph optimizations created.


def traced_run(sess, fetches, feed_dict=None, trace_path=None, top=10):
  """Runs `fetches` once with full tracing; sums op time by op type.

  Args:
    sess: the session.
    fetches: what to run (a training step or an inference).
    feed_dict: its feeds.
    trace_path: where to write the Chrome trace (chrome://tracing,
      Perfetto), or None.
    top: how many op types to list.

  Returns:
    dict with `total_ms` (summed op time; more than the wall time when ops
    run in parallel) and `ops`: [op type, ms] of the `top` largest.
  """
  metadata = tf.RunMetadata()
  sess.run(fetches, feed_dict,
           options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
           run_metadata=metadata)
  totals = collections.Counter()
  devices = metadata.step_stats.dev_stats
  # TF 1.15 also reports every op again under '/host:CPU' (its host tracer).
  executed = [d for d in devices if not d.device.startswith('/host:')]
  for device in executed or devices:
    for node in device.node_stats:
      totals[_op_type(node, sess.graph)] += node.all_end_rel_micros
  if trace_path:
    # pylint: disable=g-import-not-at-top
    from tensorflow.python.client import timeline
    trace = timeline.Timeline(metadata.step_stats)
    with open(trace_path, 'w') as f:
      f.write(trace.generate_chrome_trace_format())
  return {'total_ms': sum(totals.values()) / 1000.0,
          'ops': [[op, us / 1000.0] for op, us in totals.most_common(top)]}


def keras_model(model_name, image_size, num_classes=NUM_CLASSES,
                applications=None):
  """The keras.applications equivalent of `model_name`, random weights.

  `applications`: another Keras's applications module (e.g. Keras 3's);
  default this process's `keras.applications`.
  """
  applications = applications or keras.applications
  if model_name not in KERAS_EQUIVALENTS:
    raise ValueError('No Keras equivalent of %r is known; models with one: '
                     '%s.' % (model_name, ', '.join(sorted(KERAS_EQUIVALENTS))))
  class_name, alpha = KERAS_EQUIVALENTS[model_name]
  if not hasattr(applications, class_name):
    raise ValueError('%s has no %s.' % (applications.__name__, class_name))
  kwargs = {}
  if class_name.startswith('MobileNetV3'):
    # Its built-in rescaling expects [0, 255]; ours takes [-1, 1] images.
    kwargs['include_preprocessing'] = False
  return getattr(applications, class_name)(
      input_shape=(image_size, image_size, 3), alpha=alpha, weights=None,
      classes=num_classes, **kwargs)


def build_network(impl, model_name, images, is_training,
                  num_classes=NUM_CLASSES):
  """Builds our network or the Keras one on `images`.

  Args:
    impl: 'ours' or 'keras'.
    model_name: a nets_factory name.
    images: float32 [batch, size, size, 3] tensor.
    is_training: training mode (batch statistics, dropout).
    num_classes: outputs of the head.

  Returns:
    (logits, probabilities, update_ops): update_ops are the batch norm
    moving-average updates to run with each training step.

  Raises:
    ValueError: for an unknown implementation or model.
  """
  if impl == 'ours':
    network_fn = nets_factory.get_network_fn(
        model_name, num_classes, weight_decay=0.0, is_training=is_training)
    logits, end_points = network_fn(images)
    return (logits, end_points['Predictions'],
            tf.get_collection(tf.GraphKeys.UPDATE_OPS))
  if impl != 'keras':
    raise ValueError('impl must be one of %s, got %r.' %
                     (', '.join(IMPLEMENTATIONS), impl))
  image_size = images.get_shape().as_list()[1]
  model = keras_model(model_name, image_size, num_classes)
  probabilities = model(images, training=is_training)
  # The applications end in a softmax; its input are the logits (Keras's own
  # cross-entropy takes them the same way).
  if probabilities.op.type != 'Softmax':
    raise ValueError('Expected the Keras model to end in a Softmax, found %s.'
                     % probabilities.op.type)
  logits = probabilities.op.inputs[0]
  update_ops = model.get_updates_for(images) if is_training else []
  if is_training and not update_ops:
    raise ValueError('The Keras model made no batch norm updates.')
  return logits, probabilities, update_ops


# -------------------------------------------------------------------- tasks


def _onednn_description():
  """Whether this TensorFlow runs oneDNN kernels, and who chose (the report)."""
  state = 'on' if tf_compat.onednn_enabled() else 'off'
  if tf_compat.ONEDNN_SETTING == 'not applicable':
    return state + (' (intel-tensorflow build)' if state == 'on' else
                    ' (TF 1.15: Eigen kernels)')
  return '%s (%s=%s, %s)' % (state, tf_compat.ONEDNN_VARIABLE,
                             os.environ.get(tf_compat.ONEDNN_VARIABLE),
                             tf_compat.ONEDNN_SETTING)


def environment(_):
  """Versions of the stack this process runs."""
  return {
      'nets': sorted(nets_factory.networks_map),
      'keras_applications': sorted(
          name for name, _ in KERAS_EQUIVALENTS.values()
          if hasattr(keras.applications, name)),
      'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'stack': 'tf2' if tf_compat.IS_TF2 else 'tf1',
      'keras': KERAS_DESCRIPTION,
      'numpy': np.__version__,
      'onednn_opts': _onednn_description(),
      'tf_xla_flags': os.environ.get('TF_XLA_FLAGS', ''),
  }


def analyze(spec):
  """Multiply-adds and trainable parameters per image of our network."""
  result = model_analysis.analyze(spec['model_name'], spec['image_size'],
                                  num_classes=NUM_CLASSES)
  return {'macs': result['total_macs'], 'params': result['total_params']}


def make_dataset(spec):
  """Writes the `shapes` TFRecords that `train` reads with input='tfrecord'.

  Args:
    spec: dict with `dataset_dir`, `tfrecord_image_size`, `tfrecord_images`.

  Returns:
    dict with the number of training examples written.
  """
  per_class = max(1, spec['tfrecord_images'] // len(
      generate_shapes.CLASS_NAMES))
  manifests = generate_shapes.run(
      spec['dataset_dir'], image_size=spec['tfrecord_image_size'],
      train_per_class=per_class,
      validation_per_class=max(1, spec.get('validation_images', 6) // len(
          generate_shapes.CLASS_NAMES)),
      train_shards=spec.get('tfrecord_shards', 4), validation_shards=1)
  return {'num_examples': manifests['train']['num_examples'],
          'validation_examples': manifests['validation']['num_examples'],
          'num_classes': len(generate_shapes.CLASS_NAMES)}


def _synthetic_batch(batch_size, image_size, num_classes=NUM_CLASSES):
  """A fixed random batch held in memory (local variables)."""
  images = tf.get_local_variable(
      'synthetic_images', [batch_size, image_size, image_size, 3],
      initializer=tf.random_uniform_initializer(-1.0, 1.0, seed=SEED),
      trainable=False)
  labels = tf.get_local_variable(
      'synthetic_labels', [batch_size], dtype=tf.int64,
      initializer=tf.random_uniform_initializer(0, num_classes, seed=SEED,
                                                dtype=tf.int64),
      trainable=False)
  return tf.identity(images), tf.identity(labels)


def _tfrecord_batch(spec):
  """A training batch read from TFRecords and preprocessed (inception)."""
  dataset = dataset_factory.get_dataset('shapes', 'train', spec['dataset_dir'])
  preprocessing_fn = preprocessing_factory.get_preprocessing(
      'inception', is_training=True)
  return input_pipeline.make_batch(
      dataset, preprocessing_fn, spec['image_size'], spec['train_batch_size'],
      is_training=True, num_readers=spec['num_readers'],
      num_preprocessing_threads=spec['num_preprocessing_threads'])


def train(spec):
  """Images/s of training steps of one network on one input.

  Args:
    spec: dict with `impl`, `model_name`, `input` ('synthetic' or
      'tfrecord'), `image_size`, `train_batch_size`, `warmup_steps`,
      `train_steps`, `settings` (see `session_config`), and for TFRecords
      `dataset_dir`, `num_readers`, `num_preprocessing_threads`; optional
      `num_classes` of the head (default 1001).

  Returns:
    dict with `images_per_sec`, `images_per_cpu_sec` (per second of this
    process's CPU time, which other processes on the machine disturb less
    than wall time), `step_times_s`, `first_step_s`, `build_s`,
    and with `profile` in the spec, the `profile` of one more step (see
    `traced_run`; a Chrome trace goes to `trace_path` if given).
  """
  start = time.time()
  batch_size = spec['train_batch_size']
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(SEED)
    if spec['input'] == 'synthetic':
      images, labels = _synthetic_batch(
          batch_size, spec['image_size'],
          spec.get('num_classes', NUM_CLASSES))
    elif spec['input'] == 'tfrecord':
      images, labels = _tfrecord_batch(spec)
    else:
      raise ValueError('input must be one of %s, got %r.' %
                       (', '.join(INPUTS), spec['input']))
    logits, _, update_ops = build_network(
        spec['impl'], spec['model_name'], images, is_training=True,
        num_classes=spec.get('num_classes', NUM_CLASSES))
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    optimizer = tf.train.RMSPropOptimizer(**_RMSPROP)
    with tf.control_dependencies(update_ops):
      train_op = optimizer.minimize(loss)
    init_ops = [tf.global_variables_initializer(),
                tf.local_variables_initializer()]
  graph.finalize()
  sess = tf.Session(graph=graph, config=session_config(spec['settings']))
  keep_open(sess)
  sess.run(init_ops)
  build_s = time.time() - start
  start = time.time()
  sess.run(train_op)
  first_step_s = time.time() - start
  for _ in range(spec['warmup_steps']):
    sess.run(train_op)
  step_times = []
  cpu_start = cpu_seconds()
  for _ in range(spec['train_steps']):
    start = time.perf_counter()
    sess.run(train_op)
    step_times.append(time.perf_counter() - start)
  cpu_s = cpu_seconds() - cpu_start
  images = batch_size * len(step_times)
  result = {'images_per_sec': images / sum(step_times),
            'images_per_cpu_sec': images / cpu_s, 'cpu_s': cpu_s,
            'step_times_s': step_times, 'first_step_s': first_step_s,
            'build_s': build_s}
  result['peak_rss_mib'] = memory_mib()['peak']  # Before any tracing.
  if spec.get('profile'):
    result['profile'] = traced_run(sess, train_op,
                                   trace_path=spec.get('trace_path'))
  return result


def convert_tflite_in_process():
  """Makes TF 1.15's TFLite converter run in this process.

  TF 1.15 runs each conversion in a `toco_from_protos` process, which
  imports TensorFlow (seconds of CPU) to call the converter that this
  process has loaded already; TF 2 converts in-process anyway. Only the
  place of the conversion changes, not the model it writes.

  Returns:
    Whether anything changed (False on TF 2).
  """
  if tf_compat.IS_TF2:
    return False
  lite_module = sys.modules[tf.lite.TFLiteConverter.__module__]
  convert_module = sys.modules[lite_module.toco_convert_protos.__module__]
  # The module's own switch: an empty binary path calls the converter
  # directly (see tensorflow/lite/python/convert.py).
  convert_module._toco_from_proto_bin = ''  # pylint: disable=protected-access
  return True


def quantize_input(batch, dtype, quantization):
  """Float images as an integer TFLite input of (scale, zero point)."""
  if dtype == np.float32:
    return batch.astype(np.float32)
  scale, zero_point = quantization
  info = np.iinfo(dtype)
  return np.clip(np.round(batch / scale + zero_point), info.min,
                 info.max).astype(dtype)


TASKS = {
    'environment': environment,
    'analyze': analyze,
    'dataset': make_dataset,
    'train': train,
}
