"""A conversion that runs out of disk stops with one paragraph and leaves no
shard that reads as complete; the same command finishes after space is freed.

Three ways to fill the disk: a writer that fails in-process (fast, exact
control over which shards finish), RLIMIT_FSIZE on the real command
(unprivileged) and a small tmpfs in a private mount namespace (a real
ENOSPC; skipped where user namespaces are not allowed).
"""


import glob
import json
import logging
import os
import resource
import signal
import subprocess
import sys

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_errors
from datasets import dataset_factory
from datasets import example_codecs
from datasets import generate_shapes
from datasets import sharded_writer
from datasets import tfrecord_checks
from tests.train_dir_helpers import can_mount_tmpfs

_SHAPES_FLAGS = ['--dataset_name=shapes', '--shapes_image_size=48',
                 '--shapes_train_per_class=40',
                 '--shapes_validation_per_class=1', '--train_shards=4',
                 '--validation_shards=1', '--num_workers=1']
_TRAIN_EXAMPLES = 40 * len(generate_shapes.CLASS_NAMES)


def _example(item):
  return example_codecs.image_to_tfexample(
      b'x' * 100, b'png', 1, 1, item % 3).SerializeToString()


def _check_nothing_reads_as_complete(directory, dataset_name, split_name):
  """Every shard under a final name is listed, whole and intact."""
  manifest = sharded_writer.read_manifest(directory, dataset_name, split_name)
  assert manifest is not None and not manifest['complete']
  pattern = os.path.join(directory, '%s_%s_*.tfrecord' % (dataset_name,
                                                          split_name))
  for path in glob.glob(pattern):
    info = manifest['shards'].get(os.path.basename(path))
    assert info is not None, 'unlisted shard %s' % path
    assert os.path.getsize(path) == info['bytes']
    assert tfrecord_checks.check_tfrecord_file(path) == info['num_examples']
  assert not [n for n in os.listdir(directory) if '.tmp-' in n]
  return manifest


class _WriterThatFillsTheDisk(object):
  """A TFRecordWriter whose disk is full after `budget` records in total."""
  budget = 0
  real = tf.io.TFRecordWriter

  def __init__(self, path):
    self._writer = self.real(path)
    self._path = path

  def write(self, record):
    if _WriterThatFillsTheDisk.budget <= 0:
      raise tf.errors.ResourceExhaustedError(
          None, None, '%s; No space left on device' % self._path)
    _WriterThatFillsTheDisk.budget -= 1
    self._writer.write(record)

  def __enter__(self):
    return self

  def __exit__(self, *unused):
    self._writer.close()


def test_full_disk_keeps_finished_shards_and_resumes(tmp_path, monkeypatch):
  directory = str(tmp_path / 'out')
  items = list(range(40))
  monkeypatch.setattr(tf.io, 'TFRecordWriter', _WriterThatFillsTheDisk)
  _WriterThatFillsTheDisk.budget = 25  # Shards of 10: two and a half fit.
  with pytest.raises(dataset_errors.DiskFullError) as error:
    sharded_writer.write_split(directory, 'toy', 'train', items, _example, 4,
                               3, num_workers=1)
  message = str(error.value)
  assert directory in message and 'No space left on device' in message
  assert 'Free some space' in message and 'run the same command' in message
  manifest = _check_nothing_reads_as_complete(directory, 'toy', 'train')
  kept = sorted(manifest['shards'])
  assert len(kept) == 2
  inodes = {name: os.stat(os.path.join(directory, name)).st_ino
            for name in kept}

  monkeypatch.setattr(tf.io, 'TFRecordWriter', _WriterThatFillsTheDisk.real)
  manifest = sharded_writer.write_split(directory, 'toy', 'train', items,
                                        _example, 4, 3, num_workers=1)
  assert manifest['complete'] and manifest['num_examples'] == 40
  # The finished shards were kept, not written again.
  for name, inode in inodes.items():
    assert os.stat(os.path.join(directory, name)).st_ino == inode


def _convert_command(dataset_dir):
  return [sys.executable,
          os.path.join(os.path.dirname(os.path.dirname(
              os.path.abspath(__file__))), 'download_and_convert_data.py'),
          '--dataset_dir=%s' % dataset_dir] + _SHAPES_FLAGS


def _check_one_paragraph(result, directory, reason):
  output = result.stdout + result.stderr
  assert result.returncode == 1, output[-3000:]
  assert 'Traceback' not in output, output[-3000:]
  message = output[output.index('download_and_convert_data.py: error:'):]
  message = ' '.join(message.split())
  assert directory in message and reason in message.lower()
  assert 'Free some space' in message


def _rerun_completes(directory, caplog):
  """Reruns the conversion of _SHAPES_FLAGS here; returns what it logged.

  In this process (the library call the command makes with those flags):
  the failing runs above are the command line's part.
  """
  caplog.clear()
  with caplog.at_level(logging.INFO):
    generate_shapes.run(directory, image_size=48, train_per_class=40,
                        validation_per_class=1, seed=0, train_shards=4,
                        validation_shards=1, num_workers=1)
  dataset = dataset_factory.get_dataset('shapes', 'train', directory)
  assert dataset.num_samples == _TRAIN_EXAMPLES
  for path in glob.glob(os.path.join(directory, 'shapes_*.tfrecord')):
    tfrecord_checks.check_tfrecord_file(path)
  return caplog.text


_FILE_SIZE_LIMIT = 20000  # Bytes; a training shard is about 60 kB.


def _limit_file_size():
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG.
  resource.setrlimit(resource.RLIMIT_FSIZE,
                     (_FILE_SIZE_LIMIT, _FILE_SIZE_LIMIT))


def test_file_size_limit_stops_conversion_in_one_paragraph(tmp_path,
                                                           script_env,
                                                           caplog):
  directory = str(tmp_path / 'shapes')
  env = dict(script_env, PYTHONDONTWRITEBYTECODE='1')
  result = subprocess.run(_convert_command(directory), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=env, preexec_fn=_limit_file_size, timeout=300)
  _check_one_paragraph(result, directory, 'file too large')
  _check_nothing_reads_as_complete(directory, 'shapes', 'train')
  with pytest.raises(dataset_errors.DatasetNotFoundError,
                     match='did not finish'):
    dataset_factory.get_dataset('shapes', 'train', directory)
  _rerun_completes(directory, caplog)


def test_no_space_left_stops_conversion_and_rerun_finishes(tmp_path,
                                                           script_env,
                                                           caplog):
  if not can_mount_tmpfs(tmp_path):
    pytest.skip('cannot mount a tmpfs (no user namespaces); the '
                'RLIMIT_FSIZE test covers the same path')
  directory = str(tmp_path / 'shapes')
  after = str(tmp_path / 'after')
  os.makedirs(directory)
  # Room for about two of the four training shards. The tmpfs lives only in
  # the namespace, so its content is copied out before it goes.
  script = ('dir="$1"; out="$2"; shift 2; '
            'mount -t tmpfs -o size=140k none "$dir" || exit 99; '
            '"$@"; status=$?; mkdir -p "$out"; cp -a "$dir"/. "$out"/; '
            'exit $status')
  result = subprocess.run(
      ['unshare', '-rm', 'sh', '-c', script, 'sh', directory, after] +
      _convert_command(directory), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, env=script_env,
      timeout=300)
  assert result.returncode != 99, result.stderr[-2000:]
  _check_one_paragraph(result, directory, 'no space left on device')
  manifest = _check_nothing_reads_as_complete(after, 'shapes', 'train')
  kept = sorted(manifest['shards'])
  # "Freeing space": the same command on a disk with room, in the copy.
  rerun_log = _rerun_completes(after, caplog)
  if kept:
    assert 'resuming, %d of 4 shards already complete' % len(kept) in (
        rerun_log)
  with open(sharded_writer.manifest_path(after, 'shapes', 'train')) as f:
    assert json.load(f)['complete']
