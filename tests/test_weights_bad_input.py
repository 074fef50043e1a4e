"""Bad weights files and settings: one paragraph each, nothing written.

Uses seeded timm weights (.safetensors, numpy only); runs on both stacks.
"""

import os

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

import convert_weights
from training import run_record
from cli import script_utils
from tests import weights_helpers
from weights import convert
from weights import layers as layers_lib


@pytest.fixture(scope='module')
def v1_weights(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('timm') / 'mobilenetv1_100.safetensors')
  weights_helpers.write_timm_safetensors('mobilenetv1_100', path)
  return path


def _convert_script(argv):
  flag_values = convert_weights.common_flags.parse_flags(
      convert_weights.define_flags, 'convert_weights', argv)
  with tf.Graph().as_default():
    return convert_weights.run(flag_values)


def _nothing_written(directory):
  return not os.path.exists(directory) or not os.listdir(directory)


def test_another_width_names_the_layers_and_the_fitting_name(v1_weights,
                                                            tmp_path):
  output = str(tmp_path / 'out')
  with pytest.raises(layers_lib.WeightsError) as raised:
    convert.convert('timm', v1_weights, 'mobilenet_v1_050',
                    os.path.join(output, 'model.ckpt'),
                    timm_name='mobilenetv1_100')
  message = str(raised.value)
  assert 'MobilenetV1/Conv2d_0 (conv [3, 3, 3, 16]' in message
  assert 'conv_stem (conv [3, 3, 3, 32]' in message
  assert 'They fit model_name=mobilenet_v1.' in message
  assert _nothing_written(output)


@pytest.mark.slow
def test_another_architecture_is_named(tmp_path):
  source = str(tmp_path / 'v2.safetensors')
  weights_helpers.write_timm_safetensors('mobilenetv2_100', source)
  with pytest.raises(layers_lib.WeightsError,
                     match='do not fit model_name=mobilenet_v1 .*They fit '
                     'model_name=mobilenet_v2\\.'):
    convert.convert('timm', source, 'mobilenet_v1',
                    str(tmp_path / 'out' / 'model.ckpt'),
                    timm_name='mobilenetv2_100')
  assert _nothing_written(str(tmp_path / 'out'))


def test_truncated_files_are_named_with_the_flag(v1_weights, tmp_path):
  for name in ('cut.safetensors', 'cut.h5'):
    path = str(tmp_path / name)
    with open(v1_weights, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(data[:len(data) // 2])
    source = 'keras' if name.endswith('.h5') else 'timm'
    with pytest.raises(script_utils.ScriptError) as raised:
      _convert_script(['--from=%s' % source, '--input=%s' % path,
                       '--timm_name=mobilenetv1_100',
                       '--model_name=mobilenet_v1',
                       '--output=%s' % (tmp_path / 'out' / 'model.ckpt')])
    message = str(raised.value)
    assert '--input=%s' % path in message and 'truncated' in message
    assert '\n' not in message
  assert _nothing_written(str(tmp_path / 'out'))


def test_class_count_confusion_says_which_counts_fit(v1_weights, tmp_path):
  with pytest.raises(script_utils.ScriptError) as raised:
    _convert_script(['--from=timm', '--input=%s' % v1_weights,
                     '--timm_name=mobilenetv1_100', '--num_classes=10',
                     '--output=%s' % (tmp_path / 'out' / 'model.ckpt')])
  message = str(raised.value)
  assert 'the weights have 1000 classes, but --num_classes=10' in message
  assert '--num_classes=1000' in message and '1001' in message
  assert _nothing_written(str(tmp_path / 'out'))


def test_a_directory_with_another_models_record_is_left_alone(v1_weights,
                                                             tmp_path):
  output = str(tmp_path / 'train')
  run_record.write_record(output, run_record.make_record(
      'mobilenet_v2', 224, 'mobilenet_v2', 'flowers', 5))
  with pytest.raises(layers_lib.WeightsError,
                     match='already holds a training record of another'):
    convert.convert('timm', v1_weights, 'mobilenet_v1',
                    os.path.join(output, 'model.ckpt'),
                    timm_name='mobilenetv1_100')
  assert os.listdir(output) == ['training_record.json']
  assert run_record.read_record(
      os.path.join(output, 'training_record.json'))['model_name'] == (
          'mobilenet_v2')


def test_timm_needs_its_model_name(v1_weights, tmp_path):
  with pytest.raises(script_utils.ScriptError, match='--timm_name is needed'):
    _convert_script(['--from=timm', '--input=%s' % v1_weights,
                     '--model_name=mobilenet_v1',
                     '--output=%s' % (tmp_path / 'model.ckpt')])


def test_keras_save_refuses_other_formats_before_writing(tmp_path):
  """The library's own check, for Python callers (the script checks too)."""
  from weights import keras_export  # pylint: disable=g-import-not-at-top
  with pytest.raises(layers_lib.WeightsError,
                     match='output=.*must end in .keras or .h5'):
    keras_export.save_model(None, str(tmp_path / 'out' / 'model.pb'))
  assert not os.path.exists(str(tmp_path / 'out'))
