"""MobileNet V4 through the export paths, with timm's seeded weights.

A checkpoint written from the golden weights (tests/golden) stands in for a
trained one, so the frozen graph and the float TFLite model are compared
with timm's own probabilities on the golden 80x80 images.
"""

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from export import freeze
from export import tflite
from tests import test_export_lib as lib
from tests import test_mobilenet_v4 as v4
from weights import timm_mobilenet_v4

SIZE = 80
OUTPUT = 'MobilenetV4/Predictions/Reshape_1'


@pytest.fixture(scope='module', params=[
    'mobilenet_v4_conv_small',
    pytest.param('mobilenet_v4_hybrid_medium', marks=pytest.mark.slow)])
def exported(request, tmp_path_factory):
  """(model name, timm name, frozen GraphDef, path of the .pb, golden)."""
  name = request.param
  timm_name = v4.NETWORKS[name][0]
  directory = tmp_path_factory.mktemp(name)
  prefix = str(directory / 'model.ckpt')
  assert timm_mobilenet_v4.write_checkpoint(
      v4.golden_state_dict(timm_name), name, prefix) == 1000
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
  # Only the MQA blocks' pre-norms stay: no convolution comes before them.
  assert not [n.name for n in frozen.graph_def.node
              if n.op.startswith('FusedBatchNorm') and
              '/input_norm/' not in n.name]
  probabilities = lib.run_graph_def(frozen.graph_def,
                                    exported['golden']['images'], OUTPUT)
  np.testing.assert_allclose(probabilities, _expected(exported), atol=1e-4)


def test_tflite_float_equals_timm(exported):
  model = tflite.convert(exported['path'], 'none')
  probabilities, dtype = lib.run_tflite(model, exported['golden']['images'])
  assert dtype == np.float32
  np.testing.assert_allclose(probabilities, _expected(exported), atol=1e-4)


def test_tflite_full_integer(exported):
  images = exported['golden']['images']
  representative = [image[None] for image in images]
  if not tf_compat.IS_TF2 and 'hybrid' in exported['name']:
    # TF 1.15 writes the attention matmuls of an int8 hybrid as
    # FULLY_CONNECTED ops its own interpreter rejects; convert() says so
    # instead of returning that model (docs/mobilenet_v4.md). TF 2 converts
    # it.
    with pytest.raises(tflite.ExportError,
                       match=r"(?s)own TFLite interpreter cannot load.*"
                       r"FULLY_CONNECTED.*limitation of TF 1\.15's "
                       r"converter"):
      tflite.convert(exported['path'], 'full_integer',
                     representative_data=representative)
    return
  model = tflite.convert(exported['path'], 'full_integer',
                         representative_data=representative)
  probabilities, dtype = lib.run_tflite(model, images)
  assert dtype == np.uint8
  assert probabilities.shape == (2, 1000)
  # Random stand-in weights say nothing about int8 accuracy; what is
  # checked is that every op, the attention's included, runs on integers.
  assert probabilities.max(-1).min() > 0.
  assert _float_ops(model) == []


def _float_ops(model_bytes):
  """Ops of a TFLite model with a float32 input or output tensor."""
  interpreter = tflite.make_interpreter(model_content=model_bytes)
  interpreter.allocate_tensors()
  if not hasattr(interpreter, '_get_ops_details'):
    return []  # TF 1.15's interpreter does not list its ops.
  dtypes = {t['index']: t['dtype'] for t in interpreter.get_tensor_details()}
  found = []
  for operation in interpreter._get_ops_details():  # pylint: disable=protected-access
    if operation['op_name'] in ('QUANTIZE', 'DEQUANTIZE'):
      continue
    tensors = list(operation['inputs']) + list(operation['outputs'])
    if any(dtypes.get(i) == np.float32 for i in tensors if i >= 0):
      found.append(operation['op_name'])
  return found


def test_checkpoint_of_another_model_is_refused(tmp_path):
  state = v4.golden_state_dict('mobilenetv4_conv_small')
  with pytest.raises(timm_mobilenet_v4.ConversionError,
                     match='mobilenet_v4_conv_medium'):
    timm_mobilenet_v4.write_checkpoint(state, 'mobilenet_v4_conv_medium',
                                       str(tmp_path / 'model.ckpt'))
  assert not list(tmp_path.iterdir())


def test_background_class_keeps_the_1000_class_probabilities(tmp_path):
  state = v4.golden_state_dict('mobilenetv4_conv_small')
  prefix = str(tmp_path / 'model.ckpt')
  assert timm_mobilenet_v4.write_checkpoint(
      state, 'mobilenet_v4_conv_small', prefix, background_class=True) == 1001
  golden = np.load(v4.GOLDEN)
  frozen = freeze.freeze('mobilenet_v4_conv_small', prefix, 1001,
                         image_size=SIZE)
  probabilities = lib.run_graph_def(frozen.graph_def, golden['images'],
                                    OUTPUT)
  assert probabilities.shape == (2, 1001)
  assert probabilities[:, 0].max() < 1e-30
  np.testing.assert_allclose(
      probabilities[:, 1:],
      golden['mobilenetv4_conv_small/probabilities'], atol=1e-4)
