"""`labels.txt`: one `id:name` line per class, written beside the TFRecords."""


import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import atomic_files
from datasets import dataset_errors

LABELS_FILENAME = 'labels.txt'


def write_label_file(labels_to_class_names, dataset_dir,
                     filename=LABELS_FILENAME):
  """Writes `id:name` lines, sorted by id, atomically.

  Args:
    labels_to_class_names: dict from integer label to class name.
    dataset_dir: directory to write to.
    filename: file name inside `dataset_dir`.
  """
  lines = ''.join('%d:%s\n' % (label, labels_to_class_names[label])
                  for label in sorted(labels_to_class_names))
  with dataset_errors.disk_full_explained(dataset_dir):
    with atomic_files.atomic_write(os.path.join(dataset_dir, filename)) as f:
      f.write(lines.encode('utf-8'))


def has_labels(dataset_dir, filename=LABELS_FILENAME):
  """Returns True if `dataset_dir` contains a labels file."""
  return tf.io.gfile.exists(os.path.join(dataset_dir, filename))


def read_label_file(dataset_dir, filename=LABELS_FILENAME):
  """Reads a labels file written by `write_label_file`.

  Args:
    dataset_dir: directory holding the file.
    filename: file name inside `dataset_dir`.

  Returns:
    dict from integer label to class name.

  Raises:
    DatasetError: a line is not `id:name`.
  """
  path = os.path.join(dataset_dir, filename)
  with tf.io.gfile.GFile(path, 'rb') as f:
    text = f.read().decode('utf-8')
  labels_to_names = {}
  for number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    label, sep, name = line.partition(':')
    if not sep or not label.strip().isdigit():
      raise dataset_errors.DatasetError(
          '%s line %d is %r; every line of a labels file must be `id:name` '
          'with an integer id. Fix the line or delete the file and re-run the '
          'conversion.' % (path, number, line))
    labels_to_names[int(label)] = name
  return labels_to_names
