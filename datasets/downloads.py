"""Fetching source archives and checking their digests."""


import hashlib
import http.client
import os
import re
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


class TransferInterrupted(IOError):
  """The connection failed or closed before the whole file arrived."""


def partial_path(dest_path):
  """Where the bytes of an unfinished download of `dest_path` are kept.

  Hidden and not ending in the file's own suffix, so nothing that looks for
  the finished file (or globs its folder) takes it for complete.
  """
  directory, name = os.path.split(dest_path)
  return os.path.join(directory, '.%s.partial' % name)


def _size(path):
  try:
    return os.path.getsize(path)
  except OSError:
    return 0


def _range_start_and_total(content_range):
  """(first byte, total size or None) of `bytes a-b/total`; None if unreadable."""
  match = re.match(r'\s*bytes\s+(\d+)-\d+/(\d+|\*)', content_range or '')
  if not match:
    return None
  total = match.group(2)
  return int(match.group(1)), None if total == '*' else int(total)


def _open(url, have):
  """Opens `url` asking for the bytes from `have` on.

  Returns:
    (response or None, first byte the response holds): None when a 416
    answer says the `have` bytes already are the whole file.
  """
  import urllib.error  # pylint: disable=g-import-not-at-top
  import urllib.request  # pylint: disable=g-import-not-at-top
  headers = {'Range': 'bytes=%d-' % have} if have else {}
  try:
    response = urllib.request.urlopen(urllib.request.Request(url,
                                                             headers=headers))
  except urllib.error.HTTPError as e:
    if e.code != 416 or not have:
      raise
    # Range Not Satisfiable: `bytes */<size>` says whether we have it all.
    total = (e.headers.get('Content-Range') or '').rpartition('/')[2]
    if total.strip() == str(have):
      return None, have
    raise TransferInterrupted(
        'the server refused to resume at byte %d (HTTP 416, %s)' %
        (have, e.headers.get('Content-Range')))
  except (IOError, OSError) as e:
    if have:  # It answered before: a network failure, worth another try.
      raise TransferInterrupted(str(e))
    raise
  status = getattr(response, 'status', None) or response.getcode()
  if have and status == 206:
    start_total = _range_start_and_total(response.headers.get('Content-Range'))
    if start_total and start_total[0] == have:
      return response, have
  if have:
    # A server (or file:// URL) that ignores Range sends the whole file.
    logging.info('The server sent %s from its start; %.1f MB fetched before '
                 'are discarded.', url, have / 1e6)
  return response, 0


def _fetch_into(url, partial, chunk_size):
  """Adds the rest of `url` to `partial`, resuming after its bytes.

  Raises:
    TransferInterrupted: the transfer stopped early; `partial` keeps what
      arrived, for the next call to resume from.
  """
  response, start = _open(url, _size(partial))
  if response is None:
    return
  length = response.headers.get('Content-Length')
  total = start + int(length) if length else None
  done, last_report = start, time.time()
  name = os.path.basename(partial)[1:-len('.partial')]
  with response, open(partial, 'ab' if start else 'wb') as out:
    while True:
      try:
        chunk = response.read(chunk_size)
      except (IOError, OSError, http.client.HTTPException) as e:
        # HTTPException (IncompleteRead of a chunked body) is no OSError.
        raise TransferInterrupted('%r after %d bytes' % (e, done))
      if not chunk:
        break
      out.write(chunk)
      done += len(chunk)
      if time.time() - last_report > 5:
        last_report = time.time()
        logging.info('  %s: %.1f MB%s', name, done / 1e6,
                     ' of %.1f MB (%.0f%%)' % (total / 1e6, 100. * done / total)
                     if total else '')
  if total is not None and done != total:
    # urllib returns a short body without an error when the peer closes.
    raise TransferInterrupted('the connection closed after %d of %d bytes'
                              % (done, total))


def download(url, dest_path, chunk_size=1 << 20, attempts=5, checksum=None):
  """Downloads `url` to `dest_path`, resuming an unfinished earlier download.

  The bytes go to `partial_path(dest_path)` and are renamed to `dest_path`
  only once complete (and verified, given `checksum`). A transfer that
  stops early is resumed with an HTTP Range request, here up to `attempts`
  times in a row while each try brings more bytes, and by a later call after
  that; a server that ignores Range makes it start over.

  Args:
    url: source URL.
    dest_path: where the file ends up; it appears only once complete.
    chunk_size: bytes read at a time.
    attempts: tries within this call.
    checksum: `algorithm:hexdigest` the finished file must have, or None.

  Returns:
    dest_path.

  Raises:
    IOError: the transfer failed (the partial file stays for a resume).
    ChecksumError: the finished file has another digest (it is deleted).
  """
  partial = partial_path(dest_path)
  logging.info('Downloading %s to %s%s', url, dest_path,
               ' (resuming after %.1f MB)' % (_size(partial) / 1e6)
               if _size(partial) else '')
  start = time.time()
  for attempt in range(1, attempts + 1):
    before = _size(partial)
    try:
      _fetch_into(url, partial, chunk_size)
      break
    except TransferInterrupted as e:
      if attempt == attempts or _size(partial) <= before:
        raise
      logging.warning('Download of %s interrupted (%s); resuming after %.1f '
                      'MB.', url, e, _size(partial) / 1e6)
  if checksum:
    _check_download(partial, checksum, url, dest_path)
  atomic_files.commit_file(partial, dest_path)
  logging.info('Downloaded %s (%.1f MB in %.0f s).', dest_path,
               _size(dest_path) / 1e6, time.time() - start)
  return dest_path


def _check_download(partial, checksum, url, dest_path):
  """Deletes a finished download with the wrong digest, which a resume
  could never repair, and says so."""
  algorithm, expected = parse_checksum(checksum)
  actual = file_digest(partial, algorithm)
  if actual != expected:
    atomic_files.remove_quietly(partial)
    raise dataset_errors.ChecksumError(
        'The file downloaded from %s has %s %s, expected %s: the server sent '
        'another file (or it changed between two parts of a resumed '
        'download). It was deleted; run the command again to download it '
        'anew, or put a good copy at %s (%s skips the check for an archive '
        'you trust).' % (url, algorithm, actual, expected, dest_path,
                         dataset_errors.ref('checksum', 'none')))
  logging.info('Checksum OK for %s (%s %s).', dest_path, algorithm, actual)


def resume_note(dest_path):
  """A sentence for error messages: what an unfinished download kept."""
  have = _size(partial_path(dest_path))
  if not have:
    return ''
  return (' The %d bytes fetched so far are kept in %s, and the same '
          'command resumes from there.' % (have, partial_path(dest_path)))


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
  if os.path.exists(dest_path):
    if checksum:
      verify_checksum(dest_path, checksum)
    return dest_path
  os.makedirs(os.path.dirname(os.path.abspath(dest_path)), exist_ok=True)
  try:
    download(url, dest_path, checksum=checksum)
  except (IOError, OSError) as e:
    raise dataset_errors.DatasetNotFoundError(
        '%s is not on disk and downloading it from %s failed (%s).%s To work '
        'offline, copy the file there yourself (or pass its path with %s) '
        'and run the command again.' %
        (dest_path, url, e, resume_note(dest_path),
         dataset_errors.ref('archive_path')))
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
