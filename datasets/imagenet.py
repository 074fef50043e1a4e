"""Reads ImageNet (ILSVRC-2012) TFRecords made by convert_imagenet.py.

Labels are 1..1000 in the order of the sorted synset list; 0 is the
background class, so the dataset has 1001 classes like the released
checkpoints. Create the TFRecords from the raw images with
  python download_and_convert_data.py --dataset_name=imagenet \
      --source_dir=RAW --dataset_dir=DIR
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from datasets import dataset_errors
from datasets import dataset_spec
from datasets import label_files

_FILE_PATTERN = '%s-*'

SPLITS_TO_SIZES = {'train': 1281167, 'validation': 50000}
_SPLITS_TO_SIZES = SPLITS_TO_SIZES  # slim's name in this module.

_NUM_CLASSES = 1001

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'uint8 RGB photo; height and width differ per photo.',
    'label': 'Synset index 1-1000 in sorted-synset order; 0 is background.',
    'label_text': 'Human-readable synset name (UTF-8 bytes).',
    'object/bbox': 'float [N, 4] boxes: ymin, xmin, ymax, xmax in [0, 1].',
    'object/label': 'int64 [N]: the class of each box (the image label).',
}


def _decoder():
  """Parses ImageNet examples, boxes included (see imagenet_to_tfexample)."""
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
      'image': slim.tfexample_decoder.Image('image/encoded', 'image/format'),
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
        '(with the synset list and imagenet_metadata.txt in its %s for '
        'human-readable names).' %
        (label_files.LABELS_FILENAME, dataset_dir,
         dataset_errors.CONVERT_COMMAND % ('imagenet', dataset_dir),
         dataset_errors.ref('source_dir')))
  return label_files.read_label_file(dataset_dir)


SPEC = dataset_spec.DatasetSpec(
    name='imagenet', file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=_NUM_CLASSES,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS, decoder_fn=_decoder,
    background_classes=1)

get_split = dataset_spec.make_get_split(SPEC)
