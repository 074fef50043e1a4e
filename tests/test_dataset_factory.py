"""Tests of datasets.dataset_factory: names, splits and missing-data errors."""


import inspect
import json
import os

import pytest

from datasets import cifar10
from datasets import dataset_factory
from datasets import dataset_utils
from datasets import generate_shapes
from export import inference_graph

_NAMES = ('cifar10', 'flowers', 'image_folder', 'imagenet', 'mnist', 'shapes',
          'visualwakewords')


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
  split = {'cifar10': 'test', 'mnist': 'test', 'visualwakewords': 'val'}.get(
      name, 'validation')
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


# --------------------------------------------------------------------------
# One declarative description per dataset; class counts without files.

_FIXED_NUM_CLASSES = {'imagenet': 1001, 'flowers': 5, 'cifar10': 10,
                      'mnist': 10, 'shapes': 6, 'visualwakewords': 2}


@pytest.mark.parametrize('name', _NAMES)
def test_modules_keep_slims_names_and_share_one_reader(name):
  module = dataset_factory.datasets_map[name]
  assert list(inspect.signature(module.get_split).parameters) == [
      'split_name', 'dataset_dir', 'file_pattern', 'reader']
  assert module.SPEC.splits_to_sizes == module.SPLITS_TO_SIZES
  assert module.SPEC.name == name
  if name in _FIXED_NUM_CLASSES:
    assert module._NUM_CLASSES == _FIXED_NUM_CLASSES[name]
  # The module's own get_split is the generic reader bound to its spec.
  assert module.get_split.__code__ is cifar10.get_split.__code__


@pytest.mark.parametrize('name, expected', sorted(_FIXED_NUM_CLASSES.items()))
def test_fixed_class_counts_need_no_files(tmp_path, name, expected):
  assert dataset_factory.num_classes(name) == expected
  assert dataset_factory.num_classes(name, str(tmp_path / 'missing')) == (
      expected)


def test_image_folder_class_count_is_read_from_the_directory(tmp_path):
  with pytest.raises(dataset_utils.DatasetNotFoundError, match='image_folder'):
    dataset_factory.num_classes('image_folder')
  with pytest.raises(dataset_utils.DatasetNotFoundError, match='labels.txt'):
    dataset_factory.num_classes('image_folder', str(tmp_path))
  dataset_utils.write_label_file({0: 'a', 1: 'b', 2: 'c'}, str(tmp_path))
  assert dataset_factory.num_classes('image_folder', str(tmp_path)) == 3
  with pytest.raises(ValueError, match='cifar100'):
    dataset_factory.num_classes('cifar100')


def test_export_class_count_of_a_known_dataset_needs_no_dataset_dir(tmp_path):
  missing = str(tmp_path / 'missing')
  assert inference_graph._dataset_num_classes('imagenet') == 1001
  assert inference_graph._dataset_num_classes('imagenet', missing) == 1001
  assert inference_graph.resolve_num_classes('imagenet', missing) == 1001
  assert inference_graph.resolve_num_classes('flowers', missing) == 5
  with pytest.raises(inference_graph.ExportError, match='num_classes'):
    inference_graph._dataset_num_classes('image_folder', missing)


# --------------------------------------------------------------------------
# A directory holding another dataset's files.


@pytest.mark.parametrize('wrong_name', ['shapes', 'imagenet'])
def test_directory_of_another_dataset_names_that_dataset(tmp_path,
                                                         wrong_name):
  for split in ('train', 'validation'):
    (tmp_path / ('image_folder_%s_00000-of-00001.tfrecord' % split)
    ).write_bytes(b'')
  with pytest.raises(dataset_utils.DatasetNotFoundError) as e:
    dataset_factory.get_dataset(wrong_name, 'train', str(tmp_path))
  message = str(e.value)
  assert 'holds the TFRecords of image_folder' in message
  assert 'image_folder_train_00000-of-00001.tfrecord' in message
  assert 'dataset_name=image_folder' in message
  # No advice to convert a second dataset into the same directory.
  assert 'download_and_convert_data.py' not in message
  # An empty directory still says how to create the dataset.
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(dataset_utils.DatasetNotFoundError,
                     match='download_and_convert_data.py --dataset_name=%s'
                     % wrong_name):
    dataset_factory.get_dataset(wrong_name, 'train', str(empty))
