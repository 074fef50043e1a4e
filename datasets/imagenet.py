"""Reads ImageNet (ILSVRC-2012) TFRecords made by convert_imagenet.py.

Labels are 1..1000 in the order of the sorted synset list; 0 is the
background class, so the dataset has 1001 classes like the released
checkpoints. Create the TFRecords from the raw images with
  python download_and_convert_data.py --dataset_name=imagenet \
      --source_dir=RAW --dataset_dir=DIR
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from datasets import dataset_errors
from datasets import example_codecs
from datasets import label_files
from datasets import split_reader

_FILE_PATTERN = '%s-*'

SPLITS_TO_SIZES = {'train': 1281167, 'validation': 50000}

_NUM_CLASSES = 1001

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'A colour image of varying height and width.',
    'label': 'The label id of the image, integer between 0 and 1000',
    'label_text': 'The text of the label.',
    'object/bbox': 'A list of bounding boxes.',
    'object/label': 'A list of labels, one per each object.',
}


def _decoder():
  keys_to_features = {
      'image/encoded': tf.FixedLenFeature((), tf.string, default_value=''),
      'image/format': tf.FixedLenFeature((), tf.string, default_value='jpeg'),
      'image/class/label': tf.FixedLenFeature(
          [], dtype=tf.int64, default_value=-1),
      'image/class/text': tf.FixedLenFeature(
          [], dtype=tf.string, default_value=''),
      'image/object/bbox/xmin': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/ymin': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/xmax': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/ymax': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/label': tf.VarLenFeature(dtype=tf.int64),
  }
  items_to_handlers = {
      'image': slim.tfexample_decoder.Image('image/encoded',
                                               'image/format'),
      'label': slim.tfexample_decoder.Tensor('image/class/label'),
      'label_text': slim.tfexample_decoder.Tensor('image/class/text'),
      'object/bbox': slim.tfexample_decoder.BoundingBox(
          ['ymin', 'xmin', 'ymax', 'xmax'], 'image/object/bbox/'),
      'object/label': slim.tfexample_decoder.Tensor('image/object/bbox/label'),
  }
  return slim.tfexample_decoder.TFExampleDecoder(keys_to_features,
                                                 items_to_handlers)


def create_readable_names_for_imagenet_labels(dataset_dir):
  """Returns {label: human-readable name} for the 1001 ImageNet labels.

  Reads the labels.txt written at conversion (offline; the original slim
  function downloaded the synset lists instead).

  Args:
    dataset_dir: directory of the converted ImageNet TFRecords.

  Returns:
    dict from integer label (0 = background) to name.

  Raises:
    ValueError: there is no labels.txt in `dataset_dir`.
  """
  if not label_files.has_labels(dataset_dir):
    raise dataset_errors.DatasetNotFoundError(
        'No %s in %r. It is written when ImageNet is converted with `%s` '
        '(with the synset list and imagenet_metadata.txt in --source_dir for '
        'human-readable names).' %
        (label_files.LABELS_FILENAME, dataset_dir,
         dataset_errors.CONVERT_COMMAND % ('imagenet', dataset_dir)))
  return label_files.read_label_file(dataset_dir)


def get_split(split_name, dataset_dir, file_pattern=None, reader=None):
  """Gets a dataset tuple with instructions for reading ImageNet.

  Args:
    split_name: `train` or `validation`.
    dataset_dir: the directory holding the TFRecords.
    file_pattern: glob overriding the default; `%s` becomes the split name.
    reader: reader class for queue-based data providers.

  Returns:
    A `slim.dataset.Dataset`; its decoder gives `image`, `label`,
    `label_text`, `object/bbox` ([N, 4] ymin, xmin, ymax, xmax in [0, 1]) and
    `object/label`.

  Raises:
    ValueError: unknown split, or the files are missing.
  """
  return split_reader.make_split_dataset(
      'imagenet', split_name, dataset_dir, file_pattern, reader, _FILE_PATTERN,
      SPLITS_TO_SIZES, _NUM_CLASSES, _decoder(), _ITEMS_TO_DESCRIPTIONS)
