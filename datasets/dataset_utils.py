"""Helpers shared by the dataset readers and the converters.

* `tf.train.Example` builders with the slim feature keys (`image/encoded`,
  `image/format`, `image/class/label`, `image/height`, `image/width`, and for
  ImageNet `image/class/synset`, `image/class/text`, `image/object/bbox/*`).
* `labels.txt` files (`id:name` per line).
* Safe handling of downloaded data: checksum verification, a download helper
  used only when the file is not on disk yet, archive extraction that rejects
  members escaping the target directory, and a pickle loader that only
  rebuilds numpy arrays and plain Python values.
* A crash-safe sharded TFRecord writer: each shard is written under a
  temporary name, fsynced and renamed; a per-split manifest records finished
  shards, so an interrupted conversion resumes without duplicates and a
  finished one is not redone.
* A TFRecord framing checker that names the corrupt shard, since TensorFlow's
  own `DataLossError` only gives a byte offset.
* `make_split_dataset`, the common body of every dataset's `get_split`.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import concurrent.futures
import contextlib
import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
import time
import uuid

from absl import logging
from PIL import Image

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

LABELS_FILENAME = 'labels.txt'
MANIFEST_FORMAT = '%s_%s_manifest.json'  # (dataset name, split name)
CONVERT_COMMAND = ('python download_and_convert_data.py --dataset_name=%s '
                   '--dataset_dir=%s')

# Re-encoding quality for images that cannot be stored as they are (CMYK
# JPEGs); high enough not to change what a network sees.
_JPEG_QUALITY = 95


# ----------------------------------------------------------------------------
# Errors. All are ValueErrors (bad input data), except CorruptShardError, which
# extends TensorFlow's DataLossError so existing handlers keep catching it.


class DatasetError(ValueError):
  """Base class of the bad-data errors raised by this package."""


class DatasetNotFoundError(DatasetError):
  """A dataset directory, split or its files do not exist."""


class ChecksumError(DatasetError):
  """A file's digest differs from the published one."""


class UnsafeArchiveError(DatasetError):
  """An archive member would be written outside the target directory."""


class UnsafePickleError(DatasetError):
  """A pickle asked for a callable that is not on the allow-list."""


class UnreadableImageError(DatasetError):
  """An image file cannot be decoded (not an image, truncated, ...)."""


class CorruptShardError(tf.errors.DataLossError):
  """A TFRecord file is truncated or fails its CRC check.

  Attributes:
    path: the shard file.
    offset: byte offset of the bad record, or None.
    reason: a short description of what is wrong.
  """

  def __init__(self, path, offset, reason):
    self.path = path
    self.offset = offset
    self.reason = reason
    where = '' if offset is None else ' at byte %d' % offset
    message = (
        'TFRecord shard %s is corrupt: %s%s. The file was probably cut short '
        'by an interrupted copy or conversion, or damaged on disk. Delete it '
        'and re-run the conversion that created it (e.g. `%s`; finished '
        'shards are kept, only missing ones are rewritten), or copy it again '
        'from a good source.' %
        (path, reason, where, CONVERT_COMMAND % ('NAME', os.path.dirname(path)
                                                 or '.')))
    super(CorruptShardError, self).__init__(None, None, message)

  def __reduce__(self):
    return (CorruptShardError, (self.path, self.offset, self.reason))


# ----------------------------------------------------------------------------
# tf.train.Example helpers.


def _as_list(values):
  return list(values) if isinstance(values, (list, tuple)) else [values]


def int64_feature(values):
  """Returns an int64 `tf.train.Feature` from a scalar or a list."""
  return tf.train.Feature(
      int64_list=tf.train.Int64List(value=[int(v) for v in _as_list(values)]))


def bytes_feature(values):
  """Returns a bytes `tf.train.Feature`; `str` values are UTF-8 encoded."""
  values = [v.encode('utf-8') if isinstance(v, str) else bytes(v)
            for v in _as_list(values)]
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def float_feature(values):
  """Returns a float `tf.train.Feature` from a scalar or a list."""
  return tf.train.Feature(
      float_list=tf.train.FloatList(value=[float(v) for v in _as_list(values)]))


# Converters serialize with `SerializeToString(deterministic=True)`: the
# feature map's order is otherwise process-dependent, and resumed conversions
# must write the same bytes as uninterrupted ones.


def image_to_tfexample(image_data, image_format, height, width, class_id):
  """Builds the classification example that every slim dataset uses.

  Args:
    image_data: encoded image bytes.
    image_format: `jpeg` or `png` (as bytes or str).
    height: image height in pixels.
    width: image width in pixels.
    class_id: integer label.

  Returns:
    A `tf.train.Example`.
  """
  return tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': bytes_feature(image_data),
      'image/format': bytes_feature(image_format),
      'image/class/label': int64_feature(class_id),
      'image/height': int64_feature(height),
      'image/width': int64_feature(width),
  }))


def imagenet_to_tfexample(image_data, image_format, height, width, label,
                          synset, text, bboxes=(), filename='', channels=3,
                          colorspace='RGB'):
  """Builds an ImageNet example in the layout of slim's ImageNet TFRecords.

  Args:
    image_data: encoded image bytes.
    image_format: `JPEG` or `PNG`.
    height: image height in pixels.
    width: image width in pixels.
    label: integer label in 1..1000 (0 is the background class).
    synset: WordNet id, e.g. `n01440764`.
    text: human-readable class name.
    bboxes: (xmin, ymin, xmax, ymax) boxes in [0, 1] relative coordinates.
    filename: base name of the source image.
    channels: channels of the decoded image.
    colorspace: colour space of the decoded image.

  Returns:
    A `tf.train.Example`.
  """
  xmin, ymin, xmax, ymax = ([box[i] for box in bboxes] for i in range(4))
  return tf.train.Example(features=tf.train.Features(feature={
      'image/height': int64_feature(height),
      'image/width': int64_feature(width),
      'image/colorspace': bytes_feature(colorspace),
      'image/channels': int64_feature(channels),
      'image/class/label': int64_feature(label),
      'image/class/synset': bytes_feature(synset),
      'image/class/text': bytes_feature(text),
      'image/object/bbox/xmin': float_feature(xmin),
      'image/object/bbox/xmax': float_feature(xmax),
      'image/object/bbox/ymin': float_feature(ymin),
      'image/object/bbox/ymax': float_feature(ymax),
      'image/object/bbox/label': int64_feature([label] * len(bboxes)),
      'image/format': bytes_feature(image_format),
      'image/filename': bytes_feature(filename),
      'image/encoded': bytes_feature(image_data),
  }))


class ImageHandler(slim.tfexample_decoder.Image):
  """slim's `Image` item handler, decoding without `control_flow_ops.case`.

  tf-slim 1.1.0's handler calls `control_flow_ops.case`, which TF 2.21 no
  longer has. This subclass decodes exactly as slim does (raw buffers with
  decode_raw; JPEG bytes with decode_jpeg and the handler's dct_method;
  anything else with decode_image) using `tf.cond`, on both TF versions.
  """

  def _decode(self, image_buffer, image_format):
    """Decodes one encoded image (see slim.tfexample_decoder.Image)."""
    def decode_raw():
      return tf.io.decode_raw(image_buffer, out_type=self._dtype)

    def decode_jpeg():
      return tf.cast(tf.image.decode_jpeg(
          image_buffer, channels=self._channels, dct_method=self._dct_method),
                     self._dtype)

    def decode_other():
      return tf.cast(tf.image.decode_image(image_buffer,
                                           channels=self._channels),
                     self._dtype)

    def decode_encoded():
      return tf.cond(tf.image.is_jpeg(image_buffer), decode_jpeg, decode_other)

    is_raw = tf.logical_or(tf.equal(image_format, 'raw'),
                           tf.equal(image_format, 'RAW'))
    image = tf.cond(is_raw, decode_raw, decode_encoded)
    image.set_shape([None, None, self._channels])
    if self._shape is not None:
      image = tf.reshape(image, self._shape)
    return image


def classification_keys_to_features(default_format='jpeg'):
  """Parsing spec of the classification features (see image_to_tfexample)."""
  return {
      'image/encoded': tf.FixedLenFeature((), tf.string, default_value=''),
      'image/format': tf.FixedLenFeature((), tf.string,
                                         default_value=default_format),
      # A Python default (not a tensor, as in slim) keeps the decoder free
      # of graph state, so it works in any graph and in tf.data functions.
      'image/class/label': tf.FixedLenFeature([], tf.int64, default_value=0),
  }


def classification_decoder(default_format='jpeg', channels=3, shape=None):
  """Returns a TFExampleDecoder giving items `image` (uint8) and `label`."""
  items_to_handlers = {
      'image': ImageHandler('image/encoded', 'image/format', shape=shape,
                            channels=channels),
      'label': slim.tfexample_decoder.Tensor('image/class/label'),
  }
  return slim.tfexample_decoder.TFExampleDecoder(
      classification_keys_to_features(default_format), items_to_handlers)


# ----------------------------------------------------------------------------
# labels.txt


def write_label_file(labels_to_class_names, dataset_dir,
                     filename=LABELS_FILENAME):
  """Writes `id:name` lines, sorted by id, atomically.

  Args:
    labels_to_class_names: dict from integer label to class name.
    dataset_dir: directory to write to.
    filename: file name inside `dataset_dir`.
  """
  lines = ''.join('%d:%s\n' % (label, labels_to_class_names[label])
                  for label in sorted(labels_to_class_names))
  with atomic_write(os.path.join(dataset_dir, filename)) as f:
    f.write(lines.encode('utf-8'))


def has_labels(dataset_dir, filename=LABELS_FILENAME):
  """Returns True if `dataset_dir` contains a labels file."""
  return tf.io.gfile.exists(os.path.join(dataset_dir, filename))


def read_label_file(dataset_dir, filename=LABELS_FILENAME):
  """Reads a labels file written by `write_label_file`.

  Args:
    dataset_dir: directory holding the file.
    filename: file name inside `dataset_dir`.

  Returns:
    dict from integer label to class name.

  Raises:
    DatasetError: a line is not `id:name`.
  """
  path = os.path.join(dataset_dir, filename)
  with tf.io.gfile.GFile(path, 'rb') as f:
    text = f.read().decode('utf-8')
  labels_to_names = {}
  for number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    label, sep, name = line.partition(':')
    if not sep or not label.strip().isdigit():
      raise DatasetError(
          '%s line %d is %r; every line of a labels file must be `id:name` '
          'with an integer id. Fix the line or delete the file and re-run the '
          'conversion.' % (path, number, line))
    labels_to_names[int(label)] = name
  return labels_to_names


# ----------------------------------------------------------------------------
# Checksums and downloads.

_DIGEST_LENGTHS = {32: 'md5', 40: 'sha1', 64: 'sha256'}


def parse_checksum(spec):
  """Parses `algorithm:hexdigest` (or a bare md5/sha1/sha256 hex digest).

  Args:
    spec: the checksum string.

  Returns:
    (algorithm, lowercase hexdigest).

  Raises:
    ValueError: the string is not a recognised digest.
  """
  algorithm, sep, digest = spec.strip().partition(':')
  if not sep:
    digest, algorithm = algorithm, _DIGEST_LENGTHS.get(len(algorithm))
  digest = digest.lower()
  if (algorithm not in ('md5', 'sha1', 'sha256') or
      len(digest) != hashlib.new(algorithm).digest_size * 2 or
      any(c not in '0123456789abcdef' for c in digest)):
    raise ValueError(
        'Checksum %r is not valid; write it as md5:<32 hex digits> or '
        'sha256:<64 hex digits>.' % spec)
  return algorithm, digest


def file_digest(path, algorithm='sha256', chunk_size=1 << 20):
  """Returns the hex digest of a file."""
  digest = hashlib.new(algorithm)
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(chunk_size), b''):
      digest.update(chunk)
  return digest.hexdigest()


def verify_checksum(path, checksum):
  """Raises ChecksumError unless `path` has the expected digest.

  Args:
    path: the file to check.
    checksum: `algorithm:hexdigest`, or a bare hex digest.

  Raises:
    ChecksumError: the digests differ.
  """
  algorithm, expected = parse_checksum(checksum)
  actual = file_digest(path, algorithm)
  if actual != expected:
    raise ChecksumError(
        'Checksum mismatch for %s: expected %s %s, got %s. The file is '
        'incomplete, corrupt or not the official release. Delete it and run '
        'the command again to download a fresh copy, or pass a good copy with '
        '--archive_path (--archive_checksum=none skips the check for an '
        'archive you trust).' % (path, algorithm, expected, actual))
  logging.info('Checksum OK for %s (%s %s).', path, algorithm, actual)


def download(url, dest_path, chunk_size=1 << 20):
  """Downloads `url` to `dest_path` atomically, logging progress.

  Args:
    url: source URL.
    dest_path: where the file ends up; it appears only once complete.
    chunk_size: bytes read at a time.

  Returns:
    dest_path.
  """
  # Imported here: converters that find their input on disk never need it.
  import urllib.request  # pylint: disable=g-import-not-at-top
  logging.info('Downloading %s to %s', url, dest_path)
  start = last_report = time.time()
  with atomic_write(dest_path) as out:
    response = urllib.request.urlopen(url)
    total = int(response.headers.get('Content-Length') or 0)
    done = 0
    for chunk in iter(lambda: response.read(chunk_size), b''):
      out.write(chunk)
      done += len(chunk)
      if time.time() - last_report > 5:
        last_report = time.time()
        logging.info('  %s: %.1f MB%s', os.path.basename(dest_path), done / 1e6,
                     ' of %.1f MB (%.0f%%)' % (total / 1e6, 100. * done / total)
                     if total else '')
  logging.info('Downloaded %s (%.1f MB in %.0f s).', dest_path, done / 1e6,
               time.time() - start)
  return dest_path


def maybe_download(url, dest_path, checksum=None):
  """Returns a verified local copy of `url`, downloading only if missing.

  Args:
    url: where to fetch the file when `dest_path` does not exist.
    dest_path: local path of the file.
    checksum: `algorithm:hexdigest` to verify, or None to skip verification.

  Returns:
    dest_path.

  Raises:
    ChecksumError: the local or downloaded file has the wrong digest.
  """
  if not os.path.exists(dest_path):
    os.makedirs(os.path.dirname(os.path.abspath(dest_path)), exist_ok=True)
    try:
      download(url, dest_path)
    except (IOError, OSError) as e:
      raise DatasetNotFoundError(
          '%s is not on disk and downloading it from %s failed (%s). Copy the '
          'file there yourself (or pass its path with --archive_path) and run '
          'the command again.' % (dest_path, url, e))
  if checksum:
    verify_checksum(dest_path, checksum)
  return dest_path


# ----------------------------------------------------------------------------
# Archives.


def _inside(path, directory):
  """True if normalised `path` is `directory` or below it."""
  directory = os.path.normpath(os.path.abspath(directory))
  path = os.path.normpath(os.path.abspath(path))
  return path == directory or path.startswith(directory + os.sep)


def check_tar_member(member, target_dir, archive_path=''):
  """Checks that extracting `member` into `target_dir` stays inside it.

  Rejects absolute names, `..` components, links pointing outside the target
  and device files. Links are resolved against what is already extracted
  (realpath), so chains of symlinks cannot smuggle a path out.

  Args:
    member: a `tarfile.TarInfo`.
    target_dir: the extraction directory.
    archive_path: archive name for error messages.

  Returns:
    The destination path of the member.

  Raises:
    UnsafeArchiveError: the member is unsafe.
  """
  def reject(reason):
    raise UnsafeArchiveError(
        'Refusing to extract %s: member %r %s. The archive is damaged or '
        'malicious; use the official archive.' %
        (archive_path or 'archive', member.name, reason))

  name = member.name
  if name.startswith('/') or name.startswith('\\') or os.path.isabs(name):
    reject('has an absolute path')
  if '..' in name.replace('\\', '/').split('/'):
    reject('contains ".."')
  real_target = os.path.realpath(target_dir)
  dest = os.path.join(real_target, name)
  if not _inside(os.path.realpath(os.path.dirname(dest)), real_target):
    reject('would be written through a link outside the target directory')
  if member.issym() or member.islnk():
    link = member.linkname
    if not link or os.path.isabs(link) or link.startswith('/'):
      reject('is a link to an absolute path %r' % link)
    if member.issym():
      resolved = os.path.join(os.path.dirname(dest), link)
    else:
      resolved = os.path.join(real_target, link)
    if (not _inside(resolved, real_target) or
        not _inside(os.path.realpath(resolved), real_target)):
      reject('is a link to %r, outside the target directory' % link)
  elif not (member.isfile() or member.isdir()):
    reject('is a device, fifo or other special file')
  return dest


def safe_extract(archive_path, target_dir):
  """Extracts a tar archive (any compression), rejecting unsafe members.

  Args:
    archive_path: the archive.
    target_dir: created if needed; every member must land inside it.

  Returns:
    The list of extracted member names.

  Raises:
    UnsafeArchiveError: a member escapes `target_dir`.
    DatasetError: the file is not a readable tar archive.
  """
  os.makedirs(target_dir, exist_ok=True)
  names = []
  try:
    with tarfile.open(archive_path, 'r:*') as tar:
      for member in tar:
        check_tar_member(member, target_dir, archive_path)
        if hasattr(tarfile, 'data_filter'):
          # Python >= 3.11.4 adds its own checks; they agree with ours.
          tar.extract(member, target_dir, filter='data')
        else:
          tar.extract(member, target_dir)
        names.append(member.name)
  except (tarfile.TarError, EOFError) as e:
    raise DatasetError(
        '%s is not a readable tar archive (%s). Delete it and download it '
        'again.' % (archive_path, e))
  return names


def open_tar_checked(archive_path):
  """Opens a tar archive for reading in place after checking every member.

  Args:
    archive_path: the archive.

  Returns:
    An open `tarfile.TarFile` (use it as a context manager).

  Raises:
    UnsafeArchiveError: a member would escape an extraction directory.
    DatasetError: the file is not a readable tar archive.
  """
  try:
    tar = tarfile.open(archive_path, 'r:*')
    members = tar.getmembers()
  except (tarfile.TarError, EOFError, IOError) as e:
    raise DatasetError(
        '%s is not a readable tar archive (%s). Delete it and download it '
        'again.' % (archive_path, e))
  # Reading in place writes nothing, but an archive built to escape an
  # extraction directory is not an official one: reject it outright.
  probe_dir = os.path.join(os.path.dirname(os.path.abspath(archive_path)),
                           '.extract-check')
  for member in members:
    check_tar_member(member, probe_dir, archive_path)
  return tar


# ----------------------------------------------------------------------------
# Pickles.

# Everything a pickled numpy array or a dict of them needs, and nothing else.
_PICKLE_ALLOWED = frozenset([
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    # Python 3 writes bytes into protocol-2 pickles as encode(str, 'latin1');
    # codecs only transform data.
    ('_codecs', 'encode'),
    ('copy_reg', '_reconstructor'),
    ('copyreg', '_reconstructor'),
    ('__builtin__', 'object'),
    ('builtins', 'object'),
])


class _ArrayOnlyUnpickler(pickle.Unpickler):
  """Unpickler that can rebuild numpy arrays and plain data, nothing else."""

  def find_class(self, module, name):
    if (module, name) in _PICKLE_ALLOWED:
      return super(_ArrayOnlyUnpickler, self).find_class(module, name)
    raise UnsafePickleError('%s.%s' % (module, name))


def safe_pickle_load(fileobj, source_name, encoding='bytes'):
  """Loads a pickle that may only contain numpy arrays and basic types.

  Args:
    fileobj: binary file object.
    source_name: name used in error messages.
    encoding: how Python 2 `str` objects are decoded (as in pickle.load).

  Returns:
    The unpickled object.

  Raises:
    UnsafePickleError: the pickle references any other callable; nothing it
      asked for was executed.
  """
  try:
    return _ArrayOnlyUnpickler(fileobj, encoding=encoding).load()
  except UnsafePickleError as e:
    raise UnsafePickleError(
        'Refusing to load %s: the pickle asks for %s, which is not a numpy '
        'array or plain value (a crafted pickle can run code this way). Use '
        'the official archive (the binary CIFAR-10 archive needs no pickles).'
        % (source_name, e))
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
    raise DatasetError('%s is not a readable pickle (%s).' % (source_name, e))


# ----------------------------------------------------------------------------
# Image files.

_STORED_AS_IS = {'JPEG': ('RGB', 'L'),
                 'PNG': ('RGB', 'RGBA', 'L', 'LA', 'P')}


def encode_image_file(path):
  """Reads an image file and returns bytes the slim decoder can read.

  JPEG and PNG files are kept byte for byte. Others (CMYK JPEGs, BMP, GIF,
  TIFF, WebP, 16-bit images) are converted to RGB and re-encoded: JPEG for
  JPEG sources, PNG (lossless) otherwise.

  Args:
    path: the image file.

  Returns:
    (encoded bytes, format `jpeg` or `png`, height, width).

  Raises:
    UnreadableImageError: the file is not a complete, decodable image.
  """
  try:
    with Image.open(path) as probe:  # Reads the header only.
      probe.format  # pylint: disable=pointless-statement
    with open(path, 'rb') as f:
      data = f.read()
    image = Image.open(io.BytesIO(data))
    image.load()  # Decodes everything, so truncated files fail here.
  except Exception as e:  # pylint: disable=broad-except
    # PIL raises many types (IOError, SyntaxError, DecompressionBombError...).
    raise UnreadableImageError('%s: %s' % (path, e))
  width, height = image.size
  if image.mode in _STORED_AS_IS.get(image.format, ()):
    return data, image.format.lower(), height, width
  out = io.BytesIO()
  if image.format == 'JPEG':
    image.convert('RGB').save(out, 'JPEG', quality=_JPEG_QUALITY)
    return out.getvalue(), 'jpeg', height, width
  image.convert('RGBA' if 'A' in image.getbands() else 'RGB').save(out, 'PNG')
  return out.getvalue(), 'png', height, width


# ----------------------------------------------------------------------------
# Crash-safe writing.


def _fsync_path(path):
  """fsyncs a file or directory (directories: best effort)."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def _tmp_name(path):
  # Hidden and prefixed, so shard globs such as `train-*` never match it.
  directory, name = os.path.split(path)
  return os.path.join(directory, '.%s.tmp-%s' % (name, uuid.uuid4().hex[:8]))


def commit_file(tmp_path, path):
  """fsyncs `tmp_path` and renames it to `path` (atomic on POSIX)."""
  _fsync_path(tmp_path)
  os.replace(tmp_path, path)
  _fsync_path(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_write(path):
  """Opens a temporary file for binary writing; renames it to `path` on exit.

  If the block raises (or the process dies), `path` is left untouched.

  Args:
    path: final file path.

  Yields:
    A binary file object.
  """
  tmp = _tmp_name(path)
  try:
    with open(tmp, 'wb') as f:
      yield f
    commit_file(tmp, path)
  except BaseException:
    _remove_quietly(tmp)
    raise


def _remove_quietly(path):
  try:
    os.remove(path)
  except OSError:
    pass


def remove_stale_temporaries(paths):
  """Deletes `.<name>.tmp-*` leftovers of interrupted writes of `paths`."""
  by_dir = {}
  for path in paths:
    by_dir.setdefault(os.path.dirname(path) or '.', set()).add(
        os.path.basename(path))
  removed = 0
  for directory, names in by_dir.items():
    if not os.path.isdir(directory):
      continue
    for entry in os.listdir(directory):
      base, sep, _ = entry.rpartition('.tmp-')
      if sep and base.startswith('.') and base[1:] in names:
        _remove_quietly(os.path.join(directory, entry))
        removed += 1
  if removed:
    logging.info('Removed %d leftover temporary file(s) of an interrupted '
                 'run.', removed)
  return removed


def manifest_path(dataset_dir, dataset_name, split_name):
  return os.path.join(dataset_dir, MANIFEST_FORMAT % (dataset_name, split_name))


def read_manifest(dataset_dir, dataset_name, split_name):
  """Returns the split's manifest dict, or None when there is none."""
  path = manifest_path(dataset_dir, dataset_name, split_name)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'rb') as f:
    try:
      return json.loads(f.read().decode('utf-8'))
    except ValueError as e:
      raise DatasetError(
          'Manifest %s is not valid JSON (%s). Delete it and re-run `%s`.' %
          (path, e, CONVERT_COMMAND % (dataset_name, dataset_dir)))


def split_is_complete(dataset_dir, dataset_name, split_name, plan_info):
  """True if a finished conversion with the same settings is on disk.

  Lets a converter skip expensive preparation (extracting an archive) when
  there is nothing left to do.

  Args:
    dataset_dir: output directory.
    dataset_name: dataset name (manifest prefix).
    split_name: the split.
    plan_info: the settings `write_split` would get.

  Returns:
    bool.
  """
  manifest = read_manifest(dataset_dir, dataset_name, split_name)
  if not manifest or not manifest.get('complete'):
    return False
  if json.loads(json.dumps(plan_info)) != manifest.get('plan_info'):
    return False
  for name, info in manifest['shards'].items():
    path = os.path.join(dataset_dir, name)
    if not os.path.exists(path) or os.path.getsize(path) != info['bytes']:
      return False
  return True


def _write_manifest(dataset_dir, dataset_name, split_name, manifest):
  with atomic_write(manifest_path(dataset_dir, dataset_name, split_name)) as f:
    f.write(json.dumps(manifest, indent=1, sort_keys=True).encode('utf-8'))


def _write_shard(path, items, example_fn):
  """Writes one shard under a temporary name and renames it when complete."""
  tmp = _tmp_name(path)
  num_examples = 0
  skipped = []
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for item in items:
        try:
          example = example_fn(item)
        except UnreadableImageError as e:
          logging.warning('Skipping unreadable image %s', e)
          skipped.append(str(e))
          continue
        writer.write(example)
        num_examples += 1
    commit_file(tmp, path)
  except BaseException:
    _remove_quietly(tmp)
    raise
  return num_examples, skipped


def default_shard_name(dataset_name, split_name, index, num_shards):
  return '%s_%s_%05d-of-%05d.tfrecord' % (dataset_name, split_name, index,
                                          num_shards)


def write_split(dataset_dir, dataset_name, split_name, items, example_fn,
                num_shards, num_classes, num_workers=None, plan_info=None,
                shard_name_fn=default_shard_name):
  """Writes a split as sharded TFRecords, crash-safely and resumably.

  The split's manifest (`<dataset>_<split>_manifest.json`) is written first
  with a fingerprint of the plan (shard names, items, `plan_info`) and is
  updated as each shard is renamed into place. A re-run with the same plan
  keeps the shards the manifest lists (and whose size matches), removes
  leftover temporary files and writes only the rest; a finished split is not
  touched. A different plan (other sources or settings) starts the split over.

  Args:
    dataset_dir: output directory.
    dataset_name: prefix of the manifest (and of default shard names).
    split_name: e.g. `train`.
    items: list of items; `repr(item)` must identify it (e.g. (path, label)).
    example_fn: item -> serialized `tf.train.Example`; may raise
      UnreadableImageError to skip the item (logged and counted).
    num_shards: number of shards (at most one per item).
    num_classes: stored in the manifest for the reader.
    num_workers: parallel shard writers (default: CPU count).
    plan_info: JSON-able settings that change the output (seed, sizes...).
    shard_name_fn: (dataset_name, split_name, index, num_shards) -> file name.

  Returns:
    The final manifest dict.

  Raises:
    DatasetError: there are no items.
  """
  if not items:
    raise DatasetError('No examples to write for %s split %r.' %
                       (dataset_name, split_name))
  os.makedirs(dataset_dir, exist_ok=True)
  num_shards = max(1, min(int(num_shards), len(items)))
  names = [shard_name_fn(dataset_name, split_name, i, num_shards)
           for i in range(num_shards)]
  bounds = [len(items) * i // num_shards for i in range(num_shards + 1)]
  shard_items = [items[bounds[i]:bounds[i + 1]] for i in range(num_shards)]
  fingerprint = hashlib.sha256(json.dumps(
      [names, [repr(item) for item in items], plan_info],
      sort_keys=True).encode('utf-8')).hexdigest()

  old = read_manifest(dataset_dir, dataset_name, split_name)
  done = {}
  if old and old.get('fingerprint') == fingerprint:
    for name, info in old.get('shards', {}).items():
      path = os.path.join(dataset_dir, name)
      if os.path.exists(path) and os.path.getsize(path) == info.get('bytes'):
        done[name] = info
  elif old:
    logging.warning('%s %s was converted with other sources or settings; '
                    'converting it again.', dataset_name, split_name)
    for name in old.get('shards', {}):
      _remove_quietly(os.path.join(dataset_dir, name))
  paths = [os.path.join(dataset_dir, name) for name in names]
  remove_stale_temporaries(paths)
  if old and old.get('complete') and len(done) == num_shards:
    logging.info('%s %s is already converted (%d examples); nothing to do.',
                 dataset_name, split_name, old['num_examples'])
    return old

  manifest = {
      'dataset': dataset_name, 'split': split_name, 'complete': False,
      'fingerprint': fingerprint, 'num_shards': num_shards,
      'num_classes': int(num_classes), 'plan_info': plan_info, 'shards': done,
  }
  _write_manifest(dataset_dir, dataset_name, split_name, manifest)
  todo = [i for i in range(num_shards) if names[i] not in done]
  if done:
    logging.info('%s %s: resuming, %d of %d shards already complete.',
                 dataset_name, split_name, len(done), num_shards)
  start = time.time()
  workers = num_workers or os.cpu_count() or 1
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    futures = {pool.submit(_write_shard, paths[i], shard_items[i], example_fn):
               i for i in todo}
    try:
      for future in concurrent.futures.as_completed(futures):
        i = futures[future]
        count, skipped = future.result()
        done[names[i]] = {'num_examples': count, 'skipped': skipped,
                          'bytes': os.path.getsize(paths[i])}
        _write_manifest(dataset_dir, dataset_name, split_name, manifest)
        logging.info('%s %s: %d/%d shards, %d examples (%.1f s)',
                     dataset_name, split_name, len(done), num_shards,
                     sum(s['num_examples'] for s in done.values()),
                     time.time() - start)
    except BaseException:
      for future in futures:
        future.cancel()
      raise

  skipped = [s for name in names for s in done[name]['skipped']]
  manifest.update(
      complete=True,
      num_examples=sum(done[name]['num_examples'] for name in names),
      num_skipped=len(skipped))
  _write_manifest(dataset_dir, dataset_name, split_name, manifest)
  if skipped:
    logging.warning('%s %s: skipped %d unreadable file(s), e.g. %s (all are '
                    'listed in %s).', dataset_name, split_name, len(skipped),
                    skipped[0], manifest_path(dataset_dir, dataset_name,
                                              split_name))
  logging.info('%s %s: wrote %d examples in %d shards.', dataset_name,
               split_name, manifest['num_examples'], num_shards)
  return manifest


# ----------------------------------------------------------------------------
# TFRecord integrity.


def _crc32c_table():
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data):
  """The masked CRC-32C that TFRecord files store (pure Python)."""
  crc = 0xFFFFFFFF
  table = _CRC32C_TABLE
  for byte in bytearray(data):
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def check_tfrecord_framing(path):
  """Walks a TFRecord file's record headers (not payloads).

  Cheap (one small read per record); catches truncation and corrupt length
  fields, the usual damage of interrupted copies.

  Args:
    path: a TFRecord file.

  Returns:
    The list of record start offsets.

  Raises:
    CorruptShardError: the file is truncated or a header is corrupt.
  """
  size = os.path.getsize(path)
  offsets = []
  offset = 0
  with open(path, 'rb') as f:
    while offset < size:
      header = f.read(12)
      if len(header) < 12:
        raise CorruptShardError(path, offset, 'truncated record header')
      length_bytes = header[:8]
      if struct.unpack('<I', header[8:])[0] != masked_crc32c(length_bytes):
        raise CorruptShardError(path, offset, 'corrupt record length')
      length = struct.unpack('<Q', length_bytes)[0]
      end = offset + 12 + length + 4
      if end > size:
        raise CorruptShardError(path, offset, 'truncated record')
      offsets.append(offset)
      offset = end
      f.seek(offset)
  return offsets


def check_tfrecord_file(path):
  """Reads a whole TFRecord file, verifying every CRC.

  Args:
    path: a TFRecord file.

  Returns:
    The number of records.

  Raises:
    CorruptShardError: the file is truncated or a CRC does not match.
  """
  offsets = check_tfrecord_framing(path)
  try:
    count = sum(1 for _ in tf.io.tf_record_iterator(path))
  except tf.errors.DataLossError as e:
    raise CorruptShardError(path, None, e.message.splitlines()[0])
  if count != len(offsets):
    raise CorruptShardError(path, None, 'record count differs from framing')
  return count


def find_corrupt_shard(paths, offset=None):
  """Finds the first damaged TFRecord file among `paths`.

  Headers are walked first (cheap); then, files with a record starting at
  `offset` (the offset in TensorFlow's DataLossError) are fully verified,
  then the rest.

  Args:
    paths: TFRecord files.
    offset: byte offset reported by TensorFlow, if known.

  Returns:
    A CorruptShardError for the first damaged file, or None.
  """
  starts = {}
  for path in paths:
    try:
      starts[path] = set(check_tfrecord_framing(path))
    except CorruptShardError as e:
      return e
    except (IOError, OSError) as e:
      return CorruptShardError(path, None, 'unreadable (%s)' % e)
  ordered = sorted(paths, key=lambda p: offset not in starts[p])
  for path in ordered:
    try:
      check_tfrecord_file(path)
    except CorruptShardError as e:
      return e
  return None


# ----------------------------------------------------------------------------
# get_split helper.


def make_split_dataset(dataset_name, split_name, dataset_dir, file_pattern,
                       reader, default_file_pattern, splits_to_sizes,
                       num_classes, decoder, items_to_descriptions):
  """Builds a `slim.dataset.Dataset`; the common body of every get_split.

  Sample and class counts come from the split's manifest when the converter
  of this project wrote one, else from `splits_to_sizes` / `num_classes`
  (the published sizes, for TFRecords made by other tools).

  Args:
    dataset_name: registered name (used in messages and manifest names).
    split_name: requested split.
    dataset_dir: directory with the TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based providers (default TFRecordReader).
    default_file_pattern: pattern with a `%s` for the split name.
    splits_to_sizes: dict split -> published size (None where unknown);
      its keys are the valid splits.
    num_classes: published number of classes, or None.
    decoder: the TFExampleDecoder.
    items_to_descriptions: dict item -> description.

  Returns:
    A `slim.dataset.Dataset` with data_sources, reader, decoder, num_samples,
    num_classes, labels_to_names (or None), items_to_descriptions, and
    shard_sizes (file -> bytes, from the manifest; may be empty).

  Raises:
    ValueError: unknown split name.
    DatasetNotFoundError: the directory, files or counts are missing.
  """
  if split_name not in splits_to_sizes:
    raise ValueError('Unknown split %r for dataset %s; valid splits: %s.' %
                     (split_name, dataset_name,
                      ', '.join(sorted(splits_to_sizes))))
  command = CONVERT_COMMAND % (dataset_name, dataset_dir)
  if not dataset_dir or not tf.io.gfile.isdir(dataset_dir):
    raise DatasetNotFoundError(
        'Dataset directory %r for %s does not exist. Create the dataset with '
        '`%s`, or pass the directory that holds its TFRecords with '
        '--dataset_dir.' % (dataset_dir, dataset_name, command))
  pattern = file_pattern or default_file_pattern
  if '%s' in pattern:
    pattern = pattern % split_name
  pattern = os.path.join(dataset_dir, pattern)
  files = tf.io.gfile.glob(pattern)
  if not files:
    raise DatasetNotFoundError(
        'No TFRecord files for %s split %r: expected files matching %s. '
        'Create them with `%s`.' % (dataset_name, split_name, pattern, command))

  num_samples = splits_to_sizes[split_name]
  shard_sizes = {}
  manifest = None if file_pattern else read_manifest(dataset_dir, dataset_name,
                                                     split_name)
  if manifest is not None:
    if not manifest.get('complete'):
      raise DatasetNotFoundError(
          'The conversion of %s split %r in %s did not finish (%s says it is '
          'incomplete). Run `%s` again; it resumes where it stopped.' %
          (dataset_name, split_name, dataset_dir,
           manifest_path(dataset_dir, dataset_name, split_name), command))
    num_samples = manifest['num_examples']
    num_classes = manifest.get('num_classes', num_classes)
    shard_sizes = {os.path.join(dataset_dir, name): info['bytes']
                   for name, info in manifest['shards'].items()}
  if num_samples is None or num_classes is None:
    where = manifest_path(dataset_dir, dataset_name, split_name)
    raise DatasetNotFoundError(
        'The sample and class counts of %s split %r are unknown: they are '
        'read from %s%s. Re-create the dataset with `%s`.' %
        (dataset_name, split_name, where,
         ', which is not used with a custom file_pattern' if file_pattern
         else ', which is missing', command))
  labels_to_names = (read_label_file(dataset_dir)
                     if has_labels(dataset_dir) else None)
  return slim.dataset.Dataset(
      data_sources=pattern,
      reader=reader or tf.TFRecordReader,
      decoder=decoder,
      num_samples=num_samples,
      items_to_descriptions=items_to_descriptions,
      num_classes=num_classes,
      labels_to_names=labels_to_names,
      shard_sizes=shard_sizes)

