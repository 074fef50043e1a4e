"""Opening untrusted downloads safely: tar members and pickles.

Archives are checked member by member so nothing lands outside the target
directory, and pickles may only rebuild numpy arrays and plain values.
"""


import os
import pickle
import tarfile

from datasets import dataset_errors


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
    dataset_errors.UnsafeArchiveError: the member is unsafe.
  """
  def reject(reason):
    raise dataset_errors.UnsafeArchiveError(
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
    dataset_errors.UnsafeArchiveError: a member escapes `target_dir`.
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
    raise dataset_errors.DatasetError(
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
    dataset_errors.UnsafeArchiveError: a member would escape an extraction directory.
    DatasetError: the file is not a readable tar archive.
  """
  try:
    tar = tarfile.open(archive_path, 'r:*')
    members = tar.getmembers()
  except (tarfile.TarError, EOFError, IOError) as e:
    raise dataset_errors.DatasetError(
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
    raise dataset_errors.UnsafePickleError('%s.%s' % (module, name))


def safe_pickle_load(fileobj, source_name, encoding='bytes'):
  """Loads a pickle that may only contain numpy arrays and basic types.

  Args:
    fileobj: binary file object.
    source_name: name used in error messages.
    encoding: how Python 2 `str` objects are decoded (as in pickle.load).

  Returns:
    The unpickled object.

  Raises:
    dataset_errors.UnsafePickleError: the pickle references any other callable; nothing it
      asked for was executed.
  """
  try:
    return _ArrayOnlyUnpickler(fileobj, encoding=encoding).load()
  except dataset_errors.UnsafePickleError as e:
    raise dataset_errors.UnsafePickleError(
        'Refusing to load %s: the pickle asks for %s, which is not a numpy '
        'array or plain value (a crafted pickle can run code this way). Use '
        'the official archive (the binary CIFAR-10 archive needs no pickles).'
        % (source_name, e))
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
    raise dataset_errors.DatasetError('%s is not a readable pickle (%s).' % (source_name, e))
