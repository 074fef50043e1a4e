"""Deterministic stand-in weights for timm models, from a seed (numpy only).

The golden-output generator loads these into a timm model; the tests
regenerate the same arrays without torch and load them into the slim
network through the weight conversion, so both sides run the same weights.
Each array depends only on the seed, its parameter name and its shape.

Values are sized so that activations stay of order one through deep
networks (He-scaled kernels, batch-norm statistics near the identity) and
so that no parameter is trivially 0 or 1: layer-scale factors are far from
timm's 1e-5 start, so attention branches do change the outputs.
"""

import zlib

import numpy as np


def seeded_array(name, shape, seed):
  """The stand-in value of timm parameter or buffer `name`."""
  state = np.random.RandomState(
      (seed * 1000003 + zlib.crc32(name.encode('utf-8'))) % (2 ** 32))
  shape = tuple(int(d) for d in shape)
  leaf = name.rpartition('.')[2]
  if leaf == 'running_var':
    value = state.uniform(0.5, 1.5, shape)
  elif leaf == 'running_mean':
    value = state.normal(0., 0.02, shape)
  elif leaf == 'gamma':
    value = state.uniform(0.3, 1.0, shape)
  elif leaf == 'bias':
    value = state.normal(0., 0.02, shape)
  elif leaf == 'weight' and len(shape) == 1:  # a batch norm's scale
    value = state.uniform(0.6, 1.2, shape)
  elif leaf == 'weight':
    fan_in = int(np.prod(shape[1:]))
    gain = 2. if len(shape) == 4 else 1.
    value = state.normal(0., np.sqrt(gain / fan_in), shape)
  else:
    raise ValueError('No stand-in value for %r.' % name)
  return value.astype(np.float32)


def seeded_state_dict(names, shapes, seed, calibration=None):
  """{name: array} for paired names and shapes.

  Args:
    names, shapes: the parameters and buffers.
    seed: the seed of `seeded_array`.
    calibration: {batch-norm module name: (shift, factor)}; that module's
      running mean is shifted by `shift` and its running variance scaled by
      `factor` (see `calibrated_statistic`).
  """
  state = {}
  for name, shape in zip(names, shapes):
    state[name] = calibrated_statistic(
        name, seeded_array(name, shape, seed), calibration or {})
  return state


def calibrated_statistic(name, value, calibration):
  """A batch norm's seeded running statistic moved to its input's scale.

  Random statistics do not match the activations they normalize, and
  through 20-50 layers the mismatch multiplies until the outputs no longer
  depend on the image. The golden generator measures, for each batch norm
  in order, the mean over channels of its input's per-channel mean (shift)
  and variance (factor) on the golden images, and stores these two numbers
  per layer; the stand-in statistics are then shift + seeded mean and
  factor * seeded variance.
  """
  module, _, leaf = name.rpartition('.')
  if module not in calibration or leaf not in ('running_mean',
                                               'running_var'):
    return value
  shift, factor = calibration[module]
  if leaf == 'running_mean':
    return (value + np.float32(shift)).astype(np.float32)
  return (value * np.float32(factor)).astype(np.float32)


def pack_shapes(shapes):
  """Shapes as two int arrays (ranks, flat dims) for an .npz file."""
  ranks = np.array([len(shape) for shape in shapes], dtype=np.int64)
  dims = np.array([d for shape in shapes for d in shape], dtype=np.int64)
  return ranks, dims


def unpack_shapes(ranks, dims):
  """The inverse of `pack_shapes`."""
  shapes, start = [], 0
  for rank in ranks:
    shapes.append(tuple(int(d) for d in dims[start:start + rank]))
    start += rank
  return shapes


def seeded_images(shape, seed):
  """NHWC images in [-1, 1], the input range of the slim networks.

  Each image is a different smooth pattern (a random plane wave per
  channel, with its own offset) plus a little noise: after the networks'
  global pool, i.i.d. noise images would all look alike.
  """
  state = np.random.RandomState(seed)
  batch, height, width, channels = shape
  rows, cols = np.meshgrid(np.linspace(-1., 1., height),
                           np.linspace(-1., 1., width), indexing='ij')
  images = np.empty(shape)
  for index in range(batch):
    for channel in range(channels):
      frequency = state.uniform(0.5, 4., 2)
      phase, offset = state.uniform(0., 2. * np.pi), state.uniform(-0.6, 0.6)
      wave = np.sin(frequency[0] * rows * np.pi + frequency[1] * cols *
                    np.pi + phase)
      images[index, :, :, channel] = offset + 0.5 * wave
  images += state.uniform(-0.1, 0.1, shape)
  return np.clip(images, -1., 1.).astype(np.float32)
