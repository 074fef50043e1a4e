"""Fine-tuning from converted weights through the training script's flags.

Runs on both stacks: Keras's MobileNet (in TF 1.15's Keras too) is seeded,
converted, and trained for two steps with a new 6-class head.
"""

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import generate_shapes
from tests import weights_helpers
from tests.train_dir_helpers import train_in_process
from weights import convert
from weights import slim_network

IMAGE_SIZE = 32


def _seeded_keras_v1_025(path):
  keras = weights_helpers.keras_module()
  with tf.Graph().as_default():
    model = keras.applications.MobileNet(
        weights=None, alpha=0.25, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    weights_helpers.seed_keras_model(model)
    model.save_weights(path)


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('shapes'))
  generate_shapes.run(path, image_size=IMAGE_SIZE, train_per_class=4,
                      validation_per_class=3, train_shards=1,
                      validation_shards=1, num_workers=1)
  return path


@pytest.mark.slow
def test_fine_tuning_restores_converted_weights_under_a_new_head(
    shapes_dir, tmp_path):
  source = str(tmp_path / 'keras.h5')
  _seeded_keras_v1_025(source)
  prefix = str(tmp_path / 'pretrained' / 'model.ckpt')
  convert.convert('keras', source, 'mobilenet_v1_025', prefix,
                  image_size=IMAGE_SIZE)
  train_dir = str(tmp_path / 'train')
  train_in_process(
      ['--dataset_name=shapes', '--model_name=mobilenet_v1_025',
       '--train_image_size=%d' % IMAGE_SIZE, '--batch_size=8',
       '--save_summaries_secs=0', '--save_interval_secs=0',
       '--num_readers=1', '--num_preprocessing_threads=1'],
      shapes_dir, train_dir, '--max_number_of_steps=2',
      '--checkpoint_path=%s' % prefix,
      '--checkpoint_exclude_scopes=MobilenetV1/Logits',
      '--trainable_scopes=MobilenetV1/Logits')
  converted = slim_network.read_checkpoint(prefix)
  trained = slim_network.read_checkpoint(tf.train.latest_checkpoint(train_dir))
  assert trained['MobilenetV1/Logits/Conv2d_1c_1x1/weights'].shape[-1] == 6
  # Trainable backbone variables, frozen by --trainable_scopes, keep the
  # converted values exactly (moving statistics move in training mode).
  backbone = [name for name in converted
              if '/Logits/' not in name and 'moving_' not in name]
  assert len(backbone) > 50
  for name in backbone:
    np.testing.assert_array_equal(trained[name], converted[name],
                                  err_msg=name)
