"""A small record, kept in the train_dir, of how a model was trained.

Training writes `training_record.json` next to its checkpoints with the
settings a later step must repeat to rebuild the same network: model name,
image size, preprocessing, dataset and class count, labels offset, and the
batch-norm and moving-average decays. Evaluation, export and classification
read it back and `merge` it with the flags the user gave: a given flag wins,
but one that contradicts the record is reported (`eval_image_size=224 but
the model was trained at 64`), and every value taken from the record is
listed, so nothing silently falls back to a default.

Pure Python: no TensorFlow and no flag objects. Errors are `RecordError`.
Checkpoints without a record keep working: `find_record` returns None.
"""


import json
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from core import atomic_files
from core import errors

RECORD_FILENAME = 'training_record.json'
FORMAT_VERSION = 1

# Field -> the types its value may have (None: not set, e.g. no averaging).
FIELD_TYPES = {
    'model_name': (str,),
    'image_size': (int,),
    'preprocessing_name': (str,),
    'dataset_name': (str,),
    'num_classes': (int,),
    'labels_offset': (int,),
    'batch_norm_decay': (float, int, type(None)),
    'moving_average_decay': (float, int, type(None)),
    'use_explicit_padding': (bool, type(None)),
}
FIELDS = tuple(FIELD_TYPES)
# Fields added after the first records were written: a record without them
# reads as None (the network's own default).
OPTIONAL_FIELDS = ('use_explicit_padding',)

# How a contradiction is worded, per field: (given flag, recorded value).
_CONTRADICTION = {
    'image_size': '%s but the model was trained at %s',
    'model_name': '%s but the model was trained as %s',
    'num_classes': '%s but the model was trained with %s classes',
}
_CONTRADICTION_DEFAULT = '%s but the model was trained with {field}=%s'


class RecordError(ValueError):
  """A training record that cannot be read, written or trusted."""


def make_record(model_name, image_size, preprocessing_name, dataset_name,
                num_classes, labels_offset=0, batch_norm_decay=None,
                moving_average_decay=None, use_explicit_padding=None):
  # type: (str, int, str, str, int, int, Optional[float], Optional[float], Optional[bool]) -> Dict[str, Any]
  """Returns a checked record dict of the given training settings.

  Args:
    model_name: the nets_factory name, e.g. 'mobilenet_v1_025'.
    image_size: the training image size in pixels.
    preprocessing_name: the preprocessing actually used (the model name
      when preprocessing_name was empty).
    dataset_name: the dataset_factory name.
    num_classes: classes of the network's head (after labels_offset).
    labels_offset: the labels_offset used.
    batch_norm_decay: the moving-statistics decay used (None: the net's).
    moving_average_decay: the moving_average_decay used (None: off).
    use_explicit_padding: the network's padding setting (None: the
      network's default; True for weights trained with PyTorch's symmetric
      padding).

  Raises:
    RecordError: if a value has the wrong type or is out of range.
  """
  record = dict(model_name=model_name, image_size=image_size,
                preprocessing_name=preprocessing_name,
                dataset_name=dataset_name, num_classes=num_classes,
                labels_offset=labels_offset,
                batch_norm_decay=batch_norm_decay,
                moving_average_decay=moving_average_decay,
                use_explicit_padding=use_explicit_padding)
  check_record(record)
  return record


def check_record(record):
  # type: (Mapping[str, Any]) -> None
  """Raises RecordError unless `record` has every field with a valid value."""
  missing = [f for f in FIELDS
             if f not in record and f not in OPTIONAL_FIELDS]
  if missing:
    raise RecordError('the record lacks %s' % ', '.join(missing))
  for field, types in FIELD_TYPES.items():
    value = record.get(field)
    if ((isinstance(value, bool) and bool not in types) or
        not isinstance(value, types)):
      raise RecordError('%s=%r is not a %s' %
                        (field, value, ' or '.join(t.__name__ for t in types)))
  if record['image_size'] <= 0 or record['num_classes'] <= 0:
    raise RecordError('image_size and num_classes must be positive')
  for field in ('batch_norm_decay', 'moving_average_decay'):
    value = record[field]
    if value is not None and not 0.0 <= value < 1.0:
      raise RecordError('%s=%r is not in [0, 1)' % (field, value))


def record_path(train_dir):
  # type: (str) -> str
  """Where the record of `train_dir` lives."""
  return os.path.join(train_dir, RECORD_FILENAME)


def write_record(train_dir, record):
  # type: (str, Mapping[str, Any]) -> str
  """Writes `record` into `train_dir` atomically; returns the file's path.

  Raises:
    RecordError: invalid record, or the file cannot be written.
  """
  check_record(record)
  path = record_path(train_dir)
  content = dict(record)
  content['format_version'] = FORMAT_VERSION
  try:
    os.makedirs(train_dir, exist_ok=True)
    atomic_files.write_atomically(
        path, json.dumps(content, indent=2, sort_keys=True) + '\n')
  except OSError as e:
    raise RecordError('cannot write %s: %s' % (path, e))
  return path


def find_record(model_path):
  # type: (str) -> Optional[str]
  """The record file belonging to a model path, or None if there is none.

  Args:
    model_path: a train_dir, a checkpoint prefix or file inside one
      (`train/model.ckpt-50`, `...index`), the record file itself, or an
      exported model file with a record copied beside it.
  """
  if not model_path:
    return None
  if os.path.basename(model_path) == RECORD_FILENAME:
    return model_path if os.path.isfile(model_path) else None
  directory = (model_path if os.path.isdir(model_path)
               else os.path.dirname(model_path) or '.')
  path = record_path(directory)
  return path if os.path.isfile(path) else None


def copy_record(model_path, output_dir):
  # type: (str, str) -> Optional[str]
  """Copies the record of `model_path`, if any, into `output_dir`.

  Export steps call it so that a frozen graph, SavedModel or TFLite model
  keeps the record beside it (classify_image.py reads it from there).

  Returns:
    The copy's path, or None when `model_path` has no record.

  Raises:
    RecordError: damaged record, or the copy cannot be written.
  """
  source = find_record(model_path)
  if source is None:
    return None
  if os.path.realpath(os.path.dirname(source)) == os.path.realpath(
      output_dir):
    return source
  return write_record(output_dir, read_record(source))


def read_record(path):
  # type: (str) -> Dict[str, Any]
  """Reads and checks a record file (see find_record).

  Raises:
    RecordError: if it cannot be read or is not a valid record.
  """
  try:
    with open(path) as f:
      content = json.load(f)
  except (OSError, ValueError) as e:
    raise RecordError('cannot read the training record %s: %s' % (path, e))
  if not isinstance(content, dict):
    raise RecordError('the training record %s is not a JSON object' % path)
  try:
    check_record(content)
  except RecordError as e:
    raise RecordError('the training record %s is damaged: %s' % (path, e))
  return {field: content.get(field) for field in FIELDS}


class Merged(object):
  """What `merge` decided: the values, where they came from, the conflicts.

  Attributes:
    values: flag name -> the value to use.
    taken: (flag name, value) pairs taken from the record, in field order.
    conflicts: one warning per given flag that contradicts the record.
    source: the record's path.
  """

  def __init__(self, values, taken, conflicts, source):
    # type: (Dict[str, Any], List[Tuple[str, Any]], List[str], str) -> None
    self.values = values
    self.taken = taken
    self.conflicts = conflicts
    self.source = source

  def taken_line(self):
    # type: () -> Optional[str]
    """'from <record>: model_name=..., ...', or None if nothing was taken."""
    if not self.taken:
      return None
    return 'from %s: %s' % (self.source, ', '.join(
        '%s=%s' % (name, _show(value)) for name, value in self.taken))


def _show(value):
  return 'none' if value is None else str(value)


def _same(given, recorded):
  if given is None or recorded is None:
    return given is recorded
  if isinstance(given, float) or isinstance(recorded, float):
    try:
      return abs(float(given) - float(recorded)) <= 1e-9
    except (TypeError, ValueError):
      return False
  return given == recorded


def merge(record, source, flag_for_field, given, defaults):
  # type: (Mapping[str, Any], str, Mapping[str, str], Mapping[str, Any], Mapping[str, Any]) -> Merged
  """Combines a record with the flags a user gave.

  Args:
    record: a record (read_record).
    source: its path, for the messages.
    flag_for_field: record field -> the script's flag for it, e.g.
      {'image_size': 'eval_image_size', 'model_name': 'model_name'}; fields
      the script has no flag for are left out.
    given: flag name -> value, for the flags the user set explicitly.
    defaults: flag name -> value, for the flags the user did not set.

  Returns:
    A Merged: given flags keep their value (a contradiction adds a
    conflict), the others take the record's value when it has one, else
    their default.

  Raises:
    RecordError: if flag_for_field names an unknown field.
  """
  unknown = [f for f in flag_for_field if f not in FIELD_TYPES]
  if unknown:
    raise RecordError('no such record field: %s' % ', '.join(unknown))
  values = dict(defaults)
  values.update(given)
  taken, conflicts = [], []
  for field in FIELDS:
    flag = flag_for_field.get(field)
    if flag is None:
      continue
    recorded = record.get(field)
    if flag in given:
      if not _same(given[flag], recorded):
        wording = _CONTRADICTION.get(field, _CONTRADICTION_DEFAULT).replace(
            '{field}', field)
        conflicts.append(
            (wording % (errors.ref(flag, _show(given[flag])),
                        _show(recorded))) + ' (%s)' % source)
    elif recorded is not None:
      values[flag] = recorded
      taken.append((flag, recorded))
  return Merged(values, taken, conflicts, source)


def merge_with_record(model_path, flag_for_field, given, defaults):
  # type: (str, Mapping[str, str], Mapping[str, Any], Mapping[str, Any]) -> Optional[Merged]
  """`merge` with the record that belongs to `model_path`, if there is one.

  The one way every script completes its flags from a record: eval, the
  exporters and classify_image.py through their flags, training to compare
  a resumed run's settings with the record already in --train_dir.

  Args:
    model_path: what `find_record` takes (train_dir, checkpoint, exported
      model).
    flag_for_field, given, defaults: as for `merge`.

  Returns:
    A Merged, or None when `model_path` has no record.

  Raises:
    RecordError: a damaged record, or an unknown field.
  """
  path = find_record(model_path)
  if path is None:
    return None
  return merge(read_record(path), path, flag_for_field, given, defaults)


def write_unless_contradicted(train_dir, record):
  # type: (str, Mapping[str, Any]) -> List[str]
  """Writes `record` into `train_dir` unless the record there disagrees.

  A resumed run with other settings must not lose the old record before it
  has trained with the new ones, so a contradicted record is not written.

  Returns:
    The contradictions (one message per field); empty when it was written.

  Raises:
    RecordError: a damaged record there, or the file cannot be written.
  """
  every_field = {field: field for field in FIELDS}
  merged = merge_with_record(train_dir, every_field, record, {})
  conflicts = merged.conflicts if merged else []
  if not conflicts:
    write_record(train_dir, record)
  return conflicts
