"""Converts CIFAR-10 to sharded PNG TFRecords (`cifar10_<split>_*.tfrecord`).

The input is the official binary archive `cifar-10-binary.tar.gz` (fixed-size
records, no code involved in reading them). The python archive
`cifar-10-python.tar.gz` is accepted too, but its pickles are loaded with an
unpickler that can only rebuild numpy arrays and plain values, so a crafted
archive cannot run code. Archives are read in place (not extracted), after
checking the published checksum and every member name.
"""


import io
import os
import posixpath

from absl import logging
import numpy as np
from PIL import Image

from datasets import dataset_errors
from datasets import downloads
from datasets import example_codecs
from datasets import label_files
from datasets import safe_unpack
from datasets import sharded_writer

DATASET_NAME = 'cifar10'
BINARY_ARCHIVE = 'cifar-10-binary.tar.gz'
PYTHON_ARCHIVE = 'cifar-10-python.tar.gz'
_URL = 'https://www.cs.toronto.edu/~kriz/' + BINARY_ARCHIVE
# Published at https://www.cs.toronto.edu/~kriz/cifar.html.
OFFICIAL_CHECKSUMS = {
    BINARY_ARCHIVE: 'md5:c32a1d4ab5d03f1284b67883e8d87530',
    PYTHON_ARCHIVE: 'md5:c58f30108f718f92721af3b95e74349a',
}
# Use the published checksum of whichever official archive is given.
OFFICIAL = 'official'

CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
               'horse', 'ship', 'truck')

_IMAGE_SIZE = 32
_RECORD_BYTES = 1 + _IMAGE_SIZE * _IMAGE_SIZE * 3
_SPLIT_FILES = {
    'binary': ('cifar-10-batches-bin', {
        'train': ['data_batch_%d.bin' % i for i in range(1, 6)],
        'test': ['test_batch.bin']}),
    'python': ('cifar-10-batches-py', {
        'train': ['data_batch_%d' % i for i in range(1, 6)],
        'test': ['test_batch']}),
}
DEFAULT_SHARDS = {'train': 5, 'test': 1}


def _find_archive(dataset_dir, archive_path):
  """Returns the archive to use, downloading the binary one if none exists."""
  if archive_path:
    if not os.path.isfile(archive_path):
      raise dataset_errors.DatasetNotFoundError(
          '%s %s does not exist; point it at %s (or %s).' %
          (dataset_errors.ref('archive_path'), archive_path, BINARY_ARCHIVE,
           PYTHON_ARCHIVE))
    return archive_path
  for name in (BINARY_ARCHIVE, PYTHON_ARCHIVE):
    path = os.path.join(dataset_dir, name)
    if os.path.isfile(path):
      return path
  return downloads.maybe_download(
      _URL, os.path.join(dataset_dir, BINARY_ARCHIVE), None)


def _archive_kind(tar, archive_path):
  """`binary` or `python`, from the archive's top-level folder."""
  names = tar.getnames()
  for kind, (folder, _) in _SPLIT_FILES.items():
    if any(n == folder or n.startswith(folder + '/') for n in names):
      return kind
  raise dataset_errors.DatasetError(
      '%s is not a CIFAR-10 archive: it has neither cifar-10-batches-bin/ nor '
      'cifar-10-batches-py/. Pass %s with %s.' %
      (archive_path, BINARY_ARCHIVE, dataset_errors.ref('archive_path')))


def _read_member(tar, archive_path, name):
  try:
    member = tar.getmember(name)
  except KeyError:
    raise dataset_errors.DatasetError(
        '%s has no member %s; the archive is incomplete. Download it again.' %
        (archive_path, name))
  return tar.extractfile(member).read()


def _decode_binary(data, source):
  """Parses `<1 x label><3072 x pixel>` records into (images, labels)."""
  if not data or len(data) % _RECORD_BYTES:
    raise dataset_errors.DatasetError(
        '%s has %d bytes, not a multiple of the %d-byte CIFAR-10 record; the '
        'archive is damaged. Download it again.' %
        (source, len(data), _RECORD_BYTES))
  records = np.frombuffer(data, np.uint8).reshape(-1, _RECORD_BYTES)
  images = records[:, 1:].reshape(-1, 3, _IMAGE_SIZE, _IMAGE_SIZE)
  return images.transpose(0, 2, 3, 1), records[:, 0].astype(np.int64)


def _decode_pickle(data, source):
  """Loads a python-archive batch with the array-only unpickler."""
  batch = safe_unpack.safe_pickle_load(io.BytesIO(data), source)
  if not isinstance(batch, dict):
    raise dataset_errors.DatasetError('%s is not a CIFAR-10 batch.' % source)
  batch = {k.decode('latin1') if isinstance(k, bytes) else k: v
           for k, v in batch.items()}
  try:
    pixels = np.asarray(batch['data'], np.uint8)
    labels = np.asarray(batch['labels'], np.int64)
    images = pixels.reshape(-1, 3, _IMAGE_SIZE, _IMAGE_SIZE)
  except (KeyError, ValueError) as e:
    raise dataset_errors.DatasetError(
        '%s is not a CIFAR-10 batch (%s).' % (source, e))
  if len(images) != len(labels):
    raise dataset_errors.DatasetError(
        '%s has %d images but %d labels.' % (source, len(images), len(labels)))
  return images.transpose(0, 2, 3, 1), labels


def read_archive(archive_path):
  """Reads every split of a CIFAR-10 archive (binary or python).

  Args:
    archive_path: the .tar.gz archive.

  Returns:
    (kind, {split: (images uint8 [N, 32, 32, 3], labels int64 [N])}).

  Raises:
    DatasetError: the archive is unreadable, unsafe or not CIFAR-10.
  """
  with safe_unpack.open_tar_checked(archive_path) as tar:
    kind = _archive_kind(tar, archive_path)
    folder, split_files = _SPLIT_FILES[kind]
    decode = _decode_binary if kind == 'binary' else _decode_pickle
    splits = {}
    for split_name, files in split_files.items():
      parts = []
      for name in files:
        member = posixpath.join(folder, name)
        parts.append(decode(_read_member(tar, archive_path, member),
                            '%s:%s' % (archive_path, member)))
      images = np.concatenate([p[0] for p in parts])
      labels = np.concatenate([p[1] for p in parts])
      bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))]
      if bad.size:
        raise dataset_errors.DatasetError(
            '%s has label %d outside 0..9; the archive is damaged.' %
            (archive_path, bad[0]))
      splits[split_name] = (images, labels)
  return kind, splits


def _png(image):
  out = io.BytesIO()
  Image.fromarray(image).save(out, 'PNG')
  return out.getvalue()


def run(dataset_dir, archive_path=None, checksum=OFFICIAL, num_workers=None,
        train_shards=None, test_shards=None):
  """Converts CIFAR-10 into `dataset_dir`.

  Args:
    dataset_dir: output directory (an archive found here is used).
    archive_path: archive on disk; default: `dataset_dir`/cifar-10-binary.tar.gz
      or cifar-10-python.tar.gz, downloaded (binary) if neither exists.
    checksum: OFFICIAL (the published md5 of the binary archive, or of the
      python one when the file name contains `python`),
      `algorithm:hexdigest`, or None to skip verification.
    num_workers: parallel shard writers.
    train_shards: number of training shards (default 5).
    test_shards: number of test shards (default 1).

  Returns:
    dict split -> manifest.
  """
  os.makedirs(dataset_dir, exist_ok=True)
  archive_path = _find_archive(dataset_dir, archive_path)
  if checksum == OFFICIAL:
    # Verify before reading anything; the file name says which release.
    checksum = OFFICIAL_CHECKSUMS[
        PYTHON_ARCHIVE if 'python' in os.path.basename(archive_path)
        else BINARY_ARCHIVE]
  if checksum:
    downloads.verify_checksum(archive_path, checksum)
  kind, splits = read_archive(archive_path)
  logging.info('Read %s (%s format): %s.', archive_path, kind, ', '.join(
      '%s %d' % (s, len(v[1])) for s, v in sorted(splits.items())))
  shards = {'train': train_shards or DEFAULT_SHARDS['train'],
            'test': test_shards or DEFAULT_SHARDS['test']}
  plan_info = {'archive_bytes': os.path.getsize(archive_path)}
  manifests = {}
  for split_name, (images, labels) in sorted(splits.items()):
    def example_fn(item, images=images):
      index, label = item
      return example_codecs.image_to_tfexample(
          _png(images[index]), b'png', _IMAGE_SIZE, _IMAGE_SIZE,
          label).SerializeToString(deterministic=True)
    items = [(i, int(label)) for i, label in enumerate(labels)]
    manifests[split_name] = sharded_writer.write_split(
        dataset_dir, DATASET_NAME, split_name, items, example_fn,
        shards[split_name], len(CLASS_NAMES), num_workers=num_workers,
        plan_info=plan_info)
  label_files.write_label_file(dict(enumerate(CLASS_NAMES)), dataset_dir)
  return manifests
