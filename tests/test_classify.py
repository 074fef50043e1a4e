"""Tests for classify_image.py and export/predictors.py, on both stacks."""


import io
import logging
import os
import shutil
import subprocess
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
from PIL import Image
import pytest

import classify_image
import export_inference_graph
import export_onnx
import export_tflite
from training import run_record
from core import errors
from export import labels
from export import predictors
from tests import test_export_lib as lib

# The script's own errors and the export library's share this base.
ScriptError = errors.InputError
NAMES = [name for name, _ in lib.CLASS_COLOURS]

_EXPORTS = {}


@pytest.fixture
def exported(model, frozen_model, saved_model):
  """{kind: model path} for the session's checkpoint, exported once."""
  if not _EXPORTS:
    root = os.path.join(model.root, 'classify_exports')
    os.makedirs(root, exist_ok=True)
    # freeze_graph.py and export_saved_model.py, each run once (conftest).
    frozen = frozen_model[0]
    saved = saved_model
    tflite_path = os.path.join(root, 'model.tflite')
    lib.run_script(export_tflite, ['--input_graph=' + frozen,
                                   '--output_file=' + tflite_path])
    int8_path = os.path.join(root, 'model_int8.tflite')
    lib.run_script(export_tflite, [
        '--input_graph=' + frozen, '--output_file=' + int8_path,
        '--quantization=full_integer', '--dataset_name=image_folder',
        '--dataset_dir=' + model.dataset_dir, '--num_calibration_images=32'])
    _EXPORTS['int8'] = int8_path
    onnx_path = os.path.join(root, 'model.onnx')
    lib.run_script(export_onnx, ['--input_graph=' + frozen,
                                 '--output_file=' + onnx_path])
    _EXPORTS[predictors.ONNX] = onnx_path
    _EXPORTS.update({predictors.CHECKPOINT: os.path.dirname(model.checkpoint),
                     predictors.FROZEN_GRAPH: frozen,
                     predictors.SAVED_MODEL: saved,
                     predictors.TFLITE: tflite_path})
  return dict(_EXPORTS)


@pytest.fixture
def image_files(model, tmp_path):
  """One validation image per class, as JPEG or PNG files; and their rows."""
  paths, rows = [], []
  for label in range(lib.NUM_CLASSES):
    row = int(np.where(model.labels == label)[0][0])
    data = model.encoded[row]
    extension = 'jpg' if data.startswith(b'\xff\xd8') else 'png'
    path = str(tmp_path / ('%s.%s' % (NAMES[label], extension)))
    with open(path, 'wb') as f:
      f.write(data)
    paths.append(path)
    rows.append(row)
  return paths, rows


def _classify(model, model_path, images, *extra):
  out = io.StringIO()
  results = lib.run_script(
      classify_image, ['--model_path=' + model_path,
                       '--model_name=' + lib.MODEL_NAME,
                       '--image_size=%d' % lib.IMAGE_SIZE,
                       '--dataset_name=image_folder',
                       '--dataset_dir=' + model.dataset_dir,
                       '--top_k=%d' % lib.NUM_CLASSES] + list(extra),
      images, out)
  return results, out.getvalue()


# ------------------------------------------------------------ model kinds


@pytest.mark.slow
def test_detect_kind(model, exported):
  checkpoint = model.checkpoint
  expected = [
      (os.path.dirname(checkpoint), predictors.CHECKPOINT, checkpoint),
      (checkpoint, predictors.CHECKPOINT, checkpoint),
      (checkpoint + '.index', predictors.CHECKPOINT, checkpoint),
      (checkpoint + '.data-00000-of-00001', predictors.CHECKPOINT,
       checkpoint),
      (exported[predictors.FROZEN_GRAPH], predictors.FROZEN_GRAPH, None),
      (exported[predictors.SAVED_MODEL], predictors.SAVED_MODEL, None),
      (os.path.join(exported[predictors.SAVED_MODEL], 'saved_model.pb'),
       predictors.SAVED_MODEL, exported[predictors.SAVED_MODEL]),
      (exported[predictors.TFLITE], predictors.TFLITE, None),
      (exported[predictors.ONNX], predictors.ONNX, None),
  ]
  for path, kind, resolved in expected:
    assert predictors.detect_kind(path) == (kind, resolved or path), path


@pytest.mark.slow
@pytest.mark.parametrize('kind', predictors.KINDS)
def test_classify_with_each_model_kind(model, exported, image_files, kind):
  paths, rows = image_files
  results, text = _classify(model, exported[kind], paths)
  assert len(results) == len(paths)
  for path, row, result in zip(paths, rows, results):
    reference = model.probabilities[row]
    probability, label_id, name = result[0]
    assert label_id == int(reference.argmax())
    assert name == NAMES[label_id]
    ranked = sorted(result, key=lambda r: r[1])
    np.testing.assert_allclose([r[0] for r in ranked], reference, atol=1e-4)
    assert path in text
  assert '(%s)' % kind in text
  assert ' red' in text


@pytest.mark.slow
def test_classify_with_full_integer_tflite(model, exported, image_files,
                                           caplog):
  paths, rows = image_files
  with caplog.at_level(logging.WARNING):
    predictor = predictors.load(exported['int8'])
  assert predictor.input_dtype == np.uint8
  predictor.close()
  # TF 1.15's interpreter is ~800x slower on integer models (reference
  # kernels); the user is told so, once, and only there.
  notes = [r for r in caplog.records if 'reference kernels' in r.getMessage()]
  assert len(notes) == (0 if tf_compat.IS_TF2 else 1)
  if notes:
    assert exported['int8'] in notes[0].getMessage()
  results, _ = _classify(model, exported['int8'], paths)
  # The script's input quantization and output dequantization give what the
  # int8 model itself computes on the same images, (de)quantized
  # independently here: within one uint8 output step.
  with open(exported['int8'], 'rb') as f:
    direct, _ = lib.run_tflite(f.read(), model.images[rows])
  for result, expected in zip(results, direct):
    ranked = sorted(result, key=lambda r: r[1])
    np.testing.assert_allclose([r[0] for r in ranked], expected,
                               atol=1.5 / 256)
  # Against the float model: int8 rounding of this small fixture moves a
  # probability by up to ~0.2 (0.61 vs 0.42 seen on an AVX-512 machine), so
  # the int8 top-1 must be the float top-1 where the float lead is over
  # twice that, and otherwise within twice that of the float maximum.
  margin = 0.4
  clear_winners = 0
  for row, result in zip(rows, results):
    reference = model.probabilities[row]
    top_two = np.sort(reference)[-2:]
    if top_two[1] - top_two[0] > margin:
      clear_winners += 1
      assert result[0][1] == reference.argmax()
    else:
      assert reference[result[0][1]] >= reference.max() - margin
  assert clear_winners, 'no image with a clear float winner: the check is void'


@pytest.mark.slow
def test_classify_images_of_any_size_and_mode(model, exported, tmp_path):
  wide = np.full([37, 100, 3], 128, np.uint8)
  wide[8:30, 40:62] = lib.CLASS_COLOURS[NAMES.index('red')][1]
  Image.fromarray(wide).save(str(tmp_path / 'wide.png'))
  gray = Image.fromarray(np.full([50, 50], 90, np.uint8), mode='L')
  gray.save(str(tmp_path / 'gray.jpg'))
  rgba = Image.fromarray(np.dstack([wide, np.full([37, 100], 255, np.uint8)]))
  rgba.save(str(tmp_path / 'rgba.png'))
  results, _ = _classify(model, exported[predictors.TFLITE],
                         [str(tmp_path / n) for n in
                          ('wide.png', 'gray.jpg', 'rgba.png')])
  assert results[0][0][2] == 'red'
  assert results[2][0][2] == 'red'
  assert len(results[1]) == lib.NUM_CLASSES


@pytest.mark.slow
def test_classify_with_background_labels_offset(model, exported, image_files,
                                                tmp_path):
  # Labels of a dataset with a background class 0, the model trained on
  # labels 1..4 with --labels_offset=1.
  labels_file = tmp_path / 'labels_with_background.txt'
  labels_file.write_text(u''.join(
      [u'0:background\n'] + [u'%d:%s\n' % (i + 1, n)
                             for i, n in enumerate(NAMES)]))
  paths, rows = image_files
  results, _ = _classify(model, exported[predictors.TFLITE], paths,
                         '--labels_file=%s' % labels_file,
                         '--labels_offset=1')
  for row, result in zip(rows, results):
    assert result[0][1] == model.probabilities[row].argmax() + 1
    assert result[0][2] == NAMES[model.probabilities[row].argmax()]


def test_label_map_offsets_and_background():
  names = dict(enumerate(NAMES))
  assert labels.LabelMap(names, 4).label(2) == (2, 'red')
  with_background = dict([(0, 'background')] +
                         [(i + 1, n) for i, n in enumerate(NAMES)])
  assert labels.LabelMap(with_background, 4, 1).label(0) == (1, 'blue')
  assert labels.LabelMap(with_background, 5).label(0) == (0, 'background')
  # A 1001-way head with the 1000 ImageNet names (no background line).
  label_map = labels.LabelMap(names, 5, 0, 'labels.txt')
  assert 'background' in label_map.note
  assert label_map.label(0) == (-1, 'background')
  assert label_map.label(1) == (0, 'blue')
  with pytest.raises(labels.LabelsError, match='labels_offset'):
    labels.LabelMap(names, 4, 1, 'labels.txt')
  with pytest.raises(labels.LabelsError, match='labels_offset'):
    labels.LabelMap(names, 7, 0, 'labels.txt')
  assert labels.LabelMap(None, 4).label(3) == (3, None)


# ----------------------------------------------------------------- errors


@pytest.mark.slow
def test_bad_images_are_reported_and_the_others_classified(
    model, exported, image_files, tmp_path):
  paths, rows = image_files
  text_file = tmp_path / 'notes.txt'
  text_file.write_text(u'not an image')
  truncated = tmp_path / 'truncated.jpg'
  with open(paths[0], 'rb') as f:
    truncated.write_bytes(f.read()[:120])
  missing = str(tmp_path / 'missing.jpg')
  for kind in (predictors.TFLITE, predictors.SAVED_MODEL):
    images = [paths[0], str(text_file), str(truncated), paths[1], missing]
    with pytest.raises(classify_image.ImagesFailed) as failed:
      _classify(model, exported[kind], images)
    message = str(failed.value)
    lines = message.split('\n')
    assert lines[0].startswith('3 of 5 images could not be classified')
    assert 'notes.txt is not an image' in lines[1]
    assert 'truncated.jpg: Cannot decode' in lines[2]
    assert 'missing.jpg does not exist' in lines[3]
    assert len(lines) == 4
    results = failed.value.results
    assert [r is None for r in results] == [False, True, True, False, True]
    for result, row in ((results[0], rows[0]), (results[3], rows[1])):
      assert result[0][1] == int(model.probabilities[row].argmax())
  with pytest.raises(ScriptError, match='None of the 1 image'):
    _classify(model, exported[predictors.TFLITE], [missing])
  with pytest.raises(ScriptError, match='No images given'):
    _classify(model, exported[predictors.TFLITE], [])


@pytest.mark.slow
def test_wrong_model_files_are_reported(model, exported, image_files,
                                        tmp_path):
  paths, _ = image_files
  fake_tflite = tmp_path / 'model.tflite'
  fake_tflite.write_text(u'hello')
  fake_onnx = tmp_path / 'model.onnx'
  fake_onnx.write_text(u'hello')
  text_pb = tmp_path / 'notes.pb'
  text_pb.write_text(u'hello, this is not a graph')
  unfrozen = str(tmp_path / 'inference_graph.pb')
  lib.run_script(export_inference_graph, [
      '--model_name=' + lib.MODEL_NAME, '--image_size=32',
      '--num_classes=4', '--output_file=' + unfrozen])
  cases = [
      (paths[0], 'is a JPEG image, not a model|is a PNG image, not a model'),
      (str(fake_tflite), 'not a TFLite model'),
      (str(fake_onnx), 'ONNX Runtime .* cannot load'),
      (str(text_pb), 'is not a GraphDef|not an exported classifier'),
      (unfrozen, 'not frozen'),
      (str(tmp_path / 'nothing.pb'), 'does not exist'),
      (str(tmp_path), 'neither a SavedModel'),
  ]
  for model_path, message in cases:
    with pytest.raises(ScriptError, match=message):
      _classify(model, model_path, paths[:1])


@pytest.mark.slow
def test_checkpoint_of_another_model_is_reported(model, image_files):
  paths, _ = image_files
  with pytest.raises(ScriptError, match='--model_name'):
    _classify(model, model.checkpoint, paths[:1],
              '--model_name=mobilenet_v1')


@pytest.mark.slow
def test_missing_labels_are_reported(model, exported, image_files, tmp_path):
  paths, _ = image_files
  with pytest.raises(ScriptError, match='--labels_file=.*does not exist'):
    _classify(model, exported[predictors.TFLITE], paths,
              '--labels_file=' + str(tmp_path / 'labels.txt'))
  with pytest.raises(ScriptError, match='has no labels.txt'):
    _classify(model, exported[predictors.TFLITE], paths,
              '--dataset_dir=' + str(tmp_path))
  bad = tmp_path / 'bad_labels.txt'
  bad.write_text(u'blue\ngreen\n')
  with pytest.raises(ScriptError, match='id:name'):
    _classify(model, exported[predictors.TFLITE], paths,
              '--labels_file=' + str(bad))


@pytest.mark.slow
def test_command_line(model, exported, image_files, repo_root, script_env,
                      tmp_path):
  paths, rows = image_files
  command = [sys.executable, os.path.join(repo_root, 'classify_image.py'),
             '--model_path=' + exported[predictors.TFLITE],
             '--dataset_dir=' + model.dataset_dir, '--top_k=2']
  result = subprocess.run(command + paths, env=script_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
  assert result.returncode == 0, result.stderr[-3000:]
  for path, row in zip(paths, rows):
    block = result.stdout.split(path)[1].split('\n')[1]
    assert NAMES[model.probabilities[row].argmax()] in block
  not_image = tmp_path / 'notes.txt'
  not_image.write_text(u'not an image')
  bad = subprocess.run(command + [paths[0], str(not_image)], env=script_env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
  assert bad.returncode == 1
  assert paths[0] in bad.stdout  # the good image is still classified
  assert NAMES[model.probabilities[rows[0]].argmax()] in bad.stdout
  assert 'classify_image: error: 1 of 2 images' in bad.stderr
  assert 'notes.txt is not an image' in bad.stderr
  assert 'Traceback' not in bad.stderr
  assert 'INFO:tensorflow' not in bad.stderr + bad.stdout


def _copy_checkpoint(model, directory):
  """The session's checkpoint copied into `directory` (its own train_dir)."""
  os.makedirs(directory)
  prefix = os.path.basename(model.checkpoint)
  for name in os.listdir(os.path.dirname(model.checkpoint)):
    if name.startswith(prefix + '.'):
      shutil.copy(os.path.join(os.path.dirname(model.checkpoint), name),
                  directory)
  with open(os.path.join(directory, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "%s"\n' % prefix)
  return os.path.join(directory, prefix)


@pytest.mark.slow
def test_training_record_supplies_the_flags_not_given(model, image_files,
                                                      tmp_path):
  paths, rows = image_files
  train_dir = str(tmp_path / 'train')
  _copy_checkpoint(model, train_dir)
  record_path = run_record.write_record(train_dir, run_record.make_record(
      model_name=lib.MODEL_NAME, image_size=lib.IMAGE_SIZE,
      preprocessing_name=lib.MODEL_NAME, dataset_name='image_folder',
      num_classes=lib.NUM_CLASSES, labels_offset=0))
  out = io.StringIO()
  # No --model_name (default mobilenet_v1) and no --image_size (224).
  results = lib.run_script(
      classify_image, ['--model_path=' + train_dir,
                       '--dataset_dir=' + model.dataset_dir], paths[:2], out)
  text = out.getvalue()
  assert ('from %s: model_name=%s, image_size=%d' %
          (record_path, lib.MODEL_NAME, lib.IMAGE_SIZE)) in text
  assert 'input %dx%d' % (lib.IMAGE_SIZE, lib.IMAGE_SIZE) in text
  for row, result in zip(rows, results):
    assert result[0][1] == int(model.probabilities[row].argmax())
  out = io.StringIO()
  lib.run_script(classify_image, ['--model_path=' + train_dir,
                                  '--image_size=64',
                                  '--dataset_dir=' + model.dataset_dir],
                 paths[:1], out)
  assert ('Warning: --image_size=64 but the model was trained at %d' %
          lib.IMAGE_SIZE) in out.getvalue()
  assert 'input 64x64' in out.getvalue()  # the given flag wins


def test_tflite_predictor_uses_every_usable_cpu_on_tf2(monkeypatch, tmp_path):
  from export import tflite  # pylint: disable=g-import-not-at-top
  created = []

  def fake_interpreter(**kwargs):
    created.append(kwargs)
    raise ValueError('not a model')

  monkeypatch.setattr(tflite, 'interpreter_class', lambda: fake_interpreter)
  path = str(tmp_path / 'model.tflite')
  with pytest.raises(predictors.ModelError, match='model_path'):
    predictors.TFLitePredictor(path)
  assert created[0]['model_path'] == path
  if tf_compat.IS_TF2:
    assert created[0]['num_threads'] == len(os.sched_getaffinity(0))
  else:
    assert 'num_threads' not in created[0]  # TF 1.15 has no such argument.
