"""The exceptions of the datasets package, and the command they suggest.

Every bad-data error is a ValueError subclass, so callers that only know
ValueError still catch them; CorruptShardError extends TensorFlow's
DataLossError instead, which is what readers of a damaged file get.
Messages name the parameters they are about with `ref`; `str()` shows the
plain names, and the entry scripts spell them as flags.
"""


import contextlib
import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import atomic_files
from core import errors

# Names a parameter in a message; the scripts spell it as a flag.
ref = errors.ref

# What a user runs to (re-)create a dataset; messages fill in both `%s`.
CONVERT_COMMAND = ('python download_and_convert_data.py --dataset_name=%s '
                   '--dataset_dir=%s')


class DatasetError(errors.LibraryError):
  """Base class of the bad-data errors raised by this package."""


class SettingError(DatasetError):
  """A converter was given a size, count or ratio it cannot use."""


class DatasetNotFoundError(DatasetError):
  """A dataset directory, split or its files do not exist."""


class SplitFilesNotFoundError(DatasetNotFoundError):
  """No file of a split matches its pattern in the dataset directory."""

  def __init__(self, dataset_name, split_name, dataset_dir, pattern):
    self.dataset_name = dataset_name
    self.split_name = split_name
    self.dataset_dir = dataset_dir
    self.pattern = pattern
    super(SplitFilesNotFoundError, self).__init__(
        'No TFRecord files for %s split %r: expected files matching %s. '
        'Create them with `%s`.' % (dataset_name, split_name, pattern,
                                    CONVERT_COMMAND % (dataset_name,
                                                       dataset_dir)))

  def __reduce__(self):
    return (SplitFilesNotFoundError, (self.dataset_name, self.split_name,
                                      self.dataset_dir, self.pattern))


class ChecksumError(DatasetError):
  """A file's digest differs from the published one."""


class UnsafeArchiveError(DatasetError):
  """An archive member would be written outside the target directory."""


class UnsafePickleError(DatasetError):
  """A pickle asked for a callable that is not on the allow-list."""


class UnreadableImageError(DatasetError):
  """An image file cannot be decoded (not an image, truncated, ...)."""


class DiskFullError(DatasetError):
  """Writing into a directory failed: no space left, quota or size limit."""

  def __init__(self, directory, cause):
    self.directory = directory
    self.cause = cause
    # OSError has the C library's text; TensorFlow puts it after the path.
    text = getattr(cause, 'strerror', None) or str(cause).strip()
    reason = text.splitlines()[0].rsplit('; ', 1)[-1] if text else (
        type(cause).__name__)
    super(DiskFullError, self).__init__(
        'Writing into %s failed (%s): the disk, the quota or the file-size '
        'limit is full, so the conversion stopped. Shards written in full '
        'are kept and listed in their manifest; unfinished ones were removed '
        'and their split is not marked complete. Free some space '
        'there (or choose another %s) and run the same command '
        'again: it writes only the missing shards.' %
        (directory, reason, ref('dataset_dir')))

  def __reduce__(self):
    return (DiskFullError, (self.directory, self.cause))


@contextlib.contextmanager
def disk_full_explained(directory):
  """Turns a full-disk error inside the block into DiskFullError(directory)."""
  try:
    yield
  except DiskFullError:
    raise
  except Exception as error:  # pylint: disable=broad-except
    if atomic_files.is_disk_full(error):
      raise DiskFullError(directory, error)
    raise


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
