"""Resumable downloads against a local HTTP server started by each test.

The server serves one payload and, by its mode, honours Range requests,
ignores them (answers 200 with the whole file), or closes the connection
after a few bytes of each answer while announcing the full length.
"""

import hashlib
import http.server
import os
import re
import threading

import pytest

from datasets import convert_visualwakewords as vww
from datasets import dataset_errors
from datasets import downloads

PAYLOAD = bytes(bytearray(range(256))) * 40          # 10,240 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
  """Serves PAYLOAD; the server's attributes choose the behaviour."""

  def log_message(self, *unused):  # Keeps pytest's output clean.
    pass

  def do_GET(self):  # pylint: disable=invalid-name
    server = self.server
    server.ranges.append(self.headers.get('Range'))
    start = 0
    match = re.match(r'bytes=(\d+)-$', self.headers.get('Range') or '')
    if match and server.honour_range:
      start = int(match.group(1))
      if start >= len(PAYLOAD):
        self.send_response(416)
        self.send_header('Content-Range', 'bytes */%d' % len(PAYLOAD))
        self.send_header('Content-Length', '0')
        self.end_headers()
        return
      self.send_response(206)
      self.send_header('Content-Range', 'bytes %d-%d/%d' % (
          start, len(PAYLOAD) - 1, len(PAYLOAD)))
    else:
      self.send_response(200)
    body = PAYLOAD[start:]
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    if server.drop_after is not None and (
        server.drops_left is None or server.drops_left > 0):
      if server.drops_left is not None:
        server.drops_left -= 1
      body = body[:server.drop_after]   # Then the connection closes.
      self.close_connection = True
    # Counted before the write: the client may read the last byte and the
    # test check the count before this thread runs again.
    server.bytes_sent += len(body)
    self.wfile.write(body)


@pytest.fixture
def serve():
  """serve(honour_range=True, drop_after=None, drops=None) -> URL."""
  servers = []

  def start(honour_range=True, drop_after=None, drops=None):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    server.honour_range = honour_range
    server.drop_after, server.drops_left = drop_after, drops
    server.ranges, server.bytes_sent = [], 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return server, 'http://127.0.0.1:%d/data.bin' % server.server_port

  yield start
  for server in servers:
    server.shutdown()
    server.server_close()


def sha256(data):
  return 'sha256:' + hashlib.sha256(data).hexdigest()


def read(path):
  with open(path, 'rb') as f:
    return f.read()


def test_fresh_download_is_complete_and_leaves_no_partial(serve, tmp_path):
  server, url = serve()
  dest = str(tmp_path / 'data.bin')
  downloads.maybe_download(url, dest, sha256(PAYLOAD))
  assert read(dest) == PAYLOAD
  assert os.listdir(str(tmp_path)) == ['data.bin']
  assert server.ranges == [None]
  # Run again: the file is on disk, nothing is fetched.
  downloads.maybe_download(url, dest, sha256(PAYLOAD))
  assert server.ranges == [None]


def test_partial_file_is_resumed_with_a_range_request(serve, tmp_path):
  server, url = serve()
  dest = str(tmp_path / 'data.bin')
  with open(downloads.partial_path(dest), 'wb') as f:
    f.write(PAYLOAD[:3000])
  downloads.maybe_download(url, dest, sha256(PAYLOAD))
  assert read(dest) == PAYLOAD
  assert server.ranges == ['bytes=3000-']
  assert server.bytes_sent == len(PAYLOAD) - 3000
  assert not os.path.exists(downloads.partial_path(dest))


def test_server_ignoring_range_starts_over(serve, tmp_path):
  server, url = serve(honour_range=False)
  dest = str(tmp_path / 'data.bin')
  with open(downloads.partial_path(dest), 'wb') as f:
    f.write(b'x' * 3000)     # Would corrupt the file if appended to.
  downloads.maybe_download(url, dest, sha256(PAYLOAD))
  assert read(dest) == PAYLOAD
  assert server.ranges == ['bytes=3000-']
  assert server.bytes_sent == len(PAYLOAD)


def test_dropped_connection_resumes_within_the_same_call(serve, tmp_path):
  server, url = serve(drop_after=4000, drops=1)
  dest = str(tmp_path / 'data.bin')
  downloads.download(url, dest, chunk_size=1024)
  assert read(dest) == PAYLOAD
  assert server.ranges == [None, 'bytes=4000-']


def test_interrupted_download_never_reads_as_complete(serve, tmp_path):
  _, url = serve(drop_after=1000)            # Every answer is cut short.
  dest = str(tmp_path / 'data.bin')
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    downloads.maybe_download(url, dest)     # No checksum to catch it.
  assert not os.path.exists(dest)
  partial = downloads.partial_path(dest)
  kept = read(partial)
  assert kept == PAYLOAD[:len(kept)] and 0 < len(kept) < len(PAYLOAD)
  message = str(info.value)
  assert '%d bytes fetched so far are kept in %s' % (len(kept), partial) in (
      message)
  assert 'the connection closed after' in message
  # The same call against a working server resumes from the kept bytes.
  server, url = serve()
  downloads.maybe_download(url, dest, sha256(PAYLOAD))
  assert read(dest) == PAYLOAD
  assert server.ranges == ['bytes=%d-' % len(kept)]
  assert os.listdir(str(tmp_path)) == ['data.bin']


def test_complete_partial_file_is_kept_on_range_not_satisfiable(
    serve, tmp_path):
  server, url = serve()
  dest = str(tmp_path / 'data.bin')
  with open(downloads.partial_path(dest), 'wb') as f:
    f.write(PAYLOAD)         # Killed after the last byte, before the rename.
  downloads.maybe_download(url, dest, sha256(PAYLOAD))
  assert read(dest) == PAYLOAD
  assert server.ranges == ['bytes=%d-' % len(PAYLOAD)]
  assert server.bytes_sent == 0


def test_wrong_digest_after_download_deletes_it(serve, tmp_path):
  _, url = serve()
  dest = str(tmp_path / 'data.bin')
  with pytest.raises(dataset_errors.ChecksumError) as info:
    downloads.maybe_download(url, dest, sha256(b'another file'))
  assert os.listdir(str(tmp_path)) == []     # No resume from a bad file.
  message = str(info.value)
  assert url in message and 'It was deleted' in message
  assert 'checksum=none' in message


def test_unreachable_url_leaves_nothing_behind(tmp_path):
  dest = str(tmp_path / 'sub' / 'data.bin')
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    downloads.maybe_download('http://127.0.0.1:9/data.bin', dest)
  assert os.listdir(str(tmp_path / 'sub')) == []
  assert 'archive_path' in str(info.value)
  assert 'kept in' not in str(info.value)


def test_file_url_downloads_whole_file(tmp_path):
  source = tmp_path / 'source.bin'
  source.write_bytes(PAYLOAD)
  dest = str(tmp_path / 'out' / 'data.bin')
  downloads.maybe_download(source.as_uri(), dest, sha256(PAYLOAD))
  assert read(dest) == PAYLOAD


def test_visual_wake_words_message_says_the_download_resumes(serve, tmp_path):
  _, url = serve(drop_after=1000)
  coco_dir = str(tmp_path / 'coco')
  os.makedirs(coco_dir)
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    vww.ensure_coco(coco_dir, {'annotations': url})
  archive = os.path.join(coco_dir, 'data.bin')
  assert 'kept in %s' % downloads.partial_path(archive) in str(info.value)
  assert not os.path.exists(archive)
