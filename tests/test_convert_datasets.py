"""Converters tested offline on small fixtures in the real on-disk formats.

Each test builds its input (archive, idx files, image tree, raw ImageNet
layout) in tmp_path, converts it, and reads the TFRecords back through
dataset_factory and the dataset's own decoder.
"""


import collections
import io
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
from PIL import Image
import pytest

from datasets import convert_image_folder
from datasets import convert_imagenet
from datasets import dataset_factory
from datasets import dataset_utils
from datasets import download_and_convert_cifar10
from datasets import download_and_convert_flowers
from datasets import download_and_convert_mnist
from datasets import generate_shapes
from datasets import image_files
from tests import dataset_fixtures as fx


def _md5(path):
  return 'md5:' + dataset_utils.file_digest(str(path), 'md5')


def _tfrecords(directory):
  return sorted(f for f in os.listdir(str(directory))
                if f.endswith('.tfrecord') or '-of-' in f)


# --------------------------------------------------------------------------
# CIFAR-10


def _cifar_splits(seed=0):
  rng = np.random.RandomState(seed)
  return {'train': (fx.random_images(rng, 10, 32, 32),
                    rng.randint(0, 10, size=10)),
          'test': (fx.random_images(rng, 4, 32, 32),
                   rng.randint(0, 10, size=4))}


def _check_cifar_read_back(out, splits):
  for split, (images, labels) in splits.items():
    dataset = dataset_factory.get_dataset('cifar10', split, out)
    assert dataset.num_samples == len(labels)
    assert dataset.num_classes == 10
    assert dataset.labels_to_names[0] == 'airplane'
    records = fx.read_records(dataset)
    np.testing.assert_array_equal([r['label'] for r in records], labels)
    np.testing.assert_array_equal(np.stack([r['image'] for r in records]),
                                  images)


def test_cifar10_binary_archive_reads_back_exactly(tmp_path):
  splits = _cifar_splits()
  archive = tmp_path / download_and_convert_cifar10.BINARY_ARCHIVE
  fx.write_cifar10_binary(str(archive), splits)
  out = str(tmp_path / 'cifar10')
  download_and_convert_cifar10.run(out, archive_path=str(archive),
                                   checksum=_md5(archive))
  assert len(_tfrecords(out)) == 5 + 1
  _check_cifar_read_back(out, splits)


def test_cifar10_archive_in_dataset_dir_is_found(tmp_path):
  splits = _cifar_splits(1)
  out = tmp_path / 'cifar10'
  out.mkdir()
  archive = out / download_and_convert_cifar10.BINARY_ARCHIVE
  fx.write_cifar10_binary(str(archive), splits)
  download_and_convert_cifar10.run(str(out), checksum=None, train_shards=2)
  _check_cifar_read_back(str(out), splits)


def test_cifar10_python_archive_reads_back_exactly(tmp_path):
  splits = _cifar_splits(2)
  archive = tmp_path / download_and_convert_cifar10.PYTHON_ARCHIVE
  fx.write_cifar10_python(str(archive), splits)
  out = str(tmp_path / 'cifar10')
  download_and_convert_cifar10.run(out, archive_path=str(archive),
                                   checksum=_md5(archive))
  _check_cifar_read_back(out, splits)


class _Exploit(object):

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (os.system, ('touch %s' % self.path,))


def test_cifar10_crafted_pickle_does_not_execute(tmp_path):
  sentinel = tmp_path / 'exploited'
  payload = pickle.dumps({b'data': _Exploit(str(sentinel)), b'labels': []},
                         protocol=2)
  archive = tmp_path / download_and_convert_cifar10.PYTHON_ARCHIVE
  fx.write_cifar10_python(
      str(archive), _cifar_splits(),
      replace={'cifar-10-batches-py/data_batch_1': payload})
  out = tmp_path / 'cifar10'
  with pytest.raises(dataset_utils.UnsafePickleError) as e:
    download_and_convert_cifar10.run(str(out), archive_path=str(archive),
                                     checksum=None)
  assert 'data_batch_1' in str(e.value) and 'system' in str(e.value)
  assert not sentinel.exists()
  assert not _tfrecords(out)


def test_cifar10_checksum_mismatch_is_rejected(tmp_path):
  archive = tmp_path / download_and_convert_cifar10.BINARY_ARCHIVE
  fx.write_cifar10_binary(str(archive), _cifar_splits())
  out = tmp_path / 'cifar10'
  with pytest.raises(dataset_utils.ChecksumError) as e:
    download_and_convert_cifar10.run(str(out), archive_path=str(archive))
  assert str(archive) in str(e.value)
  assert 'c32a1d4ab5d03f1284b67883e8d87530' in str(e.value)
  assert not _tfrecords(out)


def test_cifar10_damaged_batch_is_reported(tmp_path):
  archive = tmp_path / download_and_convert_cifar10.BINARY_ARCHIVE
  with tarfile.open(str(archive), 'w:gz') as tar:
    for i in range(1, 6):
      fx.add_bytes(tar, 'cifar-10-batches-bin/data_batch_%d.bin' % i, b'x' * 5)
    fx.add_bytes(tar, 'cifar-10-batches-bin/test_batch.bin', b'x' * 3073)
  with pytest.raises(dataset_utils.DatasetError, match='data_batch_1.bin'):
    download_and_convert_cifar10.run(str(tmp_path / 'out'),
                                     archive_path=str(archive), checksum=None)


# --------------------------------------------------------------------------
# MNIST


def test_mnist_idx_files_read_back_exactly(tmp_path):
  rng = np.random.RandomState(3)
  splits = {'train': (rng.randint(0, 256, (7, 28, 28)), np.arange(7) % 10),
            'test': (rng.randint(0, 256, (3, 28, 28)), np.array([9, 0, 4]))}
  source = tmp_path / 'gz'
  fx.write_mnist(str(source), splits)
  out = str(tmp_path / 'mnist')
  download_and_convert_mnist.run(out, source_dir=str(source), checksum=None)
  for split, (images, labels) in splits.items():
    dataset = dataset_factory.get_dataset('mnist', split, out)
    assert dataset.num_samples == len(labels) and dataset.num_classes == 10
    records = fx.read_records(dataset)
    np.testing.assert_array_equal([r['label'] for r in records], labels)
    np.testing.assert_array_equal(np.stack([r['image'] for r in records]),
                                  images[..., None])


def test_mnist_checksums_are_verified(tmp_path):
  rng = np.random.RandomState(4)
  fx.write_mnist(str(tmp_path), {
      'train': (rng.randint(0, 256, (2, 28, 28)), np.array([1, 2])),
      'test': (rng.randint(0, 256, (1, 28, 28)), np.array([3]))})
  with pytest.raises(dataset_utils.ChecksumError,
                     match='train-images-idx3-ubyte.gz'):
    download_and_convert_mnist.run(str(tmp_path))


def test_mnist_truncated_idx_file_is_reported(tmp_path):
  rng = np.random.RandomState(5)
  fx.write_mnist(str(tmp_path), {
      'train': (rng.randint(0, 256, (2, 28, 28)), np.array([1, 2])),
      'test': (rng.randint(0, 256, (1, 28, 28)), np.array([3]))})
  import gzip  # pylint: disable=g-import-not-at-top
  path = tmp_path / 't10k-images-idx3-ubyte.gz'
  with gzip.open(str(path), 'rb') as f:
    data = f.read()
  with gzip.open(str(path), 'wb') as f:
    f.write(data[:-100])
  with pytest.raises(dataset_utils.DatasetError, match='truncated'):
    download_and_convert_mnist.run(str(tmp_path / 'out'),
                                   source_dir=str(tmp_path), checksum=None)


# --------------------------------------------------------------------------
# Flowers


_FLOWER_CLASSES = ('daisy', 'roses', 'tulips')


def _flowers_archive(tmp_path, extra=()):
  tree = tmp_path / 'tree'
  info = fx.write_image_tree(str(tree / 'flower_photos'), _FLOWER_CLASSES,
                             np.random.RandomState(6))
  (tree / 'flower_photos' / 'LICENSE.txt').write_text('CC-BY')
  archive = tmp_path / download_and_convert_flowers.ARCHIVE
  with tarfile.open(str(archive), 'w:gz') as tar:
    tar.add(str(tree / 'flower_photos'), arcname='flower_photos')
    for name, data in extra:
      fx.add_bytes(tar, name, data)
  return archive, info


def _label_sizes(records):
  return collections.Counter(
      (int(r['label']),) + r['image'].shape[:2] for r in records)


def test_flowers_archive_reads_back(tmp_path):
  archive, info = _flowers_archive(tmp_path)
  out = tmp_path / 'flowers'
  manifests = download_and_convert_flowers.run(
      str(out), archive_path=str(archive), checksum=_md5(archive),
      num_validation=3, num_shards=2)
  assert manifests['validation']['num_examples'] == 3
  records = []
  for split, count in (('train', 9), ('validation', 3)):
    dataset = dataset_factory.get_dataset('flowers', split, str(out))
    assert dataset.num_samples == count
    assert dataset.labels_to_names == dict(enumerate(_FLOWER_CLASSES))
    records += fx.read_records(dataset)
  assert _label_sizes(records) == collections.Counter(info.values())
  assert not (out / '.flowers-extract').exists()


def test_flowers_rerun_is_a_no_op(tmp_path):
  archive, _ = _flowers_archive(tmp_path)
  out = tmp_path / 'flowers'
  download_and_convert_flowers.run(str(out), archive_path=str(archive),
                                   checksum=None, num_validation=3)
  before = {f: os.path.getmtime(str(out / f)) for f in _tfrecords(out)}
  download_and_convert_flowers.run(str(out), archive_path=str(archive),
                                   checksum=None, num_validation=3)
  assert {f: os.path.getmtime(str(out / f)) for f in _tfrecords(out)} == before


def test_flowers_traversal_archive_is_rejected(tmp_path):
  archive, _ = _flowers_archive(
      tmp_path, extra=[('flower_photos/../../escaped.jpg', b'boom')])
  out = tmp_path / 'out' / 'flowers'
  with pytest.raises(dataset_utils.UnsafeArchiveError) as e:
    download_and_convert_flowers.run(str(out), archive_path=str(archive),
                                     checksum=None, num_validation=3)
  assert 'flower_photos/../../escaped.jpg' in str(e.value)
  assert not (tmp_path / 'escaped.jpg').exists()
  assert not (tmp_path / 'out' / 'escaped.jpg').exists()
  assert not _tfrecords(out)


def test_flowers_official_checksum_is_enforced(tmp_path):
  archive, _ = _flowers_archive(tmp_path)
  with pytest.raises(dataset_utils.ChecksumError, match='sha256'):
    download_and_convert_flowers.run(str(tmp_path / 'flowers'),
                                     archive_path=str(archive))


# --------------------------------------------------------------------------
# Image folder


def _image_folder(tmp_path):
  root = tmp_path / 'images'
  rng = np.random.RandomState(7)
  info = fx.write_image_tree(str(root), ('bird', 'cat', 'dog'), rng,
                             per_class=5)
  image = fx.random_images(rng, 1, 11, 13)[0]
  (root / 'dog' / 'nested').mkdir()
  (root / 'dog' / 'nested' / 'pic.png').write_bytes(fx.png_bytes(image))
  info['dog/nested/pic.png'] = (2, 11, 13)
  (root / 'cat' / 'notes.txt').write_text('not an image')
  jpeg = fx.jpeg_bytes(fx.random_images(rng, 1, 40, 40)[0])
  (root / 'bird' / 'broken.jpg').write_bytes(jpeg[:len(jpeg) // 3])
  (root / 'cat' / '.DS_Store').write_bytes(b'\0\1')
  return root, info


def test_image_folder_reads_back_and_skips_non_images(tmp_path, caplog):
  root, info = _image_folder(tmp_path)
  out = str(tmp_path / 'records')
  manifests = convert_image_folder.run(out, str(root), validation_ratio=0.25,
                                       seed=1)
  assert sum(m['num_skipped'] for m in manifests.values()) == 2
  assert 'Skipped 2 file(s)' in caplog.text
  records = []
  for split in ('train', 'validation'):
    dataset = dataset_factory.get_dataset('image_folder', split, out)
    assert dataset.num_classes == 3
    assert dataset.labels_to_names == {0: 'bird', 1: 'cat', 2: 'dog'}
    split_records = fx.read_records(dataset)
    assert dataset.num_samples == len(split_records)
    records += split_records
  assert _label_sizes(records) == collections.Counter(info.values())
  # Each class (6 files each, unreadable ones included) gives a quarter,
  # rounded, of its files to validation.
  validation = manifests['validation']
  assert validation['num_examples'] + validation['num_skipped'] == 3 * 2


def test_image_folder_split_depends_only_on_seed():
  items = [('c%d/%d.jpg' % (i % 2, i), i % 2) for i in range(40)]
  first = convert_image_folder.split_by_ratio(items, 2, 0.2, seed=3)
  assert first == convert_image_folder.split_by_ratio(items, 2, 0.2, seed=3)
  assert first != convert_image_folder.split_by_ratio(items, 2, 0.2, seed=4)
  assert len(first['validation']) == 8
  assert sorted(first['train'] + first['validation']) == sorted(items)


def test_image_folder_interrupted_conversion_completes_on_rerun(
    tmp_path, monkeypatch):
  root, info = _image_folder(tmp_path)
  out = tmp_path / 'records'
  real_encode = image_files.encode_image_file

  calls = []

  def dying_encode(path):
    calls.append(path)
    if len(calls) == 6:  # In the second of four training shards.
      raise KeyboardInterrupt('killed')
    return real_encode(path)

  monkeypatch.setattr(image_files, 'encode_image_file', dying_encode)
  with pytest.raises(KeyboardInterrupt):
    convert_image_folder.run(str(out), str(root), validation_ratio=0.25,
                             seed=1, num_workers=1, train_shards=4)
  manifest = dataset_utils.read_manifest(str(out), 'image_folder', 'train')
  assert manifest and not manifest['complete']
  with pytest.raises(dataset_utils.DatasetNotFoundError,
                     match='did not finish'):
    dataset_factory.get_dataset('image_folder', 'train', str(out))
  monkeypatch.setattr(image_files, 'encode_image_file', real_encode)

  convert_image_folder.run(str(out), str(root), validation_ratio=0.25, seed=1,
                           train_shards=4)
  records = []
  for split in ('train', 'validation'):
    records += fx.read_records(
        dataset_factory.get_dataset('image_folder', split, str(out)))
  assert _label_sizes(records) == collections.Counter(info.values())
  assert not [f for f in os.listdir(str(out)) if '.tmp-' in f]


def test_image_folder_missing_source_names_flag(tmp_path):
  with pytest.raises(dataset_utils.DatasetNotFoundError, match='source_dir'):
    convert_image_folder.run(str(tmp_path / 'out'), str(tmp_path / 'nope'))


# --------------------------------------------------------------------------
# ImageNet


_SYNSETS = ('n01440764', 'n01443537', 'n01484850')
_NAMES = {'n01440764': 'tench, Tinca tinca',
          'n01443537': 'goldfish, Carassius auratus',
          'n01484850': 'great white shark'}


def _imagenet_layout(tmp_path, flat_validation=True):
  """A raw ILSVRC layout; returns (source dir, {file: (label, h, w)})."""
  source = tmp_path / 'raw'
  rng = np.random.RandomState(8)
  expected = {}
  for label, synset in enumerate(_SYNSETS, 1):
    folder = source / 'train' / synset
    folder.mkdir(parents=True)
    for i in range(2):
      name = '%s_%d.JPEG' % (synset, i)
      image = fx.random_images(rng, 1, 30 + i, 20 + label)[0]
      if label == 2 and i == 1:  # ImageNet has CMYK JPEGs ...
        Image.fromarray(image).convert('CMYK').save(str(folder / name), 'JPEG')
      elif label == 3 and i == 1:  # ... and PNGs named .JPEG.
        (folder / name).write_bytes(fx.png_bytes(image))
      else:
        (folder / name).write_bytes(fx.jpeg_bytes(image))
      expected[name] = (label, 30 + i, 20 + label)
  validation = source / 'validation'
  validation.mkdir()
  val_synsets = ['n01484850', 'n01440764', 'n01484850', 'n01443537']
  for i, synset in enumerate(val_synsets):
    name = 'ILSVRC2012_val_%08d.JPEG' % (i + 1)
    folder = validation / synset if not flat_validation else validation
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(
        fx.jpeg_bytes(fx.random_images(rng, 1, 16, 18)[0]))
    expected[name] = (_SYNSETS.index(synset) + 1, 16, 18)
  (source / convert_imagenet.VALIDATION_LABELS_FILE).write_text(
      '\n'.join(val_synsets) + '\n')
  (source / convert_imagenet.SYNSETS_FILE).write_text('\n'.join(_SYNSETS))
  (source / convert_imagenet.METADATA_FILE).write_text(''.join(
      '%s\t%s\n' % item for item in sorted(_NAMES.items())) +
                                                       'n09999999\tother\n')
  (source / convert_imagenet.BOUNDING_BOX_FILE).write_text(
      'n01440764_0.JPEG,0.1,0.2,0.5,0.6\n'
      'n01440764_0.JPEG,0.0,0.0,1.2,1.0\n'
      'n01443537_1.JPEG,0.3,0.3,0.2,0.9\n')  # Degenerate: dropped.
  return source, expected


@pytest.mark.parametrize('flat_validation', [True, False])
def test_imagenet_raw_layout_reads_back(tmp_path, flat_validation):
  source, expected = _imagenet_layout(tmp_path, flat_validation)
  out = str(tmp_path / 'imagenet')
  convert_imagenet.run(out, str(source), train_shards=2, validation_shards=2)
  assert 'train-00000-of-00002' in os.listdir(out)
  labels_to_names = dataset_utils.read_label_file(out)
  assert labels_to_names[0] == 'background'
  assert labels_to_names[2] == _NAMES['n01443537']
  items = ('image', 'label', 'label_text', 'object/bbox', 'object/label')
  seen = {}
  for split, count in (('train', 6), ('validation', 4)):
    dataset = dataset_factory.get_dataset('imagenet', split, out)
    assert dataset.num_samples == count
    assert dataset.num_classes == len(_SYNSETS) + 1
    for record in fx.read_records(dataset, items):
      label = int(record['label'])
      assert record['label_text'].decode('utf-8') == labels_to_names[label]
      assert record['image'].shape[2] == 3
      key = (label,) + record['image'].shape[:2]
      seen[key] = seen.get(key, 0) + 1
      if record['image'].shape[:2] == (30, 21):  # n01440764_0.JPEG
        np.testing.assert_allclose(record['object/bbox'],
                                   [[0.2, 0.1, 0.6, 0.5], [0., 0., 1., 1.]])
        np.testing.assert_array_equal(record['object/label'], [1, 1])
      else:
        assert record['object/bbox'].shape == (0, 4)
  assert seen == dict(collections.Counter(expected.values()))


def test_imagenet_validation_labels_must_match_images(tmp_path):
  source, _ = _imagenet_layout(tmp_path)
  (source / convert_imagenet.VALIDATION_LABELS_FILE).write_text('n01440764\n')
  with pytest.raises(dataset_utils.DatasetError, match='1 labels but'):
    convert_imagenet.run(str(tmp_path / 'out'), str(source))


def test_imagenet_records_from_other_tools_use_published_counts(tmp_path):
  # TFRecords made by slim's own build script have no manifest: the reader
  # falls back to the published split sizes and the 1001 classes.
  image = fx.random_images(np.random.RandomState(9), 1, 5, 6)[0]
  example = dataset_utils.imagenet_to_tfexample(
      fx.jpeg_bytes(image), 'JPEG', 5, 6, 7, 'n0', 'seven', [])
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(str(tmp_path / 'validation-00000-of-00001')) as w:
    w.write(example.SerializeToString())
  dataset = dataset_factory.get_dataset('imagenet', 'validation',
                                        str(tmp_path))
  assert (dataset.num_samples, dataset.num_classes) == (50000, 1001)
  assert dataset.labels_to_names is None
  [record] = fx.read_records(dataset)
  assert record['label'] == 7 and record['image'].shape == (5, 6, 3)


# --------------------------------------------------------------------------
# A real crash: SIGKILL during conversion, then a re-run.


@pytest.mark.slow
def test_killed_conversion_completes_on_rerun(tmp_path, repo_root, script_env):
  out = tmp_path / 'shapes'
  args = [sys.executable,
          os.path.join(repo_root, 'download_and_convert_data.py'),
          '--dataset_name=shapes', '--dataset_dir=' + str(out),
          '--shapes_image_size=32', '--shapes_train_per_class=100',
          '--shapes_validation_per_class=10', '--train_shards=12',
          '--num_workers=1', '--seed=11']
  process = subprocess.Popen(args, env=script_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
  deadline = time.time() + 120
  killed = False
  while time.time() < deadline and process.poll() is None:
    manifest = None
    try:
      manifest = dataset_utils.read_manifest(str(out), 'shapes', 'train')
    except ValueError:
      pass
    if manifest and manifest['shards'] and not manifest['complete']:
      process.send_signal(signal.SIGKILL)
      killed = True
      break
    time.sleep(0.02)
  process.communicate()
  assert killed, 'the conversion finished before it could be killed'
  manifest = dataset_utils.read_manifest(str(out), 'shapes', 'train')
  assert 0 < len(manifest['shards']) < 12

  # The rerun, in this process: the library call the command makes with
  # those flags (the kill above is the command line's part).
  generate_shapes.run(str(out), image_size=32, train_per_class=100,
                      validation_per_class=10, seed=11, train_shards=12,
                      num_workers=1)
  # The generator is deterministic: the resumed output must equal a clean
  # run byte for byte (no duplicate, missing or damaged shard).
  clean = tmp_path / 'clean'
  generate_shapes.run(str(clean), image_size=32, train_per_class=100,
                      validation_per_class=10, seed=11, train_shards=12)
  assert _tfrecords(out) == _tfrecords(clean)
  for name in _tfrecords(clean):
    assert (out / name).read_bytes() == (clean / name).read_bytes(), name
  assert not [f for f in os.listdir(str(out)) if '.tmp-' in f]


def test_pickle_fixture_uses_numpy_reconstruct():
  # Guards the fixture: the allow-list must be what real numpy pickles need.
  data = fx.cifar10_python_batch(np.zeros((1, 32, 32, 3), np.uint8), [0])
  loaded = dataset_utils.safe_pickle_load(io.BytesIO(data), 'fixture')
  assert loaded[b'data'].shape == (1, 3072)


@pytest.mark.slow
def test_command_line_reports_bad_archive_in_one_paragraph(
    tmp_path, repo_root, script_env):
  archive = tmp_path / download_and_convert_cifar10.BINARY_ARCHIVE
  fx.write_cifar10_binary(str(archive), _cifar_splits())
  out = tmp_path / 'cifar10'
  command = [sys.executable,
             os.path.join(repo_root, 'download_and_convert_data.py'),
             '--dataset_name=cifar10', '--dataset_dir=' + str(out),
             '--archive_path=' + str(archive)]
  result = subprocess.run(command, env=script_env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 1
  # One wrapped paragraph, continuation lines indented as every script's.
  assert 'Checksum mismatch for %s' % archive in ' '.join(
      result.stderr.split())
  assert 'Traceback' not in result.stderr
  assert not _tfrecords(out)
  # The same archive, trusted explicitly, converts.
  result = subprocess.run(command + ['--archive_checksum=none'],
                          env=script_env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'cifar10 train: 10 examples, 10 classes' in result.stdout
