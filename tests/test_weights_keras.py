"""Keras MobileNet weights <-> slim checkpoints, compared with Keras itself.

Keras models are built with weights=None and seeded (nothing downloaded).
TF 1.15's Keras has MobileNet and MobileNetV2 but no MobileNetV3, so the V3
cases and the export to Keras (weights/keras_export.py) run on TF 2 only;
the .h5 reading runs on both stacks.
"""

import importlib.util
import os
import typing

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from tests import weights_helpers
from tests.train_dir_helpers import run_python
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
    # Keras's other published widths, factory names of their own.
    'v2_075': ('MobileNetV2', {'alpha': 0.75}, 'mobilenet_v2_075'),
    'v2_130': ('MobileNetV2', {'alpha': 1.3}, 'mobilenet_v2_130'),
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
  with tf.Graph().as_default() as graph, weights_helpers.keras_graph_session(
      graph).as_default():
    model = getattr(keras.applications, function)(
        weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), **kwargs)
    weights_helpers.seed_keras_model(model)
    if whole_model:
      model.save(path)
    else:
      model.save_weights(path)
    probabilities = model.predict(images, verbose=0)
  return model_name, images, probabilities


class ConvertedCase(typing.NamedTuple):
  """A Keras case saved to `source` and converted to checkpoint `prefix`."""
  source: str
  model_name: str
  images: np.ndarray
  expected: np.ndarray  # Keras's probabilities on `images`
  prefix: str


def converted_keras_case(case, directory):
  """Saves Keras `case` in `directory` and converts it into slim there."""
  source = os.path.join(directory, 'keras.h5')
  model_name, images, expected = keras_case(case, source)
  result = convert.convert('keras', source, model_name,
                           os.path.join(directory, 'slim', 'model.ckpt'),
                           image_size=IMAGE_SIZE)
  return ConvertedCase(source, model_name, images, expected, result.prefix)


def _check_outputs(model_name, prefix, images, expected):
  """The converted checkpoint gives Keras's probabilities and ranking."""
  logits, probabilities = slim_network.run_network(model_name, 1001, prefix,
                                                   images)
  # Seeded weights give near-uniform probabilities (~1e-3 each): a relative
  # tolerance, since an absolute 1e-5 would let a 1 % error through.
  np.testing.assert_allclose(probabilities[:, 1:], expected, rtol=1e-4, atol=0)
  # The ranking too.
  np.testing.assert_array_equal(np.argsort(probabilities[:, 1:])[:, -5:],
                                np.argsort(expected)[:, -5:])
  assert (probabilities[:, 0] == 0).all()
  assert (logits[:, 0] == layers_lib.BACKGROUND_LOGIT).all()


def test_converted_v1_weights_give_keras_outputs(keras_v1_050):
  case = keras_v1_050
  _check_outputs(case.model_name, case.prefix, case.images, case.expected)


@pytest.mark.parametrize('case', [
    pytest.param('v2_035', marks=pytest.mark.slow),
    pytest.param('v2_140', marks=pytest.mark.slow),
    'v2_130',
    pytest.param('v2_075', marks=pytest.mark.slow),
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
  _check_outputs(model_name, result.prefix, images, expected)


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


def _keras3_version():
  if importlib.util.find_spec('keras') is None:
    return None
  import keras as keras3  # pylint: disable=g-import-not-at-top
  return keras3.__version__


needs_keras3 = pytest.mark.skipif(
    not (_keras3_version() or '0').startswith('3'),
    reason='no Keras 3 here to write a .weights.h5 (TF 1.15 has none); the '
    'reader itself is h5py and runs on both stacks')


@needs_keras3
@pytest.mark.slow
def test_keras3_weights_file_converts_exactly(tmp_path):
  """A Keras 3 `.weights.h5` of V2 at width 0.75 (a factory name of its
  own) converts to the Keras model's probabilities."""
  source = str(tmp_path / 'v2.weights.h5')
  outputs = str(tmp_path / 'keras3.npz')
  status, output = run_python(['tests/keras3_weights.py', source, outputs,
                               'MobileNetV2', '0.75', '32'])
  assert status == 0, output
  with np.load(outputs) as data:
    images, expected = data['images'], data['probabilities']
  result = convert.convert('keras', source, 'mobilenet_v2_075',
                           str(tmp_path / 'slim' / 'model.ckpt'),
                           image_size=32)
  assert result.num_classes == 1001
  _, probabilities = slim_network.run_network('mobilenet_v2_075', 1001,
                                              result.prefix, images)
  np.testing.assert_allclose(probabilities[:, 1:], expected, rtol=1e-4, atol=0)
  np.testing.assert_array_equal(np.argsort(probabilities[:, 1:])[:, -5:],
                                np.argsort(expected)[:, -5:])
  # Another width: the layers do not fit, and the message names the one
  # that does.
  with pytest.raises(layers_lib.WeightsError, match='mobilenet_v2_075'):
    convert.convert('keras', source, 'mobilenet_v2',
                    str(tmp_path / 'other' / 'model.ckpt'))
  assert not os.path.exists(str(tmp_path / 'other'))


def _write_keras3_layout(layers, path):
  """Writes Keras layers as Keras 3 lays out a `.weights.h5` (h5py only)."""
  import h5py  # pylint: disable=g-import-not-at-top
  counts = {}
  with h5py.File(path, 'w') as handle:
    group = handle.create_group('layers')

    def add(kind, name, arrays):
      index = counts.get(kind, 0)
      counts[kind] = index + 1
      variables = group.create_group(
          '%s_%d' % (kind, index) if index else kind).create_group('vars')
      variables.attrs['name'] = name
      for number, array in enumerate(arrays):
        variables.create_dataset(str(number), data=array)

    for layer in layers:
      kind = 'depthwise_conv2d' if layer.kind == layers_lib.DEPTHWISE else (
          'conv2d')
      add(kind, layer.name, [layer.kernel] + (
          [] if layer.bias is None else [layer.bias]))
      norm = layer.batch_norm
      if norm is not None:
        add('batch_normalization', layer.name + '_bn',
            [norm.gamma, norm.beta, norm.mean, norm.variance])
    # Layers without variables are listed too.
    group.create_group('re_lu').create_group('vars')


def test_keras3_layout_converts_like_the_keras2_file(keras_v1_050, tmp_path):
  """The same weights in Keras 3's layout (layers numbered per class, their
  order across classes lost) give the same checkpoint."""
  from weights import keras_source  # pylint: disable=g-import-not-at-top
  keras2, model_name = keras_v1_050.source, keras_v1_050.model_name
  keras3 = str(tmp_path / 'keras.weights.h5')
  _write_keras3_layout(keras_source.read_layers(keras2), keras3)
  assert keras_source.has_keras3_layout(keras3)
  assert not keras_source.has_keras3_layout(keras2)
  expected = slim_network.read_checkpoint(keras_v1_050.prefix)
  converted = slim_network.read_checkpoint(convert.convert(
      'keras', keras3, model_name, str(tmp_path / 'b' / 'model.ckpt')).prefix)
  assert sorted(converted) == sorted(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(converted[name], value, err_msg=name)
