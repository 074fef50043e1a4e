"""Reads CIFAR-10 TFRecords made by download_and_convert_cifar10.py.

Create them with
  python download_and_convert_data.py --dataset_name=cifar10 --dataset_dir=DIR
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datasets import example_codecs
from datasets import split_reader

# Matches this project's shards and the single files of the original slim
# converter (cifar10_train.tfrecord).
_FILE_PATTERN = 'cifar10_%s*.tfrecord'

SPLITS_TO_SIZES = {'train': 50000, 'test': 10000}

_NUM_CLASSES = 10

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A [32 x 32 x 3] colour image.',
    'label': 'A single integer between 0 and 9',
}


def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
  """Gets a dataset tuple with instructions for reading CIFAR-10.

  Args:
    split_name: `train` or `test`.
    dataset_dir: the directory holding the TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based data providers.

  Returns:
    A `slim.dataset.Dataset`.

  Raises:
    ValueError: unknown split, or the files are missing.
  """
  return split_reader.make_split_dataset(
      'cifar10', split_name, dataset_dir, file_pattern, reader, _FILE_PATTERN,
      SPLITS_TO_SIZES, _NUM_CLASSES,
      example_codecs.classification_decoder('png', shape=[32, 32, 3]),
      _ITEMS_TO_DESCRIPTIONS)
