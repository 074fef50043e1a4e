"""Reads `shapes`, the embedded default dataset (see generate_shapes.py).

Create it with
  python download_and_convert_data.py --dataset_name=shapes --dataset_dir=DIR
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datasets import example_codecs
from datasets import split_reader
from datasets import generate_shapes

_FILE_PATTERN = 'shapes_%s_*.tfrecord'

# Sizes of a default generation; the manifest written at generation has the
# real counts (sizes are configurable).
SPLITS_TO_SIZES = {
    'train': generate_shapes.DEFAULT_TRAIN_PER_CLASS *
             len(generate_shapes.CLASS_NAMES),
    'validation': generate_shapes.DEFAULT_VALIDATION_PER_CLASS *
                  len(generate_shapes.CLASS_NAMES),
}

_NUM_CLASSES = len(generate_shapes.CLASS_NAMES)

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A colour image of one shape, 64 x 64 by default.',
    'label': 'The shape: %s.' % ', '.join(
        '%d %s' % item for item in enumerate(generate_shapes.CLASS_NAMES)),
}


def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
  """Gets a dataset tuple with instructions for reading shapes.

  Args:
    split_name: `train` or `validation`.
    dataset_dir: the directory holding the generated TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based data providers.

  Returns:
    A `slim.dataset.Dataset`.

  Raises:
    ValueError: unknown split, or the files are missing.
  """
  return split_reader.make_split_dataset(
      generate_shapes.DATASET_NAME, split_name, dataset_dir, file_pattern,
      reader, _FILE_PATTERN, SPLITS_TO_SIZES, _NUM_CLASSES,
      example_codecs.classification_decoder('jpeg'), _ITEMS_TO_DESCRIPTIONS)
