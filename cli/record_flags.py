"""Completes a script's flags from the training record of its model.

Script-side, like common_flags: it reads absl flags, which libraries never
see. `training.run_record.merge` decides; this module gathers what the
user gave, prints what was taken from the record and warns about each
flag that contradicts it. Models without a record keep the flags as given.
"""


import os
import sys

from absl import logging

from training import run_record
from cli import script_utils


# Record field -> the flag of the same name, in the scripts that rebuild the
# network from a checkpoint (freeze_graph.py, export_saved_model.py and
# classify_image.py): all the record says about the network and its input.
NETWORK_FLAGS = {field: field for field in (
    'model_name', 'image_size', 'preprocessing_name', 'num_classes',
    'labels_offset', 'moving_average_decay', 'use_explicit_padding')}


class FlagView(object):
  """Parsed flags with some values replaced (those merged from a record).

  Reads like the flag object (`view.model_name`), so `common_flags.pick`
  and the export helpers take it unchanged.
  """

  def __init__(self, flag_values, values):
    self._flag_values = flag_values
    self._values = dict(values)

  def __getattr__(self, name):
    values = self.__dict__.get('_values', {})
    if name in values:
      return values[name]
    return getattr(self.__dict__['_flag_values'], name)


def merged_flags(flag_values, model_path, flag_for_field, out=None):
  """`flag_values` completed from the record of `model_path`, if it has one.

  Args:
    flag_values: the parsed flags.
    model_path: a train_dir, checkpoint, or exported model (with a record
      copied beside it).
    flag_for_field: record field -> the script's flag for it.
    out: where the "from <record>: ..." line goes (default stdout).

  Returns:
    (a FlagView, the record's path or None).

  Raises:
    ScriptError: a damaged record.
  """
  given, defaults = given_and_defaults(flag_values,
                                       set(flag_for_field.values()))
  merged = merge_record(model_path, flag_for_field, given, defaults)
  if merged is None:
    return FlagView(flag_values, {}), None
  if merged.taken_line():
    print(merged.taken_line(), file=out or sys.stdout)
  for conflict in merged.conflicts:
    logging.warning('%s', script_utils.as_command_line(conflict))
  return FlagView(flag_values, merged.values), merged.source


def given_and_defaults(flag_values, names):
  """({flag: value} the user set, {flag: default value} of the others).

  Args:
    flag_values: the parsed flags.
    names: the flag names to look at.
  """
  names = sorted(names)
  given = {n: flag_values[n].value for n in names if flag_values[n].present}
  defaults = {n: flag_values[n].value for n in names if n not in given}
  return given, defaults


def merge_record(model_path, flag_for_field, given, defaults):
  """`run_record.merge_with_record`, a damaged record as a ScriptError.

  Returns:
    A `run_record.Merged`, or None when `model_path` has no record.

  Raises:
    ScriptError: a damaged record.
  """
  try:
    return run_record.merge_with_record(model_path, flag_for_field, given,
                                        defaults)
  except run_record.RecordError as e:
    raise script_utils.ScriptError(
        '%s. Delete it to use the flags alone.' % e)


def copy_record_beside(model_path, output_path, out=None):
  """Copies the record of `model_path` into the folder `output_path` is in
  (or into `output_path` itself when it is a directory), and says so on
  `out` (default stdout); returns the copy's path or None.

  Raises:
    ScriptError: the record cannot be read or written.
  """
  folder = (output_path if os.path.isdir(output_path)
            else os.path.dirname(os.path.abspath(output_path)))
  source = run_record.find_record(model_path)
  if not source or os.path.realpath(os.path.dirname(source)) == (
      os.path.realpath(folder)):
    return None  # No record, or it is already there.
  try:
    copy = run_record.copy_record(model_path, folder)
  except run_record.RecordError as e:
    raise script_utils.ScriptError(str(e))
  if copy:
    print('Copied the training record to %s.' % copy, file=out or sys.stdout)
  return copy


def read_field(record_path, field):
  """One field of a record (e.g. the batch-norm decay, for explanations).

  Raises:
    ScriptError: a damaged record.
  """
  try:
    return run_record.read_record(record_path)[field]
  except run_record.RecordError as e:
    raise script_utils.ScriptError(str(e))
