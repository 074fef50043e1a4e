"""export_keras.py: slim checkpoints -> keras.applications models (TF 2 only).

TF 1.15's Keras has no MobileNetV3 and saves no .keras files; the export is
a TensorFlow 2 feature (the conversion into slim runs on both stacks).
"""

import contextlib
import os

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import export_keras
from cli import script_utils
from tests import test_weights_keras as keras_cases
from tests import weights_helpers
from tests.golden import seeded_timm_weights
from weights import convert
from weights import slim_network

pytestmark = pytest.mark.skipif(
    not tf_compat.IS_TF2, reason='Keras export needs the TF 2 stack (tf-keras)')

IMAGE_SIZE = keras_cases.IMAGE_SIZE


def _export(argv):
  flag_values = export_keras.common_flags.parse_flags(
      export_keras.define_flags, 'export_keras', argv)
  with _keras_graph():
    return export_keras.run(flag_values)


@contextlib.contextmanager
def _keras_graph():
  """A new default graph, Keras's session on it without Grappler."""
  with tf.Graph().as_default() as graph:
    with weights_helpers.keras_graph_session(graph).as_default():
      yield graph


@pytest.mark.slow
@pytest.mark.parametrize('case', ['v1_050', 'v2_140', 'v3_large_075'])
def test_round_trip_keras_slim_keras_slim(case, tmp_path):
  source = str(tmp_path / 'keras.h5')
  model_name, images, expected = keras_cases.keras_case(case, source)
  prefix = str(tmp_path / 'slim' / 'model.ckpt')
  convert.convert('keras', source, model_name, prefix, image_size=IMAGE_SIZE)
  output = str(tmp_path / 'out' / 'model.h5')
  # model_name and image_size come from the converted checkpoint's record.
  _export(['--checkpoint_path=%s' % prefix, '--output=%s' % output])
  keras = keras_cases.keras
  with _keras_graph():
    model = keras.models.load_model(output, compile=False)
    probabilities = model.predict(images, verbose=0)
    model.save_weights(str(tmp_path / 'exported_weights.h5'))
  np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=0)
  again = str(tmp_path / 'again' / 'model.ckpt')
  convert.convert('keras', str(tmp_path / 'exported_weights.h5'), model_name,
                  again, image_size=IMAGE_SIZE)
  first, second = (slim_network.read_checkpoint(p) for p in (prefix, again))
  assert sorted(first) == sorted(second)
  for name in first:  # V3's gate scaling may move a kernel by one ulp
    np.testing.assert_allclose(second[name], first[name], rtol=3e-7,
                               err_msg=name)


def test_export_gives_keras_outputs_and_bad_output_leaves_nothing(
    keras_v1_050, tmp_path):
  images, expected = keras_v1_050.images, keras_v1_050.expected
  prefix = keras_v1_050.prefix
  output = str(tmp_path / 'exported' / 'model.h5')
  _export(['--checkpoint_path=%s' % prefix, '--output=%s' % output])
  with _keras_graph():
    model = keras_cases.keras.models.load_model(output, compile=False)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected,
                               rtol=1e-4, atol=0)
  with pytest.raises(script_utils.ScriptError, match='--output=.*.keras or .h5'):
    _export(['--checkpoint_path=%s' % prefix,
             '--output=%s' % (tmp_path / 'out' / 'model.pb')])
  with pytest.raises(script_utils.ScriptError,
                     match='checkpoint has 1001 classes.*--num_classes=5'):
    _export(['--checkpoint_path=%s' % prefix, '--num_classes=5',
             '--output=%s' % (tmp_path / 'out' / 'model.keras')])
  assert not os.path.exists(str(tmp_path / 'out')) or not os.listdir(
      str(tmp_path / 'out'))
