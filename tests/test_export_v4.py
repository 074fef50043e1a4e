"""MobileNet V4 through the export paths, with timm's seeded weights.

A checkpoint written from the golden weights (tests/golden) stands in for a
trained one, so the frozen graph and the float TFLite model are compared
with timm's own probabilities on the golden 80x80 images.
"""

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from export import freeze
from export import tflite
from nets import nets_factory
from tests import test_export_lib as lib
from tests import test_mobilenet_v4 as v4
from weights import timm_mobilenet_v4

SIZE = 80
OUTPUT = 'MobilenetV4/Predictions/Reshape_1'


@pytest.fixture(scope='module', params=['mobilenet_v4_conv_small',
                                        'mobilenet_v4_hybrid_medium'])
def exported(request, tmp_path_factory):
  """(model name, timm name, frozen GraphDef, path of the .pb, golden)."""
  name = request.param
  timm_name = v4.NETWORKS[name][0]
  values = timm_mobilenet_v4.to_slim(v4.golden_state_dict(timm_name))
  directory = tmp_path_factory.mktemp(name)
  prefix = str(directory / 'model.ckpt')
  with tf.Graph().as_default():
    nets_factory.get_network_fn(name, 1000)(
        tf.placeholder(tf.float32, [1, SIZE, SIZE, 3]))
    with tf.Session() as sess:
      v4.load_values(sess, values)
      tf.train.Saver().save(sess, prefix)
  frozen = freeze.freeze(name, prefix, 1000, image_size=SIZE)
  path = str(directory / 'frozen.pb')
  freeze.write_graph_def(frozen.graph_def, path)
  return dict(name=name, timm_name=timm_name, frozen=frozen, path=path,
              golden=np.load(v4.GOLDEN))


def _expected(exported):
  return exported['golden'][exported['timm_name'] + '/probabilities']


def test_frozen_graph_folds_batch_norms_and_equals_timm(exported):
  frozen = exported['frozen']
  assert frozen.folded_batch_norms > 20
  assert not [n for n in frozen.graph_def.node
              if n.op.startswith('FusedBatchNorm')]
  probabilities = lib.run_graph_def(frozen.graph_def,
                                    exported['golden']['images'], OUTPUT)
  np.testing.assert_allclose(probabilities, _expected(exported), atol=1e-4)


def test_tflite_float_equals_timm(exported):
  model = tflite.convert(exported['path'], 'none')
  probabilities, dtype = lib.run_tflite(model, exported['golden']['images'])
  assert dtype == np.float32
  np.testing.assert_allclose(probabilities, _expected(exported), atol=1e-4)


def test_tflite_full_integer(exported):
  if not tf_compat.IS_TF2 and 'hybrid' in exported['name']:
    pytest.skip('TF 1.15 converts the attention matmuls of an int8 hybrid '
                'model into FULLY_CONNECTED ops its own interpreter rejects '
                '(docs/mobilenet_v4.md); TF 2 converts it')
  images = exported['golden']['images']
  model = tflite.convert(exported['path'], 'full_integer',
                         representative_data=[image[None] for image in images])
  probabilities, dtype = lib.run_tflite(model, images)
  assert dtype == np.uint8
  assert probabilities.shape == (2, 1000)
  # Calibrated on the two images it classifies: the int8 model keeps the
  # float model's top class for both.
  np.testing.assert_array_equal(probabilities.argmax(-1),
                                _expected(exported).argmax(-1))
