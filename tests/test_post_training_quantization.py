"""slim's nets/post_training_quantization.py on the project's TFRecords."""

import os
import subprocess
import sys

import numpy as np
import pytest

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import common_flags
from export import tflite as tflite_models
from nets import nets_factory
from nets import post_training_quantization as ptq
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


def test_required_flags_are_named():
  opts = common_flags.parse_flags(ptq.define_flags, ptq.PROGRAM,
                                  ['--model_name=mobilenet_v1'])
  with pytest.raises(Exception) as info:
    ptq.exporter_argv(opts)
  assert '--checkpoint_path is required' in str(info.value)
