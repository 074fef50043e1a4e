"""Converts MNIST to PNG TFRecords (`mnist_<split>_*.tfrecord`).

Reads the four official gzipped IDX files (from source_dir or the dataset
directory; missing ones are downloaded) after checking their published md5s.
"""


import gzip
import io
import os
import struct
import zlib

from absl import logging
import numpy as np
from PIL import Image

from datasets import dataset_errors
from datasets import downloads
from datasets import example_codecs
from datasets import label_files
from datasets import sharded_writer

DATASET_NAME = 'mnist'
_URL = 'https://storage.googleapis.com/cvdf-datasets/mnist/'

# split -> (images file, labels file)
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
# The md5s of the files published by Yann LeCun (as used by torchvision).
OFFICIAL_CHECKSUMS = {
    'train-images-idx3-ubyte.gz': 'md5:f68b3c2dcbeaaa9fbdd348bbdeb94873',
    'train-labels-idx1-ubyte.gz': 'md5:d53e105ee54ea40749a09fcbcd1e9432',
    't10k-images-idx3-ubyte.gz': 'md5:9fb629c4189551a2d022fa330f9573f3',
    't10k-labels-idx1-ubyte.gz': 'md5:ec29112dd5afa0611ce80d1b7f02629c',
}
OFFICIAL = 'official'

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049
_NUM_CLASSES = 10
DEFAULT_SHARDS = {'train': 2, 'test': 1}


def _read_idx(path, magic, num_dims):
  """Reads a gzipped IDX file of unsigned bytes.

  Args:
    path: the .gz file.
    magic: expected magic number (2051 images, 2049 labels).
    num_dims: number of dimensions after the item count.

  Returns:
    uint8 array [N] + dims.

  Raises:
    DatasetError: the file is not such an IDX file.
  """
  try:
    with gzip.open(path, 'rb') as f:
      data = f.read()
  except (IOError, OSError, EOFError, zlib.error) as e:
    raise dataset_errors.DatasetError(
        '%s is not a readable gzip file (%s). Delete it and download it '
        'again.' % (path, e))
  header = 4 * (2 + num_dims)
  if len(data) < header or struct.unpack('>I', data[:4])[0] != magic:
    raise dataset_errors.DatasetError(
        '%s is not an MNIST IDX file (expected magic number %d). Delete it '
        'and download it again.' % (path, magic))
  shape = struct.unpack('>%dI' % (1 + num_dims), data[4:header])
  body = np.frombuffer(data, np.uint8, offset=header)
  if body.size != int(np.prod(shape)):
    raise dataset_errors.DatasetError(
        '%s holds %d bytes of data but its header promises %s; the file is '
        'truncated. Delete it and download it again.' %
        (path, body.size, 'x'.join(map(str, shape))))
  return body.reshape(shape)


def read_split(source_dir, split_name):
  """Returns (images uint8 [N, 28, 28], labels int64 [N]) of a split."""
  images_file, labels_file = FILES[split_name]
  images = _read_idx(os.path.join(source_dir, images_file), _IMAGES_MAGIC, 2)
  labels = _read_idx(os.path.join(source_dir, labels_file), _LABELS_MAGIC, 0)
  if len(images) != len(labels):
    raise dataset_errors.DatasetError(
        '%s has %d images but %s has %d labels; use the matching official '
        'files.' % (images_file, len(images), labels_file, len(labels)))
  if labels.size and labels.max() >= _NUM_CLASSES:
    raise dataset_errors.DatasetError(
        '%s has label %d outside 0..9.' % (labels_file, labels.max()))
  return images, labels.astype(np.int64)


def _png(image):
  out = io.BytesIO()
  Image.fromarray(image, 'L').save(out, 'PNG')
  return out.getvalue()


def run(dataset_dir, source_dir=None, checksum=OFFICIAL, num_workers=None,
        train_shards=None, test_shards=None):
  """Converts MNIST into `dataset_dir`.

  Args:
    dataset_dir: output directory.
    source_dir: directory with the four .gz files (default: `dataset_dir`);
      missing files are downloaded there.
    checksum: OFFICIAL to verify the published md5s, or None to skip.
    num_workers: parallel shard writers.
    train_shards: number of training shards (default 2).
    test_shards: number of test shards (default 1).

  Returns:
    dict split -> manifest.

  Raises:
    ValueError: `checksum` is neither OFFICIAL nor None.
  """
  if checksum not in (OFFICIAL, None):
    raise dataset_errors.SettingError(
        'MNIST has four files with published checksums; %s may only be '
        '"none" to skip them.' % dataset_errors.ref('checksum'))
  source_dir = source_dir or dataset_dir
  os.makedirs(dataset_dir, exist_ok=True)
  for split_files in FILES.values():
    for name in split_files:
      downloads.maybe_download(
          _URL + name, os.path.join(source_dir, name),
          OFFICIAL_CHECKSUMS[name] if checksum else None)
  shards = {'train': train_shards or DEFAULT_SHARDS['train'],
            'test': test_shards or DEFAULT_SHARDS['test']}
  manifests = {}
  for split_name in sorted(FILES):
    images, labels = read_split(source_dir, split_name)
    logging.info('Read %d %s images.', len(labels), split_name)
    def example_fn(item, images=images):
      index, label = item
      return example_codecs.image_to_tfexample(
          _png(images[index]), b'png', images.shape[1], images.shape[2],
          label).SerializeToString(deterministic=True)
    items = [(i, int(label)) for i, label in enumerate(labels)]
    plan_info = {name: os.path.getsize(os.path.join(source_dir, name))
                 for name in FILES[split_name]}
    manifests[split_name] = sharded_writer.write_split(
        dataset_dir, DATASET_NAME, split_name, items, example_fn,
        shards[split_name], _NUM_CLASSES, num_workers=num_workers,
        plan_info=plan_info)
  label_files.write_label_file({i: str(i) for i in range(_NUM_CLASSES)},
                                 dataset_dir)
  return manifests
