"""Writing a file so that a crash or a full disk never leaves half of it.

Everything is written under a hidden temporary name beside the file and
renamed over it when complete. A local file is fsynced before the rename
(and its directory after it), so after a crash a reader finds the old file
or the whole new one; renames are atomic on POSIX. A path with a scheme
(gs://, s3://, ...) goes through `tf.io.gfile`: its rename is what that
filesystem offers, and there is nothing to fsync.

* `write_atomically(path, data)`: bytes or text, any path;
* `atomic_write(path)`: a binary file object to write into (local);
* `atomic_path(path)`: a temporary path for writers that take a path,
  e.g. `tf.io.TFRecordWriter` or Keras (local);
* `atomic_directory(path)`: the same for a whole new directory, e.g. a
  SavedModel (local);
* `scratch_directory(path)`: a hidden directory beside `path` for writers
  that choose their files' names (a checkpoint), each then moved into
  place with `commit_file`;
* `is_disk_full(error)`: whether a failed write ran out of space;
* `remove_stale_temporaries`, `temporary_of`: clean-up after a crash.
"""


import contextlib
import errno
import os
import re
import shutil
import uuid

from absl import logging

# A full disk, a full quota and the file-size limit all stop a write for
# good; the same free-some-space advice fixes each.
_DISK_FULL_ERRNOS = frozenset([errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
_DISK_FULL_TEXTS = ('no space left', 'file too large', 'quota exceeded')



def is_remote(path):
  """Whether `path` is a URL (gs://bucket/x) rather than a local file."""
  return '://' in path


def temporary_name(path, suffix=''):
  """A fresh hidden name beside `path` (`dir/.name.tmp-1a2b3c4d`).

  Hidden and prefixed, so globs such as `train-*` or `model.ckpt-*` never
  match it.

  Args:
    path: the file's final path.
    suffix: appended, for writers that choose the format by the extension.
  """
  directory, name = os.path.split(path)
  return os.path.join(directory, '.%s.tmp-%s%s' % (
      name, uuid.uuid4().hex[:8], suffix))


def temporary_pattern(name_pattern):
  """A regex matching the temporary names of files matching `name_pattern`.

  Args:
    name_pattern: a regex (no anchors) for the final file names.
  """
  return re.compile(r'^\.(%s)\.tmp-[0-9a-f]{8}(\.\w+)?$' % name_pattern)


# Any tag after `.tmp-`: clean-up of named files also takes temporaries
# that other writers (and earlier versions) tagged differently.
_ANY_TEMPORARY = re.compile(r'^\.(.+)\.tmp-[0-9A-Za-z]+(\.\w+)?$')


def temporary_of(entry):
  """The file name whose temporary `entry` is, or None for other names."""
  match = _ANY_TEMPORARY.match(entry)
  return match.group(1) if match else None


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


def commit_file(tmp_path, path):
  """fsyncs the local `tmp_path` and renames it to `path`."""
  _fsync_path(tmp_path, strict=True)
  os.replace(tmp_path, path)
  _fsync_path(os.path.dirname(os.path.abspath(path)))


def remove_quietly(path):
  try:
    os.remove(path)
  except OSError:
    pass


@contextlib.contextmanager
def atomic_path(path, suffix=''):
  """Yields a temporary path to write; it becomes `path` when the block ends.

  If the block raises (or the process dies), `path` is left untouched and
  the temporary file is removed (or left hidden for
  `remove_stale_temporaries`).

  Args:
    path: the file's final path.
    suffix: ends the temporary name (`temporary_name`).
  """
  tmp = temporary_name(path, suffix)
  try:
    yield tmp
    commit_file(tmp, path)
  except BaseException:
    remove_quietly(tmp)
    raise


@contextlib.contextmanager
def atomic_write(path):
  """Yields a binary file whose content replaces `path` when the block ends.

  If the block raises (or the process dies), `path` is left untouched.
  """
  with atomic_path(path) as tmp:
    with open(tmp, 'wb') as f:
      yield f


@contextlib.contextmanager
def atomic_directory(path):
  """Yields a path to create a directory at; it becomes `path` at the end.

  The writer creates the directory (a SavedModel builder insists on that).
  Its files are fsynced before the rename, so a reader finds either no
  `path` or a complete one. `path` must not exist: a directory is never
  renamed over another (that fails unless the old one is empty).

  Args:
    path: the directory's final path (local).
  """
  path = os.path.abspath(path)
  tmp = temporary_name(path)
  try:
    yield tmp
    for directory, _, names in os.walk(tmp):
      for name in names:
        _fsync_path(os.path.join(directory, name), strict=True)
    os.rename(tmp, path)
    _fsync_path(os.path.dirname(path))
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


@contextlib.contextmanager
def scratch_directory(path):
  """Yields a new hidden directory beside `path`, removed when the block ends.

  For writers that name their files themselves: they write into it, then
  move each file into place with `commit_file`, which keeps the move
  atomic (same filesystem) and durable.

  Args:
    path: the final path of what is written (its directory is created).
  """
  path = os.path.abspath(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  scratch = temporary_name(path)
  os.mkdir(scratch)
  try:
    yield scratch
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def write_atomically(path, data):
  """Replaces the file `path` (local or a URL) by `data`, bytes or text."""
  if isinstance(data, str):
    data = data.encode('utf-8')
  if not is_remote(path):
    with atomic_write(path) as f:
      f.write(data)
    return
  # TensorFlow is imported only here: local writes do not need it.
  from core import tf_compat  # noqa: F401  pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tmp = temporary_name(path)
  try:
    with tf.io.gfile.GFile(tmp, 'wb') as f:
      f.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)
  except BaseException:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
    raise


def remove_stale_temporaries(paths):
  """Deletes the temporaries of `paths` that interrupted writes left."""
  by_dir = {}
  for path in paths:
    by_dir.setdefault(os.path.dirname(path) or '.', set()).add(
        os.path.basename(path))
  removed = 0
  for directory, names in by_dir.items():
    if not os.path.isdir(directory):
      continue
    for entry in os.listdir(directory):
      if temporary_of(entry) in names:
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
