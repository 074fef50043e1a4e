"""Reads the Flowers TFRecords made by download_and_convert_flowers.py.

Create them with
  python download_and_convert_data.py --dataset_name=flowers --dataset_dir=DIR
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datasets import example_codecs
from datasets import split_reader

_FILE_PATTERN = 'flowers_%s_*.tfrecord'

SPLITS_TO_SIZES = {'train': 3320, 'validation': 350}

_NUM_CLASSES = 5

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A colour image of varying size.',
    'label': 'A single integer between 0 and 4',
}


def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
  """Gets a dataset tuple with instructions for reading flowers.

  Args:
    split_name: `train` or `validation`.
    dataset_dir: the directory holding the TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based data providers.

  Returns:
    A `slim.dataset.Dataset`.

  Raises:
    ValueError: unknown split, or the files are missing.
  """
  return split_reader.make_split_dataset(
      'flowers', split_name, dataset_dir, file_pattern, reader, _FILE_PATTERN,
      SPLITS_TO_SIZES, _NUM_CLASSES,
      example_codecs.classification_decoder('jpeg'), _ITEMS_TO_DESCRIPTIONS)
