"""Finding a checkpoint to resume from, leftovers of killed saves, fsync.

* `find_resumable_checkpoint` walks the checkpoints of a training
  directory, newest first, and returns the first one whose every tensor
  reads back (TensorFlow checks each tensor's checksum as it reads it),
  with the reasons the newer ones were passed over.
* `set_aside_unreadable` moves the files of those passed-over checkpoints
  into `<train_dir>/unreadable_checkpoints/` (nothing is deleted) and
  rewrites the state file so that it lists only the others. The saver then
  neither overwrites them when it reaches their step again nor deletes them
  under `max_to_keep`, and every reader of the state file (the saver hook,
  a session re-created after a failure, the evaluator) sees the checkpoint
  training resumed from as the newest.
* `remove_leftover_temp_files` removes the temporary files of saves that
  were killed half-way; run it only while no trainer writes the directory.
* `FsyncListener` makes each saved checkpoint durable.
"""


import collections
import os
import re

from absl import logging

from core import atomic_files
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

STATE_FILE = 'checkpoint'
UNREADABLE_DIR = 'unreadable_checkpoints'

# Names of the temporary files a killed save can leave behind, all written
# by tf.train.Saver (unsharded) and the session hooks before a rename:
#   <prefix>.index.tempstate<n>, <prefix>.data-...tempstate<n>
#     (the checkpoint bundle writer);
#   checkpoint.tmp<uuid hex>, <prefix>.meta.tmp<uuid hex>,
#   graph.pbtxt.tmp<uuid hex> (file_io.atomic_write_string_to_file);
# and by this project's saver (checkpoint_saving, core.atomic_files):
#   .graph.pbtxt.tmp-<hex>, .<prefix>.meta.tmp-<hex>.
_LEFTOVER_PATTERNS = (
    re.compile(r'^.+\.(index|data-\d+-of-\d+)\.tempstate\d+$'),
    re.compile(r'^(%s|graph\.pbtxt|.+\.meta)\.tmp[0-9a-f]{32}$' %
               STATE_FILE),
    atomic_files.temporary_pattern(r'graph\.pbtxt|.+\.meta'),
)
_STEP_SUFFIX = re.compile(r'-(\d+)$')


class NoReadableCheckpointError(Exception):
  """The directory lists checkpoints, but none of them reads back.

  Attributes:
    train_dir: the directory.
    skipped: list of (checkpoint prefix, reason) of the unreadable ones.
  """

  def __init__(self, train_dir, skipped):
    self.train_dir = train_dir
    self.skipped = skipped
    super(NoReadableCheckpointError, self).__init__(
        'no readable checkpoint in %s: %s' % (train_dir, '; '.join(
            '%s (%s)' % (full_path(p), r) for p, r in skipped)))


Recovery = collections.namedtuple('Recovery', ['checkpoint', 'skipped'])


def _first_line(error):
  return (getattr(error, 'message', None) or str(error)).split('\n')[0]


def unreadable_reason(prefix):
  """Why the checkpoint `prefix` cannot be read in full, or None if it can.

  Opens it and reads every tensor.

  Args:
    prefix: a checkpoint prefix, e.g. `train_dir/model.ckpt-100`.

  Returns:
    None, or a short reason naming the file by its full path, such as
    '/data/train/model.ckpt-100.index is empty (0 bytes)'.
  """
  index = prefix + '.index'
  if not tf.gfile.Exists(index):
    return '%s is missing' % full_path(index)
  if tf.gfile.Stat(index).length == 0:
    return '%s is empty (0 bytes)' % full_path(index)
  # The reader raises OpErrors, but also IndexError ("Read less bytes than
  # requested") and others for some damage, so any exception counts.
  try:
    reader = tf.train.NewCheckpointReader(prefix)
  except Exception as e:  # pylint: disable=broad-except
    return 'it cannot be opened: %s' % _first_line(e)
  for name in sorted(reader.get_variable_to_shape_map()):
    try:
      reader.get_tensor(name)
    except Exception as e:  # pylint: disable=broad-except
      return 'its tensor %s cannot be read: %s' % (name, _first_line(e))
  return None


def full_path(path):
  """`path` made absolute when it is a local relative path, for messages:
  a relative one hides which working directory it was taken from."""
  return path if '://' in path else os.path.abspath(path)


def _step(prefix):
  match = _STEP_SUFFIX.search(prefix)
  return int(match.group(1)) if match else -1


def _listed_checkpoints(train_dir):
  """Checkpoint prefixes of `train_dir`, newest first.

  From the state file; when it is missing or damaged, from the `.index`
  files present.
  """
  state = None
  if tf.gfile.Exists(os.path.join(train_dir, STATE_FILE)):
    try:
      state = tf.train.get_checkpoint_state(train_dir)
    except (tf.errors.OpError, ValueError) as e:
      logging.warning('The checkpoint state file in %s is damaged (%s); '
                      'looking at the checkpoint files instead.', train_dir,
                      _first_line(e))
  if state is not None and state.model_checkpoint_path:
    # get_checkpoint_state has already joined relative entries onto
    # train_dir (relative or not); joining again doubled a relative one.
    paths = list(state.all_model_checkpoint_paths)
    newest = state.model_checkpoint_path
    paths = [p for p in paths if p != newest]
    return [newest] + paths[::-1]
  indexes = tf.gfile.Glob(os.path.join(train_dir, '*.index'))
  prefixes = [i[:-len('.index')] for i in indexes]
  return sorted(prefixes, key=_step, reverse=True)


def find_resumable_checkpoint(train_dir):
  """The newest checkpoint of `train_dir` that reads back in full.

  Args:
    train_dir: the training directory.

  Returns:
    A `Recovery(checkpoint, skipped)`: the checkpoint prefix (None when the
    directory has no checkpoint at all) and the list of (prefix, reason)
    of newer checkpoints that cannot be read, newest first.

  Raises:
    NoReadableCheckpointError: checkpoints are listed but none reads back.
  """
  skipped = []
  for prefix in _listed_checkpoints(train_dir):
    reason = unreadable_reason(prefix)
    if reason is None:
      return Recovery(prefix, skipped)
    skipped.append((prefix, reason))
  if skipped:
    raise NoReadableCheckpointError(train_dir, skipped)
  return Recovery(None, [])


def _free_name(directory, name):
  """`directory/name`, or with a `.1`, `.2`... suffix if that exists."""
  path = os.path.join(directory, name)
  count = 0
  while tf.gfile.Exists(path):
    count += 1
    path = os.path.join(directory, '%s.%d' % (name, count))
  return path


def set_aside_unreadable(train_dir, recovery):
  """Moves unreadable checkpoints aside and re-lists the readable ones.

  Args:
    train_dir: the training directory.
    recovery: the `Recovery` from `find_resumable_checkpoint`, with a
      checkpoint.

  Returns:
    The directory the files were moved to (None if nothing was skipped).
  """
  if not recovery.skipped:
    return None
  aside_dir = os.path.join(train_dir, UNREADABLE_DIR)
  tf.gfile.MakeDirs(aside_dir)
  skipped = set(p for p, _ in recovery.skipped)
  for prefix in skipped:
    for path in tf.gfile.Glob(prefix + '.*'):
      tf.gfile.Rename(path, _free_name(aside_dir, os.path.basename(path)))
  state_path = os.path.join(train_dir, STATE_FILE)
  if tf.gfile.Exists(state_path):
    tf.gfile.Copy(state_path, _free_name(aside_dir, STATE_FILE))
  keep = [p for p in reversed(_listed_checkpoints(train_dir))
          if p not in skipped and tf.gfile.Exists(p + '.index')]
  if recovery.checkpoint not in keep:
    keep.append(recovery.checkpoint)
  tf.train.update_checkpoint_state(train_dir, recovery.checkpoint, keep)
  return aside_dir


def remove_leftover_temp_files(train_dir):
  """Removes temporary files of killed saves from `train_dir` (not below).

  Only call while no trainer is writing to `train_dir`.

  Returns:
    The sorted list of removed file names.
  """
  if not tf.gfile.IsDirectory(train_dir):
    return []
  removed = []
  for name in tf.gfile.ListDirectory(train_dir):
    name = name.rstrip('/')
    if any(p.match(name) for p in _LEFTOVER_PATTERNS):
      path = os.path.join(train_dir, name)
      if not tf.gfile.IsDirectory(path):
        tf.gfile.Remove(path)
        removed.append(name)
  return sorted(removed)


def fsync_checkpoint(train_dir, prefix):
  """Flushes a checkpoint's files, the state file and the directory to disk.

  Does nothing for paths that are not local files (e.g. gs://).

  Args:
    train_dir: the directory holding the checkpoint and its state file.
    prefix: the checkpoint prefix.
  """
  if '://' in train_dir:
    return
  paths = tf.gfile.Glob(prefix + '.*') + [os.path.join(train_dir,
                                                       STATE_FILE)]
  for path in paths:
    if os.path.isfile(path):
      _fsync_path(path, os.O_RDONLY)
  # The renames that gave the files their names live in the directory.
  _fsync_path(train_dir, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))


def _fsync_path(path, flags):
  fd = os.open(path, flags)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


class FsyncListener(tf.train.CheckpointSaverListener):
  """Calls `fsync_checkpoint` on the newest checkpoint after each save."""

  def __init__(self, train_dir):
    self._train_dir = train_dir

  def after_save(self, session, global_step_value):
    prefix = tf.train.latest_checkpoint(self._train_dir)
    if prefix:
      fsync_checkpoint(self._train_dir, prefix)
