"""timm MobileNet weights -> slim checkpoints, compared with timm's outputs.

The golden files (tests/golden/timm_*.npz, written by make_timm_goldens.py
with torch and timm) hold timm's logits for seeded weights; the tests
rebuild the same weights with numpy, convert them and run the slim network.
No torch needed. Runs on both stacks.
"""

import os
from unittest import mock

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from tests import weights_helpers
from tests.golden import seeded_timm_weights
from weights import convert
from weights import layers as layers_lib
from weights import slim_network
from weights import timm_source

GOLDEN_NAMES = ['mobilenetv1_100', 'mobilenetv2_100', 'mobilenetv3_large_100',
                'mobilenetv3_small_100', 'tf_mobilenetv3_large_100',
                'tf_mobilenetv3_small_minimal_100']


def _run_like_timm(timm_name, model_name, num_classes, prefix, images):
  """The slim network's outputs with the padding timm's model uses."""
  if timm_source.is_tensorflow_port(timm_name):
    return slim_network.run_network(model_name, num_classes, prefix, images)
  return slim_network.run_network(model_name, num_classes, prefix, images,
                                  use_explicit_padding=True)


# The quick tier converts one network per family (V1, V2, V3 with tf_
# padding); the slow tier every golden network.
QUICK_NAMES = ('mobilenetv1_100', 'mobilenetv2_100',
               'tf_mobilenetv3_small_minimal_100')


@pytest.mark.parametrize('timm_name', [
    name if name in QUICK_NAMES else pytest.param(name, marks=pytest.mark.slow)
    for name in GOLDEN_NAMES])
def test_converted_timm_weights_give_timms_outputs(timm_name, tmp_path):
  source = str(tmp_path / 'model.safetensors')
  golden = weights_helpers.write_timm_safetensors(timm_name, source)
  model_name = timm_source.TIMM_TO_FACTORY[timm_name]
  result = convert.convert('timm', source, model_name,
                           str(tmp_path / 'slim' / 'model.ckpt'),
                           timm_name=timm_name)
  assert result.num_classes == 1001
  images = seeded_timm_weights.seeded_images(golden['image_size'])
  logits, probabilities = _run_like_timm(timm_name, model_name, 1001,
                                         result.prefix, images)
  np.testing.assert_allclose(probabilities[:, 1:], golden['probabilities'],
                             rtol=0, atol=1e-5)
  scale = np.abs(golden['logits']).max()
  np.testing.assert_allclose(logits[:, 1:], golden['logits'], rtol=0,
                             atol=2e-5 * max(scale, 1.0))
  # Slim's background class never wins and takes no probability.
  assert (logits[:, 0] == layers_lib.BACKGROUND_LOGIT).all()
  assert (probabilities[:, 0] == 0).all()


def test_the_gate_constant_matches_the_slim_network():
  # The V3 conversion divides by GATE_RATIO; it must be slim's real gate.
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from nets.mobilenet import mobilenet_v3  # pylint: disable=g-import-not-at-top
  inputs = np.linspace(-4, 4, 17).astype(np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    gate = sess.run(mobilenet_v3.squeeze_excite.keywords['gating_fn'](
        tf.constant(inputs)))
  np.testing.assert_allclose(
      gate, np.clip(inputs + 3, 0, 6) * layers_lib.SLIM_GATE_SCALE,
      rtol=1e-7)


def test_thousand_classes_keep_timms_head(tmp_path):
  source = str(tmp_path / 'model.safetensors')
  golden = weights_helpers.write_timm_safetensors('tf_mobilenetv3_large_100',
                                                  source)
  prefix = str(tmp_path / 'slim' / 'model.ckpt')
  result = convert.convert('timm', source, 'mobilenet_v3_large', prefix,
                           num_classes=1000,
                           timm_name='tf_mobilenetv3_large_100')
  assert any('labels_offset=1' in note for note in result.notes)
  values = slim_network.read_checkpoint(prefix)
  assert values['MobilenetV3/Logits/Conv2d_1c_1x1/biases'].shape == (1000,)
  from training import run_record  # pylint: disable=g-import-not-at-top
  record = run_record.read_record(run_record.find_record(prefix))
  assert (record['num_classes'], record['labels_offset']) == (1000, 1)
  assert record['model_name'] == 'mobilenet_v3_large'
  assert golden['shapes']  # the golden lists the tensors it was made of


def test_pth_without_torch_says_how_to_get_safetensors(tmp_path):
  path = str(tmp_path / 'model.pth')
  with open(path, 'wb') as f:
    f.write(b'not really')
  with mock.patch.dict('sys.modules', {'torch': None}):
    with pytest.raises(layers_lib.WeightsError, match='needs PyTorch'):
      convert.convert('timm', path, 'mobilenet_v1', str(tmp_path / 'out'),
                      timm_name='mobilenetv1_100')
  assert sorted(os.listdir(str(tmp_path))) == ['model.pth']
