"""TFLite models run through LiteRT on TF 2, TF 1.15's interpreter on 1.15.

tf.lite.Interpreter is deprecated for removal on TF 2; the project runs
models through `export.tflite.make_interpreter` only, and no longer hides
the deprecation warning, so a missed call site shows.
"""

import os
import re
import subprocess
import sys
import warnings

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from export import freeze
from export import predictors
from export import tflite

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Records of earlier measurements, kept as they were run.
_ARCHIVED = os.path.join('benchmarks', 'results', 'experiments')


def _tiny_tflite(directory):
  """A 4-class softmax over the mean colour of an 8x8 image, as .tflite."""
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [None, 8, 8, 3], name='input')
    weights = tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4) / 6)
    logits = tf.matmul(tf.reduce_mean(images, [1, 2]), weights)
    tf.nn.softmax(logits, name='Tiny/Predictions/Reshape_1')
  graph_path = os.path.join(directory, 'tiny.pb')
  freeze.write_graph_def(graph.as_graph_def(), graph_path)
  path = os.path.join(directory, 'tiny.tflite')
  freeze.write_bytes(tflite.convert(graph_path), path)
  return path


def test_interpreter_is_litert_on_tf2_and_tf_lite_on_tf1():
  cls = tflite.interpreter_class()
  if tf_compat.IS_TF2:
    assert cls.__module__.startswith('ai_edge_litert')
  else:
    assert cls is tf.lite.Interpreter


def test_predictor_runs_a_model_without_deprecation_warnings(tmp_path):
  path = _tiny_tflite(str(tmp_path))
  image = np.full([1, 8, 8, 3], 0.5, np.float32)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    predictor = predictors.TFLitePredictor(path)
    probabilities = predictor.predict(image)
  expected = np.exp(np.arange(4) / 4.0)  # mean 0.5 * column sums / 6
  np.testing.assert_allclose(probabilities[0], expected / expected.sum(),
                             rtol=1e-5)
  assert not [w for w in caught if 'deprecated' in str(w.message)]


@pytest.mark.skipif(not tf_compat.IS_TF2,
                    reason='TF 1.15\'s interpreter is not deprecated')
def test_the_tf_lite_interpreter_warning_is_not_hidden(tmp_path, script_env):
  # In a script's conditions (cli.logs imported first): a call of the
  # deprecated interpreter still prints its warning.
  path = _tiny_tflite(str(tmp_path))
  code = ('from cli import logs\n'
          'from core import tf_compat\n'
          'import tensorflow.compat.v1 as tf\n'
          'tf.lite.Interpreter(model_path=%r)\n' % path)
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                          env=script_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
  assert result.returncode == 0, result.stderr
  assert 'tf.lite.Interpreter is deprecated' in result.stderr


def test_no_code_calls_the_tf_lite_interpreter_directly():
  # Every TFLite model runs through export.tflite.make_interpreter.
  pattern = re.compile(r'tf\.lite\.Interpreter\s*\(|lite\.Interpreter\s*\(')
  offenders = []
  for root, dirs, files in os.walk(REPO_ROOT):
    dirs[:] = [d for d in dirs if not d.startswith('.')]
    if os.path.relpath(root, REPO_ROOT).startswith(_ARCHIVED):
      continue
    for name in files:
      path = os.path.join(root, name)
      if not name.endswith('.py') or path == os.path.abspath(__file__):
        continue
      with open(path) as f:
        if pattern.search(f.read()):
          offenders.append(os.path.relpath(path, REPO_ROOT))
  assert offenders == []
