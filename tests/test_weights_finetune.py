"""Fine-tuning from converted weights through the training script's flags.

Runs on both stacks: Keras's MobileNet (in TF 1.15's Keras too) and timm's
MobileNet V4 Conv-S (seeded timm-layout weights, converted by
convert_weights.py) are trained for two steps with a new 6-class head.
"""

import os

import numpy as np
import pytest
import safetensors.numpy

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import generate_shapes
import convert_weights
import eval_image_classifier
from tests import test_mobilenet_v4
from tests import weights_helpers
from tests.train_dir_helpers import REPO_ROOT
from tests.train_dir_helpers import relative_to_repo
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


def _run_script(module, argv):
  flag_values = module.common_flags.parse_flags(module.define_flags,
                                                module.PROGRAM, argv)
  with tf.Graph().as_default():
    return module.run(flag_values)


@pytest.mark.slow
def test_fine_tuning_a_converted_timm_mobilenet_v4(shapes_dir, tmp_path,
                                                   monkeypatch):
  """timm-layout Conv-S weights -> convert_weights.py --from=timm -> a few
  steps with a new head -> eval_image_classifier.py, paths relative to the
  repository root."""
  monkeypatch.chdir(REPO_ROOT)
  root = relative_to_repo(tmp_path)
  safetensors.numpy.save_file(
      test_mobilenet_v4.golden_state_dict('mobilenetv4_conv_small'),
      os.path.join(root, 'model.safetensors'))
  prefix = root + '/pretrained/model.ckpt'
  result = _run_script(convert_weights, [
      '--from=timm', '--timm_name=mobilenetv4_conv_small',
      '--input=' + root + '/model.safetensors', '--output=' + prefix])
  assert result.num_classes == 1001
  train_dir = root + '/train'
  train_in_process(
      ['--dataset_name=shapes', '--model_name=mobilenet_v4_conv_small',
       '--train_image_size=%d' % IMAGE_SIZE, '--batch_size=4',
       '--save_summaries_secs=0', '--num_readers=1',
       '--num_preprocessing_threads=1'],
      relative_to_repo(shapes_dir), train_dir, '--max_number_of_steps=2',
      '--checkpoint_path=' + prefix,
      '--checkpoint_exclude_scopes=MobilenetV4/Logits',
      '--trainable_scopes=MobilenetV4/Logits')
  converted = slim_network.read_checkpoint(prefix)
  trained = slim_network.read_checkpoint(tf.train.latest_checkpoint(train_dir))
  assert trained['MobilenetV4/Logits/Conv2d_1c_1x1/biases'].shape == (6,)
  backbone = [name for name in converted
              if '/Logits/' not in name and 'moving_' not in name]
  assert len(backbone) > 100
  for name in backbone:
    np.testing.assert_array_equal(trained[name], converted[name],
                                  err_msg=name)
  opts = eval_image_classifier.parse_flags([
      '--checkpoint_path=' + train_dir, '--eval_dir=' + root + '/eval',
      '--dataset_dir=' + relative_to_repo(shapes_dir),
      '--dataset_split_name=validation'])
  with tf.Graph().as_default():
    results = eval_image_classifier.evaluate(opts)
  assert len(results) == 1 and 0.0 <= results[0]['Accuracy'] <= 1.0
  assert results[0]['checkpoint'].endswith('model.ckpt-2')
