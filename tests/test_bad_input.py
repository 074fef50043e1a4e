"""Bad input to eval_image_classifier.py not covered by its own tests.

The train script's, the export scripts' and the converters' bad-input
cases are tested beside them (see RELIABILITY.md for the catalogue); these
are the dataset, name and checkpoint cases of evaluation. Each must stop
with a ScriptError naming the flag or file, before any metrics file is
written.
"""


import glob
import os
import shutil

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import eval_image_classifier as eic
from datasets import generate_shapes
from cli import script_utils
from tests.train_dir_helpers import save_untrained_checkpoint

MODEL_NAME = 'mobilenet_v1_025'
IMAGE_SIZE = 32
NUM_CLASSES = 6  # shapes


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  """A tiny shapes set: 6 validation images in one shard."""
  path = str(tmp_path_factory.mktemp('shapes'))
  generate_shapes.run(path, image_size=IMAGE_SIZE, train_per_class=1,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  return path


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
  """Checkpoints of the evaluated model and of mismatching ones."""
  root = tmp_path_factory.mktemp('checkpoints')
  made = {}
  for key, model_name, num_classes in (
      ('good', MODEL_NAME, NUM_CLASSES),
      ('other_classes', MODEL_NAME, 10),
      ('other_model', 'mobilenet_v2_035', NUM_CLASSES)):
    directory = str(root / key)
    made[key] = save_untrained_checkpoint(directory, model_name,
                                          num_classes, IMAGE_SIZE)
  return made


def _evaluate_expecting_error(dataset_dir, eval_dir, checkpoint, *flags):
  """Runs evaluation; returns the ScriptError's message."""
  opts = eic.parse_flags([
      '--dataset_name=shapes',
      '--dataset_dir=%s' % dataset_dir, '--eval_dir=%s' % eval_dir,
      '--checkpoint_path=%s' % checkpoint, '--model_name=%s' % MODEL_NAME,
      '--eval_image_size=%d' % IMAGE_SIZE, '--num_preprocessing_threads=1',
      '--batch_size=4'] + list(flags))
  with pytest.raises(script_utils.ScriptError) as error:
    with tf.Graph().as_default():
      eic.evaluate(opts)
  # Nothing that looks like a result was written.
  assert not glob.glob(os.path.join(eval_dir, 'metrics*.json'))
  return ' '.join(str(error.value).split())


@pytest.mark.parametrize('flags, expected', [
    (['--model_name=resnet_v9'], ['--model_name=resnet_v9',
                                  'mobilenet_v2_035']),
    (['--dataset_name=nope'], ['--dataset_name=nope', 'shapes']),
    (['--preprocessing_name=nope'], ['nope', 'cifarnet']),
    (['--dataset_split_name=test'], ['test', 'validation']),
    (['--labels_offset=6'], ['--labels_offset=6 must be in [0, 6)']),
])
def test_unknown_names_and_offsets_name_the_flag(shapes_dir, checkpoints,
                                                 tmp_path, flags, expected):
  message = _evaluate_expecting_error(
      shapes_dir, str(tmp_path / 'eval'), checkpoints['good'], *flags)
  for text in expected:
    assert text in message


def test_missing_dataset_dir_says_how_to_create_it(checkpoints, tmp_path):
  missing = str(tmp_path / 'nowhere')
  message = _evaluate_expecting_error(missing, str(tmp_path / 'eval'),
                                      checkpoints['good'])
  assert '--dataset_dir=%s does not exist' % missing in message
  assert 'download_and_convert_data.py --dataset_name=shapes' in message


def test_missing_split_files_are_named(shapes_dir, checkpoints, tmp_path):
  dataset_dir = str(tmp_path / 'shapes')
  shutil.copytree(shapes_dir, dataset_dir)
  for path in glob.glob(os.path.join(dataset_dir, '*validation*.tfrecord')):
    os.remove(path)
  message = _evaluate_expecting_error(dataset_dir, str(tmp_path / 'eval'),
                                      checkpoints['good'])
  assert 'validation' in message
  assert '--dataset_dir=%s' % dataset_dir in message


@pytest.mark.parametrize('damage', ['truncate', 'corrupt'])
def test_damaged_shard_is_named(shapes_dir, checkpoints, tmp_path, damage):
  dataset_dir = str(tmp_path / 'shapes')
  shutil.copytree(shapes_dir, dataset_dir)
  shard = sorted(glob.glob(os.path.join(dataset_dir,
                                        '*validation*.tfrecord')))[0]
  with open(shard, 'rb') as f:
    data = bytearray(f.read())
  if damage == 'truncate':
    data = data[:len(data) // 2]
  else:
    # Flip bytes inside the first record's payload (its CRC then fails).
    for i in range(100, 140):
      data[i] ^= 0xFF
  with open(shard, 'wb') as f:
    f.write(bytes(data))
  message = _evaluate_expecting_error(dataset_dir, str(tmp_path / 'eval'),
                                      checkpoints['good'])
  assert os.path.basename(shard) in message


@pytest.mark.parametrize('key, expected', [
    ('other_classes', ['classification head', 'MobilenetV1/Logits']),
    ('other_model', ['holds a MobilenetV2 model', '--model_name']),
])
def test_checkpoint_of_another_model_or_class_count(shapes_dir, checkpoints,
                                                    tmp_path, key, expected):
  message = _evaluate_expecting_error(shapes_dir, str(tmp_path / 'eval'),
                                      checkpoints[key])
  assert 'does not fit --model_name=%s' % MODEL_NAME in message
  for text in expected:
    assert text in message
