"""Converts the Flowers archive (`flower_photos.tgz`) to JPEG TFRecords.

The archive holds flower_photos/<class>/*.jpg for five classes. It is
verified against its published sha256, extracted safely into a temporary
folder (removed afterwards), and split like the original slim converter: a
seeded shuffle of all images, the first `num_validation` (350) go to
validation. Output: `flowers_<split>_0000i-of-00005.tfrecord` + labels.txt.
"""


import os
import shutil

from absl import logging
import numpy as np

from datasets import convert_image_folder
from datasets import dataset_errors
from datasets import downloads
from datasets import label_files
from datasets import safe_unpack
from datasets import sharded_writer

DATASET_NAME = 'flowers'
ARCHIVE = 'flower_photos.tgz'
_URL = 'http://download.tensorflow.org/example_images/' + ARCHIVE
# Published in TensorFlow Datasets' checksum registry (tf_flowers):
# 228813984 bytes.
OFFICIAL_CHECKSUM = ('sha256:4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e'
                     '5a7183e3e595d9c')
OFFICIAL = 'official'

SPLITS = ('train', 'validation')
DEFAULT_NUM_VALIDATION = 350
DEFAULT_SHARDS = 5
_EXTRACT_DIR = '.flowers-extract'


def _find_archive(dataset_dir, archive_path):
  if archive_path:
    if not os.path.isfile(archive_path):
      raise dataset_errors.DatasetNotFoundError(
          '%s %s does not exist; point it at %s.' %
          (dataset_errors.ref('archive_path'), archive_path, ARCHIVE))
    return archive_path
  return downloads.maybe_download(_URL, os.path.join(dataset_dir, ARCHIVE))


def _photos_root(extract_dir, archive_path):
  root = os.path.join(extract_dir, 'flower_photos')
  if not os.path.isdir(root):
    raise dataset_errors.DatasetError(
        '%s has no flower_photos/ folder; it is not the flowers archive. Pass '
        '%s with %s.' % (archive_path, ARCHIVE,
                         dataset_errors.ref('archive_path')))
  return root


def run(dataset_dir, archive_path=None, checksum=OFFICIAL,
        num_validation=DEFAULT_NUM_VALIDATION, seed=0, num_workers=None,
        num_shards=DEFAULT_SHARDS):
  """Converts the flowers archive into `dataset_dir`.

  Args:
    dataset_dir: output directory (an archive found here is used).
    archive_path: flower_photos.tgz on disk; default `dataset_dir`/
      flower_photos.tgz, downloaded if missing.
    checksum: OFFICIAL, `algorithm:hexdigest`, or None to skip verification.
    num_validation: number of validation images (>= 1).
    seed: seed of the shuffle that picks them.
    num_workers: parallel shard writers.
    num_shards: shards per split.

  Returns:
    dict split -> manifest.

  Raises:
    ValueError: bad counts, or a bad archive (checksum, unsafe members).
  """
  if num_validation < 1:
    raise dataset_errors.SettingError(
        '%s must be >= 1, got %d.' %
        (dataset_errors.ref('num_validation'), num_validation))
  os.makedirs(dataset_dir, exist_ok=True)
  archive_path = _find_archive(dataset_dir, archive_path)
  if checksum == OFFICIAL:
    checksum = OFFICIAL_CHECKSUM
  if checksum:
    downloads.verify_checksum(archive_path, checksum)
  plan_info = {'archive_bytes': os.path.getsize(archive_path),
               'num_validation': num_validation, 'seed': seed}
  if all(sharded_writer.split_is_complete(dataset_dir, DATASET_NAME, split,
                                         plan_info) for split in SPLITS):
    logging.info('Flowers is already converted in %s; nothing to do.',
                 dataset_dir)
    return {split: sharded_writer.read_manifest(dataset_dir, DATASET_NAME,
                                               split) for split in SPLITS}

  extract_dir = os.path.join(dataset_dir, _EXTRACT_DIR)
  shutil.rmtree(extract_dir, ignore_errors=True)  # Leftover of a crash.
  logging.info('Extracting %s ...', archive_path)
  safe_unpack.safe_extract(archive_path, extract_dir)
  try:
    root = _photos_root(extract_dir, archive_path)
    class_names, items = convert_image_folder.list_class_folders(root)
    if len(items) <= num_validation:
      raise dataset_errors.SettingError(
          '%s has %d images, not more than %s; lower it.' %
          (archive_path, len(items),
           dataset_errors.ref('num_validation', num_validation)))
    order = np.random.RandomState(seed).permutation(len(items))
    splits = {
        'validation': sorted(items[i] for i in order[:num_validation]),
        'train': sorted(items[i] for i in order[num_validation:]),
    }
    example_fn = convert_image_folder.image_example_fn(root)
    manifests = {}
    for split_name in SPLITS:
      manifests[split_name] = sharded_writer.write_split(
          dataset_dir, DATASET_NAME, split_name, splits[split_name],
          example_fn, num_shards, len(class_names), num_workers=num_workers,
          plan_info=plan_info)
    label_files.write_label_file(dict(enumerate(class_names)), dataset_dir)
  finally:
    shutil.rmtree(extract_dir, ignore_errors=True)
  return manifests
