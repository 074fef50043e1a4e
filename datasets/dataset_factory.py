"""The one place dataset names map to dataset modules."""


import os

from datasets import cifar10
from datasets import dataset_errors
from datasets import dataset_spec
from datasets import flowers
from datasets import image_folder
from datasets import imagenet
from datasets import mnist
from datasets import shapes
from datasets import visualwakewords

datasets_map = {
    'cifar10': cifar10,
    'flowers': flowers,
    'image_folder': image_folder,
    'imagenet': imagenet,
    'mnist': mnist,
    'shapes': shapes,
    'visualwakewords': visualwakewords,
}


def _module(name):
  if name not in datasets_map:
    raise dataset_errors.SettingError(
        'Unknown dataset %r; valid names: %s. Pass one of them as %s.' %
        (name, ', '.join(sorted(datasets_map)),
         dataset_errors.ref('dataset_name')))
  return datasets_map[name]


def get_dataset(name, split_name, dataset_dir, file_pattern=None, reader=None):
  """Looks `name` up and returns the `slim.dataset.Dataset` of one split.

  Args:
    name: a key of `datasets_map`.
    split_name: the split, e.g. `train` or `validation`.
    dataset_dir: the directory holding the dataset's TFRecords.
    file_pattern: glob overriding the dataset's default; `%s` becomes the
      split name.
    reader: reader class for queue-based data providers (default
      `tf.TFRecordReader`).

  Returns:
    A `slim.dataset.Dataset` (see `dataset_spec.read_split`).

  Raises:
    ValueError: unknown dataset or split name, or missing files (the message
      says which files were expected where and how to create them, or which
      dataset the files in `dataset_dir` belong to).
  """
  module = _module(name)
  try:
    return module.get_split(split_name, dataset_dir, file_pattern, reader)
  except dataset_errors.SplitFilesNotFoundError as error:
    if file_pattern:
      raise
    if _holds_checkpoints(dataset_dir):
      raise dataset_errors.DatasetNotFoundError(
          _training_directory_message(error))
    owners = datasets_in_directory(dataset_dir, exclude=name)
    if not owners:
      raise
    raise dataset_errors.DatasetNotFoundError(
        _other_dataset_message(error, owners))


# What a training directory holds and a dataset directory does not.
_TRAINING_FILES = ('checkpoint', 'training_record.json')


def _holds_checkpoints(dataset_dir):
  return any(os.path.isfile(os.path.join(dataset_dir, name))
             for name in _TRAINING_FILES)


def _training_directory_message(error):
  """For a dataset directory that is a training directory (a guide's slip)."""
  return (
      '%s is a training directory (it holds checkpoints), not the dataset: '
      'no TFRecord files for %s split %r there (expected %s). Point %s at '
      'the directory download_and_convert_data.py wrote the records into '
      '(the one given to it as %s).' %
      (dataset_errors.ref('dataset_dir', error.dataset_dir),
       error.dataset_name, error.split_name, error.pattern,
       dataset_errors.ref('dataset_dir'), dataset_errors.ref('dataset_dir')))


def datasets_in_directory(dataset_dir, exclude=None):
  """{dataset name: its files} for the datasets with files in `dataset_dir`.

  Args:
    dataset_dir: a directory.
    exclude: a name to leave out.
  """
  found = {}
  for other, module in sorted(datasets_map.items()):
    if other != exclude:
      files = dataset_spec.files_present(module.SPEC, dataset_dir)
      if files:
        found[other] = files
  return found


def _other_dataset_message(error, owners):
  """Says whose TFRecords `error.dataset_dir` holds and which name to pass."""
  examples = '; '.join('%s: %s%s' % (name, os.path.basename(files[0]),
                                     ' and %d more' % (len(files) - 1)
                                     if len(files) > 1 else '')
                       for name, files in owners.items())
  names = sorted(owners)
  return (
      'No TFRecord files for %s split %r in %s (expected %s), but the '
      'directory holds the TFRecords of %s (%s). Pass %s to '
      'use them, or point %s at the directory of %s.' %
      (error.dataset_name, error.split_name, error.dataset_dir, error.pattern,
       ' and '.join(names), examples,
       ' or '.join(dataset_errors.ref('dataset_name', n) for n in names),
       dataset_errors.ref('dataset_dir'), error.dataset_name))


def num_classes(name, dataset_dir=None):
  """The number of labels of dataset `name`, background class included.

  Fixed datasets answer without files (imagenet 1001, flowers 5, cifar10 10,
  mnist 10, shapes 6); a dataset whose classes are chosen at conversion
  (image_folder) is read from `dataset_dir`.

  Args:
    name: a key of `datasets_map`.
    dataset_dir: the converted dataset; only needed for image_folder.

  Raises:
    ValueError: unknown name; DatasetNotFoundError when the count must be
      read from `dataset_dir` and is not there.
  """
  spec = _module(name).SPEC
  if spec.num_classes is not None:
    return spec.num_classes
  return dataset_spec.num_classes_on_disk(spec, dataset_dir)


def fixed_num_classes(name):
  """The class count of `name` if it is fixed by the dataset, else None.

  None means the classes are chosen at conversion (image_folder), so only
  the converted files can tell.

  Raises:
    ValueError: unknown name.
  """
  return _module(name).SPEC.num_classes
