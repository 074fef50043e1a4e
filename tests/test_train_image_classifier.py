"""Tests for train_image_classifier.py (its flags: test_train_flags.py).

Small shapes: the embedded shapes set generated at 32x32 (24 training
images), mobilenet_v1 at depth 0.25, a few steps. `train()` is called
in-process with flags parsed into a fresh FlagValues; a few CLI tests run
the script as a subprocess for its exit status and error paragraph.
"""


import glob
import logging as std_logging
import os
import re
import shutil
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import eval_image_classifier as eic
import train_image_classifier as tic
from datasets import generate_shapes
from deployment import cluster
from cli import script_utils
from nets import nets_factory
from tests.train_dir_helpers import checkpoint_values
from tests.train_dir_helpers import copy_train_dir
from tests.train_dir_helpers import step_of
from tests.train_dir_helpers import train_in_process
from training import hooks
from training import trainer

IMAGE_SIZE = 32
BASE_FLAGS = [
    '--dataset_name=shapes',
    '--model_name=mobilenet_v1_025',
    '--train_image_size=%d' % IMAGE_SIZE,
    '--batch_size=8',
    '--save_summaries_secs=0',
    '--save_interval_secs=0',
    '--log_every_n_steps=1',
    '--num_readers=1',
    '--num_preprocessing_threads=1',
]
# Steps of the shared training run, and its flags: the whole training set
# (24 images) per batch, mild augmentation (cifarnet preprocessing), Adam
# with a usual epsilon (slim's default --opt_epsilon=1.0 suits RMSProp).
TRAINED_STEPS = 30
TRAINED_FLAGS = ['--optimizer=adam', '--learning_rate=0.01',
                 '--opt_epsilon=1e-8', '--learning_rate_decay_type=fixed',
                 '--preprocessing_name=cifarnet', '--batch_size=24',
                 '--save_summaries_secs=600']


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  """A tiny shapes set: 6 classes, 4 + 3 images each, 32x32, 2 shards."""
  path = str(tmp_path_factory.mktemp('shapes'))
  generate_shapes.run(path, image_size=IMAGE_SIZE, train_per_class=4,
                      validation_per_class=3, train_shards=2,
                      validation_shards=2, num_workers=1)
  return path


def _train(shapes_dir, train_dir, *flags):
  return train_in_process(BASE_FLAGS, shapes_dir, train_dir, *flags)


class _Records(std_logging.Handler):
  """Keeps the messages logged while attached."""

  def __init__(self):
    super(_Records, self).__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@pytest.fixture(scope='module')
def trained(shapes_dir, tmp_path_factory):
  """One training run shared by several tests (copy it before changing it)."""
  train_dir = str(tmp_path_factory.mktemp('trained'))
  records = _Records()
  logger = std_logging.getLogger('absl')
  level = logger.level
  logger.addHandler(records)
  logger.setLevel(std_logging.INFO)
  try:
    result = _train(shapes_dir, train_dir,
                    '--max_number_of_steps=%d' % TRAINED_STEPS,
                    *TRAINED_FLAGS)
  finally:
    logger.removeHandler(records)
    logger.setLevel(level)
  return {'dir': train_dir, 'result': result, 'log': records.messages}


# ---------------------------------------------------------------- flags ---


# ------------------------------------------------------------- training ---


@pytest.mark.slow
def test_loss_falls_on_the_embedded_set(trained):
  losses = [loss for _, loss in trained['result']['history']]
  assert len(losses) == TRAINED_STEPS
  assert np.mean(losses[-8:]) < np.mean(losses[:8])
  assert trained['result']['global_step'] == TRAINED_STEPS
  assert step_of(tf.train.latest_checkpoint(trained['dir'])) == TRAINED_STEPS


@pytest.mark.slow
def test_progress_lines_and_summaries(trained):
  lines = [m for m in trained['log'] if re.match(r'task 0 step \d+/', m)]
  assert len(lines) == TRAINED_STEPS  # --log_every_n_steps=1
  last = lines[-1]
  assert re.search(r'step %d/%d, loss = [\d.]+, lr = [\d.e-]+, '
                   r'[\d.]+ images/sec, ETA \d+:\d\d:\d\d$' %
                   (TRAINED_STEPS, TRAINED_STEPS), last), last
  tags = set()
  for path in glob.glob(os.path.join(trained['dir'], 'events.out.*')):
    for event in tf.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  assert {'Losses/total_loss', 'Losses/clone_loss', 'learning_rate',
          'Losses/regularization_loss',
          'activations/Logits', 'sparsity/Conv2d_1_pointwise'} <= tags
  assert any(t.startswith('losses/softmax_cross_entropy_loss') for t in tags)
  assert 'variables/MobilenetV1/Conv2d_0/weights' in tags


@pytest.mark.slow
def test_resume_continues_the_global_step(trained, shapes_dir, tmp_path):
  train_dir = copy_train_dir(trained['dir'], str(tmp_path / 'train'))
  # No summaries: they are not read here, and their ops cost start-up time.
  result = _train(shapes_dir, train_dir,
                  '--max_number_of_steps=%d' % (TRAINED_STEPS + 2),
                  *(TRAINED_FLAGS + ['--save_summaries_secs=0']))
  assert result['local_steps'] == 2
  assert [s for s, _ in result['history']] == [TRAINED_STEPS + 1,
                                               TRAINED_STEPS + 2]
  assert step_of(tf.train.latest_checkpoint(train_dir)) == TRAINED_STEPS + 2
  # At the stop step already: nothing to do.
  again = _train(shapes_dir, train_dir,
                 '--max_number_of_steps=%d' % (TRAINED_STEPS + 2),
                 *TRAINED_FLAGS)
  assert again['local_steps'] == 0
  assert again['global_step'] == TRAINED_STEPS + 2


@pytest.mark.slow
def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    trained, shapes_dir, tmp_path):
  train_dir = copy_train_dir(trained['dir'], str(tmp_path / 'train'))
  with pytest.raises(script_utils.ScriptError) as error:
    # Weights grow past float32 within a few steps.
    _train(shapes_dir, train_dir, '--max_number_of_steps=1000',
           '--optimizer=sgd', '--learning_rate=1e38',
           '--learning_rate_decay_type=fixed')
  match = re.search(r'became (NaN|Inf) at global step (\d+)',
                    str(error.value))
  assert match, str(error.value)
  assert isinstance(error.value.__cause__, hooks.NonFiniteLossError)
  assert int(match.group(2)) > TRAINED_STEPS
  latest = tf.train.latest_checkpoint(train_dir)
  assert step_of(latest) == TRAINED_STEPS
  assert latest in str(error.value)
  for name, value in checkpoint_values(latest).items():
    if np.issubdtype(np.asarray(value).dtype, np.floating):
      assert np.all(np.isfinite(value)), name


# ---------------------------------------------------------- fine-tuning ---

SOURCE_CLASSES = 10
# Variables whose checkpoint also holds a moving-average shadow (= value+1).
AVERAGED_SCOPE = 'MobilenetV1/Conv2d_0/'


def _save_source_checkpoint(path, model_name='mobilenet_v1_025',
                            num_classes=SOURCE_CLASSES):
  """Saves a randomly initialized net, with shadows under AVERAGED_SCOPE."""
  with tf.Graph().as_default():
    network_fn = nets_factory.get_network_fn(model_name, num_classes)
    network_fn(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3]))
    tf.train.get_or_create_global_step()
    averaged = [v for v in tf.global_variables()
                if v.op.name.startswith(AVERAGED_SCOPE)]
    ema = tf.train.ExponentialMovingAverage(0.9)
    ema.apply(averaged)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for var in averaged:
        sess.run(tf.assign(ema.average(var), var + 1.0))
      return tf.train.Saver().save(sess, path)


@pytest.fixture(scope='module')
def source_checkpoint(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('source') / 'model.ckpt')
  return _save_source_checkpoint(path)


@pytest.mark.slow
def test_fine_tune_new_head_changes_only_the_head_and_restores_the_rest(
    shapes_dir, source_checkpoint, tmp_path):
  train_dir = str(tmp_path / 'fine_tune')
  records = _Records()
  std_logging.getLogger('absl').addHandler(records)
  try:
    result = _train(
        shapes_dir, train_dir, '--max_number_of_steps=3',
        '--checkpoint_path=%s' % os.path.dirname(source_checkpoint),
        '--checkpoint_exclude_scopes=MobilenetV1/Logits',
        '--trainable_scopes=MobilenetV1/Logits',
        '--optimizer=sgd', '--learning_rate=0.5')
  finally:
    std_logging.getLogger('absl').removeHandler(records)
  assert result['global_step'] == 3
  # 3 steps with the network's own batch-norm decay would be warned about
  # from scratch; fine-tuned statistics start trained, so not here.
  assert not [m for m in records.messages if 'too short' in m]
  source = checkpoint_values(source_checkpoint)
  start = checkpoint_values(os.path.join(train_dir, 'model.ckpt-0'))
  end = checkpoint_values(os.path.join(train_dir, 'model.ckpt-3'))
  body = [n for n in start
          if n.startswith('MobilenetV1/') and '/Logits/' not in n]
  head = [n for n in start if n.startswith('MobilenetV1/Logits/')]
  assert len(body) > 50 and head
  averaged = 0
  for name in body:
    shadow = name + '/ExponentialMovingAverage'
    if shadow in source:
      averaged += 1
      expected = source[shadow]  # the moving average wins when present
    else:
      expected = source[name]
    assert np.array_equal(start[name], expected), name
    assert np.array_equal(end[name], start[name]), name  # frozen, bit-exact
  assert averaged >= 2
  assert start[head[0]].shape[-1] == 6  # a new head for the 6 shapes
  assert any(not np.array_equal(end[n], start[n]) for n in head)


@pytest.mark.slow
@pytest.mark.parametrize('model_name, expected', [
    # Another number of classes: only the head differs.
    ('mobilenet_v1_025', [
        'MobilenetV1/Logits/Conv2d_1c_1x1/weights: checkpoint [1, 1, 256, '
        '10] vs model [1, 1, 256, 6]',
        '--checkpoint_exclude_scopes=MobilenetV1/Logits']),
    # Another width.
    # Another width: the message names the factory entry that fits.
    ('mobilenet_v1_050', ['MobilenetV1/Conv2d_0/', 'another width',
                          '(--model_name=mobilenet_v1_025)']),
    # Another network.
    ('mobilenet_v2_035', ['holds a MobilenetV1 model', '--model_name']),
])
def test_checkpoint_that_does_not_fit_fails_before_training(
    shapes_dir, source_checkpoint, tmp_path, model_name, expected):
  train_dir = str(tmp_path / 'mismatch')
  with pytest.raises(script_utils.ScriptError) as error:
    _train(shapes_dir, train_dir, '--max_number_of_steps=2',
           '--model_name=%s' % model_name,
           '--checkpoint_path=%s' % source_checkpoint)
  message = str(error.value)
  assert 'does not fit --model_name=%s' % model_name in message
  for text in expected:
    assert text in message
  assert tf.train.latest_checkpoint(train_dir) is None


@pytest.mark.slow
def test_train_dir_of_another_model_is_not_resumed(trained, shapes_dir,
                                                   tmp_path):
  train_dir = copy_train_dir(trained['dir'], str(tmp_path / 'train'))
  with pytest.raises(script_utils.ScriptError) as error:
    _train(shapes_dir, train_dir, '--max_number_of_steps=100',
           '--model_name=mobilenet_v1_050', *TRAINED_FLAGS)
  assert '--train_dir=' in str(error.value)
  assert 'use a new --train_dir' in str(error.value)


# ------------------------------------------------- clones, sync, quantize ---


def _onednn_tf1_kernels():
  """Whether this is Intel's TF 1.15 build with its oneDNN rewrite on.

  TF_DISABLE_MKL=1 turns the rewrite off (the Eigen kernels run) while
  IsMklEnabled() still says True.
  """
  if tf_compat.IS_TF2:
    return False
  from tensorflow.python import pywrap_tensorflow  # pylint: disable=g-import-not-at-top
  return (pywrap_tensorflow.IsMklEnabled() and
          os.environ.get('TF_DISABLE_MKL') != '1')


# RELIABILITY.md, "The test suite on the TF 1.15 oneDNN build": on
# intel-tensorflow 1.15.2 the weights turn NaN at step 1-2; the same wheel
# with TF_DISABLE_MKL=1 passes.
_ONEDNN_NAN_BUG = pytest.mark.skipif(
    _onednn_tf1_kernels(),
    reason='intel-tensorflow 1.15.2 oneDNN bug: its kernels give non-finite '
    'gradients in this training (with QAT: the depthwise filter gradient, '
    '_MklDepthwiseConv2dNativeBackpropFilter, NaN/3e38 from finite inputs), '
    'the weights go NaN at step 1-2 (RELIABILITY.md; runs with TF_DISABLE_MKL=1)')


@pytest.mark.slow
@_ONEDNN_NAN_BUG
def test_two_clones_on_cpu_with_sync_replicas_and_moving_averages(
    shapes_dir, tmp_path):
  train_dir = str(tmp_path / 'clones')
  result = _train(shapes_dir, train_dir, '--max_number_of_steps=2',
                  '--num_clones=2', '--clone_on_cpu',
                  '--sync_replicas', '--replicas_to_aggregate=1',
                  '--moving_average_decay=0.5', '--optimizer=sgd',
                  '--learning_rate=0.5')
  # SyncReplicasOptimizer hands out one token ahead, so a worker may run
  # one step past the stop step.
  assert 2 <= result['local_steps'] <= 3
  checkpoint = tf.train.latest_checkpoint(train_dir)
  assert step_of(checkpoint) >= 2
  values = checkpoint_values(checkpoint)
  assert not any(n.startswith('clone_') for n in values)  # one shared copy
  name = 'MobilenetV1/Logits/Conv2d_1c_1x1/weights'
  shadow = name + '/ExponentialMovingAverage'
  assert shadow in values
  assert not np.array_equal(values[shadow], values[name])


@pytest.mark.slow
@_ONEDNN_NAN_BUG
def test_quantize_delay_inserts_fake_quantization(shapes_dir, tmp_path):
  train_dir = str(tmp_path / 'quantized')
  _train(shapes_dir, train_dir, '--max_number_of_steps=1',
         '--quantize_delay=0')
  names = checkpoint_values(tf.train.latest_checkpoint(train_dir))
  assert any('act_quant' in n for n in names)
  assert any('weights_quant' in n for n in names)
  # The quantized eval graph restores those ranges.
  with tf.Graph().as_default():
    [metrics] = eic.evaluate(eic.parse_flags([
        '--dataset_name=shapes', '--dataset_dir=%s' % shapes_dir, '--checkpoint_path=%s' % train_dir,
        '--eval_dir=%s' % (tmp_path / 'eval'), '--quantize',
        '--model_name=mobilenet_v1_025', '--eval_image_size=32']))
  assert metrics['num_examples'] == 18


def _config_warnings(shapes_dir, train_dir, *flags):
  """The warnings trainer.check_config logs for these flags."""
  records = _Records()
  logger = std_logging.getLogger('absl')
  logger.addHandler(records)
  try:
    opts = tic.parse_flags(list(BASE_FLAGS) + [
        '--dataset_dir=' + shapes_dir, '--train_dir=' + train_dir] +
                           list(flags))
    trainer.check_config(tic.config_from_flags(opts))
  finally:
    logger.removeHandler(records)
  return ' '.join(records.messages)


def test_quantize_delay_beyond_the_last_step_warns(shapes_dir, tmp_path):
  log = _config_warnings(shapes_dir, str(tmp_path / 'q'),
                         '--max_number_of_steps=5', '--quantize_delay=6')
  assert '`quantize_delay`=6 is larger than `max_number_of_steps`=5' in log
  log = _config_warnings(shapes_dir, str(tmp_path / 'q'),
                         '--max_number_of_steps=5', '--quantize_delay=5')
  assert 'quantize_delay' not in log


# ------------------------------------------------------------ bad input ---


@pytest.mark.parametrize('flags, expected', [
    (['--labels_offset=1'], "--labels_offset=1 is inconsistent"),
    (['--labels_offset=6'], '--labels_offset=6 must be in [0, 6)'),
    (['--train_image_size=16'], '--train_image_size=16 is too small'),
    (['--model_name=resnet_v9'], 'mobilenet_v2_035'),
    (['--preprocessing_name=nope'], 'cifarnet'),
    (['--dataset_name=nope'], '--dataset_name=nope'),
    (['--dataset_split_name=test'], 'validation'),
    (['--num_clones=2'], '--clone_on_cpu'),
    (['--batch_size=0'], '--batch_size must be >= 1'),
])
def test_bad_flags_fail_with_a_message_naming_the_flag(shapes_dir, tmp_path,
                                                       flags, expected):
  with pytest.raises(script_utils.ScriptError) as error:
    _train(shapes_dir, str(tmp_path / 'bad'), *flags)
  assert expected in str(error.value)


def test_missing_dataset_dir_says_how_to_create_it(tmp_path):
  with pytest.raises(script_utils.ScriptError) as error:
    _train(str(tmp_path / 'nowhere'), str(tmp_path / 'train'))
  assert '--dataset_dir=' in str(error.value)
  assert 'download_and_convert_data.py --dataset_name=shapes' in str(
      error.value)


def test_truncated_shard_is_named(shapes_dir, tmp_path):
  dataset_dir = str(tmp_path / 'shapes')
  shutil.copytree(shapes_dir, dataset_dir)
  shard = sorted(glob.glob(os.path.join(dataset_dir, '*train*.tfrecord')))[0]
  with open(shard, 'rb') as f:
    data = f.read()
  with open(shard, 'wb') as f:
    f.write(data[:len(data) // 2])
  with pytest.raises(script_utils.ScriptError) as error:
    _train(dataset_dir, str(tmp_path / 'train'))
  assert os.path.basename(shard) in str(error.value)
  assert '--dataset_dir=%s' % dataset_dir in str(error.value)


def test_unwritable_train_dir_is_reported(shapes_dir, tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text(u'not a directory')
  with pytest.raises(script_utils.ScriptError,
                     match='--train_dir=.* is not a writable directory'):
    _train(shapes_dir, str(blocker / 'train'))


@pytest.mark.parametrize('tf_config, expected', [
    ('{not json', 'TF_CONFIG is not valid JSON'),
    ('{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, '
     '"task": {"type": "worker", "index": 0}}', 'chief'),
    ('{"cluster": {"ps": ["a:1"], "worker": ["b:1"]}, '
     '"task": {"type": "worker", "index": 3}}', 'task 3 is out of range'),
])
def test_bad_tf_config_is_reported(monkeypatch, tf_config, expected):
  monkeypatch.setenv('TF_CONFIG', tf_config)
  with pytest.raises(cluster.ClusterError, match=expected):
    cluster.resolve_cluster()


def test_cluster_from_tf_config_and_from_flags(monkeypatch):
  monkeypatch.setenv(
      'TF_CONFIG', '{"cluster": {"ps": ["h0:1"], "worker": ["h1:1", '
      '"h2:1"]}, "task": {"type": "worker", "index": 1}}')
  spec, job, task = cluster.resolve_cluster()
  assert spec == {'ps': ['h0:1'], 'worker': ['h1:1', 'h2:1']}
  assert (job, task) == ('worker', 1)
  # Host lists take precedence over TF_CONFIG.
  spec, job, task = cluster.resolve_cluster(
      ps_hosts=['a:1'], worker_hosts=['b:1'], job_name='ps', task=0)
  assert spec == {'ps': ['a:1'], 'worker': ['b:1']}
  assert (job, task) == ('ps', 0)
  with pytest.raises(cluster.ClusterError, match='num_ps_tasks=3'):
    cluster.resolve_cluster(ps_hosts=['a:1'], worker_hosts=['b:1'],
                            num_ps_tasks=3)


@pytest.mark.slow
@pytest.mark.parametrize('flags, expected', [
    (['--model_name=resnet_v9'],
     'train_image_classifier.py: error: Bad --model_name=resnet_v9'),
    (['--optimizer=adamw'], 'flag --optimizer=adamw: value should be one of'),
])
def test_cli_reports_bad_input_without_a_traceback(
    repo_root, script_env, shapes_dir, tmp_path, flags, expected):
  process = subprocess.run(
      [sys.executable, 'train_image_classifier.py',
       '--dataset_name=shapes', '--dataset_dir=%s' % shapes_dir,
       '--train_dir=%s' % (tmp_path / 'cli')] + flags,
      cwd=repo_root, env=script_env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
  assert process.returncode == 1
  assert expected in ' '.join(process.stderr.split())
  assert 'Traceback' not in process.stderr
