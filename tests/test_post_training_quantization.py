"""slim's nets/post_training_quantization.py on the project's TFRecords."""

import os
import subprocess
import sys

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import common_flags
from export import tflite as tflite_models
from nets import nets_factory
from nets import post_training_quantization as ptq
from preprocessing import preprocessing_factory
from tests import test_slim_mobilenet_v1_scripts as v1_scripts

IMAGE_SIZE = 64


def _checkpoint(directory, model_name):
  """A freshly initialized 1001-class checkpoint of `model_name`."""
  with tf.Graph().as_default():
    network_fn = nets_factory.get_network_fn(model_name, 1001)
    network_fn(tf.placeholder(tf.float32, [1, IMAGE_SIZE, IMAGE_SIZE, 3]))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return tf.train.Saver().save(sess, os.path.join(directory, 'model.ckpt'))


@pytest.fixture(scope='module')
def imagenet_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('ptq') / 'imagenet')
  v1_scripts._imagenet_records(path)  # pylint: disable=protected-access
  return path


@pytest.mark.parametrize('model_name', [
    'mobilenet_v1_025',
    pytest.param('mobilenet_v2_035', marks=pytest.mark.slow),
    pytest.param('mobilenet_v3_small', marks=pytest.mark.slow),
    pytest.param('mobilenet_edgetpu_075', marks=pytest.mark.slow)])
def test_full_int8_model_of_each_family(tmp_path, imagenet_dir, model_name):
  checkpoint = _checkpoint(str(tmp_path / 'train'), model_name)
  output = str(tmp_path / 'model.tflite')
  opts = common_flags.parse_flags(ptq.define_flags, ptq.PROGRAM, [
      '--model_name=' + model_name, '--checkpoint_path=' + checkpoint,
      '--dataset_name=imagenet2012', '--dataset_dir=' + imagenet_dir,
      '--dataset_split=validation', '--output_tflite=' + output,
      '--noenable_ema', '--num_steps=3', '--image_size=%d' % IMAGE_SIZE])
  ptq.run(opts)
  interpreter = tflite_models.make_interpreter(model_path=output)
  interpreter.allocate_tensors()
  (inp,), (out,) = (interpreter.get_input_details(),
                    interpreter.get_output_details())
  assert list(inp['shape']) == [1, IMAGE_SIZE, IMAGE_SIZE, 3]
  assert list(out['shape']) == [1, 1001]
  assert inp['dtype'] == np.int8 and out['dtype'] == np.int8
  float_ops = [d for d in interpreter.get_tensor_details()
               if d['dtype'] == np.float32]
  assert not float_ops  # fully integer


def test_script_with_slims_default_ema_names_the_missing_averages(
    tmp_path, imagenet_dir, repo_root, script_env):
  checkpoint = _checkpoint(str(tmp_path / 'train'), 'mobilenet_v1_025')
  result = subprocess.run(
      [sys.executable, 'nets/post_training_quantization.py',
       '--model_name=mobilenet_v1_025', '--checkpoint_path=' + checkpoint,
       '--dataset_dir=' + imagenet_dir, '--output_tflite=' +
       str(tmp_path / 'm.tflite'), '--image_size=%d' % IMAGE_SIZE,
       '--num_steps=2'], cwd=repo_root, env=script_env, capture_output=True,
      text=True)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  assert 'moving' in result.stderr and 'average' in result.stderr
  assert not os.path.exists(str(tmp_path / 'm.tflite'))


def _framed_image():
  """A 96x144 black image whose centred 64x64 square (rows 16-80, columns
  40-104) is white: exactly what slim's crop keeps for a 64-pixel input."""
  image = np.zeros((96, 144, 3), np.uint8)
  image[16:80, 40:104] = 255
  return image


def _prepare(preprocessing_fn, image):
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(preprocessing_fn(tf.constant(image), IMAGE_SIZE,
                                     IMAGE_SIZE))


def test_default_preprocessing_is_slims_padded_centre_crop():
  slims = _prepare(ptq.quantization_preprocessing(), _framed_image())
  assert slims.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
  np.testing.assert_allclose(slims, 1.0, atol=1e-5)  # only the white square
  # The model's evaluation crop (87.5 % of each side) keeps black border.
  models = _prepare(preprocessing_factory.get_preprocessing(
      'mobilenet_v1_025'), _framed_image())
  assert models.min() < -0.9
  gray = _prepare(ptq.quantization_preprocessing(use_grayscale=True),
                  _framed_image())
  assert gray.shape == (IMAGE_SIZE, IMAGE_SIZE, 1)


class _Calibrated(Exception):
  """Stops the export once the calibration preprocessing is chosen."""


@pytest.mark.parametrize('model_specific', [False, True])
def test_use_model_specific_preprocessing_picks_the_calibration_images(
    tmp_path, imagenet_dir, monkeypatch, model_specific):
  chosen = []

  def representative_images(dataset_fn, image_size, preprocessing_fn,
                            num_images=100):
    del dataset_fn, num_images
    assert image_size == IMAGE_SIZE
    chosen.append(preprocessing_fn)
    raise _Calibrated()

  monkeypatch.setattr(tflite_models, 'representative_images',
                      representative_images)
  checkpoint = _checkpoint(str(tmp_path / 'train'), 'mobilenet_v1_025')
  opts = common_flags.parse_flags(ptq.define_flags, ptq.PROGRAM, [
      '--model_name=mobilenet_v1_025', '--checkpoint_path=' + checkpoint,
      '--dataset_dir=' + imagenet_dir, '--output_tflite=' +
      str(tmp_path / 'm.tflite'), '--noenable_ema', '--num_steps=1',
      '--image_size=%d' % IMAGE_SIZE,
      '--%suse_model_specific_preprocessing' % (
          '' if model_specific else 'no')])
  with pytest.raises(_Calibrated):
    ptq.run(opts)
  (preprocessing_fn,) = chosen
  got = _prepare(preprocessing_fn, _framed_image())
  expected = _prepare(
      preprocessing_factory.get_preprocessing('mobilenet_v1_025')
      if model_specific else ptq.quantization_preprocessing(),
      _framed_image())
  np.testing.assert_allclose(got, expected, atol=1e-6)


def test_required_flags_are_named():
  opts = common_flags.parse_flags(ptq.define_flags, ptq.PROGRAM,
                                  ['--model_name=mobilenet_v1'])
  with pytest.raises(Exception) as info:
    ptq.exporter_argv(opts)
  assert '--checkpoint_path is required' in str(info.value)
