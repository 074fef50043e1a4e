"""slim's nets/mobilenet_v1_train.py and nets/mobilenet_v1_eval.py.

Their flags map onto train_image_classifier.py / eval_image_classifier.py;
the tests check the mapping through the main scripts' own parsers, then run
both scripts on a tiny ImageNet-format dataset.
"""

import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import common_flags
import eval_image_classifier
import train_image_classifier
from datasets import example_codecs
from cli import script_utils
from nets import mobilenet_v1_eval
from nets import mobilenet_v1_train


def _train_opts(*argv):
  opts = common_flags.parse_flags(mobilenet_v1_train.define_flags, 'x', argv)
  return train_image_classifier.parse_flags(
      mobilenet_v1_train.trainer_argv(opts))


def test_slim_train_defaults_map_onto_the_trainer():
  opts = _train_opts('--checkpoint_dir=ckpt', '--dataset_dir=data')
  expected = {
      'train_dir': 'ckpt', 'dataset_dir': 'data', 'dataset_name': 'imagenet',
      'model_name': 'mobilenet_v1', 'batch_size': 64,
      'train_image_size': 224, 'labels_offset': 0, 'optimizer': 'sgd',
      'learning_rate': 0.045, 'learning_rate_decay_factor': 0.94,
      'num_epochs_per_decay': 2.5, 'log_every_n_steps': 100,
      'save_summaries_secs': 100, 'save_interval_secs': 100,
      'max_number_of_steps': None, 'quantize_delay': -1, 'num_ps_tasks': 0,
      'task': 0, 'master': '', 'checkpoint_path': None}
  assert {k: getattr(opts, k) for k in expected} == expected


def test_fine_tune_quantize_and_width():
  opts = _train_opts('--checkpoint_dir=c', '--fine_tune_checkpoint=ft',
                     '--quantize', '--depth_multiplier=0.25',
                     '--num_classes=1000', '--number_of_steps=7',
                     '--ps_tasks=2', '--task=1', '--master=grpc://h:1')
  assert (opts.checkpoint_path, opts.ignore_missing_vars, opts.learning_rate,
          opts.quantize_delay, opts.model_name, opts.labels_offset,
          opts.max_number_of_steps, opts.num_ps_tasks, opts.task,
          opts.master) == ('ft', True, 1e-4, 0, 'mobilenet_v1_025', 1, 7, 2,
                           1, 'grpc://h:1')
  assert _train_opts('--checkpoint_dir=c', '--quantize').quantize_delay == (
      250000)


def test_slim_eval_defaults_map_onto_the_evaluator():
  opts = common_flags.parse_flags(
      mobilenet_v1_eval.define_flags, 'x',
      ['--checkpoint_dir=ckpt', '--eval_dir=ev', '--dataset_dir=data'])
  mapped = eval_image_classifier.parse_flags(
      mobilenet_v1_eval.evaluator_argv(opts))
  assert (mapped.checkpoint_path, mapped.eval_dir, mapped.batch_size,
          mapped.max_num_batches, mapped.eval_image_size, mapped.model_name,
          mapped.dataset_split_name, mapped.quantize) == (
              'ckpt', 'ev', 250, 200, 224, 'mobilenet_v1', 'validation',
              False)


@pytest.mark.parametrize('argv, text', [
    (['--depth_multiplier=0.3'], '--depth_multiplier=0.3 has no MobileNet'),
    (['--num_classes=10'], '--num_classes=10 does not fit ImageNet'),
    ([], '--checkpoint_dir is required')])
def test_bad_flags_name_the_flag(argv, text):
  opts = common_flags.parse_flags(
      mobilenet_v1_train.define_flags, 'x',
      (['--checkpoint_dir=c'] if argv else []) + argv)
  with pytest.raises(script_utils.ScriptError) as info:
    mobilenet_v1_train.trainer_argv(opts)
  assert text in str(info.value)


def _imagenet_records(directory):
  """Two tiny ImageNet-format splits (labels 1 and 2 of 1001)."""
  os.makedirs(directory)
  rng = np.random.RandomState(0)
  for split, count in (('train', 8), ('validation', 6)):
    path = os.path.join(directory, '%s-00000-of-00001' % split)
    with tf.io.TFRecordWriter(path) as writer:
      for i in range(count):
        out = io.BytesIO()
        Image.fromarray(rng.randint(0, 256, (40, 40, 3)).astype(np.uint8)
                        ).save(out, 'JPEG')
        writer.write(example_codecs.imagenet_to_tfexample(
            out.getvalue(), 'JPEG', 40, 40, 1 + i % 2, 'n0', 'x'
        ).SerializeToString())


@pytest.mark.slow
def test_scripts_train_and_evaluate_from_the_repository_root(
    tmp_path, repo_root, script_env):
  data = str(tmp_path / 'imagenet')
  _imagenet_records(data)
  ckpt = str(tmp_path / 'train')
  train = [sys.executable, 'nets/mobilenet_v1_train.py',
           '--dataset_dir=' + data, '--checkpoint_dir=' + ckpt,
           '--depth_multiplier=0.25', '--image_size=64', '--batch_size=4',
           '--number_of_steps=2']
  result = subprocess.run(train, cwd=repo_root, env=script_env,
                          capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert os.path.exists(os.path.join(ckpt, 'model.ckpt-2.index'))
  result = subprocess.run(
      [sys.executable, '-m', 'nets.mobilenet_v1_eval', '--dataset_dir=' + data,
       '--checkpoint_dir=' + ckpt, '--eval_dir=' + str(tmp_path / 'eval'),
       '--depth_multiplier=0.25', '--image_size=64', '--batch_size=4',
       '--num_examples=6'], cwd=repo_root, env=script_env,
      capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert 'over 6 examples' in result.stdout and 'model.ckpt-2' in (
      result.stdout)
  # --quantize fine-tunes with fake-quantization ops on both stacks.
  result = subprocess.run(
      train[:3] + ['--checkpoint_dir=' + str(tmp_path / 'qat'),
                   '--fine_tune_checkpoint=' + ckpt] + train[4:] +
      ['--quantize'], cwd=repo_root, env=script_env, capture_output=True,
      text=True)
  assert result.returncode == 0, result.stderr
  reader = tf.train.load_checkpoint(str(tmp_path / 'qat'))
  assert any('weights_quant' in name
             for name in reader.get_variable_to_shape_map())
