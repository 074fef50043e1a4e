"""Building the slim Dataset of one split from TFRecords on disk."""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from datasets import dataset_errors
from datasets import label_files
from datasets import sharded_writer


def make_split_dataset(dataset_name, split_name, dataset_dir, file_pattern,
                       reader, default_file_pattern, splits_to_sizes,
                       num_classes, decoder, items_to_descriptions):
  """Builds a `slim.dataset.Dataset`; the common body of every get_split.

  Sample and class counts come from the split's manifest when the converter
  of this project wrote one, else from `splits_to_sizes` / `num_classes`
  (the published sizes, for TFRecords made by other tools).

  Args:
    dataset_name: registered name (used in messages and manifest names).
    split_name: requested split.
    dataset_dir: directory with the TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based providers (default TFRecordReader).
    default_file_pattern: pattern with a `%s` for the split name.
    splits_to_sizes: dict split -> published size (None where unknown);
      its keys are the valid splits.
    num_classes: published number of classes, or None.
    decoder: the TFExampleDecoder.
    items_to_descriptions: dict item -> description.

  Returns:
    A `slim.dataset.Dataset` with data_sources, reader, decoder, num_samples,
    num_classes, labels_to_names (or None), items_to_descriptions, and
    shard_sizes (file -> bytes, from the manifest; may be empty).

  Raises:
    ValueError: unknown split name.
    DatasetNotFoundError: the directory, files or counts are missing.
  """
  if split_name not in splits_to_sizes:
    raise ValueError('Unknown split %r for dataset %s; valid splits: %s.' %
                     (split_name, dataset_name,
                      ', '.join(sorted(splits_to_sizes))))
  command = dataset_errors.CONVERT_COMMAND % (dataset_name, dataset_dir)
  if not dataset_dir or not tf.io.gfile.isdir(dataset_dir):
    raise dataset_errors.DatasetNotFoundError(
        'Dataset directory %r for %s does not exist. Create the dataset with '
        '`%s`, or pass the directory that holds its TFRecords with '
        '--dataset_dir.' % (dataset_dir, dataset_name, command))
  pattern = file_pattern or default_file_pattern
  if '%s' in pattern:
    pattern = pattern % split_name
  pattern = os.path.join(dataset_dir, pattern)
  files = tf.io.gfile.glob(pattern)
  if not files:
    raise dataset_errors.DatasetNotFoundError(
        'No TFRecord files for %s split %r: expected files matching %s. '
        'Create them with `%s`.' % (dataset_name, split_name, pattern, command))

  num_samples = splits_to_sizes[split_name]
  shard_sizes = {}
  manifest = None if file_pattern else sharded_writer.read_manifest(dataset_dir, dataset_name,
                                                     split_name)
  if manifest is not None:
    if not manifest.get('complete'):
      raise dataset_errors.DatasetNotFoundError(
          'The conversion of %s split %r in %s did not finish (%s says it is '
          'incomplete). Run `%s` again; it resumes where it stopped.' %
          (dataset_name, split_name, dataset_dir,
           sharded_writer.manifest_path(dataset_dir, dataset_name, split_name), command))
    num_samples = manifest['num_examples']
    num_classes = manifest.get('num_classes', num_classes)
    shard_sizes = {os.path.join(dataset_dir, name): info['bytes']
                   for name, info in manifest['shards'].items()}
  if num_samples is None or num_classes is None:
    where = sharded_writer.manifest_path(dataset_dir, dataset_name, split_name)
    raise dataset_errors.DatasetNotFoundError(
        'The sample and class counts of %s split %r are unknown: they are '
        'read from %s%s. Re-create the dataset with `%s`.' %
        (dataset_name, split_name, where,
         ', which is not used with a custom file_pattern' if file_pattern
         else ', which is missing', command))
  labels_to_names = (label_files.read_label_file(dataset_dir)
                     if label_files.has_labels(dataset_dir) else None)
  return slim.dataset.Dataset(
      data_sources=pattern,
      reader=reader or tf.TFRecordReader,
      decoder=decoder,
      num_samples=num_samples,
      items_to_descriptions=items_to_descriptions,
      num_classes=num_classes,
      labels_to_names=labels_to_names,
      shard_sizes=shard_sizes)
