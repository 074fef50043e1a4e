"""Tests for eval_image_classifier.py.

The metrics are checked against an independent recomputation: every
validation record is read with the TFRecord iterator, decoded, preprocessed
and classified one at a time, and Accuracy / Recall_5 are computed with
numpy from those logits.
"""


import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

import eval_image_classifier as eic
from datasets import conversion_progress
from datasets import dataset_factory
from datasets import generate_shapes
from cli import script_utils
from nets import mobilenet_v1
from nets import nets_factory
from preprocessing import preprocessing_factory
from tests.train_dir_helpers import save_untrained_checkpoint
from training import evaluator

IMAGE_SIZE = 32
MODEL_NAME = 'mobilenet_v1_025'
NUM_CLASSES = len(generate_shapes.CLASS_NAMES)
STEP = 7
EMA = '/ExponentialMovingAverage'


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  """A tiny shapes set: 18 validation images (3 per class) in 2 shards."""
  path = str(tmp_path_factory.mktemp('shapes'))
  generate_shapes.run(path, image_size=IMAGE_SIZE, train_per_class=1,
                      validation_per_class=3, train_shards=1,
                      validation_shards=2, num_workers=1)
  return path


def _validation_records(shapes_dir):
  """(encoded JPEGs, labels) of the validation split, in file order."""
  files = sorted(glob.glob(os.path.join(shapes_dir, '*validation*.tfrecord')))
  assert len(files) == 2
  encoded, labels = [], []
  for path in files:
    for record in tf.python_io.tf_record_iterator(path):
      feature = tf.train.Example.FromString(record).features.feature
      encoded.append(feature['image/encoded'].bytes_list.value[0])
      labels.append(feature['image/class/label'].int64_list.value[0])
  return encoded, np.array(labels)


def _preprocessed(jpeg):
  """The eval preprocessing of one encoded JPEG tensor."""
  preprocessing_fn = preprocessing_factory.get_preprocessing(
      MODEL_NAME, is_training=False)
  return preprocessing_fn(tf.image.decode_jpeg(jpeg, channels=3),
                          IMAGE_SIZE, IMAGE_SIZE)


def _save_checkpoints(shapes_dir, directory, steps, seed):
  """Saves a random net, once per global step in `steps`.

  A random net's logits hardly depend on the image, so its batch-norm
  statistics are set to those of the validation images (one training-mode
  pass with decay 0), as training would. The moving-average shadows are
  the variables scaled by U(0.3, 1.7), so they give other logits.

  The shadows are saved from variables of their own under the names
  tf.train.ExponentialMovingAverage gives them (building the averages
  themselves cost more than the rest), and without .meta files (evaluation
  builds its own graph).

  Returns:
    The checkpoint prefixes, one per step.
  """
  encoded, _ = _validation_records(shapes_dir)
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    images = tf.stack([_preprocessed(tf.constant(e)) for e in encoded])
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(
        is_training=True, batch_norm_decay=0.0)):
      mobilenet_v1.mobilenet_v1(images, num_classes=NUM_CLASSES,
                                depth_multiplier=0.25, is_training=True)
    global_step = tf.train.get_or_create_global_step()
    model_variables = slim.get_model_variables()
    saved = {v.op.name: v for v in tf.global_variables()}
    paths = []
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
      rng = np.random.RandomState(seed)
      shadows = []
      for var, value in zip(model_variables, sess.run(model_variables)):
        scale = rng.uniform(0.3, 1.7, value.shape).astype(value.dtype)
        shadow = tf.Variable(value * scale, trainable=False,
                             name='shadow_%d' % len(shadows))
        saved[var.op.name + EMA] = shadow
        shadows.append(shadow)
      sess.run(tf.variables_initializer(shadows))
      saver = tf.train.Saver(saved)
      for step in steps:
        global_step.load(step, sess)
        paths.append(saver.save(sess, os.path.join(directory, 'model.ckpt'),
                                global_step=step, write_meta_graph=False))
    return paths


# Global steps of the checkpoints saved once for the whole module: STEP is
# `checkpoint`; the directory and watch-mode tests publish the others.
SAVED_STEPS = (3, 5, STEP, 10, 20)


@pytest.fixture(scope='module')
def saved_checkpoints(shapes_dir, tmp_path_factory):
  """{global step: checkpoint prefix} of SAVED_STEPS, saved from one graph."""
  paths = _save_checkpoints(shapes_dir, str(tmp_path_factory.mktemp('train')),
                            SAVED_STEPS, 1)
  return dict(zip(SAVED_STEPS, paths))


@pytest.fixture(scope='module')
def checkpoint(saved_checkpoints):
  return saved_checkpoints[STEP]


def _publish(prefixes, directory):
  """Copies checkpoints into `directory` the way a Saver writes them.

  The data files first, then the `checkpoint` state file naming the copies
  (the last one as the latest).

  Returns:
    The copies' prefixes.
  """
  if not os.path.isdir(directory):
    os.makedirs(directory)
  copies = []
  for prefix in prefixes:
    for path in glob.glob(prefix + '.*'):
      shutil.copy(path, directory)
    copies.append(os.path.join(directory, os.path.basename(prefix)))
  state = tf.train.get_checkpoint_state(directory)
  listed = list(state.all_model_checkpoint_paths) if state else []
  tf.train.update_checkpoint_state(directory, copies[-1], listed + copies)
  return copies


# (shapes_dir, checkpoint, use_moving_averages) -> (logits, labels): the
# reference is a pure function of those, so each is computed once.
_REFERENCE_LOGITS = {}


def _reference_logits(shapes_dir, checkpoint_path, use_moving_averages):
  """Logits and labels of every validation example, one at a time."""
  key = (shapes_dir, checkpoint_path, use_moving_averages)
  if key not in _REFERENCE_LOGITS:
    _REFERENCE_LOGITS[key] = _compute_reference_logits(*key)
  logits, labels = _REFERENCE_LOGITS[key]
  return logits.copy(), labels.copy()


def _compute_reference_logits(shapes_dir, checkpoint_path,
                              use_moving_averages):
  encoded, labels = _validation_records(shapes_dir)
  with tf.Graph().as_default():
    jpeg = tf.placeholder(tf.string, [])
    network_fn = nets_factory.get_network_fn(MODEL_NAME, NUM_CLASSES)
    logits, _ = network_fn(tf.expand_dims(_preprocessed(jpeg), 0))
    suffix = EMA if use_moving_averages else ''
    saver = tf.train.Saver({v.op.name + suffix: v
                            for v in slim.get_model_variables()})
    with tf.Session() as sess:
      saver.restore(sess, checkpoint_path)
      values = np.concatenate([sess.run(logits, {jpeg: e}) for e in encoded])
  return values, labels


def _numpy_metrics(logits, labels):
  label_logits = logits[np.arange(len(labels)), labels]
  higher = np.sum(logits > label_logits[:, None], axis=1)
  return {'Accuracy': float(np.mean(higher == 0)),
          'Recall_5': float(np.mean(higher < 5))}


def _evaluate(shapes_dir, eval_dir, checkpoint_path, *flags):
  opts = eic.parse_flags([
      '--dataset_name=shapes',
      '--dataset_dir=%s' % shapes_dir, '--eval_dir=%s' % eval_dir,
      '--checkpoint_path=%s' % checkpoint_path, '--model_name=%s' % MODEL_NAME,
      '--eval_image_size=%d' % IMAGE_SIZE, '--num_preprocessing_threads=1',
  ] + list(flags))
  return eic.evaluate(opts)


def test_eval_flags_have_the_slim_names_and_defaults():
  opts = eic.parse_flags([])
  assert opts.batch_size == 100
  assert opts.dataset_name == 'imagenet'
  assert opts.dataset_split_name == 'validation'
  assert opts.model_name == 'mobilenet_v1'
  for name in ('checkpoint_path', 'eval_dir', 'max_num_batches',
               'moving_average_decay', 'eval_image_size', 'quantize',
               'use_grayscale', 'labels_offset', 'num_preprocessing_threads',
               'eval_interval_secs', 'timeout', 'master', 'dataset_dir',
               'preprocessing_name'):
    assert name in opts, name


@pytest.mark.slow
def test_eval_counts_every_example_once_and_matches_numpy(
    shapes_dir, checkpoint, tmp_path, capsys, monkeypatch):
  eval_dir = str(tmp_path / 'eval')
  # Each batch here takes longer than the progress interval (0 s): a
  # progress line after every batch but the last. (A short evaluation,
  # within the interval, prints none: see the moving-average test.)
  lines = _record_progress(monkeypatch, 0.)
  # 18 examples in batches of 4: the last batch holds 2.
  [metrics] = _evaluate(shapes_dir, eval_dir, checkpoint, '--batch_size=4')
  assert _progress_done(lines, checkpoint) == [4, 8, 12, 16], lines
  num_samples = dataset_factory.get_dataset(
      'shapes', 'validation', shapes_dir).num_samples
  assert metrics['num_examples'] == num_samples == 18
  assert metrics['num_batches'] == 5
  assert metrics['global_step'] == STEP
  logits, labels = _reference_logits(shapes_dir, checkpoint, False)
  expected = _numpy_metrics(logits, labels)
  assert len(set(np.argmax(logits, 1))) > 1  # not a constant classifier
  assert metrics['Accuracy'] == pytest.approx(expected['Accuracy'])
  assert metrics['Recall_5'] == pytest.approx(expected['Recall_5'])

  with open(os.path.join(eval_dir, 'metrics-%d.json' % STEP)) as f:
    assert json.load(f) == metrics
  with open(os.path.join(eval_dir, 'metrics.json')) as f:
    assert json.load(f) == metrics
  summaries = {}
  for path in glob.glob(os.path.join(eval_dir, 'events.out.*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        summaries[value.tag] = (event.step, value.simple_value)
  assert summaries['eval/Accuracy'] == (
      STEP, pytest.approx(expected['Accuracy']))
  assert summaries['eval/Recall_5'] == (
      STEP, pytest.approx(expected['Recall_5']))
  assert 'Accuracy = %.4f' % expected['Accuracy'] in capsys.readouterr().out


@pytest.mark.slow
def test_moving_average_shadows_are_restored(shapes_dir, checkpoint,
                                             tmp_path, monkeypatch):
  # A short evaluation (within the progress interval) prints no progress.
  lines = _record_progress(monkeypatch, 1e9)
  [metrics] = _evaluate(shapes_dir, str(tmp_path / 'eval'), checkpoint,
                        '--batch_size=5', '--moving_average_decay=0.9999')
  assert _progress_done(lines, checkpoint) == [], lines
  averaged, labels = _reference_logits(shapes_dir, checkpoint, True)
  raw, _ = _reference_logits(shapes_dir, checkpoint, False)
  assert np.abs(averaged - raw).max() > 1e-3
  expected = _numpy_metrics(averaged, labels)
  assert metrics['num_examples'] == 18
  assert metrics['moving_average']
  assert metrics['Accuracy'] == pytest.approx(expected['Accuracy'])
  assert metrics['Recall_5'] == pytest.approx(expected['Recall_5'])


def test_restore_saver_maps_model_variables_to_their_shadows(
    shapes_dir, checkpoint):
  config = eic.config_from_flags(eic.parse_flags([
      '--dataset_name=shapes',
      '--dataset_dir=%s' % shapes_dir, '--model_name=%s' % MODEL_NAME,
      '--eval_image_size=%d' % IMAGE_SIZE, '--moving_average_decay=0.99']))
  graph = evaluator.build_eval_graph(config)
  saver, restores_step = evaluator.restore_saver(config, graph, checkpoint)
  assert restores_step
  reader = tf.train.load_checkpoint(checkpoint)
  variables = slim.get_model_variables()
  with tf.Session() as sess:
    saver.restore(sess, checkpoint)
    for var, value in zip(variables, sess.run(variables)):
      assert np.array_equal(value, reader.get_tensor(var.op.name + EMA))


@pytest.mark.slow
def test_directory_means_its_latest_checkpoint_and_max_num_batches(
    shapes_dir, saved_checkpoints, tmp_path):
  train_dir = str(tmp_path / 'train')
  latest = _publish([saved_checkpoints[3], saved_checkpoints[5]],
                    train_dir)[-1]
  [metrics] = _evaluate(shapes_dir, str(tmp_path / 'eval'), train_dir,
                        '--batch_size=4', '--max_num_batches=2')
  assert metrics['checkpoint'] == latest
  assert metrics['global_step'] == 5
  assert metrics['num_examples'] == 8


@pytest.mark.slow
def test_watch_mode_evaluates_each_new_checkpoint(shapes_dir,
                                                  saved_checkpoints, tmp_path,
                                                  monkeypatch):
  train_dir = str(tmp_path / 'train')
  eval_dir = str(tmp_path / 'eval')
  _publish([saved_checkpoints[10]], train_dir)
  evaluate_checkpoint = evaluator.evaluate_checkpoint

  def publish_while_evaluating(config, graph, checkpoint, tf_graph, *args):
    # Training saves checkpoint 20 while the watcher scores 10: the
    # watcher must find it next (no race with its timeout, which then
    # only ends the watch).
    if os.path.basename(checkpoint) == 'model.ckpt-10':
      _publish([saved_checkpoints[20]], train_dir)
    return evaluate_checkpoint(config, graph, checkpoint, tf_graph, *args)

  monkeypatch.setattr(evaluator, 'evaluate_checkpoint',
                      publish_while_evaluating)
  results = _evaluate(shapes_dir, eval_dir, train_dir, '--batch_size=9',
                      '--eval_interval_secs=0', '--timeout=1')
  assert [m['global_step'] for m in results] == [10, 20]
  assert all(m['num_examples'] == 18 for m in results)
  assert os.path.exists(os.path.join(eval_dir, 'metrics-10.json'))
  assert os.path.exists(os.path.join(eval_dir, 'metrics-20.json'))


@pytest.fixture(scope='module')
def plain_checkpoint(tmp_path_factory):
  """A checkpoint of a random net without moving averages."""
  return save_untrained_checkpoint(str(tmp_path_factory.mktemp('plain')),
                                   MODEL_NAME, NUM_CLASSES, IMAGE_SIZE)


@pytest.mark.parametrize('flags, expected', [
    (['--moving_average_decay=0.99'], 'has no ExponentialMovingAverage'),
    (['--model_name=mobilenet_v1_050'], 'another width'),
    (['--labels_offset=1'], '--labels_offset=1 is inconsistent'),
    (['--eval_image_size=8'], '--eval_image_size=8 is too small'),
    (['--eval_interval_secs=5'], 'is not a directory'),
])
def test_bad_input_is_reported(shapes_dir, plain_checkpoint, tmp_path, flags,
                               expected):
  with pytest.raises(script_utils.ScriptError) as error:
    with tf.Graph().as_default():
      _evaluate(shapes_dir, str(tmp_path / 'eval'), plain_checkpoint, *flags)
  assert expected in str(error.value)


def test_quantize_on_a_float_checkpoint_says_it_was_not_trained_so(
    shapes_dir, checkpoint, tmp_path):
  with pytest.raises(script_utils.ScriptError) as error:
    with tf.Graph().as_default():
      _evaluate(shapes_dir, str(tmp_path / 'eval'), checkpoint, '--quantize')
  message = str(error.value)
  assert 'was not trained with quantization' in message
  assert 'act_quant/m' in message  # an example of what is missing
  assert '--quantize_delay' in message and '\n' not in message


@pytest.mark.slow
def test_cli_missing_checkpoint_is_one_paragraph_without_traceback(
    repo_root, script_env, shapes_dir, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  process = subprocess.run(
      [sys.executable, 'eval_image_classifier.py',
       '--dataset_dir=%s' % shapes_dir, '--checkpoint_path=%s' % empty,
       '--eval_dir=%s' % (tmp_path / 'eval')],
      cwd=repo_root, env=script_env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
  assert process.returncode == 1
  assert ('eval_image_classifier.py: error: --checkpoint_path=%s is a '
          'directory without a checkpoint' % empty) in ' '.join(
              process.stderr.split())
  assert 'Traceback' not in process.stderr


def _record_progress(monkeypatch, interval):
  """Collects the evaluation's info lines, a progress interval given.

  Returns:
    The list the lines are appended to.
  """
  lines = []
  monkeypatch.setattr(conversion_progress.logging, 'info',
                      lambda fmt, *args: lines.append(fmt % args))
  monkeypatch.setattr(evaluator, 'PROGRESS_INTERVAL_SECS', interval)
  return lines


def _progress_done(lines, checkpoint):
  """The image counts of the progress lines about `checkpoint`."""
  prefix = 'Evaluating %s: ' % os.path.basename(checkpoint)
  progress = [line for line in lines if line.startswith(prefix)]
  assert all('/18 images' in line and 'ETA' in line for line in progress)
  return [int(line[len(prefix):].split('/')[0]) for line in progress]
