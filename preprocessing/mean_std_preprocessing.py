"""Inception-style crops with ImageNet's mean/std normalization.

The geometry is `inception_preprocessing`'s (random crop, flip and colour
jitter to train; central crop and bilinear resize to evaluate); only the
value range differs: each channel becomes (x - mean) / std with x in [0, 1]
and ImageNet's statistics, the input that timm's (and torchvision's)
PyTorch-trained MobileNets were trained on, instead of [-1, 1].
"""

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np

from preprocessing import inception_preprocessing

# Per RGB channel, of ImageNet's training images in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images_minus_one_one, channels):
  """[-1, 1] images -> (x - mean) / std with x = (images + 1) / 2.

  One gray channel takes the means of the three channels' statistics.
  """
  mean = np.asarray(IMAGENET_MEAN, np.float32)
  std = np.asarray(IMAGENET_STD, np.float32)
  if channels == 1:
    mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
  unit = (images_minus_one_one + 1.0) * 0.5
  return (unit - mean) / std


def preprocess_image(image, height, width, is_training=False,
                     use_grayscale=False, **kwargs):
  """`inception_preprocessing.preprocess_image`, then ImageNet mean/std.

  Returns:
    A float32 image `[height, width, channels]`, normalized per channel.
  """
  image = inception_preprocessing.preprocess_image(
      image, height, width, is_training=is_training,
      use_grayscale=use_grayscale, **kwargs)
  return normalize(image, 1 if use_grayscale else 3)
