"""What a dataset is, declared once, and the one reader every dataset uses.

A dataset module declares a `DatasetSpec` (name, file names, split sizes,
class count, item descriptions, decoder) and gets its `get_split` from
`make_get_split`; nothing else differs between datasets. Sizes and class
counts written by this project's converters (the split manifests) win over
the published ones, which only serve TFRecords made by other tools.
"""


import collections
import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from datasets import dataset_errors
from datasets import label_files
from datasets import sharded_writer


class DatasetSpec(collections.namedtuple('DatasetSpec', [
    'name', 'file_pattern', 'splits_to_sizes', 'num_classes',
    'items_to_descriptions', 'decoder_fn', 'background_classes'],
                                         defaults=(0,))):
  """The facts that tell one dataset's TFRecords from another's.

  Fields:
    name: the dataset_name; also the prefix of manifests and labels.
    file_pattern: file glob inside the dataset directory, `%s` standing for
      the split name.
    splits_to_sizes: split name -> published example count; its keys are the
      valid splits. None where the count is only known after conversion.
    num_classes: label values the dataset uses (background included), or
      None where the converter decides it (read from manifest or labels).
    items_to_descriptions: item name -> what the decoder gives for it.
    decoder_fn: no-argument callable returning the TFExampleDecoder.
    background_classes: leading labels that stand for "no class" (ImageNet's
      label 0), i.e. the largest sensible labels_offset.
  """
  __slots__ = ()

  def split_pattern(self, split_name):
    return self.file_pattern % split_name if '%s' in self.file_pattern else (
        self.file_pattern)


def files_present(spec, dataset_dir):
  """The files of any of the spec's splits in `dataset_dir`, sorted."""
  found = set()
  for split_name in spec.splits_to_sizes:
    found.update(tf.io.gfile.glob(
        os.path.join(dataset_dir, spec.split_pattern(split_name))))
  return sorted(found)


def _check_directory(spec, split_name, dataset_dir):
  """Raises for an unknown split or a missing directory."""
  if split_name not in spec.splits_to_sizes:
    raise ValueError('Unknown split %r for dataset %s; valid splits: %s.' %
                     (split_name, spec.name,
                      ', '.join(sorted(spec.splits_to_sizes))))
  if not dataset_dir or not tf.io.gfile.isdir(dataset_dir):
    raise dataset_errors.DatasetNotFoundError(
        'Dataset directory %r for %s does not exist. Create the dataset with '
        '`%s`, or pass the directory that holds its TFRecords as %s.' %
        (dataset_dir, spec.name,
         dataset_errors.CONVERT_COMMAND % (spec.name, dataset_dir),
         dataset_errors.ref('dataset_dir')))


def _manifest(spec, split_name, dataset_dir):
  """The split's manifest, or None; refuses an unfinished conversion."""
  manifest = sharded_writer.read_manifest(dataset_dir, spec.name, split_name)
  if manifest is not None and not manifest.get('complete'):
    raise dataset_errors.DatasetNotFoundError(
        'The conversion of %s split %r in %s did not finish (%s says it is '
        'incomplete). Run `%s` again; it resumes where it stopped.' %
        (spec.name, split_name, dataset_dir,
         sharded_writer.manifest_path(dataset_dir, spec.name, split_name),
         dataset_errors.CONVERT_COMMAND % (spec.name, dataset_dir)))
  return manifest


def _counts(spec, split_name, dataset_dir, manifest, custom_pattern):
  """(num_samples, num_classes, shard_sizes) of a split on disk."""
  num_samples = spec.splits_to_sizes[split_name]
  num_classes = spec.num_classes
  shard_sizes = {}
  if manifest is not None:
    num_samples = manifest['num_examples']
    num_classes = manifest.get('num_classes', num_classes)
    shard_sizes = {os.path.join(dataset_dir, name): info['bytes']
                   for name, info in manifest['shards'].items()}
  if num_samples is None or num_classes is None:
    raise dataset_errors.DatasetNotFoundError(
        'The sample and class counts of %s split %r are unknown: they are '
        'read from %s%s. Re-create the dataset with `%s`.' %
        (spec.name, split_name,
         sharded_writer.manifest_path(dataset_dir, spec.name, split_name),
         ', which is not used with a custom file_pattern' if custom_pattern
         else ', which is missing',
         dataset_errors.CONVERT_COMMAND % (spec.name, dataset_dir)))
  return num_samples, num_classes, shard_sizes


def read_split(spec, split_name, dataset_dir, file_pattern=None, reader=None):
  """The `slim.dataset.Dataset` of one split of `spec` in `dataset_dir`.

  Args:
    spec: the DatasetSpec.
    split_name: one of `spec.splits_to_sizes`.
    dataset_dir: the directory the converter wrote.
    file_pattern: glob to use instead of `spec.file_pattern` (`%s` is
      replaced by the split name); the manifest is then not consulted.
    reader: reader class for queue-based providers (default TFRecordReader).

  Returns:
    A `slim.dataset.Dataset`; besides slim's fields it has `shard_sizes`
    (file -> bytes written by the converter; empty without a manifest).

  Raises:
    ValueError: unknown split name.
    DatasetNotFoundError: the directory, the files or the counts are
      missing (SplitFilesNotFoundError for the files).
  """
  _check_directory(spec, split_name, dataset_dir)
  pattern = file_pattern or spec.file_pattern
  pattern = os.path.join(dataset_dir,
                         pattern % split_name if '%s' in pattern else pattern)
  # A custom pattern may name other files: the manifest does not apply.
  manifest = None if file_pattern else _manifest(spec, split_name,
                                                 dataset_dir)
  if not tf.io.gfile.glob(pattern):
    raise dataset_errors.SplitFilesNotFoundError(
        spec.name, split_name, dataset_dir, pattern)
  num_samples, num_classes, shard_sizes = _counts(
      spec, split_name, dataset_dir, manifest, bool(file_pattern))
  labels_to_names = (label_files.read_label_file(dataset_dir)
                     if label_files.has_labels(dataset_dir) else None)
  return slim.dataset.Dataset(
      data_sources=pattern,
      reader=reader or tf.TFRecordReader,
      decoder=spec.decoder_fn(),
      num_samples=num_samples,
      items_to_descriptions=spec.items_to_descriptions,
      num_classes=num_classes,
      labels_to_names=labels_to_names,
      shard_sizes=shard_sizes)


def make_get_split(spec):
  """A dataset module's `get_split`, with slim's signature, bound to `spec`."""
  def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
    return read_split(spec, split_name, dataset_dir, file_pattern, reader)
  get_split.__doc__ = (
      'The slim Dataset of split %s of %s (see dataset_spec.read_split).' %
      (' or '.join(repr(s) for s in sorted(spec.splits_to_sizes)), spec.name))
  return get_split


def num_classes_on_disk(spec, dataset_dir):
  """The class count a conversion of `spec` wrote into `dataset_dir`.

  Read from labels.txt (highest label + 1), else from any split manifest.

  Raises:
    DatasetNotFoundError: neither is there.
  """
  if dataset_dir and label_files.has_labels(dataset_dir):
    labels = label_files.read_label_file(dataset_dir)
    if labels:
      return max(labels) + 1
  for split_name in sorted(spec.splits_to_sizes):
    manifest = (sharded_writer.read_manifest(dataset_dir, spec.name,
                                             split_name)
                if dataset_dir and tf.io.gfile.isdir(dataset_dir) else None)
    if manifest and manifest.get('num_classes'):
      return int(manifest['num_classes'])
  raise dataset_errors.DatasetNotFoundError(
      'The number of classes of %s is set when it is converted and read from '
      'its %s or manifests, but %r holds neither. Pass the directory made by '
      '`%s`.' % (spec.name, label_files.LABELS_FILENAME, dataset_dir,
                 dataset_errors.CONVERT_COMMAND % (spec.name, 'DIR')))
