"""The SavedModel's serving signatures, checked the way TF Serving users do.

`saved_model_cli show --all` lists both signatures; `saved_model_cli run`
runs encoded images through `serving_default`; and a request body in TF
Serving's REST format (`{"instances": [{"b64": ...}]}`) is decoded as the
server decodes it and run through the signature. Uses the session's
SavedModel (conftest: export_saved_model.py, --top_k=3, labels.txt known).
"""

import base64
import json
import os
import subprocess
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from export import saved_model as saved_model_lib
from tests import test_export_lib as lib

NAMES = [name for name, _ in lib.CLASS_COLOURS]


def _saved_model_cli(*args, **kwargs):
  command = [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli']
  result = subprocess.run(command + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=kwargs['env'])
  assert result.returncode == 0, result.stderr
  return result.stdout


def _signature_block(text, name):
  start = text.index("signature_def['%s']" % name)
  end = text.find("signature_def['", start + 1)
  return text[start:end if end > 0 else None]


@pytest.mark.slow
def test_saved_model_cli_show_lists_both_signatures(saved_model, script_env):
  text = _saved_model_cli('show', '--dir', saved_model, '--all',
                          env=script_env)
  serving = _signature_block(text, 'serving_default')
  assert "inputs['image_bytes']" in serving
  assert 'dtype: DT_STRING' in serving and 'shape: (-1)' in serving
  for output in ('probabilities', 'classes', 'scores', 'class_names'):
    assert "outputs['%s']" % output in serving
  images = _signature_block(text, 'predict_images')
  assert "inputs['images']" in images
  assert 'shape: (-1, %d, %d, 3)' % (lib.IMAGE_SIZE, lib.IMAGE_SIZE) in images
  assert 'dtype: DT_FLOAT' in images


@pytest.mark.slow
def test_saved_model_cli_run_classifies_encoded_images(model, saved_model,
                                                       tmp_path, script_env):
  rows = [int(np.where(model.labels == label)[0][0])
          for label in range(lib.NUM_CLASSES)]
  # Fixed-width bytes (numpy 'S') load without pickle; no image ends in 0.
  encoded = np.array([model.encoded[r] for r in rows], dtype=bytes)
  assert all(not data.endswith(b'\0') for data in encoded)
  inputs = str(tmp_path / 'images.npy')
  np.save(inputs, encoded)
  outdir = str(tmp_path / 'outputs')
  _saved_model_cli('run', '--dir', saved_model, '--tag_set', 'serve',
                   '--signature_def', 'serving_default',
                   '--inputs', 'image_bytes=' + inputs, '--outdir', outdir,
                   env=script_env)
  probabilities = np.load(os.path.join(outdir, 'probabilities.npy'))
  np.testing.assert_allclose(probabilities, model.probabilities[rows],
                             atol=1e-4)
  classes = np.load(os.path.join(outdir, 'classes.npy'))
  np.testing.assert_array_equal(classes[:, 0],
                                model.probabilities[rows].argmax(1))
  # saved_model_cli writes string outputs as object arrays (pickled).
  names = np.load(os.path.join(outdir, 'class_names.npy'), allow_pickle=True)
  assert [bytes(n).decode() for n in names[:, 0]] == [
      NAMES[c] for c in classes[:, 0]]


def decode_rest_instances(body, input_specs):
  """Tensors of a TF Serving REST `instances` request, as the server makes.

  The row format: `instances` is a list with one entry per example; with
  one signature input an entry is that input's value, otherwise an object
  of input name -> value. A `{"b64": ...}` object stands for the base64
  bytes of a string value.

  Args:
    body: the request body (JSON text).
    input_specs: {input name: TensorInfo} of the signature.

  Returns:
    {input name: numpy array batching the instances}.
  """
  instances = json.loads(body)['instances']
  names = sorted(input_specs)

  def value(item):
    if isinstance(item, dict) and set(item) == {'b64'}:
      return base64.b64decode(item['b64'])
    return item

  columns = {name: [] for name in names}
  for instance in instances:
    if len(names) == 1 and not (isinstance(instance, dict) and
                                names[0] in instance):
      instance = {names[0]: instance}
    for name in names:
      columns[name].append(value(instance[name]))
  return {name: np.array(columns[name], dtype=object if
                         input_specs[name].dtype == tf.string.as_datatype_enum
                         else None)
          for name in names}


@pytest.mark.slow
@pytest.mark.parametrize('named', [False, True])
def test_rest_request_body_runs_through_serving_default(model, saved_model,
                                                        named):
  rows = list(range(6))
  items = [{'b64': base64.b64encode(model.encoded[r]).decode('ascii')}
           for r in rows]
  if named:
    items = [{saved_model_lib.IMAGE_BYTES_INPUT: item} for item in items]
  body = json.dumps({'signature_name': 'serving_default', 'instances': items})
  with tf.Graph().as_default() as graph:
    with tf.Session(graph=graph) as sess:
      meta_graph = tf.saved_model.loader.load(
          sess, [tf.saved_model.tag_constants.SERVING], saved_model)
      signature = meta_graph.signature_def[
          json.loads(body)['signature_name']]
      feeds = decode_rest_instances(body, signature.inputs)
      fetches = {key: info.name for key, info in signature.outputs.items()}
      outputs = sess.run(fetches, {signature.inputs[key].name: value
                                   for key, value in feeds.items()})
  np.testing.assert_allclose(outputs['probabilities'],
                             model.probabilities[rows], atol=1e-4)
  top = model.probabilities[rows].argmax(1)
  np.testing.assert_array_equal(outputs['classes'][:, 0], top)
  assert [n.decode() for n in outputs['class_names'][:, 0]] == [
      NAMES[c] for c in top]
