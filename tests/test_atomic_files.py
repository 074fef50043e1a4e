"""core/atomic_files.py: a file is replaced whole or not at all.

Local files are fsynced before the rename; paths with a scheme go through
tf.io.gfile. Both ways leave no temporary file when a write fails.
"""


import errno
import os
import stat

import pytest

from core import atomic_files
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf


def _no_room(*unused_args, **unused_kwargs):
  raise OSError(errno.ENOSPC, 'No space left on device')


def test_a_local_file_is_written_then_replaced(tmp_path):
  path = str(tmp_path / 'metrics.json')
  atomic_files.write_atomically(path, '{"a": 1}\n')
  atomic_files.write_atomically(path, b'\x00\x01')  # Again, over it.
  with open(path, 'rb') as f:
    assert f.read() == b'\x00\x01'
  assert os.listdir(str(tmp_path)) == ['metrics.json']
  # The mode any new file gets (not a private temporary's 0600).
  umask = os.umask(0o022)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_the_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
  events = []
  real_fsync, real_replace = os.fsync, os.replace

  def fsync(fd):
    events.append(('fsync', os.path.basename(os.readlink(
        '/proc/self/fd/%d' % fd))))
    real_fsync(fd)

  def replace(source, target):
    events.append(('replace', os.path.basename(target)))
    real_replace(source, target)

  monkeypatch.setattr(os, 'fsync', fsync)
  monkeypatch.setattr(os, 'replace', replace)
  atomic_files.write_atomically(str(tmp_path / 'x.txt'), 'x')
  kinds = [kind for kind, _ in events]
  assert kinds == ['fsync', 'replace', 'fsync'], events
  assert atomic_files.temporary_of(events[0][1]) == 'x.txt'
  assert events[2][1] == tmp_path.name  # Then the directory.


def test_a_failed_rename_keeps_the_old_file_and_no_temporary(tmp_path,
                                                            monkeypatch):
  path = str(tmp_path / 'labels.txt')
  atomic_files.write_atomically(path, 'old')
  monkeypatch.setattr(os, 'replace', _no_room)
  with pytest.raises(OSError) as error:
    atomic_files.write_atomically(path, 'new')
  assert atomic_files.is_disk_full(error.value)
  with open(path) as f:
    assert f.read() == 'old'
  assert os.listdir(str(tmp_path)) == ['labels.txt']


def test_atomic_write_and_atomic_path_commit_only_a_finished_block(tmp_path):
  path = str(tmp_path / 'model.keras')
  with pytest.raises(RuntimeError):
    with atomic_files.atomic_write(path) as f:
      f.write(b'half')
      raise RuntimeError('stopped')
  with pytest.raises(RuntimeError):
    with atomic_files.atomic_path(path, '.keras') as temporary:
      assert temporary.endswith('.keras')
      assert atomic_files.temporary_of(os.path.basename(temporary)) == (
          'model.keras')
      with open(temporary, 'wb') as f:
        f.write(b'half')
      raise RuntimeError('stopped')
  assert os.listdir(str(tmp_path)) == []
  with atomic_files.atomic_path(path, '.keras') as temporary:
    with open(temporary, 'wb') as f:
      f.write(b'whole')
  assert os.listdir(str(tmp_path)) == ['model.keras']


def _write_tree(directory):
  os.makedirs(os.path.join(directory, 'variables'))
  for name in ('saved_model.pb', os.path.join('variables', 'v.index')):
    with open(os.path.join(directory, name), 'w') as f:
      f.write(name)


def test_a_directory_appears_whole_or_not_at_all(tmp_path, monkeypatch):
  path = str(tmp_path / 'export')
  with pytest.raises(RuntimeError):
    with atomic_files.atomic_directory(path) as temporary:
      assert atomic_files.temporary_of(os.path.basename(temporary)) == (
          'export')
      _write_tree(temporary)
      raise RuntimeError('stopped')
  assert os.listdir(str(tmp_path)) == []
  synced = []
  real_fsync = os.fsync
  monkeypatch.setattr(os, 'fsync', lambda fd: (synced.append(
      os.readlink('/proc/self/fd/%d' % fd)), real_fsync(fd)))
  with atomic_files.atomic_directory(path) as temporary:
    _write_tree(temporary)
  assert os.listdir(str(tmp_path)) == ['export']
  assert sorted(os.listdir(path)) == ['saved_model.pb', 'variables']
  # Both files before the rename, then the parent directory.
  names = [os.path.basename(p) for p in synced]
  assert sorted(names[:2]) == ['saved_model.pb', 'v.index']
  assert names[2:] == [tmp_path.name]
  with pytest.raises(OSError):
    with atomic_files.atomic_directory(path) as temporary:
      _write_tree(temporary)  # Never over an existing directory.
  assert os.listdir(str(tmp_path)) == ['export']


def test_a_scratch_directory_is_gone_after_its_files_are_committed(tmp_path):
  prefix = str(tmp_path / 'new' / 'model.ckpt')
  with atomic_files.scratch_directory(prefix) as scratch:
    assert os.path.dirname(scratch) == os.path.dirname(prefix)
    source = os.path.join(scratch, 'model.ckpt.index')
    with open(source, 'w') as f:
      f.write('index')
    atomic_files.commit_file(source, prefix + '.index')
  with pytest.raises(RuntimeError):
    with atomic_files.scratch_directory(prefix) as scratch:
      raise RuntimeError('stopped')
  assert os.listdir(str(tmp_path / 'new')) == ['model.ckpt.index']


def test_stale_temporaries_of_the_named_files_only_are_removed(tmp_path):
  names = ['train-0.tfrecord', 'other']
  for name in names:
    (tmp_path / name).write_text('x')
  stale = os.path.basename(atomic_files.temporary_name('train-0.tfrecord'))
  foreign = os.path.basename(atomic_files.temporary_name('other'))
  for name in (stale, foreign, '.train-0.tfrecord.tmp-notahex!'):
    (tmp_path / name).write_text('x')
  removed = atomic_files.remove_stale_temporaries(
      [str(tmp_path / 'train-0.tfrecord')])
  assert removed == 1
  assert sorted(os.listdir(str(tmp_path))) == sorted(
      names + [foreign, '.train-0.tfrecord.tmp-notahex!'])


def test_disk_full_is_told_apart_from_other_errors():
  assert atomic_files.is_disk_full(OSError(errno.EDQUOT, 'Quota exceeded'))
  assert atomic_files.is_disk_full(
      tf.errors.ResourceExhaustedError(None, None, 'x; No space left on device'))
  assert not atomic_files.is_disk_full(OSError(errno.EACCES, 'Permission'))
  assert not atomic_files.is_disk_full(ValueError('no space left'))


def test_a_url_goes_through_gfile(tmp_path, monkeypatch):
  # A local directory stands in for a bucket: the gfile branch runs as it
  # would for gs://, on both stacks.
  monkeypatch.setattr(atomic_files, 'is_remote', lambda path: True)
  path = str(tmp_path / 'graph.pbtxt')
  atomic_files.write_atomically(path, 'node {}')
  with open(path) as f:
    assert f.read() == 'node {}'

  def failing_rename(*unused_args, **unused_kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, 'No space left')

  monkeypatch.setattr(tf.io.gfile, 'rename', failing_rename)
  monkeypatch.setattr(os, 'replace', _no_room)  # Must not be reached.
  with pytest.raises(tf.errors.ResourceExhaustedError):
    atomic_files.write_atomically(path, 'node { name: "new" }')
  assert os.listdir(str(tmp_path)) == ['graph.pbtxt']
  with open(path) as f:
    assert f.read() == 'node {}'


def test_is_remote():
  assert atomic_files.is_remote('gs://bucket/train/graph.pbtxt')
  assert not atomic_files.is_remote('out/tf1/train/graph.pbtxt')
  assert not atomic_files.is_remote('/tmp/x')
