"""Checkpoint saving that does not re-serialize the training graph.

TensorFlow's `CheckpointSaverHook` writes `graph.pbtxt` with the pure-Python
text printer and its `Saver` converts the whole graph again for the `.meta`
file of every checkpoint. For a MobileNet training graph (~8,000 nodes)
that is seconds of CPU at each start and at each save. The graph of a
monitored session is finalized, so it is converted once here, and the text
file comes from the protobuf runtime's native printer (the same text
format, 10x faster). The files written are the ones TensorFlow writes:
`graph.pbtxt`, `<prefix>.meta` per checkpoint, the graph and meta graph in
the events file.
"""


import os

from core import atomic_files
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

GRAPH_TEXT_FILE = 'graph.pbtxt'


def write_text_graph(graph_def, directory, name=GRAPH_TEXT_FILE):
  """Writes `graph_def` as a text proto to `directory/name`; returns the path.

  `str()` of a message uses the protobuf runtime's printer (C++ or upb),
  which writes the same text format as `text_format.MessageToString`.
  """
  tf.io.gfile.makedirs(directory)
  path = os.path.join(directory, name)
  atomic_files.write_atomically(path, str(graph_def))
  return path


class Saver(tf.train.Saver):
  """A `tf.train.Saver` that converts a finalized graph's meta graph once.

  Every save writes a `.meta` file; while the graph cannot change (it is
  finalized), the serialized `MetaGraphDef` of the first save is written
  again. Graphs that are not finalized, text output and calls without a
  file name take `tf.train.Saver`'s path.
  """

  def __init__(self, *args, **kwargs):
    super(Saver, self).__init__(*args, **kwargs)
    self._meta_graph_cache = None  # (graph, options, MetaGraphDef, bytes)

  def export_meta_graph(self, filename=None, collection_list=None,
                        as_text=False, **options):
    graph = tf.get_default_graph()
    options['collection_list'] = collection_list
    if not filename or as_text or not graph.finalized:
      return super(Saver, self).export_meta_graph(
          filename=filename, as_text=as_text, **options)
    key = sorted(options.items(), key=lambda item: item[0])
    cache = self._meta_graph_cache
    if cache is None or cache[0] is not graph or cache[1] != key:
      meta_graph_def = super(Saver, self).export_meta_graph(**options)
      cache = (graph, key, meta_graph_def,
               meta_graph_def.SerializeToString(deterministic=True))
      self._meta_graph_cache = cache
    atomic_files.write_atomically(filename, cache[3])
    return cache[2]


class CheckpointSaverHook(tf.train.CheckpointSaverHook):
  """`tf.train.CheckpointSaverHook` converting the graph once, not three times.

  Writes what the TensorFlow hook writes when the session is created
  (`graph.pbtxt`, the graph and meta graph in the events file, a
  checkpoint of the starting step) from one `GraphDef`.

  It uses the base hook's private members (`_checkpoint_dir`, `_get_saver`,
  `_summary_writer`, `_save`, `_timer`), the same in TF 1.15 and 2.21;
  tests/test_checkpoint_saving.py compares its files with the base hook's
  and fails if they drift. Without it each start converts the graph three
  times, the largest part of a short run's start-up for the bigger networks.
  """

  def after_create_session(self, session, coord):
    graph = tf.get_default_graph()
    graph_def = graph.as_graph_def(add_shapes=True)
    write_text_graph(graph_def, self._checkpoint_dir)
    saver = self._get_saver()
    meta_graph_def = tf.train.export_meta_graph(
        graph_def=graph_def, saver_def=saver.saver_def if saver else None)
    self._summary_writer.add_graph(graph)
    self._summary_writer.add_meta_graph(meta_graph_def)
    step = session.run(self._global_step_tensor)
    self._save(session, step)
    self._timer.update_last_triggered_step(step)
