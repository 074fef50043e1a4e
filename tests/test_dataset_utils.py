"""Tests of datasets.dataset_utils: examples, labels, safety, crash-safety."""


import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
from PIL import Image
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_utils
from tests import dataset_fixtures


# --------------------------------------------------------------------------
# Examples and label files.


def test_image_to_tfexample_uses_slim_keys():
  example = dataset_utils.image_to_tfexample(b'abc', b'png', 7, 9, 3)
  feature = example.features.feature
  assert feature['image/encoded'].bytes_list.value == [b'abc']
  assert feature['image/format'].bytes_list.value == [b'png']
  assert feature['image/class/label'].int64_list.value == [3]
  assert feature['image/height'].int64_list.value == [7]
  assert feature['image/width'].int64_list.value == [9]


def test_imagenet_example_has_synset_text_and_boxes():
  boxes = [(0.1, 0.2, 0.5, 0.6), (0.0, 0.0, 1.0, 1.0)]
  example = dataset_utils.imagenet_to_tfexample(
      b'x', 'JPEG', 10, 20, 5, 'n01', 'goldfish', boxes, filename='a.JPEG')
  feature = example.features.feature
  assert feature['image/class/synset'].bytes_list.value == [b'n01']
  assert feature['image/class/text'].bytes_list.value == [b'goldfish']
  np.testing.assert_allclose(
      feature['image/object/bbox/xmin'].float_list.value, [0.1, 0.0])
  np.testing.assert_allclose(
      feature['image/object/bbox/ymax'].float_list.value, [0.6, 1.0])
  assert feature['image/object/bbox/label'].int64_list.value == [5, 5]


def test_label_file_round_trip(tmp_path):
  names = {0: 'background', 1: 'tench, Tinca tinca', 10: 'a:b'}
  dataset_utils.write_label_file(names, str(tmp_path))
  assert dataset_utils.has_labels(str(tmp_path))
  assert (tmp_path / 'labels.txt').read_text().splitlines()[1] == (
      '1:tench, Tinca tinca')
  assert dataset_utils.read_label_file(str(tmp_path)) == names


def test_label_file_with_bad_line_names_file_and_line(tmp_path):
  (tmp_path / 'labels.txt').write_text('0:cat\nnot a label\n')
  with pytest.raises(ValueError, match=r'labels.txt line 2'):
    dataset_utils.read_label_file(str(tmp_path))


def test_classification_decoder_decodes_jpeg_and_png():
  rng = np.random.RandomState(0)
  image = dataset_fixtures.random_images(rng, 1, 6, 5)[0]
  decoder = dataset_utils.classification_decoder('jpeg')
  serialized = tf.placeholder(tf.string, [])
  decoded_image, label = decoder.decode(serialized, ['image', 'label'])
  with tf.Session() as sess:
    for data, fmt in ((dataset_fixtures.png_bytes(image), b'png'),
                      (dataset_fixtures.jpeg_bytes(image), b'jpeg')):
      record = dataset_utils.image_to_tfexample(data, fmt, 6, 5, 4)
      out, out_label = sess.run([decoded_image, label],
                                {serialized: record.SerializeToString()})
      assert out.shape == (6, 5, 3) and out_label == 4
      if fmt == b'png':
        np.testing.assert_array_equal(out, image)


# --------------------------------------------------------------------------
# Checksums.


def test_verify_checksum_accepts_matching_digest(tmp_path):
  path = tmp_path / 'a.bin'
  path.write_bytes(b'hello')
  dataset_utils.verify_checksum(str(path),
                                'md5:' + hashlib.md5(b'hello').hexdigest())
  dataset_utils.verify_checksum(str(path), hashlib.sha256(b'hello').hexdigest())


def test_checksum_mismatch_names_file_digests_and_remedy(tmp_path):
  path = tmp_path / 'archive.tgz'
  path.write_bytes(b'not the archive')
  expected = 'c32a1d4ab5d03f1284b67883e8d87530'
  with pytest.raises(dataset_utils.ChecksumError) as e:
    dataset_utils.verify_checksum(str(path), 'md5:' + expected)
  message = str(e.value)
  assert str(path) in message and expected in message
  assert hashlib.md5(b'not the archive').hexdigest() in message
  assert 'Delete it' in message


def test_malformed_checksum_is_rejected():
  with pytest.raises(ValueError, match='md5:<32 hex digits>'):
    dataset_utils.parse_checksum('md5:xyz')


def test_maybe_download_uses_file_on_disk_without_network(tmp_path):
  path = tmp_path / 'data.gz'
  path.write_bytes(b'offline')
  out = dataset_utils.maybe_download(
      'http://invalid.invalid/data.gz', str(path),
      'sha256:' + hashlib.sha256(b'offline').hexdigest())
  assert out == str(path)


# --------------------------------------------------------------------------
# Archives.


def _tar_with(path, members):
  """members: list of (TarInfo-kwargs dict, data or None)."""
  with tarfile.open(str(path), 'w:gz') as tar:
    for kwargs, data in members:
      info = tarfile.TarInfo(kwargs.pop('name'))
      for key, value in kwargs.items():
        setattr(info, key, value)
      if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
      else:
        tar.addfile(info)


@pytest.mark.parametrize('members, bad_member', [
    ([({'name': 'ok/a.txt'}, b'a'), ({'name': '../evil.txt'}, b'x')],
     '../evil.txt'),
    ([({'name': '/tmp/evil_abs.txt'}, b'x')], '/tmp/evil_abs.txt'),
    ([({'name': 'ok/../../evil.txt'}, b'x')], 'ok/../../evil.txt'),
    ([({'name': 'link', 'type': tarfile.SYMTYPE, 'linkname': '/etc'}, None)],
     'link'),
    ([({'name': 'd/link', 'type': tarfile.SYMTYPE,
        'linkname': '../../outside'}, None)], 'd/link'),
    ([({'name': 'hard', 'type': tarfile.LNKTYPE,
        'linkname': '../outside.txt'}, None)], 'hard'),
    # A chain: `c` points at `.`, so `c/..` is really the parent directory.
    ([({'name': 'c', 'type': tarfile.SYMTYPE, 'linkname': '.'}, None),
      ({'name': 'b', 'type': tarfile.SYMTYPE, 'linkname': 'c/..'}, None)],
     'b'),
    ([({'name': 'dev', 'type': tarfile.CHRTYPE}, None)], 'dev'),
])
def test_safe_extract_rejects_escaping_members(tmp_path, members, bad_member):
  archive = tmp_path / 'bad.tgz'
  _tar_with(archive, members)
  target = tmp_path / 'out' / 'target'
  with pytest.raises(dataset_utils.UnsafeArchiveError) as e:
    dataset_utils.safe_extract(str(archive), str(target))
  assert repr(bad_member) in str(e.value)
  assert not (tmp_path / 'out' / 'evil.txt').exists()
  assert not (tmp_path / 'evil.txt').exists()


@pytest.mark.parametrize('name', ['../evil.txt', '/abs/evil.txt'])
def test_archive_read_in_place_is_checked_too(tmp_path, name):
  archive = tmp_path / 'bad.tgz'
  _tar_with(archive, [({'name': name}, b'x')])
  with pytest.raises(dataset_utils.UnsafeArchiveError, match=repr(name)):
    dataset_utils.open_tar_checked(str(archive))


def test_safe_extract_allows_links_inside_target(tmp_path):
  archive = tmp_path / 'good.tgz'
  _tar_with(archive, [
      ({'name': 'top/a.txt'}, b'alpha'),
      ({'name': 'top/link', 'type': tarfile.SYMTYPE, 'linkname': 'a.txt'},
       None),
  ])
  target = tmp_path / 'target'
  dataset_utils.safe_extract(str(archive), str(target))
  assert (target / 'top' / 'link').read_bytes() == b'alpha'


def test_safe_extract_rejects_non_archive(tmp_path):
  path = tmp_path / 'x.tgz'
  path.write_bytes(b'plain text')
  with pytest.raises(dataset_utils.DatasetError, match='not a readable tar'):
    dataset_utils.safe_extract(str(path), str(tmp_path / 'out'))


# --------------------------------------------------------------------------
# Pickles.


class _Payload(object):
  """Pickles to a call of os.system."""

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return (os.system, (self.command,))


def test_safe_pickle_load_refuses_code_execution(tmp_path):
  sentinel = tmp_path / 'pwned'
  data = pickle.dumps({b'data': _Payload('touch %s' % sentinel)}, protocol=2)
  with pytest.raises(dataset_utils.UnsafePickleError) as e:
    dataset_utils.safe_pickle_load(io.BytesIO(data), 'batch_1')
  assert 'system' in str(e.value) and 'batch_1' in str(e.value)
  assert not sentinel.exists()
  # Control: the plain unpickler would have run the command.
  pickle.loads(data)
  assert sentinel.exists()


def test_safe_pickle_load_rebuilds_numpy_arrays():
  array = np.arange(12, dtype=np.uint8).reshape(3, 4)
  data = pickle.dumps({b'data': array, b'labels': [1, 2, 3]}, protocol=2)
  loaded = dataset_utils.safe_pickle_load(io.BytesIO(data), 'batch')
  np.testing.assert_array_equal(loaded[b'data'], array)
  assert loaded[b'labels'] == [1, 2, 3]


# --------------------------------------------------------------------------
# Image files.


def test_encode_image_file_keeps_jpeg_and_png_bytes(tmp_path):
  rng = np.random.RandomState(1)
  image = dataset_fixtures.random_images(rng, 1, 9, 7)[0]
  for name, data, fmt in (('a.jpg', dataset_fixtures.jpeg_bytes(image), 'jpeg'),
                          ('b.png', dataset_fixtures.png_bytes(image), 'png')):
    (tmp_path / name).write_bytes(data)
    assert dataset_utils.encode_image_file(str(tmp_path / name)) == (
        data, fmt, 9, 7)


def test_encode_image_file_converts_cmyk_and_bmp(tmp_path):
  rng = np.random.RandomState(2)
  image = dataset_fixtures.random_images(rng, 1, 8, 6)[0]
  Image.fromarray(image).convert('CMYK').save(str(tmp_path / 'c.jpg'), 'JPEG')
  Image.fromarray(image).save(str(tmp_path / 'd.bmp'), 'BMP')
  data, fmt, height, width = dataset_utils.encode_image_file(
      str(tmp_path / 'c.jpg'))
  assert (fmt, height, width) == ('jpeg', 8, 6)
  assert Image.open(io.BytesIO(data)).mode == 'RGB'
  data, fmt, _, _ = dataset_utils.encode_image_file(str(tmp_path / 'd.bmp'))
  assert fmt == 'png'
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))),
                                image)


def test_encode_image_file_rejects_text_and_truncated_jpeg(tmp_path):
  rng = np.random.RandomState(3)
  (tmp_path / 'notes.txt').write_text('not an image')
  jpeg = dataset_fixtures.jpeg_bytes(
      dataset_fixtures.random_images(rng, 1, 32, 32)[0])
  (tmp_path / 'cut.jpg').write_bytes(jpeg[:len(jpeg) // 2])
  for name in ('notes.txt', 'cut.jpg'):
    with pytest.raises(dataset_utils.UnreadableImageError, match=name):
      dataset_utils.encode_image_file(str(tmp_path / name))


# --------------------------------------------------------------------------
# Crash-safe sharded writing.


def _example(item):
  index, label = item
  return dataset_utils.image_to_tfexample(
      b'%d' % index, b'png', 1, 1, label).SerializeToString()


def _written_indices(directory, split='train'):
  indices = []
  for path in sorted(tf.io.gfile.glob(os.path.join(
      directory, 'toy_%s_*.tfrecord' % split))):
    for record in tf.io.tf_record_iterator(path):
      example = tf.train.Example.FromString(record)
      indices.append(int(
          example.features.feature['image/encoded'].bytes_list.value[0]))
  return indices


def _items(count=20):
  return [(i, i % 3) for i in range(count)]


def test_write_split_writes_every_item_once_and_a_manifest(tmp_path):
  manifest = dataset_utils.write_split(str(tmp_path), 'toy', 'train',
                                       _items(), _example, 4, 3, num_workers=2)
  assert _written_indices(str(tmp_path)) == list(range(20))
  assert manifest['complete'] and manifest['num_examples'] == 20
  assert manifest == dataset_utils.read_manifest(str(tmp_path), 'toy', 'train')
  assert len(os.listdir(str(tmp_path))) == 5  # 4 shards + manifest


def test_interrupted_write_resumes_without_duplicates_or_gaps(tmp_path):
  calls = []

  def crashing_example(item):
    calls.append(item)
    if item[0] == 13:
      raise RuntimeError('simulated crash')
    return _example(item)

  with pytest.raises(RuntimeError, match='simulated crash'):
    dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(),
                              crashing_example, 4, 3, num_workers=1)
  manifest = dataset_utils.read_manifest(str(tmp_path), 'toy', 'train')
  assert not manifest['complete']
  finished = sorted(manifest['shards'])
  assert finished == ['toy_train_00000-of-00004.tfrecord',
                      'toy_train_00001-of-00004.tfrecord']
  # Leftovers of a killed process: a temporary shard and a lost shard.
  (tmp_path / '.toy_train_00002-of-00004.tfrecord.tmp-dead').write_bytes(b'x')
  os.remove(str(tmp_path / finished[1]))
  mtime = os.path.getmtime(str(tmp_path / finished[0]))

  del calls[:]
  manifest = dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(),
                                       _example,
                                       4, 3, num_workers=2)
  assert manifest['complete'] and manifest['num_examples'] == 20
  assert _written_indices(str(tmp_path)) == list(range(20))
  assert not [f for f in os.listdir(str(tmp_path)) if '.tmp-' in f]
  # The complete shard was kept, not rewritten.
  assert os.path.getmtime(str(tmp_path / finished[0])) == mtime


def test_finished_split_is_not_rewritten(tmp_path):
  dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(), _example,
                            2, 3)

  def must_not_run(item):
    raise AssertionError('re-ran a finished conversion')

  manifest = dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(),
                                       must_not_run, 2, 3)
  assert manifest['num_examples'] == 20


def test_truncated_shard_of_finished_split_is_rewritten(tmp_path):
  dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(), _example,
                            2, 3)
  shard = tmp_path / 'toy_train_00001-of-00002.tfrecord'
  shard.write_bytes(shard.read_bytes()[:-7])
  dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(), _example,
                            2, 3)
  assert _written_indices(str(tmp_path)) == list(range(20))


def test_changed_plan_starts_over(tmp_path):
  dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(20),
                            _example, 4, 3)
  dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(9), _example,
                            3, 3)
  assert _written_indices(str(tmp_path)) == list(range(9))
  assert len(tf.io.gfile.glob(str(tmp_path / 'toy_train_*.tfrecord'))) == 3


def test_unreadable_items_are_skipped_and_counted(tmp_path):
  def example(item):
    if item[0] % 5 == 0:
      raise dataset_utils.UnreadableImageError('file_%d.txt: not an image'
                                               % item[0])
    return _example(item)

  manifest = dataset_utils.write_split(str(tmp_path), 'toy', 'train', _items(),
                                       example, 2, 3)
  assert manifest['num_examples'] == 16 and manifest['num_skipped'] == 4
  assert [i for i in range(20) if i % 5] == _written_indices(str(tmp_path))


# --------------------------------------------------------------------------
# TFRecord integrity.


def _write_records(path, count=5, size=100):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in range(count):
      writer.write(bytes(bytearray([i]) * size))


def test_masked_crc32c_matches_tensorflow_files(tmp_path):
  path = tmp_path / 'a.tfrecord'
  _write_records(path, count=3)
  assert len(dataset_utils.check_tfrecord_framing(str(path))) == 3
  assert dataset_utils.check_tfrecord_file(str(path)) == 3


def test_truncated_and_corrupt_files_are_named(tmp_path):
  good, cut, flipped = (tmp_path / n for n in ('good', 'cut', 'flipped'))
  for path in (good, cut, flipped):
    _write_records(path)
  data = cut.read_bytes()
  cut.write_bytes(data[:len(data) - 30])
  data = bytearray(flipped.read_bytes())
  data[200] ^= 0xFF  # Inside the payload of the second record.
  flipped.write_bytes(bytes(data))

  with pytest.raises(dataset_utils.CorruptShardError, match='truncated'):
    dataset_utils.check_tfrecord_framing(str(cut))
  dataset_utils.check_tfrecord_framing(str(flipped))  # Headers are fine.
  with pytest.raises(dataset_utils.CorruptShardError) as e:
    dataset_utils.check_tfrecord_file(str(flipped))
  assert str(flipped) in str(e.value)
  assert dataset_utils.find_corrupt_shard([str(good)]) is None
  assert dataset_utils.find_corrupt_shard(
      [str(good), str(flipped)], offset=116).path == str(flipped)
  assert dataset_utils.find_corrupt_shard(
      [str(good), str(cut)]).path == str(cut)
