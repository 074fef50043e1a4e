"""timm's PyTorch-trained (non-tf_) weights through the scripts, exactly.

timm's mobilenetv1_100 / mobilenetv2_100 pad symmetrically and take images
normalized with ImageNet's mean and std. convert_weights.py records both
(use_explicit_padding, preprocessing_name=inception_mean_std); evaluation,
export and classification read them from the record, so a seeded checkpoint
converted here gives the probabilities timm gave on the same picture
(tests/golden/timm_pipeline_*.npz, from make_timm_goldens.py) without any
extra flag. Fine-tuning from the converted checkpoint keeps both.

Paths are relative to the repository root, as a user types them. Runs on
both stacks without torch.
"""

import io
import json
import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
from PIL import Image
import pytest
import tensorflow.compat.v1 as tf

import classify_image
import eval_image_classifier
import export_tflite
import freeze_graph
from datasets import generate_shapes
from preprocessing import preprocessing_factory
from tests import test_export_lib as lib
from tests import weights_helpers
from tests.golden import seeded_timm_weights
from tests.train_dir_helpers import REPO_ROOT
from tests.train_dir_helpers import relative_to_repo
from tests.train_dir_helpers import run_python
from tests.train_dir_helpers import train_in_process
from training import model_inputs
from training import run_record
from weights import timm_source

# The float formats run the same arithmetic in another order.
ATOL = 1e-5
PRINTED_ATOL = 1e-4   # classify_image.py prints 4 decimals


class Converted(object):
  """A seeded timm checkpoint converted by convert_weights.py."""

  def __init__(self, timm_name, directory):
    self.timm_name = timm_name
    self.model_name = timm_source.TIMM_TO_FACTORY[timm_name]
    self.golden = weights_helpers.timm_golden(timm_name, 'timm_pipeline')
    self.directory = directory            # relative to the repository
    self.prefix = directory + '/pretrained/model.ckpt'
    self.picture = directory + '/picture.png'

  def picture_bytes(self):
    with open(os.path.join(REPO_ROOT, self.picture), 'rb') as f:
      return f.read()

  def images(self):
    """The picture as timm prepared it, by this project's preprocessing."""
    return lib.preprocess([self.picture_bytes()], self.golden['image_size'],
                          'inception_mean_std')


@pytest.fixture(scope='module', params=[
    'mobilenetv1_100',
    pytest.param('mobilenetv2_100', marks=pytest.mark.slow)])
def converted(request, tmp_path_factory):
  timm_name = request.param
  converted = Converted(timm_name, relative_to_repo(
      tmp_path_factory.mktemp(timm_name)))
  root = os.path.join(REPO_ROOT, converted.directory)
  source = os.path.join(root, 'model.safetensors')
  weights_helpers.write_timm_safetensors(timm_name, source, 'timm_pipeline')
  Image.fromarray(seeded_timm_weights.seeded_uint8_image(
      int(converted.golden['picture_size']))).save(
          os.path.join(root, 'picture.png'))
  status, output = run_python([
      'convert_weights.py', '--from=timm', '--timm_name=' + timm_name,
      '--input=' + converted.directory + '/model.safetensors',
      '--output=' + converted.prefix,
      '--image_size=%d' % converted.golden['image_size']])
  assert status == 0, output
  assert '--use_explicit_padding=true' in output, output
  return converted


@pytest.fixture
def at_root(monkeypatch):
  monkeypatch.chdir(REPO_ROOT)


def _assert_timms(probabilities, golden, atol=ATOL):
  """slim's 1001 classes (background first) against timm's 1000."""
  probabilities = np.asarray(probabilities).reshape(1, -1)
  assert probabilities.shape == (1, 1001)
  assert probabilities[0, 0] == pytest.approx(0.0, abs=1e-12)
  np.testing.assert_allclose(probabilities[:, 1:], golden['probabilities'],
                             rtol=0, atol=atol)


def test_the_record_says_the_padding_and_the_preprocessing(converted):
  with open(os.path.join(REPO_ROOT, converted.directory, 'pretrained',
                         run_record.RECORD_FILENAME)) as f:
    record = json.load(f)
  assert record['use_explicit_padding'] is True
  assert record['preprocessing_name'] == 'inception_mean_std'
  assert record['image_size'] == converted.golden['image_size']
  # The preprocessing leaves the central 56x56 of the 64x64 picture as it
  # is (x / 255, ImageNet's mean/std), as timm's golden was made.
  picture = seeded_timm_weights.seeded_uint8_image(
      int(converted.golden['picture_size'])).astype(np.float32) / 255
  crop = picture[4:60, 4:60]
  expected = ((crop - np.float32([0.485, 0.456, 0.406])) /
              np.float32([0.229, 0.224, 0.225]))
  np.testing.assert_allclose(converted.images()[0], expected, atol=1e-6)


def test_evaluation_builds_the_network_the_record_describes(converted,
                                                            at_root):
  """eval_image_classifier.py's config, completed from the record, builds
  the network and preprocessing that give timm's probabilities."""
  opts = eval_image_classifier.parse_flags(
      ['--checkpoint_path=' + converted.prefix, '--dataset_dir=unused'])
  from cli import record_flags  # pylint: disable=g-import-not-at-top
  merged, _ = record_flags.merged_flags(
      opts, opts.checkpoint_path, eval_image_classifier.RECORD_FLAGS)
  inputs = eval_image_classifier.config_from_flags(merged).inputs
  assert inputs.use_explicit_padding is True
  assert inputs.preprocessing_name == 'inception_mean_std'
  network_fn = model_inputs.get_network_fn(
      inputs.model_name, 1001, use_explicit_padding=inputs.use_explicit_padding)
  preprocessing_fn = model_inputs.get_preprocessing_fn(
      inputs.preprocessing_name, is_training=False)
  with tf.Graph().as_default():
    image = preprocessing_fn(tf.image.decode_png(
        converted.picture_bytes(), channels=3), inputs.image_size,
                             inputs.image_size)
    _, end_points = network_fn(tf.expand_dims(image, 0))
    saver = tf.train.Saver()
    with tf.Session() as sess:
      saver.restore(sess, converted.prefix)
      probabilities = sess.run(end_points['Predictions'])
  _assert_timms(probabilities, converted.golden)


def test_exported_models_give_timms_probabilities(converted, at_root):
  """freeze_graph.py and export_tflite.py with no flag but the paths, then
  classify_image.py on the TFLite model and the picture file."""
  out = converted.directory + '/export'
  frozen = lib.run_script(freeze_graph, [
      '--checkpoint_path=' + converted.prefix,
      '--output_file=' + out + '/frozen.pb'])
  lib.run_script(export_tflite, ['--checkpoint_path=' + converted.prefix,
                                 '--output_file=' + out + '/model.tflite'])
  images = converted.images()
  with open(out + '/frozen.pb', 'rb') as f:
    graph_def = tf.GraphDef.FromString(f.read())
  _assert_timms(lib.run_graph_def(graph_def, images, frozen.output_node_name),
                converted.golden)
  with open(out + '/model.tflite', 'rb') as f:
    tflite_probabilities, _ = lib.run_tflite(f.read(), images)
  _assert_timms(tflite_probabilities, converted.golden)
  out_text = io.StringIO()
  lib.run_script(classify_image, ['--model_path=' + out + '/model.tflite',
                                  '--top_k=1'], [converted.picture], out_text)
  printed = out_text.getvalue()
  assert 'preprocessing inception_mean_std' in printed, printed
  best = int(np.argmax(converted.golden['probabilities'])) + 1
  line = [row for row in printed.splitlines() if row.strip().startswith('1.')]
  assert line and line[0].split()[2] == str(best), printed
  assert float(line[0].split()[1]) == pytest.approx(
      converted.golden['probabilities'].max(), abs=PRINTED_ATOL)


@pytest.mark.slow
def test_fine_tuning_keeps_the_padding_and_the_preprocessing(converted,
                                                             tmp_path,
                                                             at_root):
  if converted.timm_name != 'mobilenetv1_100':
    pytest.skip('one network is enough for the flags')
  shapes_dir = str(tmp_path / 'shapes')
  generate_shapes.run(shapes_dir, image_size=64, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  train_dir = relative_to_repo(tmp_path / 'train')
  train_in_process(
      ['--dataset_name=shapes', '--model_name=' + converted.model_name,
       '--train_image_size=56', '--batch_size=4', '--save_summaries_secs=0',
       '--num_readers=1', '--num_preprocessing_threads=1'],
      relative_to_repo(shapes_dir), train_dir, '--max_number_of_steps=1',
      '--checkpoint_path=' + converted.prefix,
      '--checkpoint_exclude_scopes=MobilenetV1/Logits')
  record = run_record.read_record(run_record.find_record(train_dir))
  assert record['use_explicit_padding'] is True
  assert record['preprocessing_name'] == 'inception_mean_std'
  assert record['num_classes'] == 6
  # The padding is in the graph that was trained: explicit Pad ops before
  # the strided convolutions.
  with tf.Graph().as_default() as graph:
    tf.train.import_meta_graph(
        tf.train.latest_checkpoint(train_dir) + '.meta', clear_devices=True)
  assert [op for op in graph.get_operations()
          if op.type == 'Pad' and 'MobilenetV1' in op.name]


def test_preprocessing_name_is_registered():
  assert 'inception_mean_std' in preprocessing_factory.preprocessing_names()
  with tf.Graph().as_default(), tf.Session() as sess:
    white = preprocessing_factory.get_preprocessing('inception_mean_std')(
        tf.constant(np.full((8, 8, 3), 255, np.uint8)), 8, 8)
    value = sess.run(white)
  np.testing.assert_allclose(
      value[0, 0], (1 - np.float32([0.485, 0.456, 0.406])) /
      np.float32([0.229, 0.224, 0.225]), rtol=1e-6)


def test_records_without_the_padding_field_still_read(tmp_path):
  """Records written before the field existed mean the network's own."""
  record = run_record.make_record('mobilenet_v1', 224, 'mobilenet_v1',
                                  'imagenet', 1001)
  del record['use_explicit_padding']
  path = str(tmp_path / run_record.RECORD_FILENAME)
  with open(path, 'w') as f:
    json.dump(dict(record, format_version=1), f)
  assert run_record.read_record(path)['use_explicit_padding'] is None
  with pytest.raises(run_record.RecordError, match='use_explicit_padding'):
    run_record.check_record(dict(record, use_explicit_padding='yes'))
