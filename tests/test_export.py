"""Tests for export/ and the export scripts (issue 6), on both stacks.

A small MobileNet V1 (depth 0.25, 32x32 input, 4 classes) is trained for a
hundred steps on a learnable image-folder dataset made by the test (see
test_export_lib.py); every export path is compared with that checkpoint on
the whole validation split. Training takes most of a minute on a busy
2-core machine, once per session; the tests using that model are marked
slow.
"""


import os
import subprocess
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
from absl import flags
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import export_inference_graph
import export_saved_model
import export_tflite
import freeze_graph
from core import errors
from export import freeze
from export import inference_graph
from export import tflite
from tests import test_export_lib as lib

# What scripts (ScriptError) and the export library raise for bad input.
ScriptError = errors.InputError
V1_OUTPUT = 'MobilenetV1/Predictions/Reshape_1'
V2_OUTPUT = 'MobilenetV2/Predictions/Reshape_1'
SMALL = ['--model_name=%s' % lib.MODEL_NAME, '--image_size=%d' % lib.IMAGE_SIZE]


def _flags(model, *extra):
  return SMALL + ['--dataset_name=image_folder',
                  '--dataset_dir=%s' % model.dataset_dir] + list(extra)


def _run_graph_def(graph_def, images, output=V1_OUTPUT):
  return lib.run_graph_def(graph_def, images, output)


def _assert_parity(probabilities, reference):
  np.testing.assert_array_equal(probabilities.argmax(1), reference.argmax(1))
  np.testing.assert_allclose(probabilities, reference, atol=1e-4)


def _freeze_to_file(model, path, *extra):
  lib.run_script(freeze_graph, _flags(
      model, '--checkpoint_path=%s' % model.checkpoint,
      '--output_file=%s' % path, *extra))
  return freeze.load_graph_def(path)


# -------------------------------------------------------- inference graph


@pytest.mark.parametrize('model_name,output', [('mobilenet_v1', V1_OUTPUT),
                                               ('mobilenet_v2', V2_OUTPUT)])
def test_export_inference_graph_full_size(tmp_path, model_name, output):
  path = str(tmp_path / 'graph.pb')
  returned = lib.run_script(export_inference_graph, [
      '--model_name=%s' % model_name, '--dataset_name=imagenet',
      '--output_file=%s' % path])
  assert returned == output
  graph_def = freeze.load_graph_def(path)
  nodes = {n.name: n for n in graph_def.node}
  assert nodes['input'].op == 'Placeholder'
  assert tflite.input_shape(graph_def) == [-1, 224, 224, 3]
  assert output in nodes and nodes[output].op == 'Reshape'
  # Inference mode: batch norm uses moving statistics, no dropout.
  batch_norms = [n for n in graph_def.node if n.op.startswith('FusedBatchNorm')]
  assert batch_norms
  assert not any(n.attr['is_training'].b for n in batch_norms)
  # The head has dataset imagenet's 1001 classes.
  biases = nodes[output.split('/')[0] + '/Logits/Conv2d_1c_1x1/biases']
  assert [d.size for d in biases.attr['shape'].shape.dim] == [1001]


def _head_size(graph_def):
  nodes = {n.name: n for n in graph_def.node}
  biases = nodes['MobilenetV1/Logits/Conv2d_1c_1x1/biases']
  return [d.size for d in biases.attr['shape'].shape.dim][0]


@pytest.mark.parametrize('dataset_name, num_classes', [
    (None, 1001), ('imagenet', 1001), ('flowers', 5), ('cifar10', 10),
    ('mnist', 10), ('shapes', 6)])
def test_export_inference_graph_as_a_module_with_the_global_flags(
    tmp_path, dataset_name, num_classes):
  # As slim's code and tests use it: set FLAGS, call main (no --dataset_dir).
  path = str(tmp_path / 'graph.pb')
  global_flags = flags.FLAGS
  global_flags.mark_as_parsed()
  try:
    global_flags.output_file = path
    global_flags.model_name = lib.MODEL_NAME
    global_flags.image_size = lib.IMAGE_SIZE
    if dataset_name:
      global_flags.dataset_name = dataset_name
    export_inference_graph.main(None)
  finally:
    global_flags.unparse_flags()
  assert _head_size(freeze.load_graph_def(path)) == num_classes


def test_export_inference_graph_text_grayscale_fixed_batch(tmp_path):
  path = str(tmp_path / 'graph.pbtxt')
  lib.run_script(export_inference_graph, SMALL + [
      '--dataset_name=flowers', '--batch_size=2', '--use_grayscale',
      '--write_text_graphdef', '--output_file=%s' % path])
  with open(path) as f:
    assert f.read().startswith('node {')
  graph_def = freeze.load_graph_def(path)
  assert tflite.input_shape(graph_def) == [2, 32, 32, 1]
  with tf.Graph().as_default():
    tf.import_graph_def(graph_def, name='')
    head = tf.get_default_graph().get_tensor_by_name(V1_OUTPUT + ':0')
    assert head.get_shape().as_list() == [2, 5]  # flowers: 5 classes.


def test_export_inference_graph_bad_flags(tmp_path):
  path = str(tmp_path / 'graph.pb')
  with pytest.raises(ScriptError, match='--is_training'):
    lib.run_script(export_inference_graph, SMALL + [
        '--dataset_name=flowers', '--is_training', '--output_file=' + path])
  with pytest.raises(ScriptError, match='--output_file is required'):
    lib.run_script(export_inference_graph, SMALL + ['--dataset_name=flowers'])
  with pytest.raises(ScriptError, match='resnet_v1_50'):
    lib.run_script(export_inference_graph, [
        '--model_name=resnet_v1_50', '--dataset_name=flowers',
        '--output_file=' + path])
  with pytest.raises(ScriptError, match='--image_size=16 is too small'):
    lib.run_script(export_inference_graph, [
        '--model_name=mobilenet_v1', '--image_size=16',
        '--dataset_name=flowers', '--output_file=' + path])
  assert not os.path.exists(path)


@pytest.mark.slow
def test_num_classes_resolution(model):
  resolve = inference_graph.resolve_num_classes
  assert resolve('imagenet') == 1001
  assert resolve('imagenet', labels_offset=1) == 1000
  assert resolve('cifar10') == 10
  assert resolve('shapes') == 6
  assert resolve('image_folder', model.dataset_dir) == lib.NUM_CLASSES
  assert resolve('imagenet', num_classes=7) == 7
  assert resolve('image_folder', checkpoint=model.checkpoint) == 4
  with pytest.raises(ScriptError, match='dataset_dir'):
    resolve('image_folder')
  with pytest.raises(ScriptError, match='labels_offset=10'):
    resolve('cifar10', labels_offset=10)


@pytest.mark.slow
def test_quantize_on_a_float_checkpoint_says_it_was_not_trained_so(
    model, tmp_path):
  output = str(tmp_path / 'q.pb')
  with pytest.raises(ScriptError) as info:
    lib.run_script(freeze_graph, _flags(
        model, '--checkpoint_path=' + model.checkpoint, '--quantize',
        '--output_file=' + output))
  assert 'was not trained with quantization' in str(info.value)
  assert '--quantize_delay' in str(info.value)
  assert not os.path.exists(output)


def test_quantize_adds_fake_quant_ops(tmp_path):
  path = str(tmp_path / 'g.pb')
  lib.run_script(export_inference_graph, SMALL + [
      '--dataset_name=flowers', '--quantize', '--output_file=' + path])
  assert tflite.has_fake_quant(freeze.load_graph_def(path))


# ------------------------------------------------------------------ freeze


@pytest.mark.slow
def test_checkpoint_batch_norm_statistics_are_not_trivial(model):
  # Otherwise a graph that ignored them would pass the parity tests.
  reader = tf.train.load_checkpoint(model.checkpoint)
  name = 'MobilenetV1/Conv2d_1_pointwise/BatchNorm/moving_'
  assert np.abs(reader.get_tensor(name + 'mean')).max() > 0.05
  assert np.abs(reader.get_tensor(name + 'variance') - 1).max() > 0.05


@pytest.mark.slow
def test_frozen_graph_matches_checkpoint(model, frozen_model):
  # The session's frozen graph (conftest): freeze_graph with its defaults.
  path, out = frozen_model
  graph_def = freeze.load_graph_def(path)
  assert not any(n.op in ('VariableV2', 'VarHandleOp')
                 for n in graph_def.node)
  _assert_parity(_run_graph_def(graph_def, model.images),
                 model.probabilities)
  assert 'raw trained weights' in out
  # Every batch norm is folded into its convolution (same outputs above).
  assert not any(n.op.startswith('FusedBatchNorm') for n in graph_def.node)
  assert 'folded 27 batch norms' in out


@pytest.mark.slow
def test_nofold_batch_norms_keeps_them(model, tmp_path, capsys):
  graph_def = _freeze_to_file(model, str(tmp_path / 'frozen.pb'),
                              '--nofold_batch_norms')
  assert len([n for n in graph_def.node
              if n.op.startswith('FusedBatchNorm')]) == 27
  assert 'folded' not in capsys.readouterr().out
  _assert_parity(_run_graph_def(graph_def, model.images),
                 model.probabilities)


@pytest.mark.slow
def test_freeze_with_moving_averages_uses_shadow_weights(model, tmp_path,
                                                         capsys):
  graph_def = _freeze_to_file(model, str(tmp_path / 'ema.pb'),
                              '--moving_average_decay=0.9')
  assert 'moving-average' in capsys.readouterr().out
  averages = lib.moving_averages(model.checkpoint)
  assert averages
  expected = lib.reference_probabilities(model.checkpoint, model.images,
                                         variable_values=averages)
  probabilities = _run_graph_def(graph_def, model.images)
  np.testing.assert_allclose(probabilities, expected, atol=1e-4)
  # The averages differ from the raw weights enough to tell them apart.
  assert np.abs(probabilities - model.probabilities).max() > 1e-3


def _untrained_checkpoint(directory, model_name=lib.MODEL_NAME,
                          num_classes=lib.NUM_CLASSES):
  with tf.Graph().as_default():
    inference_graph.build_inference_graph(model_name, num_classes,
                                          image_size=lib.IMAGE_SIZE)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return tf.train.Saver().save(sess, os.path.join(directory, 'model.ckpt'))


@pytest.mark.slow
def test_freeze_errors(model, tmp_path):
  out = str(tmp_path / 'frozen.pb')

  def run(*extra):
    lib.run_script(freeze_graph, _flags(model, '--output_file=' + out,
                                        *extra))

  with pytest.raises(ScriptError, match='holds no moving averages'):
    run('--checkpoint_path=' + _untrained_checkpoint(str(tmp_path)),
        '--moving_average_decay=0.99')
  with pytest.raises(ScriptError, match='MobilenetV1 model'):
    run('--checkpoint_path=' + model.checkpoint, '--model_name=mobilenet_v2')
  with pytest.raises(ScriptError, match='another width'):
    run('--checkpoint_path=' + model.checkpoint,
        '--model_name=mobilenet_v1_050')
  with pytest.raises(ScriptError, match='classification head'):
    run('--checkpoint_path=' + model.checkpoint, '--num_classes=5')
  with pytest.raises(ScriptError, match='no such checkpoint'):
    run('--checkpoint_path=' + str(tmp_path / 'nothing'))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ScriptError, match='without a checkpoint'):
    run('--checkpoint_path=' + str(empty))
  with pytest.raises(ScriptError, match='must be in'):
    run('--checkpoint_path=' + model.checkpoint,
        '--moving_average_decay=1.5')
  assert not os.path.exists(out)


@pytest.mark.slow
def test_freeze_graph_command_line(model, tmp_path, repo_root, script_env):
  out = str(tmp_path / 'frozen.pb')
  command = [sys.executable, os.path.join(repo_root, 'freeze_graph.py')]
  result = subprocess.run(
      command + _flags(model, '--input_checkpoint=' + model.checkpoint,
                       '--output_graph=' + out),
      env=script_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True)
  assert result.returncode == 0, result.stderr
  assert 'raw trained weights' in result.stdout and out in result.stdout
  _assert_parity(_run_graph_def(freeze.load_graph_def(out), model.images),
                 model.probabilities)
  bad = subprocess.run(
      command + _flags(model, '--checkpoint_path=' + model.checkpoint,
                       '--output_file=' + out, '--model_name=mobilenet_v2'),
      env=script_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True)
  assert bad.returncode == 1
  assert 'freeze_graph: error:' in bad.stderr
  assert '--model_name' in bad.stderr
  assert 'Traceback' not in bad.stderr


# -------------------------------------------------------------- SavedModel


def _export_saved_model(model, export_dir, *extra):
  return lib.run_script(export_saved_model, _flags(
      model, '--checkpoint_path=%s' % os.path.dirname(model.checkpoint),
      '--export_dir=%s' % export_dir, '--top_k=3', *extra))


@pytest.fixture
def saved_model_dir(saved_model):
  """The session checkpoint exported once as a SavedModel (conftest), with
  this file's flags: `_flags(model)`, --top_k=3. Tests only read it."""
  return saved_model


@pytest.mark.slow
def test_saved_model_matches_checkpoint(model, saved_model_dir):
  export_dir = saved_model_dir
  with tf.Graph().as_default() as graph, tf.Session() as sess:
    meta_graph = tf.saved_model.loader.load(
        sess, [tf.saved_model.tag_constants.SERVING], export_dir)
    by_bytes = meta_graph.signature_def['serving_default']
    by_images = meta_graph.signature_def['predict_images']

    def run(signature, feed):
      fetches = {k: graph.get_tensor_by_name(v.name)
                 for k, v in signature.outputs.items()}
      feed = {graph.get_tensor_by_name(signature.inputs[k].name): v
              for k, v in feed.items()}
      return sess.run(fetches, feed)

    from_bytes = run(by_bytes, {'image_bytes': model.encoded})
    from_images = run(by_images, {'images': model.images})
  for outputs in (from_bytes, from_images):
    _assert_parity(outputs['probabilities'], model.probabilities)
    order = np.argsort(-model.probabilities, axis=1)[:, :3]
    np.testing.assert_array_equal(outputs['classes'], order)
    np.testing.assert_allclose(
        outputs['scores'], np.take_along_axis(model.probabilities, order, 1),
        atol=1e-4)
    names = np.array([n for n, _ in lib.CLASS_COLOURS])
    np.testing.assert_array_equal(
        [[n.decode() for n in row] for row in outputs['class_names']],
        names[order])


@pytest.mark.slow
@pytest.mark.skipif(not tf_compat.IS_TF2, reason='TF 2 eager loader')
def test_saved_model_loads_with_tf2_eager_loader(model, saved_model_dir,
                                                tmp_path, script_env):
  export_dir = saved_model_dir
  np.save(str(tmp_path / 'images.npy'), model.images)
  with open(str(tmp_path / 'image.jpg'), 'wb') as f:
    f.write(model.encoded[0])
  # Plain TF 2 (eager, no tf_compat), as a serving client would use it.
  code = '\n'.join([
      'import sys, numpy as np, tensorflow as tf',
      'loaded = tf.saved_model.load(sys.argv[1])',
      'images = np.load(sys.argv[2])',
      'data = open(sys.argv[3], "rb").read()',
      'out = loaded.signatures["predict_images"](images=tf.constant(images))',
      'np.save(sys.argv[4], out["probabilities"].numpy())',
      'out = loaded.signatures["serving_default"](',
      '    image_bytes=tf.constant([data]))',
      'np.save(sys.argv[5], out["probabilities"].numpy())'])
  result = subprocess.run(
      [sys.executable, '-c', code, export_dir, str(tmp_path / 'images.npy'),
       str(tmp_path / 'image.jpg'), str(tmp_path / 'p_images.npy'),
       str(tmp_path / 'p_bytes.npy')],
      env=script_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True)
  assert result.returncode == 0, result.stderr[-3000:]
  _assert_parity(np.load(str(tmp_path / 'p_images.npy')), model.probabilities)
  _assert_parity(np.load(str(tmp_path / 'p_bytes.npy')),
                 model.probabilities[:1])


@pytest.mark.slow
def test_saved_model_errors(model, tmp_path):
  existing = tmp_path / 'exists'
  existing.mkdir()
  with pytest.raises(ScriptError, match='already exists'):
    _export_saved_model(model, str(existing))
  with pytest.raises(ScriptError, match='--labels_file=.*does not exist'):
    _export_saved_model(model, str(tmp_path / 'new'),
                        '--labels_file=' + str(tmp_path / 'nope.txt'))
  assert not (tmp_path / 'new').exists()
  assert os.listdir(str(tmp_path)) == ['exists']


# ------------------------------------------------------------------ TFLite


@pytest.fixture
def frozen_pb(frozen_model):
  """The session checkpoint frozen once (tests only read it)."""
  return frozen_model[0]


def _tflite(frozen, tmp_path, model, mode, *extra):
  path = str(tmp_path / ('%s.tflite' % mode))
  lib.run_script(export_tflite, [
      '--input_graph=' + frozen, '--output_file=' + path,
      '--quantization=' + mode] + list(extra))
  with open(path, 'rb') as f:
    return f.read()


@pytest.mark.slow
def test_tflite_float_matches_checkpoint(model, frozen_pb, tmp_path):
  probabilities, dtype = lib.run_tflite(
      _tflite(frozen_pb, tmp_path, model, 'none'), model.images)
  assert dtype == np.float32
  _assert_parity(probabilities, model.probabilities)


@pytest.mark.slow
def test_tflite_dynamic_range_quantization(model, frozen_pb, tmp_path):
  dynamic = _tflite(frozen_pb, tmp_path, model, 'dynamic')
  # int8 weights: well under half the float32 weights of the frozen graph.
  assert len(dynamic) < 0.5 * os.path.getsize(frozen_pb)
  probabilities, dtype = lib.run_tflite(dynamic, model.images)
  assert dtype == np.float32
  agreement = (probabilities.argmax(1) == model.probabilities.argmax(1))
  assert agreement.mean() >= 0.95


@pytest.mark.slow
def test_tflite_full_integer_accuracy_close_to_float(model, frozen_pb,
                                                     tmp_path):
  quantized = _tflite(frozen_pb, tmp_path, model, 'full_integer',
                      '--dataset_name=image_folder',
                      '--dataset_dir=' + model.dataset_dir,
                      '--dataset_split_name=train',
                      '--num_calibration_images=64')
  probabilities, dtype = lib.run_tflite(quantized, model.images)
  assert dtype == np.uint8
  float_top1 = model.probabilities.argmax(1)
  int_top1 = probabilities.argmax(1)
  float_accuracy = (float_top1 == model.labels).mean()
  int_accuracy = (int_top1 == model.labels).mean()
  assert float_accuracy > 0.8  # A trained model, so the comparison means
  # something. One validation image is 1/200 of the accuracy. Int8 rounding
  # flips the images that lie near a decision boundary, each way about
  # equally often, so after `flips` of them the accuracy moves by about
  # sqrt(flips) images: allow 3 of those. A healthy model agreed on 95.5 %
  # of the images (9 flips, accuracy -1 image); calibration on wrongly
  # scaled or blank images gives 25-36 % agreement and fails both checks.
  flips = int((int_top1 != float_top1).sum())
  assert flips <= 0.1 * len(float_top1)
  allowed = 3 * np.sqrt(max(flips, 1)) / len(float_top1)
  assert abs(int_accuracy - float_accuracy) <= allowed, (
      float_accuracy, int_accuracy, flips)


@pytest.mark.slow
def test_tflite_errors(model, frozen_pb, tmp_path):
  with pytest.raises(ScriptError, match='needs representative images'):
    tflite.convert(frozen_pb, 'full_integer')
  with pytest.raises(ScriptError, match='needs a graph with fake-quant ops'):
    tflite.convert(frozen_pb, 'qat')
  with pytest.raises(ScriptError, match='is not one of'):
    tflite.convert(frozen_pb, 'int4')
  not_a_graph = tmp_path / 'image.pb'
  not_a_graph.write_bytes(model.encoded[0])
  with pytest.raises(ScriptError, match='is not a GraphDef'):
    tflite.convert(str(not_a_graph))
  with pytest.raises(ScriptError, match="Unknown split 'test'"):
    _tflite(frozen_pb, tmp_path, model, 'full_integer',
            '--dataset_name=image_folder',
            '--dataset_dir=' + model.dataset_dir,
            '--dataset_split_name=test')


@pytest.mark.slow
def test_quantization_aware_checkpoint_to_uint8_tflite(model, tmp_path):
  checkpoint = lib.quantization_aware_checkpoint(
      model.dataset_dir, str(tmp_path / 'qat_train'), model.checkpoint)
  frozen = str(tmp_path / 'qat.pb')
  lib.run_script(freeze_graph, _flags(
      model, '--checkpoint_path=' + checkpoint, '--quantize',
      '--output_file=' + frozen))
  graph_def = freeze.load_graph_def(frozen)
  assert tflite.has_fake_quant(graph_def)
  fake_quant = _run_graph_def(graph_def, model.images)
  probabilities, dtype = lib.run_tflite(
      _tflite(frozen, tmp_path, model, 'qat'), model.images)
  assert dtype == np.uint8
  # The uint8 model computes what the fake-quant graph simulates.
  agreement = probabilities.argmax(1) == fake_quant.argmax(1)
  assert agreement.mean() >= 0.95
  # ... and is a classifier (better than the 25 % of chance), so agreeing
  # with it is not trivial.
  assert (fake_quant.argmax(1) == model.labels).mean() > 0.4
