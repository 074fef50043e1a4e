"""Reads a user's own images converted by convert_image_folder.py.

Create the TFRecords from a folder with one subfolder per class with
  python download_and_convert_data.py --dataset_name=image_folder \
      --source_dir=IMAGES --dataset_dir=DIR
The class and sample counts come from the manifests written at conversion.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datasets import example_codecs
from datasets import split_reader

DATASET_NAME = 'image_folder'

_FILE_PATTERN = 'image_folder_%s_*.tfrecord'

# Unknown until conversion: read from the manifests.
SPLITS_TO_SIZES = {'train': None, 'validation': None}

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A colour image of varying size.',
    'label': 'The class index; labels.txt maps it to the subfolder name.',
}


def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
  """Gets a dataset tuple with instructions for reading an image folder.

  Args:
    split_name: `train` or `validation`.
    dataset_dir: the directory holding the TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based data providers.

  Returns:
    A `slim.dataset.Dataset`.

  Raises:
    ValueError: unknown split, or the files or manifests are missing.
  """
  return split_reader.make_split_dataset(
      DATASET_NAME, split_name, dataset_dir, file_pattern, reader,
      _FILE_PATTERN, SPLITS_TO_SIZES, None,
      example_codecs.classification_decoder('jpeg'), _ITEMS_TO_DESCRIPTIONS)
