"""MobileNet V3 and EdgeTPU through the trainer and the evaluator.

The nets tests check layouts and numerics; these check that the factory
names work wherever a model name is taken: training from scratch, fine-tuning
a new head from a checkpoint (`--checkpoint_exclude_scopes=<scope>/Logits`)
with the backbone frozen, and evaluation. Tiny inputs (32x32) and batches,
one step per run: each run's cost is its graph build and session start.
"""


import os

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import eval_image_classifier as eic
from datasets import generate_shapes
from tests.train_dir_helpers import checkpoint_values
from tests.train_dir_helpers import train_in_process

IMAGE_SIZE = 32
COMMON = ['--dataset_name=shapes', '--train_image_size=%d' % IMAGE_SIZE,
          '--batch_size=2', '--save_summaries_secs=0',
          '--save_interval_secs=0', '--num_readers=1',
          '--num_preprocessing_threads=1', '--optimizer=sgd',
          '--learning_rate=0.05', '--learning_rate_decay_type=fixed']


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('shapes_v3'))
  generate_shapes.run(path, image_size=IMAGE_SIZE, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  return path


def _train(shapes_dir, train_dir, model_name, steps, *extra):
  return train_in_process(COMMON, shapes_dir, train_dir,
                          '--model_name=' + model_name,
                          '--max_number_of_steps=%d' % steps, *extra)


@pytest.mark.slow
@pytest.mark.parametrize('model_name,scope', [
    ('mobilenet_v3_small', 'MobilenetV3'),
    ('mobilenet_edgetpu_075', 'MobilenetEdgeTPU'),
])
def test_train_finetune_and_evaluate(shapes_dir, tmp_path, model_name, scope):
  base_dir = str(tmp_path / 'base')
  result = _train(shapes_dir, base_dir, model_name, 1)
  assert result['global_step'] == 1
  base = checkpoint_values(tf.train.latest_checkpoint(base_dir))
  head = scope + '/Logits/Conv2d_1c_1x1/weights'
  assert base[head].shape[-1] == 6

  tuned_dir = str(tmp_path / 'tuned')
  _train(shapes_dir, tuned_dir, model_name, 1,
         '--checkpoint_path=' + base_dir,
         '--checkpoint_exclude_scopes=%s/Logits' % scope,
         '--trainable_scopes=%s/Logits' % scope)
  tuned = checkpoint_values(tf.train.latest_checkpoint(tuned_dir))
  # The backbone came from the base checkpoint and stayed frozen; the head
  # was re-initialized and then trained.
  backbone = [name for name in base
              if name.startswith(scope + '/') and '/Logits/' not in name and
              not name.endswith(('/RMSProp', '/RMSProp_1', '/Momentum'))]
  assert backbone
  for name in backbone:
    np.testing.assert_array_equal(tuned[name], base[name], err_msg=name)
  assert not np.allclose(tuned[head], base[head])

  opts = eic.parse_flags([
      '--dataset_name=shapes', '--dataset_dir=' + shapes_dir,
      '--eval_dir=' + str(tmp_path / 'eval'),
      '--checkpoint_path=' + tuned_dir, '--model_name=' + model_name,
      '--eval_image_size=%d' % IMAGE_SIZE, '--num_preprocessing_threads=1'])
  with tf.Graph().as_default():
    metrics = eic.evaluate(opts)
  if isinstance(metrics, list):
    metrics = metrics[-1]
  assert 0.0 <= metrics['Accuracy'] <= 1.0
  assert os.listdir(str(tmp_path / 'eval'))
