"""Converts a folder of images, one subfolder per class, to TFRecords.

  IMAGES/
    cat/  a.jpg b.png ...      (nested folders are fine)
    dog/  ...

Each class is split into train and validation by `validation_ratio` with a
seeded shuffle, so the split is reproducible. JPEG and PNG files are stored
as they are; other image formats are converted to PNG, CMYK JPEGs to RGB.
Files that are not readable images are skipped with a warning and counted in
the manifests (`image_folder_<split>_manifest.json`), which also hold the
sample and class counts the reader uses.
"""


import os

from absl import logging
import numpy as np

from datasets import dataset_errors
from datasets import example_codecs
from datasets import image_files
from datasets import label_files
from datasets import sharded_writer

DATASET_NAME = 'image_folder'
SPLITS = ('train', 'validation')
DEFAULT_SHARDS = {'train': 4, 'validation': 1}


def list_class_folders(root):
  """Lists the classes and files of a class-per-subfolder image tree.

  Hidden files and folders (names starting with `.`) are ignored.

  Args:
    root: the folder holding one subfolder per class.

  Returns:
    (class names sorted, list of (relative posix path, label) sorted).

  Raises:
    DatasetNotFoundError: `root` is missing or has no class subfolders.
  """
  if not os.path.isdir(root):
    raise dataset_errors.DatasetNotFoundError(
        'Image folder %r does not exist; pass the folder that holds one '
        'subfolder per class as %s.' % (root, dataset_errors.ref('source_dir')))
  class_names = sorted(
      name for name in os.listdir(root)
      if not name.startswith('.') and os.path.isdir(os.path.join(root, name)))
  if not class_names:
    raise dataset_errors.DatasetNotFoundError(
        'Image folder %r has no class subfolders. Put the images of each '
        'class in their own subfolder (e.g. %s/cat/*.jpg, %s/dog/*.jpg).' %
        (root, root, root))
  items = []
  for label, name in enumerate(class_names):
    class_dir = os.path.join(root, name)
    for directory, subdirs, files in os.walk(class_dir):
      subdirs[:] = sorted(d for d in subdirs if not d.startswith('.'))
      for filename in files:
        if filename.startswith('.'):
          continue
        relative = os.path.relpath(os.path.join(directory, filename), root)
        items.append((relative.replace(os.sep, '/'), label))
  return class_names, sorted(items)


def image_example_fn(root):
  """Returns item (relative path, label) -> serialized Example."""
  def example_fn(item):
    relative, label = item
    data, image_format, height, width = image_files.encode_image_file(
        os.path.join(root, relative))
    example = example_codecs.image_to_tfexample(data, image_format, height,
                                               width, label)
    return example.SerializeToString(deterministic=True)
  return example_fn


def split_by_ratio(items, num_classes, validation_ratio, seed):
  """Splits each class by a seeded shuffle.

  Every class with at least two files gets at least one validation file
  when `validation_ratio` > 0.

  Args:
    items: (path, label) pairs.
    num_classes: number of classes.
    validation_ratio: fraction of each class for validation, in [0, 1).
    seed: shuffle seed.

  Returns:
    dict split -> sorted items.
  """
  rng = np.random.RandomState(seed)
  splits = {'train': [], 'validation': []}
  for label in range(num_classes):
    members = [item for item in items if item[1] == label]
    order = rng.permutation(len(members))
    count = int(round(len(members) * validation_ratio))
    if validation_ratio > 0 and len(members) >= 2:
      count = min(max(count, 1), len(members) - 1)
    for rank, index in enumerate(order):
      splits['validation' if rank < count else 'train'].append(
          members[index])
  return {name: sorted(split) for name, split in splits.items()}


def run(dataset_dir, source_dir, validation_ratio=0.1, seed=0,
        num_workers=None, train_shards=None, validation_shards=None):
  """Converts the class-per-subfolder tree `source_dir` into `dataset_dir`.

  Args:
    dataset_dir: output directory.
    source_dir: folder with one subfolder per class.
    validation_ratio: fraction of each class for validation, in [0, 1).
    seed: seed of the train/validation split.
    num_workers: parallel shard writers.
    train_shards: number of training shards (default 4).
    validation_shards: number of validation shards (default 1).

  Returns:
    dict split -> manifest.

  Raises:
    ValueError: bad ratio, missing or empty source folder.
  """
  if not 0 <= validation_ratio < 1:
    raise dataset_errors.SettingError(
        '%s must be in [0, 1), got %r.' %
        (dataset_errors.ref('validation_ratio'), validation_ratio))
  if source_dir and os.path.abspath(dataset_dir).startswith(
      os.path.abspath(source_dir) + os.sep):
    raise dataset_errors.SettingError(
        '%s is inside %s; its files would be read as images. Choose '
        'another directory.' % (dataset_errors.ref('dataset_dir', dataset_dir),
                                dataset_errors.ref('source_dir', source_dir)))
  class_names, items = list_class_folders(source_dir)
  if not items:
    raise dataset_errors.DatasetNotFoundError(
        'The class subfolders of %r hold no files.' % source_dir)
  logging.info('Found %d files in %d classes under %s.', len(items),
               len(class_names), source_dir)
  splits = split_by_ratio(items, len(class_names), validation_ratio, seed)
  shards = {'train': train_shards or DEFAULT_SHARDS['train'],
            'validation': validation_shards or DEFAULT_SHARDS['validation']}
  example_fn = image_example_fn(source_dir)
  manifests = {}
  for split_name in SPLITS:
    if not splits[split_name]:
      logging.warning('The %s split is empty (validation_ratio=%r); not '
                      'writing it.', split_name, validation_ratio)
      continue
    manifests[split_name] = sharded_writer.write_split(
        dataset_dir, DATASET_NAME, split_name, splits[split_name], example_fn,
        shards[split_name], len(class_names), num_workers=num_workers,
        plan_info={'classes': class_names})
  label_files.write_label_file(dict(enumerate(class_names)), dataset_dir)
  skipped = sum(m['num_skipped'] for m in manifests.values())
  if skipped:
    logging.warning('Skipped %d file(s) that are not readable images; they '
                    'are listed in the manifests in %s.', skipped, dataset_dir)
  return manifests
