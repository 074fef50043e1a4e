"""Tests for export_onnx.py and export/onnx_model.py, on both stacks.

The session's trained checkpoint (test_export_lib.py) is exported and run in
ONNX Runtime against the checkpoint's own probabilities; other networks are
checked with random weights against their frozen TensorFlow graph.
"""

import os
import subprocess
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import export_onnx
from core import errors
from export import freeze
from export import inference_graph
from export import onnx_model
from tests import test_export_lib as lib

ScriptError = errors.InputError
# The parity requirement for a reference checkpoint.
REFERENCE_TOLERANCE = 1e-5


def _export(model, output_file, *extra):
  return lib.run_script(export_onnx, [
      '--model_name=%s' % lib.MODEL_NAME, '--image_size=%d' % lib.IMAGE_SIZE,
      '--dataset_name=image_folder', '--dataset_dir=%s' % model.dataset_dir,
      '--output_file=%s' % output_file] + list(extra))


def _session(path):
  import onnxruntime  # pylint: disable=g-import-not-at-top
  return onnxruntime.InferenceSession(path,
                                      providers=['CPUExecutionProvider'])


@pytest.mark.slow
def test_onnx_from_checkpoint_gives_the_reference_probabilities(model,
                                                                tmp_path):
  path = str(tmp_path / 'model.onnx')
  _export(model, path, '--checkpoint_path=' + model.checkpoint)
  session = _session(path)
  (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
  assert inputs.name == 'input' and outputs.name == 'probabilities'
  assert inputs.shape == ['batch', lib.IMAGE_SIZE, lib.IMAGE_SIZE, 3]
  assert inputs.type == 'tensor(float)'
  # The whole validation split in one batch (dynamic batch size).
  probabilities = session.run(None, {'input': model.images})[0]
  np.testing.assert_allclose(probabilities, model.probabilities,
                             atol=REFERENCE_TOLERANCE, rtol=0)
  np.testing.assert_array_equal(probabilities.argmax(1),
                                model.probabilities.argmax(1))


@pytest.mark.slow
def test_onnx_with_moving_averages_and_fixed_batch(model, tmp_path, capsys):
  path = str(tmp_path / 'ema.onnx')
  _export(model, path, '--checkpoint_path=' + model.checkpoint,
          '--moving_average_decay=0.9', '--batch_size=1')
  assert 'moving-average' in capsys.readouterr().out
  averages = lib.moving_averages(model.checkpoint)
  expected = lib.reference_probabilities(model.checkpoint, model.images,
                                         variable_values=averages)
  session = _session(path)
  assert session.get_inputs()[0].shape[0] == 1
  probabilities = np.concatenate([session.run(None, {'input': i[None]})[0]
                                  for i in model.images])
  np.testing.assert_allclose(probabilities, expected,
                             atol=REFERENCE_TOLERANCE, rtol=0)
  assert np.abs(probabilities - model.probabilities).max() > 1e-3


@pytest.mark.slow
def test_onnx_from_frozen_graph(model, frozen_model, tmp_path):
  path = str(tmp_path / 'from_pb.onnx')
  lib.run_script(export_onnx, ['--input_graph=' + frozen_model[0],
                               '--output_file=' + path])
  runner = onnx_model.OnnxRunner(model_path=path)
  assert runner.batch_size is None and runner.num_classes == lib.NUM_CLASSES
  np.testing.assert_allclose(runner.run(model.images), model.probabilities,
                             atol=REFERENCE_TOLERANCE, rtol=0)


def _random_checkpoint(directory, model_name, image_size, num_classes=7):
  """A checkpoint with random weights and batch-norm statistics."""
  rng = np.random.RandomState(1)
  with tf.Graph().as_default():
    inference_graph.build_inference_graph(model_name, num_classes,
                                          image_size=image_size)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for var in tf.global_variables():
        shape = var.get_shape().as_list()
        if 'moving_variance' in var.op.name or 'gamma' in var.op.name:
          var.load(rng.uniform(0.5, 1.5, shape), sess)
        elif 'moving_mean' in var.op.name or 'beta' in var.op.name:
          var.load(rng.normal(0, 0.2, shape), sess)
      return tf.train.Saver().save(sess, os.path.join(directory, 'model.ckpt'))


@pytest.mark.slow
@pytest.mark.parametrize('model_name,image_size', [
    ('mobilenet_v2_035', 64), ('mobilenet_v3_small', 72),
    ('mobilenet_v3_large_minimalistic', 64), ('mobilenet_edgetpu_075', 64)])
def test_onnx_of_other_networks_matches_their_frozen_graph(
    tmp_path, model_name, image_size):
  checkpoint = _random_checkpoint(str(tmp_path), model_name, image_size)
  path = str(tmp_path / 'model.onnx')
  lib.run_script(export_onnx, [
      '--model_name=' + model_name, '--image_size=%d' % image_size,
      '--num_classes=7', '--checkpoint_path=' + checkpoint,
      '--output_file=' + path])
  frozen = freeze.freeze(model_name, checkpoint, 7, image_size=image_size)
  images = np.random.RandomState(2).uniform(
      -1, 1, [3, image_size, image_size, 3]).astype(np.float32)
  expected = lib.run_graph_def(frozen.graph_def, images,
                               frozen.output_node_name)
  assert expected.std(axis=1).min() > 1e-3  # not a uniform answer
  probabilities = onnx_model.OnnxRunner(model_path=path).run(images)
  np.testing.assert_allclose(probabilities, expected,
                             atol=REFERENCE_TOLERANCE, rtol=0)


def test_scalar_addends_become_vectors_with_the_same_result():
  with tf.Graph().as_default() as graph:
    x = tf.placeholder(tf.float32, [None, 2, 2, 3], name='input')
    tf.nn.relu6(x + 3.0, name='out')
  graph_def = graph.as_graph_def()
  rewritten, count = onnx_model._scalar_addends_as_vectors(graph_def)
  assert count == 1
  consts = {n.name: n for n in rewritten.node if n.op == 'Const'}
  add = [n for n in rewritten.node if n.op in ('Add', 'AddV2')][0]
  const = consts[[i for i in add.input if i in consts][0]]
  assert [d.size for d in const.attr['value'].tensor.tensor_shape.dim] == [1]
  images = np.random.RandomState(0).uniform(-5, 5, [2, 2, 2, 3]).astype(
      np.float32)
  np.testing.assert_array_equal(lib.run_graph_def(rewritten, images, 'out'),
                                lib.run_graph_def(graph_def, images, 'out'))


@pytest.mark.slow
def test_onnx_export_errors_leave_nothing(model, frozen_model, tmp_path):
  path = str(tmp_path / 'bad.onnx')
  checkpoint = '--checkpoint_path=' + model.checkpoint
  with pytest.raises(ScriptError, match='MobilenetV1 model'):
    _export(model, path, checkpoint, '--model_name=mobilenet_v2')
  with pytest.raises(ScriptError, match='--output_node_name=nope'):
    lib.run_script(export_onnx, ['--input_graph=' + frozen_model[0],
                                 '--output_file=' + path,
                                 '--output_node_name=nope'])
  with pytest.raises(ScriptError, match='--opset=99 is out of range'):
    _export(model, path, checkpoint, '--opset=99')
  with pytest.raises(ScriptError, match='--checkpoint_path is required'):
    _export(model, path)
  with pytest.raises(ScriptError, match='not both'):
    _export(model, path, checkpoint, '--input_graph=' + frozen_model[0])
  assert os.listdir(str(tmp_path)) == []


def test_an_opset_the_runtime_cannot_run_is_one_paragraph(tmp_path):
  import onnx  # pylint: disable=g-import-not-at-top
  from onnx import helper  # pylint: disable=g-import-not-at-top
  graph = helper.make_graph(
      [helper.make_node('Softmax', ['input'], ['probabilities'])], 'g',
      [helper.make_tensor_value_info('input', onnx.TensorProto.FLOAT,
                                     [1, 4])],
      [helper.make_tensor_value_info('probabilities', onnx.TensorProto.FLOAT,
                                     [1, 4])])
  path = str(tmp_path / 'future.onnx')
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 99)])
  with open(path, 'wb') as f:
    f.write(model.SerializeToString())
  with pytest.raises(onnx_model.ExportError) as raised:
    onnx_model.OnnxRunner(model_path=path)
  message = str(raised.value)
  assert 'ONNX Runtime %s cannot run' % onnx_model.runtime_version() in message
  assert 'lower opset' in message and '\n' not in message


@pytest.mark.slow
@pytest.mark.skipif(tf_compat.IS_TF2, reason='ONNX Runtime 1.10 (TF 1.15 '
                    'stack) runs up to opset 15; TF 2\'s runs all tf2onnx '
                    'writes')
def test_opset_too_new_for_tf1_runtime_is_refused(model, tmp_path):
  path = str(tmp_path / 'new.onnx')
  with pytest.raises(ScriptError, match='cannot run'):
    _export(model, path, '--checkpoint_path=' + model.checkpoint,
            '--opset=17')
  assert not os.path.exists(path)


@pytest.mark.slow
def test_export_onnx_command_line_twice_with_relative_paths(
    model, tmp_path, repo_root, script_env):
  os.makedirs(str(tmp_path / 'export'))
  (tmp_path / 'export' / 'notes.txt').write_text(u'kept')
  command = [sys.executable, os.path.join(repo_root, 'export_onnx.py'),
             '--model_name=' + lib.MODEL_NAME,
             '--image_size=%d' % lib.IMAGE_SIZE,
             '--dataset_name=image_folder',
             '--dataset_dir=' + model.dataset_dir,
             '--checkpoint_path=' + os.path.dirname(model.checkpoint),
             '--output_file=export/model.onnx']
  for _ in range(2):
    result = subprocess.run(command, cwd=str(tmp_path), env=script_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert result.returncode == 0, result.stderr
    assert 'Wrote export/model.onnx' in result.stdout
    assert 'Traceback' not in result.stderr
  assert sorted(os.listdir(str(tmp_path / 'export'))) == ['model.onnx',
                                                          'notes.txt']
  bad = subprocess.run(command + ['--model_name=mobilenet_v2'],
                       cwd=str(tmp_path), env=script_env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
  assert bad.returncode == 1
  assert 'export_onnx: error:' in bad.stderr and '--model_name' in bad.stderr
  assert 'Traceback' not in bad.stderr
