"""Tests of the embedded default dataset `shapes`."""


import os
import subprocess
import sys

import numpy as np
import pytest

from datasets import dataset_factory
from datasets import generate_shapes
from tests import dataset_fixtures

_SMALL = dict(image_size=32, train_per_class=3, validation_per_class=2,
              train_shards=2, validation_shards=1)


def _shard_bytes(directory):
  return {name: open(os.path.join(directory, name), 'rb').read()
          for name in sorted(os.listdir(directory))
          if name.endswith('.tfrecord')}


def test_generation_is_deterministic_in_the_seed(tmp_path):
  first, again, other = (str(tmp_path / d) for d in ('a', 'b', 'c'))
  generate_shapes.run(first, seed=7, num_workers=2, **_SMALL)
  generate_shapes.run(again, seed=7, num_workers=1, **_SMALL)
  generate_shapes.run(other, seed=8, **_SMALL)
  assert _shard_bytes(first) == _shard_bytes(again)
  assert _shard_bytes(first).keys() == _shard_bytes(other).keys()
  assert _shard_bytes(first) != _shard_bytes(other)


def test_generated_dataset_reads_back(tmp_path):
  directory = str(tmp_path)
  manifests = generate_shapes.run(directory, seed=3, **_SMALL)
  num_classes = len(generate_shapes.CLASS_NAMES)
  assert num_classes >= 6
  for split, per_class in (('train', 3), ('validation', 2)):
    dataset = dataset_factory.get_dataset('shapes', split, directory)
    assert dataset.num_samples == per_class * num_classes
    assert manifests[split]['num_examples'] == dataset.num_samples
    assert dataset.num_classes == num_classes
    assert dataset.labels_to_names == dict(enumerate(
        generate_shapes.CLASS_NAMES))
    records = dataset_fixtures.read_records(dataset)
    assert len(records) == dataset.num_samples
    labels = sorted(int(r['label']) for r in records)
    assert labels == sorted(list(range(num_classes)) * per_class)
    assert all(r['image'].shape == (32, 32, 3) for r in records)
    assert all(r['image'].dtype == np.uint8 for r in records)


def _mean_colours(per_class, split, seed=0,
                  size=generate_shapes.DEFAULT_IMAGE_SIZE):
  features, labels = [], []
  for index, label in generate_shapes.split_items(per_class):
    rng = generate_shapes.image_rng(seed, split, index)
    image = generate_shapes.render(label, size, rng)
    features.append(image.reshape(-1, 3).mean(axis=0))
    labels.append(label)
  return np.array(features) / 255., np.array(labels)


def _nearest_class_mean(train_x, train_y, test_x):
  classes = np.unique(train_y)
  means = np.stack([train_x[train_y == c].mean(axis=0) for c in classes])
  distances = ((test_x[:, None, :] - means[None]) ** 2).sum(axis=-1)
  return classes[distances.argmin(axis=1)]


def _logistic_regression(train_x, train_y, test_x, steps=500, rate=0.5):
  """Multinomial logistic regression on standardised features (numpy)."""
  mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8
  train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
  num_classes = train_y.max() + 1
  weights = np.zeros((train_x.shape[1], num_classes))
  bias = np.zeros(num_classes)
  onehot = np.eye(num_classes)[train_y]
  for _ in range(steps):
    logits = train_x.dot(weights) + bias
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    grad = (probs - onehot) / len(train_x)
    weights -= rate * train_x.T.dot(grad)
    bias -= rate * grad.sum(axis=0)
  return (test_x.dot(weights) + bias).argmax(axis=1)


def _knn(train_x, train_y, test_x, k=15):
  distances = ((test_x[:, None, :] - train_x[None]) ** 2).sum(axis=-1)
  nearest = train_y[np.argsort(distances, axis=1)[:, :k]]
  return np.array([np.bincount(row).argmax() for row in nearest])


_CLASSIFIERS = [_nearest_class_mean, _logistic_regression, _knn]


def test_classifiers_work_on_colour_separable_data():
  # Control: the classifiers below do separate classes that differ in colour.
  rng = np.random.RandomState(0)
  labels = np.arange(600) % 6
  colours = rng.uniform(0.2, 0.8, size=(6, 3))
  features = colours[labels] + rng.normal(0, 0.05, size=(600, 3))
  for classify in _CLASSIFIERS:
    predicted = classify(features[:480], labels[:480], features[480:])
    assert (predicted == labels[480:]).mean() > 0.9


def test_mean_colour_does_not_reveal_the_class():
  train_x, train_y = _mean_colours(100, 'train')
  test_x, test_y = _mean_colours(50, 'validation')
  chance = 1. / len(generate_shapes.CLASS_NAMES)
  for classify in _CLASSIFIERS:
    accuracy = (classify(train_x, train_y, test_x) == test_y).mean()
    # 300 test images: chance + 2.1 standard deviations.
    assert accuracy < chance + 0.045, (classify.__name__, accuracy)


def test_bad_sizes_name_the_parameter(tmp_path):
  with pytest.raises(ValueError, match='image_size'):
    generate_shapes.run(str(tmp_path), image_size=8)
  with pytest.raises(ValueError, match='train_per_class'):
    generate_shapes.run(str(tmp_path), train_per_class=0)


@pytest.mark.slow
def test_command_line_creates_shapes(tmp_path, repo_root, script_env):
  out = str(tmp_path / 'shapes')
  result = subprocess.run(
      [sys.executable, os.path.join(repo_root, 'download_and_convert_data.py'),
       '--dataset_name=shapes', '--dataset_dir=' + out,
       '--shapes_image_size=24', '--shapes_train_per_class=2',
       '--shapes_validation_per_class=1', '--seed=5'],
      env=script_env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'shapes train: 12 examples' in result.stdout
  dataset = dataset_factory.get_dataset('shapes', 'validation', out)
  assert dataset.num_samples == 6
  records = dataset_fixtures.read_records(dataset)
  assert records[0]['image'].shape == (24, 24, 3)


@pytest.mark.slow
def test_command_line_rejects_unknown_dataset(tmp_path, repo_root, script_env):
  result = subprocess.run(
      [sys.executable, os.path.join(repo_root, 'download_and_convert_data.py'),
       '--dataset_name=imagenette', '--dataset_dir=' + str(tmp_path)],
      env=script_env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert 'imagenette' in result.stderr and 'shapes' in result.stderr
  assert 'Traceback' not in result.stderr
