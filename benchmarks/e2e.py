"""End-to-end workloads: the real training script, Keras `fit`, int8 agreement.

Tasks (run by `tasks.run_task` in a process of their own):

* `train_script`: images/s of the steady-state steps of what a user runs.
  "ours" is `train_image_classifier.py` started as a subprocess on the
  benchmark's `shapes` TFRecords; "keras" is `model.fit` of the matching
  keras.applications model on the same `tf.data` pipeline
  (`datasets/input_pipeline.make_dataset`, inception preprocessing), with
  the same optimizer (RMSProp, the script's defaults), batch and size. On
  TF 2 `fit` runs eagerly (a `tf.function` per step, what a tf.keras user
  runs), with tf_keras (Keras 2) or optionally Keras 3; on TF 1.15 in
  graph mode, as there. (`--quick` runs the script's `train` inside the
  task instead, without summaries, and reads the same progress lines.)
* `agreement`: top-1 agreement of the full-integer (int8) TFLite model with
  the float TFLite model on the validation split, for a checkpoint trained
  on the dataset (given, or trained here by the script).

The script prints no machine-readable timings, so its step times come from
the timestamps of its progress lines (`--log_every_n_steps=1`): the time
between two lines is one whole step, hooks included.
"""


import logging
import os
import re
import resource
import subprocess
import sys
import time

from absl import logging as absl_logging
from core import tf_compat
import numpy as np
import tensorflow.compat.v1 as tf

from benchmarks import workloads
from datasets import dataset_factory
from datasets import input_pipeline
from export import freeze
from export import tflite
from preprocessing import preprocessing_factory

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINER = os.path.join(_REPO_ROOT, 'train_image_classifier.py')
DATASET_NAME = 'shapes'

# The script's default optimizer hyper-parameters (cli/common_flags.py), which
# the bare loop (workloads._RMSPROP) and Keras use too.
_LEARNING_RATE = 0.01
_RMSPROP_DECAY = 0.9
_RMSPROP_MOMENTUM = 0.9
_OPT_EPSILON = 1.0

# An absl log line of the script's progress hook, e.g.
# "I1201 21:23:24.087581 1406 train_image_classifier.py:258] task 0 step 2/6,
# loss = ...". Groups: hours, minutes, seconds, global step.
_STEP_LINE = re.compile(r'^I\d{4} (\d\d):(\d\d):(\d\d\.\d+) +\d+ '
                        r'[^\]]*\] task \d+ step (\d+)(?:/\d+)?, loss')
_DAY_S = 24 * 3600


class TrainerError(RuntimeError):
  """The training script failed or logged too few steps to time."""


def trainer_flags(spec, train_dir, max_steps, log_every_n_steps=1):
  """The command-line flags of one run of the training script.

  Only flags the script documents; weight decay off and a fixed learning
  rate, as in the bare loop and in Keras.
  """
  return [
      '--train_dir=%s' % train_dir,
      '--dataset_name=%s' % DATASET_NAME,
      '--dataset_split_name=train',
      '--dataset_dir=%s' % spec['dataset_dir'],
      '--model_name=%s' % spec['model_name'],
      '--batch_size=%d' % spec['train_batch_size'],
      '--train_image_size=%d' % spec['image_size'],
      '--max_number_of_steps=%d' % max_steps,
      '--optimizer=rmsprop',
      '--learning_rate=%g' % _LEARNING_RATE,
      '--learning_rate_decay_type=fixed',
      '--weight_decay=0',
      '--num_readers=%d' % spec['num_readers'],
      '--num_preprocessing_threads=%d' % spec['num_preprocessing_threads'],
      '--log_every_n_steps=%d' % log_every_n_steps,
  ] + (['--save_summaries_secs=%d' % spec['save_summaries_secs']]
       if spec.get('save_summaries_secs') is not None else [])


def agreement_trainer_flags(spec, train_dir):
  """The script's flags that train the agreement check's network."""
  # auto: moving statistics that converge within the short run, so the
  # float model has real winners and the agreement means something.
  return trainer_flags(
      spec, train_dir, spec['train_steps'],
      log_every_n_steps=max(1, spec['train_steps'] // 10)) + [
          '--batch_norm_decay=auto',
          '--preprocessing_name=%s' % spec.get('preprocessing', 'inception')]


def parse_step_times(log_text):
  """(global step, seconds) of every progress line of the script's log.

  Seconds count from the midnight before the first line (a run that passes
  midnight keeps counting up).
  """
  stamps = []
  offset = 0.0
  for line in log_text.splitlines():
    match = _STEP_LINE.match(line)
    if not match:
      continue
    hours, minutes, seconds, step = match.groups()
    now = int(hours) * 3600 + int(minutes) * 60 + float(seconds) + offset
    if stamps and now < stamps[-1][1]:
      offset += _DAY_S
      now += _DAY_S
    stamps.append((int(step), now))
  return stamps


def steady_state(stamps, skip_steps, batch_size):
  """Images/s over the steps after the first `skip_steps`.

  Args:
    stamps: (step, time) at the end of each step, in step order.
    skip_steps: steps left out (the first, which builds the executors, and
      the warm-up).
    batch_size: images per step.

  Returns:
    dict with `images_per_sec` and `step_times_s` of the timed steps.

  Raises:
    TrainerError: if fewer than one step is left to time.
  """
  timed = [t for step, t in stamps if step >= skip_steps]
  if len(timed) < 2:
    raise TrainerError('Only %d step(s) after the first %d were logged; '
                       'cannot time the steady state.' %
                       (max(0, len(timed) - 1), skip_steps))
  step_times = list(np.diff(timed))
  return {'images_per_sec': batch_size * len(step_times) /
                            (timed[-1] - timed[0]),
          'step_times_s': [float(t) for t in step_times]}


def _seconds_of_day(epoch_s):
  local = time.localtime(epoch_s)
  return (local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec +
          epoch_s % 1)


def run_trainer(spec):
  """Times `train_image_classifier.py` in a subprocess (see module doc)."""
  skip = 1 + spec['warmup_steps']
  max_steps = skip + spec['train_steps']
  train_dir = os.path.join(spec['work_dir'], 'train_dir')
  log_path = os.path.join(spec['work_dir'], 'trainer.log')
  if not os.path.isdir(spec['work_dir']):
    os.makedirs(spec['work_dir'])
  command = [sys.executable, TRAINER] + trainer_flags(spec, train_dir,
                                                      max_steps)
  start = time.time()
  if spec.get('train_in_process'):
    _train_here(command[2:], log_path)
    code = 0
  else:
    with open(log_path, 'w') as log:
      code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                             cwd=_REPO_ROOT, timeout=spec.get('timeout_s'))
  wall_s = time.time() - start
  with open(log_path) as f:
    text = f.read()
  if code != 0:
    raise TrainerError('train_image_classifier.py exited with %d; the end of '
                       'its log (%s):\n%s' % (code, log_path, text[-3000:]))
  stamps = parse_step_times(text)
  result = steady_state(stamps, skip, spec['train_batch_size'])
  if stamps:
    first = stamps[0][1] - _seconds_of_day(start)
    result['first_step_s'] = first + (_DAY_S if first < 0 else 0)
  if spec.get('train_in_process'):
    result['peak_rss_mib'] = workloads.memory_mib()['peak']
  else:
    # ru_maxrss of waited-for children: the script (the only child).
    result['peak_rss_mib'] = resource.getrusage(
        resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
  result.update(wall_s=wall_s, steps_logged=len(stamps),
                command=' '.join(command[1:]),
                in_process=bool(spec.get('train_in_process')))
  return result


def _training_dataset(spec):
  """The benchmark's TFRecords through the script's tf.data pipeline."""
  dataset = dataset_factory.get_dataset(DATASET_NAME, 'train',
                                        spec['dataset_dir'])
  preprocessing_fn = preprocessing_factory.get_preprocessing(
      'inception', is_training=True)
  data = input_pipeline.make_dataset(
      dataset, preprocessing_fn, spec['image_size'], spec['train_batch_size'],
      is_training=True, num_readers=spec['num_readers'],
      num_preprocessing_threads=spec['num_preprocessing_threads'])
  return data, dataset.num_classes


def run_keras_fit(spec):
  """Times `model.fit` of the Keras equivalent (see module doc)."""
  start = time.time()
  keras = workloads.keras
  settings = spec['settings']
  keras3 = spec.get('keras_fit') == 'keras3'
  if keras3 and not tf_compat.IS_TF2:
    raise ValueError('Keras 3 needs TensorFlow 2; this is %s.' %
                     tf.__version__)
  if keras3:
    import keras  # pylint: disable=g-import-not-at-top,redefined-outer-name
  if tf_compat.IS_TF2:
    # tf_compat turned eager execution off at import; nothing has been built
    # in this process yet, so it can be turned back on.
    tf.enable_eager_execution()
    tf.enable_tensor_equality()  # TF 2's default with eager (tf_compat)
    tf.config.threading.set_intra_op_parallelism_threads(
        settings['intra_op_threads'])
    tf.config.threading.set_inter_op_parallelism_threads(
        settings['inter_op_threads'])
  else:
    keras.backend.set_session(
        tf.Session(config=workloads.session_config(settings)))
  data, num_classes = _training_dataset(spec)
  model = workloads.keras_model(spec['model_name'], spec['image_size'],
                                num_classes, applications=keras.applications)
  model.compile(
      optimizer=keras.optimizers.RMSprop(
          learning_rate=_LEARNING_RATE, rho=_RMSPROP_DECAY,
          momentum=_RMSPROP_MOMENTUM, epsilon=_OPT_EPSILON),
      loss='sparse_categorical_crossentropy')
  stamps = []

  class _StepEnds(keras.callbacks.Callback):
    # Reading the logs as numbers waits for the step, as the script's
    # progress hook does.
    def on_train_batch_end(self, batch, logs=None):
      float((logs or {}).get('loss', 0.0))
      stamps.append((batch + 1, time.time()))

  skip = 1 + spec['warmup_steps']
  model.fit(data, epochs=1, steps_per_epoch=skip + spec['train_steps'],
            verbose=0, callbacks=[_StepEnds()])
  result = steady_state(stamps, skip, spec['train_batch_size'])
  result['first_step_s'] = stamps[0][1] - start
  result['peak_rss_mib'] = workloads.memory_mib()['peak']
  result['eager'] = bool(tf.executing_eagerly())
  result['keras'] = 'keras %s' % keras.__version__
  return result


def train_script(spec):
  """Images/s of the training script (ours) or Keras `fit` (keras).

  Args:
    spec: dict with `impl`, `model_name`, `image_size`, `train_batch_size`,
      `warmup_steps` (untimed steps after the first), `train_steps` (timed),
      `dataset_dir`, `num_readers`, `num_preprocessing_threads`, `settings`
      (Keras's threads; the script uses TensorFlow's defaults, which the
      benchmark's own defaults equal), optional
      `keras_fit` ('tf_keras', the default, or 'keras3': `fit` of Keras 3,
      what `tf.keras` is on TF >= 2.16, TF 2 only), and for ours
      `work_dir` (its train_dir and log go there) and `timeout_s`.

  Returns:
    dict with `images_per_sec`, `step_times_s`, `first_step_s` (from the
    task's start to the end of the first step) and `peak_rss_mib` (of the
    script's process for ours).
  """
  if spec['impl'] == 'ours':
    return run_trainer(spec)
  if spec['impl'] == 'keras':
    return run_keras_fit(spec)
  raise ValueError('impl must be one of %s, got %r.' %
                   (', '.join(workloads.IMPLEMENTATIONS), spec['impl']))


def _validation_images(spec, split):
  """Preprocessed (evaluation) images and labels of a split, one by one."""
  preprocessing_fn = preprocessing_factory.get_preprocessing(
      spec.get('preprocessing', 'inception'), is_training=False)
  with tf.Graph().as_default():
    dataset = dataset_factory.get_dataset(DATASET_NAME, split,
                                          spec['dataset_dir'])
    data = input_pipeline.make_dataset(
        dataset, preprocessing_fn, spec['image_size'], batch_size=1,
        is_training=False)
    if split == 'train':
      data = data.take(spec['calibration_images'])
    images, labels = tf.data.make_one_shot_iterator(data).get_next()
    pairs = []
    with tf.Session() as sess:
      try:
        while True:
          pairs.append(sess.run((images, labels)))
      except tf.errors.OutOfRangeError:
        pass
  return ([image.astype(np.float32) for image, _ in pairs],
          np.array([int(label[0]) for _, label in pairs]),
          dataset.num_classes)


def _train_here(script_flags, log_path=None):
  """Runs the training script's `train` in this process (--quick).

  Saves a process that imports TensorFlow again (what is timed then leaves
  out the script's start-up, which a smoke run does not mind). `log_path`:
  where its absl log lines go too, with the prefix (time of day) they have
  in the script's own log, so `parse_step_times` reads them alike.
  """
  import train_image_classifier  # pylint: disable=g-import-not-at-top
  opts = train_image_classifier.parse_flags(script_flags)
  logger = absl_logging.get_absl_logger()
  handler, level = None, logger.level
  if log_path:
    handler = logging.FileHandler(log_path, mode='w')
    handler.setFormatter(absl_logging.PythonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
  try:
    with tf.Graph().as_default():
      train_image_classifier.train(opts)
  finally:
    if handler:
      logger.removeHandler(handler)
      logger.setLevel(level)
      handler.close()


def _trained_checkpoint(spec, num_classes):
  """The spec's checkpoint, or one the script trains on the train split."""
  if spec.get('checkpoint'):
    checkpoint = spec['checkpoint']
    if os.path.isdir(checkpoint):
      checkpoint = tf.train.latest_checkpoint(checkpoint)
    if not checkpoint:
      raise TrainerError('No checkpoint in %s.' % spec['checkpoint'])
    return checkpoint, 0
  train_dir = os.path.join(spec['work_dir'], 'agreement_train_dir')
  command = [sys.executable, TRAINER] + agreement_trainer_flags(spec,
                                                                train_dir)
  if spec.get('train_in_process'):
    _train_here(command[2:])
    return tf.train.latest_checkpoint(train_dir), spec['train_steps']
  log_path = os.path.join(spec['work_dir'], 'agreement_trainer.log')
  with open(log_path, 'w') as log:
    code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                           cwd=_REPO_ROOT, timeout=spec.get('timeout_s'))
  if code != 0:
    with open(log_path) as f:
      raise TrainerError('Training the agreement model failed (%d):\n%s' %
                         (code, f.read()[-3000:]))
  del num_classes  # The script takes the head size from the dataset.
  return tf.train.latest_checkpoint(train_dir), spec['train_steps']


def _tflite_top1(model_bytes, images, threads):
  """Top-1 classes of a batch-1 TFLite model on each image.

  Returns:
    (classes, tied): the first class with the highest score, and whether
    another class has that score too (uint8 probabilities of a model
    without a clear winner often do).
  """
  interpreter = tflite.make_interpreter(model_content=model_bytes,
                                       num_threads=threads)
  interpreter.allocate_tensors()
  details = interpreter.get_input_details()[0]
  output = interpreter.get_output_details()[0]['index']
  classes, tied = [], []
  for image in images:
    interpreter.set_tensor(details['index'], workloads.quantize_input(
        image, details['dtype'], details['quantization']))
    interpreter.invoke()
    scores = interpreter.get_tensor(output)[0]
    classes.append(int(np.argmax(scores)))
    tied.append(int(np.sum(scores == scores.max())) > 1)
  return np.array(classes), np.array(tied)


def agreement(spec):
  """Top-1 agreement of the int8 TFLite model with the float one.

  Both are converted from the same frozen graph of a trained checkpoint (as
  `freeze_graph.py` and `export_tflite.py` do: batch norms folded; int8
  calibrated on `calibration_images` of the train split) and run on every
  validation image with the evaluation preprocessing.

  Args:
    spec: dict with `model_name`, `image_size`, `dataset_dir`, `work_dir`,
      `calibration_images`, `settings`, optional `preprocessing` (the
      evaluation preprocessing, the one the network was trained with;
      default inception), and `checkpoint` (a checkpoint or a
      train_dir) or else `train_steps`, `train_batch_size`, `num_readers`
      and `num_preprocessing_threads` for the script to train one (in a
      process of its own, or in this one with `train_in_process`).

  Returns:
    dict with `agreement` (fraction of images with the same top-1 class),
    `float_accuracy`, `int8_accuracy`, `int8_tied_top1` (fraction of images
    whose int8 top score is shared by another class; the first counts),
    `images`, `trained_steps` (0 for a given checkpoint) and `checkpoint`.
  """
  if not os.path.isdir(spec['work_dir']):
    os.makedirs(spec['work_dir'])
  images, labels, num_classes = _validation_images(spec, 'validation')
  calibration, _, _ = _validation_images(spec, 'train')
  checkpoint, trained_steps = _trained_checkpoint(spec, num_classes)
  frozen_path = os.path.join(spec['work_dir'], 'agreement_frozen.pb')
  freeze.write_graph_def(freeze.freeze(
      spec['model_name'], checkpoint, num_classes,
      image_size=spec['image_size']).graph_def, frozen_path)
  threads = spec['settings']['intra_op_threads']
  float_top1, _ = _tflite_top1(tflite.convert(frozen_path), images, threads)
  int8_top1, int8_tied = _tflite_top1(
      tflite.convert(frozen_path, 'full_integer', calibration), images,
      threads)
  return {'agreement': float(np.mean(float_top1 == int8_top1)),
          'float_accuracy': float(np.mean(float_top1 == labels)),
          'int8_accuracy': float(np.mean(int8_top1 == labels)),
          'int8_tied_top1': float(np.mean(int8_tied)),
          'images': len(labels), 'trained_steps': trained_steps,
          'checkpoint': checkpoint, 'dataset_dir': spec['dataset_dir'],
          'preprocessing': spec.get('preprocessing', 'inception')}


TASKS = {'train_script': train_script, 'agreement': agreement}
