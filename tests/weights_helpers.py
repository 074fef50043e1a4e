"""Seeded Keras and timm MobileNet weights for the weight-conversion tests.

Keras models are built with weights=None (nothing is downloaded) and filled
by `seed_keras_model`; timm weights come from the golden files' tensor
names and shapes through tests/golden/seeded_timm_weights.py, so no test needs
torch.
"""

import json
import os
import zlib

import numpy as np
import safetensors.numpy

from tests.golden import seeded_timm_weights

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'golden')


def keras_module():
  try:
    import tf_keras as keras  # pylint: disable=g-import-not-at-top
  except ImportError:
    from tensorflow import keras  # pylint: disable=g-import-not-at-top
  return keras


def keras_graph_session(graph):
  """A session on `graph` for Keras in graph mode, TensorFlow's graph
  optimizer (Grappler) off.

  Keras seeds and saves weights with a session run per layer, and each new
  run is optimized anew: on TF 2.21 that made seeding and saving a
  MobileNet 3-7x slower. The arithmetic is the same without it.
  """
  # pylint: disable=g-import-not-at-top
  from core import tf_compat  # noqa: F401
  import tensorflow.compat.v1 as tf
  config = tf.ConfigProto()
  config.graph_options.rewrite_options.disable_meta_optimizer = True
  return tf.Session(graph=graph, config=config)


def seeded_keras_weight(weight, is_head, seed=0):
  """The seeded value of a Keras weight (`name` '<layer>/<leaf>', `shape`)."""
  name = weight.name.split(':')[0]
  rng = np.random.RandomState((zlib.crc32(name.encode('utf8')) + seed) %
                              (2 ** 32))
  shape = tuple(weight.shape)
  leaf = name.rpartition('/')[2]
  if leaf in ('kernel', 'depthwise_kernel'):
    fan_in = int(np.prod(shape[:2] if leaf == 'depthwise_kernel'
                         else shape[:-1]))
    scale = seeded_timm_weights.CLASSIFIER_SCALE if is_head else 2.0
    value = rng.normal(0.0, np.sqrt(scale / fan_in), shape)
  elif leaf in ('gamma', 'moving_variance'):
    value = rng.uniform(0.5, 1.5, shape)
  else:
    value = rng.normal(0.0, 0.1, shape)
  return value.astype(np.float32)


def seed_keras_model(model, seed=0):
  """Fills every weight of `model` from `seed` (the classifier kept small)."""
  weighted = [layer for layer in model.layers if layer.weights]
  # One batch_set_value for the whole model: a set_weights call per layer
  # costs a graph extension and a session run each (20 s for V1 in graph mode).
  pairs = [(weight, seeded_keras_weight(weight, layer is weighted[-1], seed))
           for layer in weighted for weight in layer.weights]
  keras_module().backend.batch_set_value(pairs)


def timm_golden(timm_name, kind='timm'):
  """The golden file `<kind>_<timm_name>.npz` as a dict (shapes parsed).

  kind: 'timm' (timm's outputs on [-1, 1] images) or 'timm_pipeline' (on a
  picture prepared as timm prepares images).
  """
  with np.load(os.path.join(GOLDEN_DIR, '%s_%s.npz' % (kind, timm_name))) as data:
    golden = {key: data[key] for key in data.files}
  golden['shapes'] = json.loads(str(golden['shapes']))
  golden['image_size'] = int(golden['image_size'])
  return golden


def write_timm_safetensors(timm_name, path, kind='timm'):
  """Writes the seeded weights of the golden `timm_name` to `path`."""
  golden = timm_golden(timm_name, kind)
  safetensors.numpy.save_file(
      seeded_timm_weights.seeded_state_dict(golden['shapes']), path)
  return golden
