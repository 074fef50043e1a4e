"""Fetching source archives and checking their digests."""


import hashlib
import os
import time

from absl import logging

from core import atomic_files
from datasets import dataset_errors
from datasets import safe_unpack

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
    raise dataset_errors.ChecksumError(
        'Checksum mismatch for %s: expected %s %s, got %s. The file is '
        'incomplete, corrupt or not the official release. Delete it and run '
        'the command again to download a fresh copy, or pass a good copy with '
        '%s (%s skips the check for an archive you trust).' %
        (path, algorithm, expected, actual, dataset_errors.ref('archive_path'),
         dataset_errors.ref('checksum', 'none')))
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
  with atomic_files.atomic_write(dest_path) as out:
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
      raise dataset_errors.DatasetNotFoundError(
          '%s is not on disk and downloading it from %s failed (%s). Copy the '
          'file there yourself (or pass its path with %s) and run '
          'the command again.' %
          (dest_path, url, e, dataset_errors.ref('archive_path')))
  if checksum:
    verify_checksum(dest_path, checksum)
  return dest_path


def download_and_uncompress_tarball(tarball_url, dataset_dir):
  """Fetches a tar archive into `dataset_dir` (unless there) and unpacks it.

  slim's helper of the same name; here the archive is downloaded atomically
  and unpacked with the member checks of `safe_unpack.safe_extract`. No
  digest is checked: use `maybe_download` with a checksum, then
  `safe_unpack.safe_extract`, when one is published.

  Args:
    tarball_url: address of the archive; its last path part names the file.
    dataset_dir: where the archive is stored and unpacked.

  Returns:
    The names of the unpacked members.
  """
  archive = os.path.join(dataset_dir, tarball_url.rstrip('/').split('/')[-1])
  maybe_download(tarball_url, archive)
  return safe_unpack.safe_extract(archive, dataset_dir)
