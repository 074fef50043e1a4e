"""Writes a seeded Keras 3 MobileNet `.weights.h5` and its outputs.

Keras 3 runs eagerly, which the project's TF 2 stack turns off
(core/tf_compat.py), so the tests run this file as a script of its own:

    python tests/keras3_weights.py OUT.weights.h5 OUT.npz FUNCTION ALPHA SIZE

e.g. `MobileNetV2 0.75 32`: keras.applications.FUNCTION(weights=None,
alpha=ALPHA), its weights seeded as tests/weights_helpers.py seeds tf-keras
models, saved with save_weights; OUT.npz holds the seeded images and the
model's probabilities on them.
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

from tests import weights_helpers  # noqa: E402
from tests.golden import seeded_timm_weights  # noqa: E402

_Weight = collections.namedtuple('_Weight', ['name', 'shape'])


def main(weights_path, outputs_path, function, alpha, size):
  model = getattr(keras.applications, function)(
      weights=None, alpha=float(alpha), input_shape=(size, size, 3))
  weighted = [layer for layer in model.layers if layer.weights]
  for layer in weighted:
    layer.set_weights([
        weights_helpers.seeded_keras_weight(
            _Weight('%s/%s' % (layer.name, weight.name), weight.shape),
            layer is weighted[-1])
        for weight in layer.weights])
  model.save_weights(weights_path)
  images = seeded_timm_weights.seeded_images(size)
  np.savez(outputs_path, images=images,
           probabilities=model.predict(images, verbose=0),
           keras_version=keras.__version__)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
