"""A training start that fails leaves its directory as it found it."""

import os

import pytest

from training import train_dir_cleanup


def _fail_after_writing(train_dir, names, armed=True):
  with pytest.raises(RuntimeError):
    with train_dir_cleanup.undo_failed_start(train_dir) as undo:
      undo.armed = armed
      os.makedirs(train_dir, exist_ok=True)
      for name in names:
        with open(os.path.join(train_dir, name), 'w') as f:
          f.write('x')
      raise RuntimeError('bad flag')


def test_a_created_directory_and_its_new_parents_are_removed(tmp_path):
  train_dir = str(tmp_path / 'out' / 'run' / 'train')
  _fail_after_writing(train_dir, ['training_record.json', 'graph.pbtxt'])
  assert os.listdir(str(tmp_path)) == []


def test_only_new_entries_go_from_a_directory_that_existed(tmp_path):
  train_dir = tmp_path / 'train'
  train_dir.mkdir()
  (train_dir / 'notes.txt').write_text(u'mine')
  _fail_after_writing(str(train_dir), ['training_record.json'])
  assert sorted(os.listdir(str(train_dir))) == ['notes.txt']
  assert (train_dir / 'notes.txt').read_text() == u'mine'


def test_a_run_that_saved_a_checkpoint_keeps_everything(tmp_path):
  train_dir = str(tmp_path / 'train')
  _fail_after_writing(train_dir, ['training_record.json', 'checkpoint',
                                  'model.ckpt-0.index'])
  assert sorted(os.listdir(train_dir)) == [
      'checkpoint', 'model.ckpt-0.index', 'training_record.json']


def test_nothing_is_removed_before_the_run_holds_the_directory(tmp_path):
  """A trainer refused by another one's lock must not touch its files."""
  train_dir = str(tmp_path / 'train')
  _fail_after_writing(train_dir, ['training_record.json'], armed=False)
  assert os.listdir(train_dir) == ['training_record.json']


def test_a_successful_run_keeps_what_it_wrote(tmp_path):
  train_dir = str(tmp_path / 'train')
  with train_dir_cleanup.undo_failed_start(train_dir) as undo:
    undo.armed = True
    os.makedirs(train_dir)
    open(os.path.join(train_dir, 'training_record.json'), 'w').close()
  assert os.listdir(train_dir) == ['training_record.json']


def test_a_relative_directory_is_taken_from_the_working_directory(
    tmp_path, monkeypatch):
  monkeypatch.chdir(str(tmp_path))
  (tmp_path / 'out').mkdir()
  _fail_after_writing(os.path.join('out', 'train'), ['training_record.json'])
  assert os.listdir(str(tmp_path)) == ['out']
  assert os.listdir(str(tmp_path / 'out')) == []
