"""tf.train.Example encoding and decoding with slim's feature keys.

Classification examples hold `image/encoded`, `image/format`,
`image/class/label`, `image/height` and `image/width`; ImageNet examples add
`image/class/synset`, `image/class/text` and `image/object/bbox/*`.
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim


def _as_list(values):
  return list(values) if isinstance(values, (list, tuple)) else [values]


def int64_feature(values):
  """Returns an int64 `tf.train.Feature` from a scalar or a list."""
  return tf.train.Feature(
      int64_list=tf.train.Int64List(value=[int(v) for v in _as_list(values)]))


def bytes_feature(values):
  """Returns a bytes `tf.train.Feature`; `str` values are UTF-8 encoded."""
  values = [v.encode('utf-8') if isinstance(v, str) else bytes(v)
            for v in _as_list(values)]
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def float_feature(values):
  """Returns a float `tf.train.Feature` from a scalar or a list."""
  return tf.train.Feature(
      float_list=tf.train.FloatList(value=[float(v) for v in _as_list(values)]))


# slim's list-only variants; the functions above already take lists too.
def bytes_list_feature(values):
  """Returns a bytes `tf.train.Feature` holding every element of `values`."""
  return bytes_feature(list(values))


def float_list_feature(values):
  """Returns a float `tf.train.Feature` holding every element of `values`."""
  return float_feature(list(values))


# Converters serialize with `SerializeToString(deterministic=True)`: the
# feature map's order is otherwise process-dependent, and resumed conversions
# must write the same bytes as uninterrupted ones.


def image_to_tfexample(image_data, image_format, height, width, class_id):
  """Builds the classification example that every slim dataset uses.

  Args:
    image_data: encoded image bytes.
    image_format: `jpeg` or `png` (as bytes or str).
    height: image height in pixels.
    width: image width in pixels.
    class_id: integer label.

  Returns:
    A `tf.train.Example`.
  """
  return tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': bytes_feature(image_data),
      'image/format': bytes_feature(image_format),
      'image/class/label': int64_feature(class_id),
      'image/height': int64_feature(height),
      'image/width': int64_feature(width),
  }))


def imagenet_to_tfexample(image_data, image_format, height, width, label,
                          synset, text, bboxes=(), filename='', channels=3,
                          colorspace='RGB'):
  """Builds an ImageNet example in the layout of slim's ImageNet TFRecords.

  Args:
    image_data: encoded image bytes.
    image_format: `JPEG` or `PNG`.
    height: image height in pixels.
    width: image width in pixels.
    label: integer label in 1..1000 (0 is the background class).
    synset: WordNet id, e.g. `n01440764`.
    text: human-readable class name.
    bboxes: (xmin, ymin, xmax, ymax) boxes in [0, 1] relative coordinates.
    filename: base name of the source image.
    channels: channels of the decoded image.
    colorspace: colour space of the decoded image.

  Returns:
    A `tf.train.Example`.
  """
  xmin, ymin, xmax, ymax = ([box[i] for box in bboxes] for i in range(4))
  return tf.train.Example(features=tf.train.Features(feature={
      'image/height': int64_feature(height),
      'image/width': int64_feature(width),
      'image/colorspace': bytes_feature(colorspace),
      'image/channels': int64_feature(channels),
      'image/class/label': int64_feature(label),
      'image/class/synset': bytes_feature(synset),
      'image/class/text': bytes_feature(text),
      'image/object/bbox/xmin': float_feature(xmin),
      'image/object/bbox/xmax': float_feature(xmax),
      'image/object/bbox/ymin': float_feature(ymin),
      'image/object/bbox/ymax': float_feature(ymax),
      'image/object/bbox/label': int64_feature([label] * len(bboxes)),
      'image/format': bytes_feature(image_format),
      'image/filename': bytes_feature(filename),
      'image/encoded': bytes_feature(image_data),
  }))


def classification_keys_to_features(default_format='jpeg'):
  """Parsing spec of the classification features (see image_to_tfexample)."""
  return {
      'image/encoded': tf.FixedLenFeature((), tf.string, default_value=''),
      'image/format': tf.FixedLenFeature((), tf.string,
                                         default_value=default_format),
      # A Python default (not a tensor, as in slim) keeps the decoder free
      # of graph state, so it works in any graph and in tf.data functions.
      'image/class/label': tf.FixedLenFeature([], tf.int64, default_value=0),
  }


def classification_decoder(default_format='jpeg', channels=3, shape=None):
  """Returns a TFExampleDecoder giving items `image` (uint8) and `label`."""
  items_to_handlers = {
      'image': slim.tfexample_decoder.Image('image/encoded', 'image/format',
                                            shape=shape, channels=channels),
      'label': slim.tfexample_decoder.Tensor('image/class/label'),
  }
  return slim.tfexample_decoder.TFExampleDecoder(
      classification_keys_to_features(default_format), items_to_handlers)
