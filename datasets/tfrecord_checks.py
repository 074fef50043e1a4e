"""Finding the damaged file among TFRecord shards.

TensorFlow's DataLossError gives a byte offset but no file name; these
checks walk the record framing and CRCs to name the corrupt shard.
"""


import os
import struct

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_errors


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
        raise dataset_errors.CorruptShardError(path, offset, 'truncated record header')
      length_bytes = header[:8]
      if struct.unpack('<I', header[8:])[0] != masked_crc32c(length_bytes):
        raise dataset_errors.CorruptShardError(path, offset, 'corrupt record length')
      length = struct.unpack('<Q', length_bytes)[0]
      end = offset + 12 + length + 4
      if end > size:
        raise dataset_errors.CorruptShardError(path, offset, 'truncated record')
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
    raise dataset_errors.CorruptShardError(path, None, e.message.splitlines()[0])
  if count != len(offsets):
    raise dataset_errors.CorruptShardError(path, None, 'record count differs from framing')
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
    except dataset_errors.CorruptShardError as e:
      return e
    except (IOError, OSError) as e:
      return dataset_errors.CorruptShardError(path, None, 'unreadable (%s)' % e)
  ordered = sorted(paths, key=lambda p: offset not in starts[p])
  for path in ordered:
    try:
      check_tfrecord_file(path)
    except dataset_errors.CorruptShardError as e:
      return e
  return None
