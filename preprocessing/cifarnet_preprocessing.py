"""Preprocessing for small (32x32-class) images, e.g. CIFAR-10 and MNIST.

Training: resize to the output size if needed, pad each side with
`PADDING` black pixels, take a random crop of the output size and mirror it
at random. Evaluation: only the resize. Both end with scaling to [-1, 1],
the range the MobileNets expect.
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from preprocessing import image_ops

# Pixels of padding added on each side before the random training crop.
PADDING = 4


def _resize_if_needed(image, height, width):
  """Resizes (bilinear) unless the static shape already matches."""
  if image.get_shape().as_list()[:2] == [height, width]:
    return image
  return image_ops.resize(image, height, width)


def _random_window(image, height, width, channels, padding):
  """A random `[height, width]` window of the image framed in black.

  The frame is `padding` pixels wide on each side, so for an image already
  of the output size this shifts it by up to `padding` pixels along each
  axis, filling with black what moves into view.
  """
  framed = image
  if padding > 0:
    framed = tf.pad(image, [[padding] * 2, [padding] * 2, [0, 0]])
  return tf.random_crop(framed, [height, width, channels])


def preprocess_for_train(image, output_height, output_width, padding=PADDING,
                         use_grayscale=False):
  """Pads, randomly crops and mirrors one image for training.

  Args:
    image: 3-D image, uint8 or float in [0, 1], 1 or 3 channels.
    output_height: output height.
    output_width: output width.
    padding: pixels of padding on each side before the crop.
    use_grayscale: output a single luminance channel.

  Returns:
    A float32 image `[output_height, output_width, channels]` in [-1, 1].
  """
  with tf.name_scope('cifarnet_train', values=[image]):
    image = image_ops.prepare_channels(image_ops.to_float(image),
                                       use_grayscale=use_grayscale)
    resized = _resize_if_needed(image, output_height, output_width)
    window = _random_window(resized, output_height, output_width,
                            1 if use_grayscale else 3, padding)
    return image_ops.scale_to_minus_one_one(
        image_ops.random_flip_left_right(window))


def preprocess_for_eval(image, output_height, output_width,
                        use_grayscale=False):
  """Resizes (if needed) and scales one image for evaluation.

  Args:
    image: 3-D image, uint8 or float in [0, 1], 1 or 3 channels.
    output_height: output height.
    output_width: output width.
    use_grayscale: output a single luminance channel.

  Returns:
    A float32 image `[output_height, output_width, channels]` in [-1, 1].
  """
  with tf.name_scope('cifarnet_eval', values=[image]):
    image = image_ops.prepare_channels(image_ops.to_float(image),
                                       use_grayscale=use_grayscale)
    image = _resize_if_needed(image, output_height, output_width)
    return image_ops.scale_to_minus_one_one(image)


def preprocess_image(image, output_height, output_width, is_training=False,
                     use_grayscale=False, bbox=None, padding=PADDING):
  """Runs the small-image training or evaluation recipe on one image.

  Args:
    image: 3-D image, uint8 or float in [0, 1], 1 or 3 channels.
    output_height: output height.
    output_width: output width.
    is_training: pad, crop and flip for training rather than evaluation.
    use_grayscale: output a single luminance channel.
    bbox: accepted for a uniform interface with the inception-style
      preprocessing (the input pipeline passes dataset boxes); unused, since
      small images are not cropped around objects.
    padding: training only: pixels of padding before the random crop.

  Returns:
    A float32 image `[output_height, output_width, channels]` in [-1, 1].
  """
  del bbox  # Unused: see the docstring.
  if is_training:
    return preprocess_for_train(image, output_height, output_width,
                                padding=padding, use_grayscale=use_grayscale)
  return preprocess_for_eval(image, output_height, output_width,
                             use_grayscale=use_grayscale)
