"""Seeded MobileNet weights that numpy alone reproduces from names and shapes.

The golden generator (make_timm_goldens.py, run by hand with torch and timm)
and the tests (numpy only) both call `seeded_value`, so a test rebuilds
exactly the weights the generator gave the timm model from the tensor names
and shapes the golden file lists. Scales keep activations of a deep random
network in a sane range: He-scaled kernels, batch-norm scales and variances
around 1.
"""

import zlib

import numpy as np


CLASSIFIER_SCALE = 1e-3


def seeded_value(name, shape, seed=0):
  """A float32 array for the timm tensor `name` of `shape`, from `seed`."""
  rng = np.random.RandomState((zlib.crc32(name.encode('utf8')) + seed) %
                              (2 ** 32))
  leaf = name.rpartition('.')[2]
  shape = tuple(int(d) for d in shape)
  if leaf == 'weight' and len(shape) >= 2:
    fan_in = int(np.prod(shape[1:]))
    # A small classifier keeps the logits of random features moderate, so
    # the probabilities are not all 0 or 1 and comparing them means much.
    scale = CLASSIFIER_SCALE if name.startswith('classifier') else 2.0
    value = rng.normal(0.0, np.sqrt(scale / fan_in), shape)
  elif leaf in ('running_var',) or (leaf == 'weight' and len(shape) == 1):
    value = rng.uniform(0.5, 1.5, shape)
  else:  # biases, batch-norm offsets and means
    value = rng.normal(0.0, 0.1, shape)
  return value.astype(np.float32)


def seeded_state_dict(shapes, seed=0):
  """{name: array} for an ordered list of (name, shape)."""
  return {name: seeded_value(name, shape, seed) for name, shape in shapes}


def seeded_images(size, batch=2, seed=1):
  """NHWC float32 images in [-1, 1]."""
  return np.random.RandomState(seed).uniform(
      -1.0, 1.0, (batch, size, size, 3)).astype(np.float32)


def seeded_uint8_image(size, seed=2):
  """An HxWx3 uint8 picture: smooth colour gradients plus a little noise.

  Smooth, so a resize or crop by the preprocessing changes little and the
  image means something to a network after its global pool.
  """
  rng = np.random.RandomState(seed)
  rows, cols = np.meshgrid(np.linspace(0.0, 1.0, size),
                           np.linspace(0.0, 1.0, size), indexing='ij')
  channels = [rng.uniform(0.2, 0.8) + rng.uniform(-0.4, 0.4) * rows +
              rng.uniform(-0.4, 0.4) * cols for _ in range(3)]
  image = np.stack(channels, -1) + rng.uniform(-0.05, 0.05,
                                               (size, size, 3))
  return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
