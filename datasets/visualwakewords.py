"""Visual Wake Words: COCO images labelled "has a <class>" (1) or not (0).

The labels follow slim's rule (see convert_visualwakewords.py): an image is
the foreground class when one of its boxes of that COCO category covers
strictly more than the area threshold of the image (0.5 % for the person
detector); everything else is background. Create the TFRecords with

  python download_and_convert_data.py --dataset_name=visualwakewords \
      --dataset_dir=DIR --foreground_class_of_interest=person \
      --small_object_area_threshold=0.005
"""

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from datasets import dataset_spec

_FILE_PATTERN = '%s.record-*'

# COCO 2014's train and val images, as slim publishes them.
SPLITS_TO_SIZES = {'train': 82783, 'val': 40504}
_SPLITS_TO_SIZES = SPLITS_TO_SIZES  # slim's name in this module.

_NUM_CLASSES = 2

LABELS_FILENAME = 'labels.txt'

_ITEMS_TO_DESCRIPTIONS = {
    'image': 'The COCO photo as stored in the archive (JPEG bytes).',
    'label': '1 when the foreground class is in the image, else 0.',
    'object/bbox': 'float [N, 4] boxes (ymin, xmin, ymax, xmax in [0, 1]) '
                   'of the foreground objects that decided the label.',
}


def _decoder():
  """Parses the examples convert_visualwakewords writes (slim's keys)."""
  keys_to_features = {
      'image/encoded': tf.FixedLenFeature((), tf.string, default_value=''),
      'image/format': tf.FixedLenFeature((), tf.string, default_value='jpeg'),
      'image/class/label': tf.FixedLenFeature(
          [], dtype=tf.int64, default_value=-1),
      'image/object/bbox/xmin': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/ymin': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/xmax': tf.VarLenFeature(dtype=tf.float32),
      'image/object/bbox/ymax': tf.VarLenFeature(dtype=tf.float32),
  }
  items_to_handlers = {
      'image': slim.tfexample_decoder.Image('image/encoded', 'image/format'),
      'label': slim.tfexample_decoder.Tensor('image/class/label'),
      'object/bbox': slim.tfexample_decoder.BoundingBox(
          ['ymin', 'xmin', 'ymax', 'xmax'], 'image/object/bbox/'),
  }
  return slim.tfexample_decoder.TFExampleDecoder(keys_to_features,
                                                 items_to_handlers)


SPEC = dataset_spec.DatasetSpec(
    name='visualwakewords', file_pattern=_FILE_PATTERN,
    splits_to_sizes=SPLITS_TO_SIZES, num_classes=_NUM_CLASSES,
    items_to_descriptions=_ITEMS_TO_DESCRIPTIONS, decoder_fn=_decoder,
    background_classes=0)

get_split = dataset_spec.make_get_split(SPEC)
