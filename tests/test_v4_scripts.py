"""MobileNet V4 through the entry scripts, as a user runs them.

From the repository root with relative paths: the shapes set made by
download_and_convert_data.py, a short training run of train_image_classifier.py
(once per network, module-wide), then eval_image_classifier.py,
freeze_graph.py, export_inference_graph.py with TensorFlow's own
freeze_graph tool, export_tflite.py, export_saved_model.py, export_model.py
and classify_image.py on what they wrote. Every exported model is compared
with the checkpoint on the same image file.

mobilenet_v4_conv_small runs in the quick tier (training only) and through
every script in the slow one; mobilenet_v4_hybrid_medium (the attention
blocks) through training and the exports, slow. TF 1.15's two TFLite
limitations with V4 (no Erf for Hybrid-L's GELU, unloadable int8 attention)
are asserted as the scripts' own errors.
"""

import json
import math
import os
import re

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
from PIL import Image
from PIL import ImageDraw
import pytest
import tensorflow.compat.v1 as tf

from export import freeze
from tests import test_export_lib as lib
from tests import test_mobilenet_v4 as v4
from tests.train_dir_helpers import save_untrained_checkpoint
from tests.train_dir_helpers import relative_to_repo
from tests.train_dir_helpers import run_python

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONV = 'mobilenet_v4_conv_small'
HYBRID = 'mobilenet_v4_hybrid_medium'
SIZE = 32           # V4 takes any input size (explicit padding).
STEPS = 2
NUM_CLASSES = 6     # the shapes set
OUTPUT = 'MobilenetV4/Predictions/Reshape_1'
# The float formats against the checkpoint (about 2e-7 seen), and
# classify_image.py's probabilities, printed with 4 decimals.
FLOAT_ATOL = 1e-5
PRINTED_ATOL = 1e-4


def _run(args):
  # Seven scripts in a row for the hybrids: more time than the default.
  return run_python(args, timeout=900)


def _at_root(path):
  return os.path.join(REPO, path)


def _flat(output):
  """`output` on one line: error paragraphs are wrapped at any space."""
  return ' '.join(output.split())


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  dataset_dir = relative_to_repo(tmp_path_factory.mktemp('v4_scripts') / 'shapes')
  status, output = _run([
      'download_and_convert_data.py', '--dataset_name=shapes',
      '--dataset_dir=' + dataset_dir, '--shapes_train_per_class=4',
      '--shapes_validation_per_class=2'])
  assert status == 0, output
  return dataset_dir


@pytest.fixture(scope='module')
def image(tmp_path_factory):
  """A PNG of a white disc on gray, larger than the input (it is resized)."""
  path = tmp_path_factory.mktemp('v4_image') / 'disc.png'
  picture = Image.new('RGB', (48, 48), (110, 110, 110))
  ImageDraw.Draw(picture).ellipse((10, 12, 36, 38), fill=(250, 250, 250))
  picture.save(str(path))
  return relative_to_repo(path)


class Trained(object):
  """One network trained by the script: where, and what it printed."""

  def __init__(self, name, train_dir, output):
    self.name = name
    self.train_dir = train_dir          # relative to REPO
    self.output = output
    self.checkpoint = '%s/model.ckpt-%d' % (train_dir, STEPS)
    self._references = {}

  def reference(self, image):
    """(preprocessed image [1, S, S, 3], the checkpoint's probabilities)
    computed here, without the export code."""
    if image not in self._references:
      with open(_at_root(image), 'rb') as f:
        images = lib.preprocess([f.read()], SIZE, self.name)
      self._references[image] = images, lib.reference_probabilities(
          _at_root(self.checkpoint), images, self.name, NUM_CLASSES)
    return self._references[image]


_TRAINED = {}


def _train(name, shapes_dir, tmp_path_factory):
  """Trains `name` once per module through train_image_classifier.py."""
  key = (name, shapes_dir)
  if key not in _TRAINED:
    train_dir = relative_to_repo(tmp_path_factory.mktemp(name) / 'train')
    status, output = _run([
        'train_image_classifier.py', '--model_name=' + name,
        '--dataset_name=shapes', '--dataset_dir=' + shapes_dir,
        '--train_dir=' + train_dir, '--train_image_size=%d' % SIZE,
        '--batch_size=4', '--max_number_of_steps=%d' % STEPS,
        '--batch_norm_decay=auto', '--save_summaries_secs=0',
        '--num_readers=1', '--num_preprocessing_threads=1'])
    assert status == 0, output
    _TRAINED[key] = Trained(name, train_dir, output)
  return _TRAINED[key]


@pytest.fixture(scope='module', params=[
    CONV, pytest.param(HYBRID, marks=pytest.mark.slow)])
def trained(request, shapes_dir, tmp_path_factory):
  return _train(request.param, shapes_dir, tmp_path_factory)


@pytest.fixture(scope='module')
def conv(shapes_dir, tmp_path_factory):
  """mobilenet_v4_conv_small alone, for the scripts that run the same code
  for every V4 network (the same run as `trained`'s)."""
  return _train(CONV, shapes_dir, tmp_path_factory)


def _classified(output):
  """{label id: probability} and the top (id, name) classify_image printed."""
  rows = re.findall(r'^\s+\d+\. ([\d.]+)\s+(\d+)  (\w+)$', output, re.M)
  assert rows, output
  return ({int(i): float(p) for p, i, _ in rows},
          (int(rows[0][1]), rows[0][2]))


def _as_vector(printed):
  assert sorted(printed) == list(range(NUM_CLASSES)), printed
  return np.array([printed[i] for i in range(NUM_CLASSES)])


def test_training_writes_checkpoints_and_the_record(trained):
  losses = re.findall(r'step %d/%d, loss = ([^,\s]+)' % (STEPS, STEPS),
                      trained.output)
  assert losses and math.isfinite(float(losses[-1])), trained.output
  assert 'last checkpoint %s.' % trained.checkpoint in trained.output
  assert os.path.exists(_at_root(trained.checkpoint + '.index'))
  with open(_at_root(os.path.join(trained.train_dir,
                                  'training_record.json'))) as f:
    record = json.load(f)
  assert (record['model_name'], record['image_size'],
          record['num_classes']) == (trained.name, SIZE, NUM_CLASSES)
  # The network of that name: its table's layers (all but the global pool
  # have variables), attention in the hybrid only.
  names = tf.train.load_checkpoint(
      _at_root(trained.checkpoint)).get_variable_to_shape_map()
  layers = set(int(n) for n in re.findall(r'^MobilenetV4/layer_(\d+)/',
                                           '\n'.join(names), re.M))
  assert max(layers) == v4.NETWORKS[trained.name][3]
  assert len(layers) == max(layers) - 1
  assert any('/query/' in n for n in names) == (trained.name == HYBRID)
  assert names['MobilenetV4/Logits/Conv2d_1c_1x1/biases'] == [NUM_CLASSES]


@pytest.mark.slow
def test_eval_scores_the_last_checkpoint(conv, shapes_dir, tmp_path):
  """The network and size come from the training record."""
  status, output = _run([
      'eval_image_classifier.py', '--checkpoint_path=' + conv.train_dir,
      '--eval_dir=' + relative_to_repo(tmp_path / 'eval'), '--dataset_name=shapes',
      '--dataset_split_name=validation', '--dataset_dir=' + shapes_dir])
  assert status == 0, output
  assert 'model_name=%s, eval_image_size=%d' % (CONV, SIZE) in output
  assert re.search(
      r'Accuracy = [\d.]+, Recall_5 = [\d.]+ over 12 examples \(global step '
      r'%d, %s, %dx%d images\)' % (STEPS, re.escape(conv.checkpoint), SIZE,
                                   SIZE), output), output


@pytest.mark.slow
def test_exports_classify_the_image_as_the_checkpoint(trained, shapes_dir,
                                                      image, tmp_path):
  """freeze_graph.py, export_tflite.py and export_saved_model.py, then
  classify_image.py with the checkpoint and with each of the three."""
  out = relative_to_repo(tmp_path / 'export')
  frozen, tflite_model = out + '/frozen.pb', out + '/model.tflite'
  saved_model = out + '/saved_model/1'
  outputs = []
  for command in (
      ['freeze_graph.py', '--checkpoint_path=' + trained.train_dir,
       '--dataset_dir=' + shapes_dir, '--output_file=' + frozen],
      ['export_tflite.py', '--input_graph=' + frozen,
       '--output_file=' + tflite_model],
      ['export_saved_model.py', '--checkpoint_path=' + trained.train_dir,
       '--dataset_dir=' + shapes_dir, '--export_dir=' + saved_model]):
    status, output = _run(command)
    assert status == 0, (command, output)
    outputs.append(output)
  assert 'Froze %s with the raw trained weights' % trained.checkpoint in (
      outputs[0]), outputs[0]
  assert 'Wrote %s (float32, not quantized, ' % tflite_model in outputs[1]
  assert 'Wrote the SavedModel to %s' % saved_model in outputs[2]
  images, expected = trained.reference(image)
  # The written files, run here.
  graph_def = freeze.load_graph_def(_at_root(frozen))
  np.testing.assert_allclose(lib.run_graph_def(graph_def, images, OUTPUT),
                             expected, atol=FLOAT_ATOL)
  with open(_at_root(tflite_model), 'rb') as f:
    probabilities, dtype = lib.run_tflite(f.read(), images)
  assert dtype == np.float32
  np.testing.assert_allclose(probabilities, expected, atol=FLOAT_ATOL)
  # What classify_image.py prints for each, class names from labels.txt.
  with open(_at_root(shapes_dir + '/labels.txt')) as f:
    names = dict(l.strip().split(':') for l in f if l.strip())
  top = int(np.argmax(expected[0]))
  for model_path, kind in ((trained.train_dir, 'checkpoint'),
                           (frozen, 'frozen_graph'), (tflite_model, 'tflite'),
                           (saved_model, 'saved_model')):
    status, output = _run(['classify_image.py', '--model_path=' + model_path,
                           '--dataset_dir=' + shapes_dir,
                           '--top_k=%d' % NUM_CLASSES, image])
    assert status == 0, output
    assert 'Model: %s (%s), input %dx%dx3, %d classes' % (
        model_path, kind, SIZE, SIZE, NUM_CLASSES) in output
    printed, top_printed = _classified(output)
    assert top_printed == (top, names[str(top)]), (kind, output)
    np.testing.assert_allclose(_as_vector(printed), expected[0],
                               atol=PRINTED_ATOL, err_msg=kind)


@pytest.mark.slow
def test_inference_graph_frozen_by_tensorflows_tool(conv, shapes_dir, image,
                                                    tmp_path):
  """export_inference_graph.py, then tensorflow.python.tools.freeze_graph
  with the checkpoint, as slim's guides do."""
  graph = relative_to_repo(tmp_path / 'inference_graph.pb')
  frozen = relative_to_repo(tmp_path / 'frozen.pb')
  status, output = _run([
      'export_inference_graph.py', '--model_name=' + CONV,
      '--image_size=%d' % SIZE, '--dataset_name=shapes',
      '--dataset_dir=' + shapes_dir, '--output_file=' + graph])
  assert status == 0, output
  assert 'output node: %s' % OUTPUT in output
  status, output = _run([
      '-m', 'tensorflow.python.tools.freeze_graph', '--input_graph=' + graph,
      '--input_binary=true', '--input_checkpoint=' + conv.checkpoint,
      '--output_node_names=' + OUTPUT, '--output_graph=' + frozen])
  assert status == 0, output
  images, expected = conv.reference(image)
  np.testing.assert_allclose(
      lib.run_graph_def(freeze.load_graph_def(_at_root(frozen)), images,
                        OUTPUT), expected, atol=FLOAT_ATOL)


@pytest.mark.slow
def test_export_model_verifies_every_float_format(conv, shapes_dir, image,
                                                  tmp_path):
  out = relative_to_repo(tmp_path / 'all')
  status, output = _run([
      'export_model.py', '--checkpoint_path=' + conv.train_dir,
      '--dataset_dir=' + shapes_dir, '--output_dir=' + out,
      '--formats=frozen,saved_model,tflite', '--verify', image])
  assert status == 0, output
  for fmt, path in (('frozen', 'frozen.pb'), ('saved_model', 'saved_model/1'),
                    ('tflite', 'model.tflite')):
    assert 'Wrote %s: %s/%s' % (fmt, out, path) in output, output
    # Within --max_float_difference (1e-4), same top class.
    assert re.search(r'^%s\s.*\s100\.0%%\s' % fmt, output, re.M), output
  assert '(1 images; max |dp|' in output


@pytest.mark.slow
def test_full_integer_tflite(trained, shapes_dir, image, tmp_path):
  """From the checkpoint in one command; TF 1.15 refuses the hybrid's."""
  model = relative_to_repo(tmp_path / 'int8.tflite')
  status, output = _run([
      'export_tflite.py', '--checkpoint_path=' + trained.train_dir,
      '--quantization=full_integer', '--dataset_dir=' + shapes_dir,
      '--num_calibration_images=4', '--output_file=' + model])
  if not tf_compat.IS_TF2 and trained.name == HYBRID:
    assert status == 1, output
    assert re.search(
        r"export_tflite: error: TF 1\.15 converted \S+ "
        r"\(--quantization=full_integer\), but its own TFLite interpreter "
        r"cannot load the result \(.*FULLY_CONNECTED.*\), so no TFLite model "
        r"was written\. This is a limitation of TF 1\.15's converter: .* "
        r"Convert on the TF 2 stack", _flat(output)), output
    assert not os.path.exists(_at_root(model))
    return
  assert status == 0, output
  assert 'calibrated on 4 images of shapes/train' in output, output
  status, output = _run(['classify_image.py', '--model_path=' + model,
                         '--dataset_dir=' + shapes_dir, image])
  assert status == 0, output
  assert 'Model: %s (tflite), input %dx%dx3' % (model, SIZE, SIZE) in output
  _classified(output)


def _write_erf_graph(path):
  """The smallest graph the export scripts take, with an Erf in it."""
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [1, 4, 4, 3], name='input')
    tf.reshape(tf.reduce_mean(tf.math.erf(images), [1, 2]), [1, 3],
               name=OUTPUT)
  freeze.write_graph_def(graph.as_graph_def(), path)


@pytest.mark.skipif(tf_compat.IS_TF2, reason='TF 2 converts the GELU that '
                    'Erf comes from (test_hybrid_large_tflite)')
def test_tf1_names_the_missing_erf_op(tmp_path):
  graph = relative_to_repo(tmp_path / 'erf.pb')
  _write_erf_graph(_at_root(graph))
  model = relative_to_repo(tmp_path / 'erf.tflite')
  status, output = _run(['export_tflite.py', '--input_graph=' + graph,
                         '--output_file=' + model])
  assert status == 1, output
  assert ('export_tflite: error: TF 1.15 cannot convert %s to TFLite: the '
          'graph has Erf ops (the exact (erf) GELU of '
          'mobilenet_v4_hybrid_large), which TF 1.15\'s converter does not '
          'have' % graph) in _flat(output), output
  assert 'run the same command on the TF 2 stack' in _flat(output), output
  assert not os.path.exists(_at_root(model))


@pytest.mark.slow
def test_hybrid_large_tflite(image, tmp_path):
  """Hybrid-L (exact GELU) from an untrained checkpoint: TF 2 converts it
  (equal to the checkpoint), TF 1.15 says why it cannot."""
  name = 'mobilenet_v4_hybrid_large'
  checkpoint = save_untrained_checkpoint(str(tmp_path), name, NUM_CLASSES,
                                         SIZE)
  model = relative_to_repo(tmp_path / 'model.tflite')
  status, output = _run([
      'export_tflite.py', '--checkpoint_path=' + relative_to_repo(checkpoint),
      '--model_name=' + name, '--image_size=%d' % SIZE,
      '--num_classes=%d' % NUM_CLASSES, '--output_file=' + model])
  if not tf_compat.IS_TF2:
    assert status == 1, output
    assert 'the graph has Erf ops (the exact (erf) GELU of %s)' % name in (
        _flat(output)), output
    assert 'This is a limitation of TF 1.15' in _flat(output), output
    assert not os.path.exists(_at_root(model))
    return
  assert status == 0, output
  with open(_at_root(image), 'rb') as f:
    images = lib.preprocess([f.read()], SIZE, name)
  with open(_at_root(model), 'rb') as f:
    probabilities, _ = lib.run_tflite(f.read(), images)
  np.testing.assert_allclose(
      probabilities, lib.reference_probabilities(checkpoint, images, name,
                                                 NUM_CLASSES),
      atol=FLOAT_ATOL)
