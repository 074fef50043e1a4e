"""Reads MNIST TFRecords made by download_and_convert_mnist.py.

Create them with
  python download_and_convert_data.py --dataset_name=mnist --dataset_dir=DIR
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datasets import example_codecs
from datasets import split_reader

_FILE_PATTERN = 'mnist_%s*.tfrecord'

SPLITS_TO_SIZES = {'train': 60000, 'test': 10000}

_NUM_CLASSES = 10

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A [28 x 28 x 1] grayscale image.',
    'label': 'A single integer between 0 and 9',
}


def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
  """Gets a dataset tuple with instructions for reading MNIST.

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
      'mnist', split_name, dataset_dir, file_pattern, reader, _FILE_PATTERN,
      SPLITS_TO_SIZES, _NUM_CLASSES,
      example_codecs.classification_decoder('png', channels=1,
                                           shape=[28, 28, 1]),
      _ITEMS_TO_DESCRIPTIONS)
