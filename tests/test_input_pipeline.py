"""Tests of datasets.input_pipeline on a tiny generated shapes dataset."""


import os
import shutil

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_factory
from datasets import dataset_utils
from datasets import generate_shapes
from datasets import input_pipeline
from tests import dataset_fixtures

_SIZE = 24
_NUM_CLASSES = len(generate_shapes.CLASS_NAMES)


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp('shapes'))
  generate_shapes.run(directory, image_size=_SIZE, train_per_class=4,
                      validation_per_class=3, seed=0, train_shards=3,
                      validation_shards=2)
  return directory


def _scale(image, height, width, **unused_kwargs):
  """Trivial eval preprocessing: resize and scale to [-1, 1]."""
  image = tf.image.convert_image_dtype(image, tf.float32)
  image = tf.image.resize_images(image, [height, width])
  return image * 2. - 1.


def _random_scale(image, height, width):
  """Random training preprocessing: flip and brightness jitter."""
  image = tf.image.random_flip_left_right(_scale(image, height, width))
  return image + tf.random_uniform([], -0.1, 0.1)


def _run_all(tensors):
  """Runs `tensors` until OutOfRangeError; returns the list of results."""
  results = []
  with tf.Session() as sess:
    try:
      while True:
        results.append(sess.run(tensors))
    except tf.errors.OutOfRangeError:
      pass
  return results


def test_eval_yields_each_example_once_in_file_order(shapes_dir):
  dataset = dataset_factory.get_dataset('shapes', 'validation', shapes_dir)
  assert dataset.num_samples == 18
  images, labels = input_pipeline.make_batch(
      dataset, _scale, _SIZE, 5, is_training=False,
      num_preprocessing_threads=3)
  batches = _run_all([images, labels])
  assert [len(b[1]) for b in batches] == [5, 5, 5, 3]
  reference = dataset_fixtures.read_records(dataset)
  np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]),
                                [r['label'] for r in reference])
  np.testing.assert_allclose(batches[0][0][0],
                             reference[0]['image'] / 255. * 2 - 1, atol=1e-5)


def test_eval_with_num_epochs_repeats(shapes_dir):
  dataset = dataset_factory.get_dataset('shapes', 'validation', shapes_dir)
  _, labels = input_pipeline.make_batch(dataset, _scale, _SIZE, 7, False,
                                        num_epochs=2)
  assert sum(len(b) for b in _run_all(labels)) == 36


def test_training_batches_have_static_shape_and_range(shapes_dir):
  dataset = dataset_factory.get_dataset('shapes', 'train', shapes_dir)
  # Finite epochs, read to the end: TF 1.15 can crash in Session.close()
  # while a training pipeline's threads are still filling its buffers.
  images, labels = input_pipeline.make_batch(
      dataset, _scale, 16, 8, is_training=True, num_readers=2, num_epochs=3)
  assert images.shape.as_list() == [8, 16, 16, 3]
  assert labels.shape.as_list() == [8] and labels.dtype == tf.int64
  assert images.dtype == tf.float32
  batches = _run_all([images, labels])
  assert len(batches) == 9  # 72 examples: more than one pass over 24.
  seen = []
  for image_values, label_values in batches:
    assert image_values.min() >= -1 and image_values.max() <= 1
    seen.extend(label_values)
  assert set(seen) <= set(range(_NUM_CLASSES)) and len(set(seen)) > 1


def test_training_is_shuffled_and_drops_partial_batches(shapes_dir):
  dataset = dataset_factory.get_dataset('shapes', 'train', shapes_dir)
  _, labels = input_pipeline.make_batch(dataset, _scale, _SIZE, 5, True,
                                        num_epochs=1, seed=1)
  batches = _run_all(labels)
  assert [len(b) for b in batches] == [5, 5, 5, 5]
  file_order = [r['label'] for r in dataset_fixtures.read_records(dataset)]
  assert list(np.concatenate(batches)) != file_order[:20]


def _first_batches(directory, seed, count=3):
  with tf.Graph().as_default():
    dataset = dataset_factory.get_dataset('shapes', 'train', directory)
    # Read to the end (see above); the first batches are what is compared.
    images, labels = input_pipeline.make_batch(
        dataset, _random_scale, _SIZE, 6, True, num_readers=3,
        num_preprocessing_threads=3, seed=seed, num_epochs=2)
    return _run_all([images, labels])[:count]


def test_seed_makes_training_deterministic(shapes_dir):
  first = _first_batches(shapes_dir, seed=5)
  again = _first_batches(shapes_dir, seed=5)
  other = _first_batches(shapes_dir, seed=6)
  for (a_images, a_labels), (b_images, b_labels) in zip(first, again):
    np.testing.assert_array_equal(a_labels, b_labels)
    np.testing.assert_array_equal(a_images, b_images)
  assert any(not np.array_equal(a[0], o[0]) for a, o in zip(first, other))


def test_labels_offset_is_subtracted(shapes_dir):
  dataset = dataset_factory.get_dataset('shapes', 'validation', shapes_dir)
  _, labels = input_pipeline.make_batch(dataset, _scale, _SIZE, 18, False)
  _, shifted = input_pipeline.make_batch(dataset, _scale, _SIZE, 18, False,
                                         labels_offset=1)
  with tf.Session() as sess:
    plain, offset = sess.run([labels, shifted])
  np.testing.assert_array_equal(offset, plain - 1)


@pytest.mark.parametrize('kwargs, name', [
    (dict(batch_size=0), 'batch_size'),
    (dict(image_size=-3), 'image_size'),
    (dict(num_readers=0), 'num_readers'),
    (dict(labels_offset=_NUM_CLASSES), 'labels_offset'),
    (dict(num_epochs=0), 'num_epochs'),
])
def test_bad_arguments_are_named(shapes_dir, kwargs, name):
  dataset = dataset_factory.get_dataset('shapes', 'train', shapes_dir)
  args = dict(image_size=_SIZE, batch_size=4)
  args.update(kwargs)
  with pytest.raises(ValueError, match=name):
    input_pipeline.make_dataset(dataset, _scale, is_training=True, **args)


def test_boxes_reach_preprocessing_that_accepts_them(tmp_path):
  rng = np.random.RandomState(0)
  boxes = [[(0.1, 0.2, 0.5, 0.6)], [(0., 0., 1., 1.), (0.25, 0.25, 0.5, 0.5)]]
  path = str(tmp_path / 'validation-00000-of-00001')
  with tf.io.TFRecordWriter(path) as writer:
    for label, image_boxes in enumerate(boxes, 1):
      image = dataset_fixtures.random_images(rng, 1, 12, 10)[0]
      writer.write(dataset_utils.imagenet_to_tfexample(
          dataset_fixtures.jpeg_bytes(image), 'JPEG', 12, 10, label, 'n%d' %
          label, 'c%d' % label, image_boxes).SerializeToString())
  dataset = dataset_factory.get_dataset('imagenet', 'validation',
                                        str(tmp_path))
  received = []

  def with_boxes(image, height, width, bbox=None):
    received.append(bbox)
    # Encode the boxes in the output: the sum of their coordinates.
    return tf.ones([height, width, 3]) * tf.reduce_sum(bbox)

  images, labels = input_pipeline.make_batch(dataset, with_boxes, 4, 2, False)
  with tf.Session() as sess:
    image_values, label_values = sess.run([images, labels])
  assert received[0].shape.as_list() == [1, None, 4]
  np.testing.assert_allclose(image_values[:, 0, 0, 0],
                             [np.sum(b) for b in boxes], rtol=1e-6)
  np.testing.assert_array_equal(label_values, [1, 2])
  # A function without a `bbox` argument is called without it.
  images, _ = input_pipeline.make_batch(dataset, lambda i, h, w: _scale(
      i, h, w), 4, 2, False)
  assert images.shape.as_list() == [None, 4, 4, 3]


def _copy(shapes_dir, tmp_path):
  directory = str(tmp_path / 'copy')
  shutil.copytree(shapes_dir, directory)
  return directory


def test_corrupt_shard_error_names_the_file(shapes_dir, tmp_path):
  directory = _copy(shapes_dir, tmp_path)
  shard = os.path.join(directory, 'shapes_validation_00001-of-00002.tfrecord')
  data = bytearray(open(shard, 'rb').read())
  data[len(data) // 2] ^= 0xFF  # Same size: only the CRC can tell.
  open(shard, 'wb').write(bytes(data))
  dataset = dataset_factory.get_dataset('shapes', 'validation', directory)
  _, labels = input_pipeline.make_batch(dataset, _scale, _SIZE, 4, False)
  with pytest.raises(input_pipeline.CorruptShardError) as e:
    with input_pipeline.raise_corrupt_shard_errors(dataset):
      _run_all(labels)
  assert e.value.path == shard and shard in str(e.value)
  assert isinstance(e.value, tf.errors.DataLossError)


def test_truncated_shard_is_caught_before_reading(shapes_dir, tmp_path):
  directory = _copy(shapes_dir, tmp_path)
  shard = os.path.join(directory, 'shapes_train_00002-of-00003.tfrecord')
  data = open(shard, 'rb').read()
  open(shard, 'wb').write(data[:len(data) - 100])
  dataset = dataset_factory.get_dataset('shapes', 'train', directory)
  with pytest.raises(input_pipeline.CorruptShardError, match=shard):
    input_pipeline.make_dataset(dataset, _scale, _SIZE, 4, True)
  # Without a manifest (a custom file pattern), reading finds it.
  dataset = dataset_factory.get_dataset('shapes', 'train', directory,
                                        file_pattern='shapes_%s_*.tfrecord')
  _, labels = input_pipeline.make_batch(dataset, _scale, _SIZE, 4, False)
  with pytest.raises(input_pipeline.CorruptShardError, match=shard):
    with input_pipeline.raise_corrupt_shard_errors(dataset):
      _run_all(labels)


def test_missing_files_are_reported(shapes_dir):
  dataset = dataset_factory.get_dataset('shapes', 'train', shapes_dir)
  dataset.data_sources = os.path.join(shapes_dir, 'nothing_*.tfrecord')
  with pytest.raises(dataset_utils.DatasetNotFoundError, match='nothing_'):
    input_pipeline.make_dataset(dataset, _scale, _SIZE, 4, True)
