"""The one place dataset names map to dataset modules."""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from datasets import cifar10
from datasets import flowers
from datasets import image_folder
from datasets import imagenet
from datasets import mnist
from datasets import shapes

datasets_map = {
    'cifar10': cifar10,
    'flowers': flowers,
    'image_folder': image_folder,
    'imagenet': imagenet,
    'mnist': mnist,
    'shapes': shapes,
}


def get_dataset(name, split_name, dataset_dir, file_pattern=None, reader=None):
  """Given a dataset name and a split_name returns a Dataset.

  Args:
    name: a registered dataset name (see `datasets_map`).
    split_name: the split, e.g. `train` or `validation`.
    dataset_dir: the directory holding the dataset's TFRecords.
    file_pattern: glob overriding the dataset's default; `%s` becomes the
      split name.
    reader: reader class for queue-based data providers (default
      `tf.TFRecordReader`).

  Returns:
    A `slim.dataset.Dataset` with data_sources, decoder, num_samples,
    num_classes, labels_to_names and items_to_descriptions.

  Raises:
    ValueError: unknown dataset or split name, or missing files (the message
      says which files were expected where and how to create them).
  """
  if name not in datasets_map:
    raise ValueError('Unknown dataset %r; valid names: %s. Pass one of them '
                     'with --dataset_name.' %
                     (name, ', '.join(sorted(datasets_map))))
  return datasets_map[name].get_split(split_name, dataset_dir, file_pattern,
                                      reader)
