"""Resuming past unreadable checkpoints, leftovers of killed saves, fsync."""


import os
import threading

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from tests.train_dir_helpers import record_fsyncs
from training import checkpoint_recovery as cr

DATA = '.data-00000-of-00001'


def _save_checkpoints(train_dir, steps, size=1000):
  """Saves one checkpoint per step, as the trainer's unsharded saver does."""
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    weights = tf.get_variable('w', [size])
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      saver = tf.train.Saver(max_to_keep=10)
      for value in steps:
        session.run(step.assign(value))
        saver.save(session, os.path.join(train_dir, 'model.ckpt'),
                   global_step=value)
  del weights
  return [os.path.join(train_dir, 'model.ckpt-%d' % s) for s in steps]


def _truncate(path, size):
  with open(path, 'r+b') as f:
    f.truncate(size)


def _flip_last_byte(path):
  with open(path, 'r+b') as f:
    f.seek(-1, os.SEEK_END)
    byte = f.read(1)
    f.seek(-1, os.SEEK_END)
    f.write(bytes(bytearray([byte[0] ^ 0xff])))


def _remove_all(prefix):
  for path in tf.gfile.Glob(prefix + '.*'):
    os.remove(path)


DAMAGES = {
    'truncated_data': lambda p: _truncate(p + DATA, 100),
    'truncated_index': lambda p: _truncate(p + '.index', 10),
    'empty_data': lambda p: _truncate(p + DATA, 0),
    'empty_index': lambda p: _truncate(p + '.index', 0),
    'flipped_data': lambda p: _flip_last_byte(p + DATA),
    'missing_files': _remove_all,
}


def _read_bytes(path):
  with open(path, 'rb') as f:
    return f.read()


@pytest.mark.parametrize('damage', sorted(DAMAGES))
def test_the_newest_readable_checkpoint_is_found_past_a_damaged_one(
    tmp_path, damage):
  train_dir = str(tmp_path)
  paths = _save_checkpoints(train_dir, [1, 2, 3])
  assert cr.unreadable_reason(paths[2]) is None
  DAMAGES[damage](paths[2])
  damaged_files = dict((p, _read_bytes(p))
                       for p in tf.gfile.Glob(paths[2] + '.*'))
  recovery = cr.find_resumable_checkpoint(train_dir)
  assert recovery.checkpoint == paths[1]
  assert [p for p, _ in recovery.skipped] == [paths[2]]
  print(damage, recovery.skipped[0][1])
  assert recovery.skipped[0][1]

  aside = cr.set_aside_unreadable(train_dir, recovery)
  # Nothing is deleted: the damaged files moved, byte for byte.
  for path, content in damaged_files.items():
    assert not os.path.exists(path)
    assert _read_bytes(os.path.join(aside, os.path.basename(path))) == content
  assert tf.train.latest_checkpoint(train_dir) == paths[1]
  state = tf.train.get_checkpoint_state(train_dir)
  assert list(state.all_model_checkpoint_paths) == paths[:2]
  assert os.path.exists(os.path.join(aside, cr.STATE_FILE))


def test_a_readable_newest_checkpoint_changes_nothing(tmp_path):
  train_dir = str(tmp_path)
  paths = _save_checkpoints(train_dir, [1, 2])
  before = sorted(os.listdir(train_dir))
  recovery = cr.find_resumable_checkpoint(train_dir)
  assert recovery == cr.Recovery(paths[1], [])
  assert cr.set_aside_unreadable(train_dir, recovery) is None
  assert sorted(os.listdir(train_dir)) == before


def test_an_empty_directory_has_nothing_to_resume(tmp_path):
  assert cr.find_resumable_checkpoint(str(tmp_path)) == cr.Recovery(None, [])


def test_no_readable_checkpoint_is_an_error_naming_each(tmp_path):
  paths = _save_checkpoints(str(tmp_path), [1, 2])
  _truncate(paths[0] + DATA, 0)
  _truncate(paths[1] + '.index', 3)
  with pytest.raises(cr.NoReadableCheckpointError) as error:
    cr.find_resumable_checkpoint(str(tmp_path))
  assert [p for p, _ in error.value.skipped] == paths[::-1]


@pytest.mark.parametrize('train_dir', ['out/train', 'train', './train'])
def test_a_relative_train_dir_resumes_and_sets_aside_from_the_cwd(
    tmp_path, monkeypatch, train_dir):
  """Relative names are taken from the working directory, once: the state
  file's entries were once joined onto train_dir a second time."""
  monkeypatch.chdir(str(tmp_path))
  os.makedirs(train_dir)
  paths = _save_checkpoints(train_dir, [1, 2, 3])
  assert cr.find_resumable_checkpoint(train_dir) == cr.Recovery(paths[2], [])
  _truncate(paths[2] + '.index', 0)
  recovery = cr.find_resumable_checkpoint(train_dir)
  assert recovery.checkpoint == paths[1]
  [(skipped, reason)] = recovery.skipped
  assert skipped == paths[2]
  # Messages name the file by its full path, not by its base name alone.
  assert reason == '%s.index is empty (0 bytes)' % os.path.join(
      str(tmp_path), os.path.normpath(paths[2]))
  cr.set_aside_unreadable(train_dir, recovery)
  assert os.path.normpath(tf.train.latest_checkpoint(train_dir)) == (
      os.path.normpath(paths[1]))
  assert cr.find_resumable_checkpoint(train_dir).checkpoint == paths[1]


def test_the_error_names_each_unreadable_checkpoint_by_its_full_path(
    tmp_path, monkeypatch):
  monkeypatch.chdir(str(tmp_path))
  paths = _save_checkpoints('train', [1])
  _remove_all(paths[0])
  with pytest.raises(cr.NoReadableCheckpointError) as error:
    cr.find_resumable_checkpoint('train')
  assert os.path.join(str(tmp_path), 'train', 'model.ckpt-1.index') in str(
      error.value)


def test_a_damaged_state_file_falls_back_to_the_files(tmp_path):
  train_dir = str(tmp_path)
  paths = _save_checkpoints(train_dir, [1, 2, 10])
  with open(os.path.join(train_dir, cr.STATE_FILE), 'w') as f:
    f.write('\x00garbage{')
  _truncate(paths[2] + DATA, 1)
  recovery = cr.find_resumable_checkpoint(train_dir)
  assert recovery.checkpoint == paths[1]
  cr.set_aside_unreadable(train_dir, recovery)
  assert tf.train.latest_checkpoint(train_dir) == paths[1]


def test_a_damaged_tensor_is_found_by_reading_every_tensor(tmp_path):
  """The index alone looks fine; only reading the data finds the damage."""
  path = _save_checkpoints(str(tmp_path), [1], size=100000)[0]
  _flip_last_byte(path + DATA)
  tf.train.NewCheckpointReader(path).get_variable_to_shape_map()
  assert 'cannot be read' in cr.unreadable_reason(path)


LEFTOVERS = [
    'model.ckpt-7.index.tempstate12345678901234567890',
    'model.ckpt-7.data-00000-of-00001.tempstate987',
    'checkpoint.tmp0123456789abcdef0123456789abcdef',
    'model.ckpt-7.meta.tmpfedcba9876543210fedcba9876543210',
    'graph.pbtxt.tmp00000000000000000000000000000000',
]
KEPT = [
    'model.ckpt-7.index', 'model.ckpt-7.data-00000-of-00001',
    'model.ckpt-7.meta', 'checkpoint', 'graph.pbtxt', 'notes.tempstate.txt',
    'checkpoint.tmp-not-hex', 'events.out.tfevents.1.host',
    'my.index.tempstate',
]


def test_only_leftover_temp_files_are_removed(tmp_path):
  train_dir = str(tmp_path)
  sub = os.path.join(train_dir, 'eval')
  os.makedirs(sub)
  for name in LEFTOVERS + KEPT:
    open(os.path.join(train_dir, name), 'w').close()
  open(os.path.join(sub, LEFTOVERS[0]), 'w').close()
  removed = cr.remove_leftover_temp_files(train_dir)
  assert removed == sorted(LEFTOVERS)
  assert sorted(os.listdir(train_dir)) == sorted(KEPT + ['eval'])
  assert os.listdir(sub) == [LEFTOVERS[0]]  # Not below train_dir.


def test_the_savers_own_temporary_names_are_recognized(tmp_path):
  """Watches a real save and checks every transient name it writes."""
  train_dir = str(tmp_path)
  seen = set()
  done = threading.Event()

  def watch():
    while not done.is_set():
      seen.update(os.listdir(train_dir))

  watcher = threading.Thread(target=watch)
  watcher.start()
  try:
    _save_checkpoints(train_dir, [1, 2, 3], size=2 * 1000 * 1000)
  finally:
    done.set()
    watcher.join()
  transient = seen - set(os.listdir(train_dir))
  transient = set(n for n in transient if not n.startswith('model.ckpt-'))
  temp = [n for n in seen - set(os.listdir(train_dir))
          if 'tempstate' in n or '.tmp' in n]
  assert temp, sorted(seen)
  print(sorted(temp))
  for name in temp:
    assert any(p.match(name) for p in cr._LEFTOVER_PATTERNS), name
  assert not transient - set(temp), transient


def test_fsync_checkpoint_flushes_files_state_and_directory(tmp_path,
                                                             monkeypatch):
  train_dir = str(tmp_path)
  path = _save_checkpoints(train_dir, [1])[0]
  synced = record_fsyncs(monkeypatch)
  cr.FsyncListener(train_dir).after_save(None, 1)
  names = sorted(os.path.relpath(p, train_dir) for p in synced)
  assert names == sorted(['.', 'checkpoint', 'model.ckpt-1' + DATA,
                          'model.ckpt-1.index', 'model.ckpt-1.meta'])
  np.testing.assert_array_equal(
      tf.train.load_checkpoint(path).get_tensor('global_step'), 1)
