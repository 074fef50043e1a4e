"""Image operations shared by every preprocessing module.

Each preprocessing module (inception-style, cifarnet-style) is a short
recipe over these steps, so a crop, a resize or the [-1, 1] scaling exists
in exactly one place. All functions take and return a single 3-D image
`[height, width, channels]`; "float image" means float32 in [0, 1].
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf


def to_float(image):
  """Converts an image to float32 in [0, 1].

  Integer images are rescaled from their full range (uint8: divided by 255);
  float images are assumed to be in [0, 1] already and are only cast.

  Args:
    image: 3-D tensor, uint8 / uint16 / float.

  Returns:
    The float32 image.
  """
  image = tf.convert_to_tensor(image, name='image')
  return tf.image.convert_image_dtype(image, dtype=tf.float32)


def prepare_channels(image, use_grayscale=False):
  """Gives an image the channel count the network expects.

  Single-channel images (MNIST, grayscale JPEGs) are expanded to RGB, since
  colour distortion and the 3-channel nets need three; with `use_grayscale`
  the result is a single luminance channel instead.

  Args:
    image: 3-D float image with 1 or 3 channels (or an unknown count).
    use_grayscale: whether to return a 1-channel image.

  Returns:
    The image with 3 channels, or 1 when `use_grayscale`.

  Raises:
    ValueError: if the image does not have rank 3 or has a channel count
      other than 1 or 3.
  """
  shape = image.get_shape()
  if shape.ndims is not None and shape.ndims != 3:
    raise ValueError(
        'Preprocessing expects a single image [height, width, channels]; '
        'got a tensor of shape %s. Apply the preprocessing function per '
        'image (e.g. inside tf.data map), not to a batch.' % shape)
  channels = shape.as_list()[-1] if shape.ndims else None
  if channels not in (None, 1, 3):
    raise ValueError('Preprocessing expects 1 or 3 channels, got %d (image '
                     'shape %s). Decode images with channels=3.' %
                     (channels, shape))
  if use_grayscale:
    if channels == 1:
      return image
    return tf.image.rgb_to_grayscale(image)
  if channels == 1:
    return tf.image.grayscale_to_rgb(image)
  return image


def central_crop(image, central_fraction):
  """Keeps the centred window of `central_fraction` of each image side.

  The window is the one `tf.image.central_crop` computes (its offset rounded
  down), which the released checkpoints were evaluated with.

  Args:
    image: 3-D image.
    central_fraction: fraction of each side to keep, in (0, 1].

  Returns:
    The cropped image.

  Raises:
    ValueError: if `central_fraction` is not in (0, 1].
  """
  if not 0.0 < central_fraction <= 1.0:
    raise ValueError('central_fraction must be in (0, 1], got %r.' %
                     (central_fraction,))
  if central_fraction == 1.0:
    return image
  return tf.image.central_crop(image, central_fraction=central_fraction)


def resize(image, height, width, method=tf.image.ResizeMethod.BILINEAR):
  """Resizes one image with the legacy (TF 1) resize semantics.

  Bilinear uses `align_corners=False, half_pixel_centers=False` on both
  TensorFlow stacks, the sampling the released checkpoints were evaluated
  with (TF 2's `tf.image.resize` samples at pixel centres instead).

  Args:
    image: 3-D float image.
    height: output height (int or scalar tensor).
    width: output width (int or scalar tensor).
    method: a `tf.image.ResizeMethod` (v1) value.

  Returns:
    The float32 image `[height, width, channels]`.
  """
  batch = tf.expand_dims(image, 0)
  if method == tf.image.ResizeMethod.BILINEAR:
    batch = tf.image.resize_bilinear(batch, [height, width],
                                     align_corners=False)
  else:
    batch = tf.image.resize_images(batch, [height, width], method=method)
  return tf.squeeze(batch, [0])


def scale_to_minus_one_one(image):
  """Maps a float image from [0, 1] to [-1, 1] (the MobileNet input range)."""
  return tf.multiply(tf.subtract(image, 0.5), 2.0)


def random_flip_left_right(image):
  """Mirrors the image horizontally with probability 1/2."""
  return tf.image.random_flip_left_right(image)


def random_branch(image, branch_fns):
  """Applies one of `branch_fns` to `image`, chosen uniformly at random.

  Args:
    image: the input tensor.
    branch_fns: a sequence of functions `image -> image` whose outputs share
      dtype and shape.

  Returns:
    The output of the chosen function.
  """
  if len(branch_fns) == 1:
    return branch_fns[0](image)
  index = tf.random.uniform([], maxval=len(branch_fns), dtype=tf.int32)
  branches = [(lambda fn=fn: fn(image)) for fn in branch_fns]
  return tf.switch_case(index, branches)
