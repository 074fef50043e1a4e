"""Tests of datasets.dataset_factory: names, splits and missing-data errors."""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import json
import os

import pytest

from datasets import dataset_factory
from datasets import dataset_utils
from datasets import generate_shapes

_NAMES = ('cifar10', 'flowers', 'image_folder', 'imagenet', 'mnist', 'shapes')


def test_every_documented_dataset_is_registered():
  assert set(_NAMES) <= set(dataset_factory.datasets_map)


def test_unknown_name_lists_valid_names(tmp_path):
  with pytest.raises(ValueError) as e:
    dataset_factory.get_dataset('cifar100', 'train', str(tmp_path))
  for name in _NAMES:
    assert name in str(e.value)
  assert 'cifar100' in str(e.value)


@pytest.mark.parametrize('name, split', [
    ('cifar10', 'validation'), ('mnist', 'validation'), ('flowers', 'test'),
    ('imagenet', 'test'), ('shapes', 'test'), ('image_folder', 'test')])
def test_unknown_split_lists_valid_splits(tmp_path, name, split):
  with pytest.raises(ValueError, match='valid splits'):
    dataset_factory.get_dataset(name, split, str(tmp_path))


@pytest.mark.parametrize('name', _NAMES)
def test_missing_directory_says_how_to_create_it(tmp_path, name):
  missing = str(tmp_path / 'nowhere')
  split = 'test' if name in ('cifar10', 'mnist') else 'validation'
  with pytest.raises(dataset_utils.DatasetNotFoundError) as e:
    dataset_factory.get_dataset(name, split, missing)
  assert missing in str(e.value)
  assert ('download_and_convert_data.py --dataset_name=%s' % name) in str(
      e.value)


def test_missing_split_files_name_the_expected_pattern(tmp_path):
  with pytest.raises(dataset_utils.DatasetNotFoundError) as e:
    dataset_factory.get_dataset('flowers', 'train', str(tmp_path))
  assert os.path.join(str(tmp_path), 'flowers_train_*.tfrecord') in str(
      e.value)


def test_split_counts_come_from_the_manifest(tmp_path):
  generate_shapes.run(str(tmp_path), image_size=16, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1)
  dataset = dataset_factory.get_dataset('shapes', 'train', str(tmp_path))
  assert dataset.num_samples == 2 * len(generate_shapes.CLASS_NAMES)
  # An unfinished conversion is refused, with the command to finish it.
  path = dataset_utils.manifest_path(str(tmp_path), 'shapes', 'train')
  manifest = json.load(open(path))
  manifest['complete'] = False
  json.dump(manifest, open(path, 'w'))
  with pytest.raises(dataset_utils.DatasetNotFoundError,
                     match='did not finish.*download_and_convert_data.py'):
    dataset_factory.get_dataset('shapes', 'train', str(tmp_path))


def test_image_folder_without_manifest_is_refused(tmp_path):
  (tmp_path / 'image_folder_train_00000-of-00001.tfrecord').write_bytes(b'')
  with pytest.raises(dataset_utils.DatasetNotFoundError,
                     match='image_folder_train_manifest.json'):
    dataset_factory.get_dataset('image_folder', 'train', str(tmp_path))
