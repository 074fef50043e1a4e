"""Class names for a classifier's outputs, from a `labels.txt` file.

A network output index maps to the dataset label `index + labels_offset`
(`labels_offset=1` for a 1000-way head on 1001-class ImageNet labels).
A 1001-output ImageNet model used with a 1000-line labels file (no
background line) is recognized, and output 0 is named "background".
"""


import os

from core import atomic_files
from core import errors
from datasets import dataset_utils

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref


class LabelsError(errors.InputError):
  """A labels file that is missing, malformed or does not fit the model."""


LABELS_FILENAME = dataset_utils.LABELS_FILENAME
BACKGROUND = 'background'


def find_labels_file(labels_file=None, dataset_dir=None, model_path=None):
  """Returns the labels file to use, or None if there is none.

  In order: `labels_file`; `dataset_dir/labels.txt`; `labels.txt` next to
  the model (in a SavedModel or training directory, or beside a file).

  Args:
    labels_file: a labels file to use, or None.
    dataset_dir: a dataset directory holding labels.txt, or None.
    model_path: the model, beside which labels.txt may lie, or None.

  Raises:
    LabelsError: if a file named by a parameter does not exist.
  """
  if labels_file:
    if not os.path.isfile(labels_file):
      raise LabelsError('%s does not exist. Pass the labels.txt '
                        'of the dataset the model was trained on (written by '
                        'download_and_convert_data.py), or leave %s out '
                        'to print class ids.' %
                        (ref('labels_file', labels_file), ref('labels_file')))
    return labels_file
  if dataset_dir:
    path = os.path.join(dataset_dir, LABELS_FILENAME)
    if not os.path.isfile(path):
      raise LabelsError('%s has no %s. Pass %s, or the directory written by '
                        'download_and_convert_data.py.' %
                        (ref('dataset_dir', dataset_dir), LABELS_FILENAME,
                         ref('labels_file')))
    return path
  if model_path:
    directory = (model_path if os.path.isdir(model_path)
                 else os.path.dirname(model_path))
    path = os.path.join(directory or '.', LABELS_FILENAME)
    if os.path.isfile(path):
      return path
  return None


def copy_labels_beside(output_path, dataset_dir=None, model_path=None):
  """Copies the model's labels.txt into the folder of `output_path`.

  An exported model then carries its class names, which classify_image.py
  finds beside it. The labels are those of `dataset_dir`, else the ones
  beside `model_path`; with neither, or when they are there already,
  nothing is done. The copy is written atomically.

  Returns:
    The copy's path, or None.

  Raises:
    LabelsError: the copy cannot be written.
  """
  source = None
  if dataset_dir and os.path.isfile(os.path.join(dataset_dir,
                                                 LABELS_FILENAME)):
    source = os.path.join(dataset_dir, LABELS_FILENAME)
  elif model_path:
    source = find_labels_file(model_path=model_path)
  if not source:
    return None
  target = os.path.join(os.path.dirname(os.path.abspath(output_path)),
                        LABELS_FILENAME)
  if os.path.realpath(source) == os.path.realpath(target):
    return None
  try:
    with open(source, 'rb') as f:
      atomic_files.write_atomically(target, f.read())
  except (IOError, OSError) as e:
    raise LabelsError('Cannot copy %s beside %s: %s' % (source, output_path,
                                                         e))
  return target


def read_labels(path):
  """Reads `id:name` lines into {id: name}.

  Raises:
    LabelsError: if a line is malformed or the file is empty.
  """
  try:
    labels = dataset_utils.read_label_file(os.path.dirname(path) or '.',
                                           os.path.basename(path))
  except ValueError as e:
    raise LabelsError(errors.marked(e))
  if not labels:
    raise LabelsError('Labels file %s is empty; it needs one `id:name` line '
                      'per class.' % path)
  return labels


class LabelMap(object):
  """Maps network output indices to (label id, name).

  Args:
    labels_to_names: {label id: name}, or None (names unknown).
    num_outputs: the network's number of outputs.
    labels_offset: the offset between network outputs and dataset labels.
    labels_path: where the names came from (for messages).

  Raises:
    LabelsError: if some output would have no name.
  """

  def __init__(self, labels_to_names, num_outputs, labels_offset=0,
               labels_path=None):
    self.offset = labels_offset
    self.names = labels_to_names
    self.note = None
    if not labels_to_names:
      return
    ids = sorted(labels_to_names)
    if (labels_offset == 0 and num_outputs == len(ids) + 1 and
        ids == list(range(len(ids))) and
        labels_to_names[0].lower() != BACKGROUND):
      # A 1001-way ImageNet head with 1000 names: output 0 is background.
      self.offset = -1
      self.names = dict(labels_to_names)
      self.names[-1] = BACKGROUND
      self.note = ('%s has %d names and the model %d outputs: output 0 is '
                   'taken as the background class, output i as label i-1.' %
                   (labels_path, len(ids), num_outputs))
      return
    wanted = range(labels_offset, labels_offset + num_outputs)
    missing = [i for i in wanted if i not in labels_to_names]
    if missing:
      raise LabelsError(
          'Labels file %s names labels %d..%d, but the model has %d outputs '
          'which with %s are labels %d..%d (%d have no '
          'name). Pass the labels.txt of the model\'s dataset, or fix '
          '%s (1 for a 1000-way head on 1001-class ImageNet '
          'labels).' %
          (labels_path, ids[0], ids[-1], num_outputs,
           ref('labels_offset', labels_offset), labels_offset,
           labels_offset + num_outputs - 1, len(missing),
           ref('labels_offset')))

  def label(self, index):
    """Returns `(label_id, name_or_None)` for a network output index."""
    label_id = int(index) + self.offset
    name = self.names.get(label_id) if self.names else None
    return label_id, name
