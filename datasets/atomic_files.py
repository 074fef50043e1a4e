"""Writing files so that a crash never leaves a half-written one in place.

Data goes to a hidden temporary name, is fsynced and then renamed; the
rename is atomic on POSIX, so a reader sees either the old file or the
complete new one.
"""


import contextlib
import errno
import os
import uuid

from absl import logging

from datasets import dataset_errors

# A full disk, a full quota and the file-size limit all stop a write for
# good; the same free-some-space advice fixes each.
_DISK_FULL_ERRNOS = frozenset([errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
_DISK_FULL_TEXTS = ('no space left', 'file too large', 'quota exceeded')


def _fsync_path(path, strict=False):
  """fsyncs a file or directory.

  A file's fsync is `strict`: on a full disk it is where delayed writes
  fail, and ignoring that would commit a short file. Directories are best
  effort (some filesystems cannot open or sync them).
  """
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    if strict:
      raise
    return
  try:
    os.fsync(fd)
  except OSError:
    if strict:
      raise
  finally:
    os.close(fd)


def temporary_name(path):
  # Hidden and prefixed, so shard globs such as `train-*` never match it.
  directory, name = os.path.split(path)
  return os.path.join(directory, '.%s.tmp-%s' % (name, uuid.uuid4().hex[:8]))


def commit_file(tmp_path, path):
  """fsyncs `tmp_path` and renames it to `path` (atomic on POSIX)."""
  _fsync_path(tmp_path, strict=True)
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
  tmp = temporary_name(path)
  try:
    with open(tmp, 'wb') as f:
      yield f
    commit_file(tmp, path)
  except BaseException:
    remove_quietly(tmp)
    raise


def remove_quietly(path):
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
        remove_quietly(os.path.join(directory, entry))
        removed += 1
  if removed:
    logging.info('Removed %d leftover temporary file(s) of an interrupted '
                 'run.', removed)
  return removed


def is_disk_full(error):
  """True if `error` says a write failed for lack of space (or size limit).

  Python reports these as OSError with an errno; TensorFlow's file writers
  as an OpError (it has `error_code`) whose message ends with the C
  library's text, e.g. `...; No space left on device`.
  """
  if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
    return True
  if isinstance(error, OSError) or hasattr(error, 'error_code'):
    text = str(error).lower()
    return any(marker in text for marker in _DISK_FULL_TEXTS)
  return False


@contextlib.contextmanager
def disk_full_explained(directory):
  """Turns a full-disk error inside the block into DiskFullError(directory)."""
  try:
    yield
  except dataset_errors.DiskFullError:
    raise
  except Exception as error:  # pylint: disable=broad-except
    if is_disk_full(error):
      raise dataset_errors.DiskFullError(directory, error)
    raise
