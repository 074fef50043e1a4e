"""The trainer's checkpoint saving: the same files as TensorFlow's hook and
saver, from one conversion of the graph; the weight check per device."""


import errno
import glob
import os
import re
import types

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import control_flow_pb2

from training import checkpoint_saving
from training import hooks
from training import trainer


def _train_tiny_model(train_dir, steps, saving=checkpoint_saving):
  """Runs `steps` steps of a two-variable model, saving after every one
  with `saving`'s Saver and CheckpointSaverHook (tf.train: TensorFlow's)."""
  weight = tf.get_variable('weight', [3, 2], tf.float32,
                           tf.ones_initializer())
  step = tf.train.get_or_create_global_step()
  loss = tf.reduce_sum(tf.square(weight))
  train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss, step)
  saver = saving.Saver()
  hook = saving.CheckpointSaverHook(
      train_dir, save_steps=1, scaffold=tf.train.Scaffold(saver=saver))
  with tf.train.MonitoredSession(hooks=[hook]) as session:
    for _ in range(steps):
      session.run(train_op)
  return tf.get_default_graph(), saver


def _assert_same_meta_graph(written, expected):
  # Field by field: on TF 1.15 two exports of one graph already differ as
  # whole messages, though every field is equal.
  assert written.graph_def == expected.graph_def
  assert written.saver_def == expected.saver_def
  assert written.meta_info_def == expected.meta_info_def
  assert sorted(written.collection_def) == sorted(expected.collection_def)
  for key in expected.collection_def:
    if key == 'cond_context':  # Holds maps, serialized in no fixed order.
      parse = control_flow_pb2.CondContextDef.FromString
      assert ([parse(v) for v in written.collection_def[key].bytes_list.value]
              == [parse(v)
                  for v in expected.collection_def[key].bytes_list.value])
    else:
      assert written.collection_def[key] == expected.collection_def[key], key


def _file_kinds(directory):
  """The file names in `directory`, the events file's time and host cut."""
  return sorted(re.sub(r'tfevents\..*', 'tfevents', name)
                for name in os.listdir(directory))


def _event_kinds(train_dir):
  """The kinds of record in the events file, in order."""
  tf.summary.FileWriterCache.get(train_dir).flush()
  paths = glob.glob(os.path.join(train_dir, 'events.out.tfevents.*'))
  assert len(paths) == 1, paths
  return [e.WhichOneof('what') for e in tf.train.summary_iterator(paths[0])]


def test_saves_write_what_tensorflow_writes_converting_the_graph_once(
    tmp_path, monkeypatch):
  train_dir = str(tmp_path / 'ours')
  conversions = []
  real_export = tf.train.Saver.export_meta_graph

  def counting_export(self, *args, **kwargs):
    conversions.append(args[0] if args else kwargs.get('filename'))
    return real_export(self, *args, **kwargs)

  monkeypatch.setattr(tf.train.Saver, 'export_meta_graph', counting_export)
  graph, saver = _train_tiny_model(train_dir, steps=3)
  # Steps 0 (session start) to 3: four checkpoints, one conversion.
  metas = sorted(glob.glob(os.path.join(train_dir, 'model.ckpt-*.meta')))
  assert [os.path.basename(m) for m in metas] == [
      'model.ckpt-%d.meta' % s for s in range(4)]
  assert conversions == [None]  # Converted once; the rest wrote the cache.
  expected = real_export(saver)  # What tf.train.Saver writes, freshly.
  for meta in metas:
    written = tf.MetaGraphDef()
    with open(meta, 'rb') as f:
      written.ParseFromString(f.read())
    _assert_same_meta_graph(written, expected)
  # graph.pbtxt: the text format of the graph, as tf.train.write_graph.
  with open(os.path.join(train_dir, 'graph.pbtxt')) as f:
    parsed = text_format.Parse(f.read(), tf.GraphDef())
  assert parsed == graph.as_graph_def(add_shapes=True)
  assert not [n for n in os.listdir(train_dir) if '.tmp' in n]
  # The same files and events as TensorFlow's own hook and saver write.
  tf_dir = str(tmp_path / 'tensorflow')
  with tf.Graph().as_default():
    _train_tiny_model(tf_dir, steps=3, saving=tf.train)
  assert _file_kinds(tf_dir) == _file_kinds(train_dir)
  kinds = _event_kinds(train_dir)
  assert kinds == _event_kinds(tf_dir)
  assert 'graph_def' in kinds and 'meta_graph_def' in kinds


def test_a_graph_that_can_still_change_is_converted_at_each_save(tmp_path):
  prefix = str(tmp_path / 'model.ckpt')
  tf.get_variable('first', [2])
  saver = checkpoint_saving.Saver()
  with tf.Session() as session:
    session.run(tf.global_variables_initializer())
    saver.save(session, prefix, global_step=1)
    tf.constant(7.0, name='added_later')  # Not finalized: allowed.
    saver.save(session, prefix, global_step=2)
  names = []
  for step in (1, 2):
    meta = tf.MetaGraphDef()
    with open('%s-%d.meta' % (prefix, step), 'rb') as f:
      meta.ParseFromString(f.read())
    names.append(set(n.name for n in meta.graph_def.node))
  assert 'added_later' not in names[0]
  assert 'added_later' in names[1]


@pytest.mark.parametrize('broken,expected', [
    (None, (True, False)),
    (('half', np.inf), (False, False)),
    (('double', np.nan), (False, True)),
    (('on_cpu', -np.inf), (False, False)),
])
def test_finiteness_checks_cover_every_float_dtype_and_device(broken,
                                                              expected):
  variables = {
      'single': tf.get_variable('single', [4, 3], tf.float32),
      'half': tf.get_variable('half', [5], tf.float16),
      'double': tf.get_variable('double', [2, 2], tf.float64),
      'counter': tf.get_variable('counter', [3], tf.int32,
                                 tf.zeros_initializer()),
  }
  with tf.device('/cpu:0'):
    variables['on_cpu'] = tf.get_variable('on_cpu', [7], tf.float32)
  finite, nan = hooks.finiteness_checks()
  with tf.Session() as session:
    session.run(tf.global_variables_initializer())
    if broken:
      name, value = broken
      var = variables[name]
      values = np.zeros(var.shape.as_list(), var.dtype.as_numpy_dtype)
      values.flat[-1] = value  # One element of one variable.
      var.load(values, session)
    assert tuple(session.run([finite, nan])) == expected


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
  def no_room(*unused_args, **unused_kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(os, 'replace', no_room)
  with pytest.raises(OSError):
    checkpoint_saving.write_text_graph(tf.GraphDef(), str(tmp_path))
  assert os.listdir(str(tmp_path)) == []


def test_a_full_disk_in_the_savers_own_writes_is_explained(tmp_path):
  # The saver writes .meta and graph.pbtxt itself (core.atomic_files), so a
  # full disk there is an OSError, not TensorFlow's OpError.
  config = types.SimpleNamespace(train_dir=str(tmp_path))
  explained = trainer._stopped_error(  # pylint: disable=protected-access
      OSError(errno.EFBIG, 'File too large'), config, ())
  assert isinstance(explained, trainer.TrainingError)
  assert 'file too large' in str(explained)
  assert trainer._stopped_error(  # pylint: disable=protected-access
      OSError(errno.EACCES, 'Permission denied'), config, ()) is None
