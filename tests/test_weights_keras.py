"""Keras MobileNet weights <-> slim checkpoints, compared with Keras itself.

Keras models are built with weights=None and seeded (nothing downloaded).
TF 1.15's Keras has MobileNet and MobileNetV2 but no MobileNetV3, so the V3
cases and the export to Keras (weights/keras_export.py) run on TF 2 only;
the .h5 reading runs on both stacks.
"""

import os

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from tests import weights_helpers
from tests.golden import seeded_timm_weights
from weights import convert
from weights import layers as layers_lib
from weights import slim_network

IMAGE_SIZE = 64
keras = weights_helpers.keras_module()
HAS_V3 = hasattr(keras.applications, 'MobileNetV3Large')
needs_v3 = pytest.mark.skipif(
    not HAS_V3, reason='TF 1.15\'s Keras has no MobileNetV3')

# (keras.applications function, its arguments, the slim factory name)
CASES = {
    'v1_050': ('MobileNet', {'alpha': 0.5}, 'mobilenet_v1_050'),
    'v2_035': ('MobileNetV2', {'alpha': 0.35}, 'mobilenet_v2_035'),
    'v2_140': ('MobileNetV2', {'alpha': 1.4}, 'mobilenet_v2_140'),
    'v3_large_075': ('MobileNetV3Large', {'alpha': 0.75,
                                          'include_preprocessing': False},
                     'mobilenet_v3_large_075'),
    'v3_small_minimalistic': ('MobileNetV3Small', {
        'minimalistic': True, 'include_preprocessing': False},
                              'mobilenet_v3_small_minimalistic'),
}


def keras_case(case, path, whole_model=False):
  """Builds and seeds a Keras case, saves it to `path`; returns its outputs."""
  function, kwargs, model_name = CASES[case]
  images = seeded_timm_weights.seeded_images(IMAGE_SIZE)
  with tf.Graph().as_default():
    model = getattr(keras.applications, function)(
        weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), **kwargs)
    weights_helpers.seed_keras_model(model)
    if whole_model:
      model.save(path)
    else:
      model.save_weights(path)
    probabilities = model.predict(images, verbose=0)
  return model_name, images, probabilities


@pytest.mark.parametrize('case', [
    'v1_050',
    pytest.param('v2_035', marks=pytest.mark.slow),
    pytest.param('v2_140', marks=pytest.mark.slow),
    pytest.param('v3_large_075', marks=[needs_v3, pytest.mark.slow]),
    pytest.param('v3_small_minimalistic', marks=[needs_v3, pytest.mark.slow])])
def test_converted_keras_weights_give_keras_outputs(case, tmp_path):
  source = str(tmp_path / 'keras.h5')
  # A whole-model file for one case: its config carries the epsilons.
  model_name, images, expected = keras_case(case, source,
                                            whole_model=case == 'v2_035')
  result = convert.convert('keras', source, model_name,
                           str(tmp_path / 'slim' / 'model.ckpt'),
                           image_size=IMAGE_SIZE)
  logits, probabilities = slim_network.run_network(model_name, 1001,
                                                   result.prefix, images)
  # Seeded weights give near-uniform probabilities (~1e-3 each): a relative
  # tolerance, since an absolute 1e-5 would let a 1 % error through.
  np.testing.assert_allclose(probabilities[:, 1:], expected, rtol=1e-4, atol=0)
  # The ranking too.
  np.testing.assert_array_equal(np.argsort(probabilities[:, 1:])[:, -5:],
                                np.argsort(expected)[:, -5:])
  assert (probabilities[:, 0] == 0).all()
  assert (logits[:, 0] == layers_lib.BACKGROUND_LOGIT).all()


@pytest.mark.slow
def test_second_run_into_the_same_directory_overwrites(tmp_path):
  source = str(tmp_path / 'keras.h5')
  model_name, _, _ = keras_case('v1_050', source)
  prefix = str(tmp_path / 'slim' / 'model.ckpt')
  for _ in range(2):
    convert.convert('keras', source, model_name, prefix)
  assert sorted(os.listdir(str(tmp_path / 'slim'))) == [
      'model.ckpt.data-00000-of-00001', 'model.ckpt.index',
      'training_record.json']
