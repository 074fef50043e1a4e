"""Converts raw ILSVRC-2012 images to sharded TFRecords (train-00000-of-01024).

Reads the standard raw layout under `source_dir`:

  train/n01440764/n01440764_10026.JPEG ...     one folder per synset
  validation/ILSVRC2012_val_00000001.JPEG ...  flat, labelled by
  imagenet_2012_validation_synset_labels.txt   (one synset per line, in
                                                sorted file-name order)
  (or validation/<synset>/*.JPEG, which needs no labels file)
  imagenet_lsvrc_2015_synsets.txt              the 1000 synsets, one a line
  imagenet_metadata.txt                        optional: synset<TAB>names
  imagenet_2012_bounding_boxes.csv             optional: file,xmin,ymin,xmax,
                                               ymax (relative coordinates)

Label i (1..1000) is the i-th synset of the list; 0 is the background class.
Examples carry the slim ImageNet keys (image/class/synset, image/class/text,
image/object/bbox/*). CMYK and PNG files in the training set are re-encoded
so that TensorFlow can decode every record.
"""


import collections
import os

from absl import logging

from datasets import convert_image_folder
from datasets import dataset_errors
from datasets import example_codecs
from datasets import image_files
from datasets import label_files
from datasets import sharded_writer

DATASET_NAME = 'imagenet'
SPLITS = ('train', 'validation')
DEFAULT_SHARDS = {'train': 1024, 'validation': 128}
SYNSETS_FILE = 'imagenet_lsvrc_2015_synsets.txt'
METADATA_FILE = 'imagenet_metadata.txt'
VALIDATION_LABELS_FILE = 'imagenet_2012_validation_synset_labels.txt'
BOUNDING_BOX_FILE = 'imagenet_2012_bounding_boxes.csv'


def shard_name(unused_dataset_name, split_name, index, num_shards):
  """slim's ImageNet shard names, e.g. `validation-00003-of-00128`."""
  return '%s-%05d-of-%05d' % (split_name, index, num_shards)


def _read_lines(path, what):
  try:
    with open(path) as f:
      return [line.strip() for line in f if line.strip()]
  except (IOError, OSError) as e:
    raise dataset_errors.DatasetNotFoundError(
        'Cannot read the ImageNet %s %s (%s).' % (what, path, e))


def read_synsets(path, train_dir):
  """The synset list; from the train folders when the file is missing."""
  if path and os.path.exists(path):
    synsets = _read_lines(path, 'synset list')
  else:
    if not os.path.isdir(train_dir):
      raise dataset_errors.DatasetNotFoundError(
          'Neither the synset list %s nor the folder %s exists; %s '
          'must hold the raw ImageNet layout (train/<synset>/*.JPEG, ...).' %
          (path, train_dir, dataset_errors.ref('source_dir')))
    logging.warning('No synset list %s; using the folders of %s.', path,
                    train_dir)
    synsets = sorted(d for d in os.listdir(train_dir)
                     if os.path.isdir(os.path.join(train_dir, d)))
  if len(set(synsets)) != len(synsets):
    raise dataset_errors.DatasetError('%s lists a synset twice.' % path)
  return synsets


def read_human_names(path, synsets):
  """synset -> human-readable name (the synset itself when unknown)."""
  names = {}
  if path and os.path.exists(path):
    for line in _read_lines(path, 'metadata file'):
      synset, _, name = line.partition('\t')
      names[synset] = name.strip()
  return {s: names.get(s) or s for s in synsets}


def read_bounding_boxes(path):
  """File base name -> list of (xmin, ymin, xmax, ymax), clipped to [0, 1].

  Empty and degenerate boxes are dropped.
  """
  boxes = collections.defaultdict(list)
  if not path:
    return boxes
  for number, line in enumerate(_read_lines(path, 'bounding-box file'), 1):
    parts = line.split(',')
    try:
      coords = [min(max(float(v), 0.), 1.) for v in parts[1:5]]
    except ValueError:
      coords = []
    if len(parts) != 5 or len(coords) != 4:
      raise dataset_errors.DatasetError(
          '%s line %d is %r; expected `file,xmin,ymin,xmax,ymax`.' %
          (path, number, line))
    xmin, ymin, xmax, ymax = coords
    if xmin < xmax and ymin < ymax:
      boxes[os.path.basename(parts[0].strip())].append(tuple(coords))
  return boxes


def _list_files(directory):
  return sorted(f for f in os.listdir(directory)
                if not f.startswith('.') and
                os.path.isfile(os.path.join(directory, f)))


def list_split(split_dir, synsets, labels_file=None):
  """(relative path, synset) of a split's images.

  Args:
    split_dir: `train` or `validation` folder.
    synsets: the synset list.
    labels_file: for a flat folder, the file giving each image's synset.

  Returns:
    sorted list of (path relative to split_dir, synset).

  Raises:
    DatasetError: unknown synsets, or labels that do not match the files.
  """
  if not os.path.isdir(split_dir):
    raise dataset_errors.DatasetNotFoundError(
        'ImageNet folder %s does not exist; %s must hold train/ '
        'and validation/.' % (split_dir, dataset_errors.ref('source_dir')))
  known = set(synsets)
  subdirs = sorted(d for d in os.listdir(split_dir)
                   if os.path.isdir(os.path.join(split_dir, d)))
  if subdirs:
    unknown = [d for d in subdirs if d not in known]
    if unknown:
      raise dataset_errors.DatasetError(
          '%s has folders %s that are not in the synset list.' %
          (split_dir, ', '.join(unknown[:5])))
    _, items = convert_image_folder.list_class_folders(split_dir)
    return [(path, subdirs[label]) for path, label in items]
  files = _list_files(split_dir)
  if not labels_file or not os.path.exists(labels_file):
    raise dataset_errors.DatasetNotFoundError(
        '%s holds images without synset folders, so it needs the '
        'ground-truth labels file %s (one synset per line, in sorted '
        'file-name order); pass it as %s.' %
        (split_dir, labels_file,
         dataset_errors.ref('validation_labels_file')))
  labels = _read_lines(labels_file, 'validation labels')
  if len(labels) != len(files):
    raise dataset_errors.DatasetError(
        '%s has %d labels but %s has %d images; they must match one to one.'
        % (labels_file, len(labels), split_dir, len(files)))
  unknown = sorted(set(labels) - known)
  if unknown:
    raise dataset_errors.DatasetError(
        '%s has synsets %s that are not in the synset list.' %
        (labels_file, ', '.join(unknown[:5])))
  return list(zip(files, labels))


def run(dataset_dir, source_dir, synsets_file=None, metadata_file=None,
        validation_labels_file=None, bounding_box_file=None, num_workers=None,
        train_shards=None, validation_shards=None):
  """Converts the raw ImageNet layout under `source_dir` into `dataset_dir`.

  Args:
    dataset_dir: output directory.
    source_dir: raw layout (see the module docstring).
    synsets_file: default `source_dir`/imagenet_lsvrc_2015_synsets.txt;
      without it, the folders of train/ are the synsets.
    metadata_file: default `source_dir`/imagenet_metadata.txt (optional).
    validation_labels_file: default `source_dir`/
      imagenet_2012_validation_synset_labels.txt (needed for a flat
      validation folder).
    bounding_box_file: default `source_dir`/imagenet_2012_bounding_boxes.csv
      when it exists.
    num_workers: parallel shard writers.
    train_shards: default 1024.
    validation_shards: default 128.

  Returns:
    dict split -> manifest.
  """
  if not source_dir or not os.path.isdir(source_dir):
    raise dataset_errors.DatasetNotFoundError(
        '%s %r does not exist; it must hold the raw ImageNet '
        'layout (train/<synset>/*.JPEG, validation/, %s).' %
        (dataset_errors.ref('source_dir'), source_dir, SYNSETS_FILE))
  def default(path, name):
    return path or os.path.join(source_dir, name)
  synsets = read_synsets(default(synsets_file, SYNSETS_FILE),
                         os.path.join(source_dir, 'train'))
  names = read_human_names(default(metadata_file, METADATA_FILE), synsets)
  box_path = bounding_box_file or (
      os.path.join(source_dir, BOUNDING_BOX_FILE)
      if os.path.exists(os.path.join(source_dir, BOUNDING_BOX_FILE)) else None)
  boxes = read_bounding_boxes(box_path)
  labels = {synset: i + 1 for i, synset in enumerate(synsets)}
  shards = {'train': train_shards or DEFAULT_SHARDS['train'],
            'validation': validation_shards or DEFAULT_SHARDS['validation']}
  num_classes = len(synsets) + 1
  manifests = {}
  for split_name in SPLITS:
    split_dir = os.path.join(source_dir, split_name)
    items = list_split(split_dir, synsets, default(validation_labels_file,
                                                   VALIDATION_LABELS_FILE))
    logging.info('Found %d %s images.', len(items), split_name)

    def example_fn(item, split_dir=split_dir):
      relative, synset = item
      data, image_format, height, width = image_files.encode_image_file(
          os.path.join(split_dir, relative))
      filename = os.path.basename(relative)
      return example_codecs.imagenet_to_tfexample(
          data, image_format.upper(), height, width, labels[synset], synset,
          names[synset], boxes.get(filename, ()),
          filename=filename).SerializeToString(deterministic=True)

    manifests[split_name] = sharded_writer.write_split(
        dataset_dir, DATASET_NAME, split_name, items, example_fn,
        shards[split_name], num_classes, num_workers=num_workers,
        plan_info={'synsets': len(synsets), 'boxes': len(boxes)},
        shard_name_fn=shard_name)
  labels_to_names = {0: 'background'}
  labels_to_names.update({labels[s]: names[s] for s in synsets})
  label_files.write_label_file(labels_to_names, dataset_dir)
  return manifests
