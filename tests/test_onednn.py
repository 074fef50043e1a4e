"""oneDNN on (the project's default on TF 2) gives the outputs of it off.

core/tf_compat.py turns TensorFlow 2's oneDNN kernels on where TF 2.21 would
leave them off (CPUs without AVX-512 VNNI/AMX). Each network family runs in
two fresh processes, one with `TF_ENABLE_ONEDNN_OPTS=1` and one with `0`
(on TF 1.15's Intel build: without and with `TF_DISABLE_MKL=1`), from the
same weights: the inference outputs must agree within float rounding
(1e-4 of the largest output), training-mode gradients must agree wherever
Relu6 lets the same elements through, and the float and int8 TFLite files
must be the same bytes.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core import tf_compat

# Each family's convolutions, depthwise convolutions and activations.
_NETWORKS = ('mobilenet_v1', 'mobilenet_v2', 'mobilenet_v3_large',
             'mobilenet_v3_small', 'mobilenet_edgetpu')
_IMAGE_SIZE = 96
_BATCH = 2


def _switch():
  """{'on': env, 'off': env} for this stack, or None without oneDNN."""
  if tf_compat.IS_TF2:
    return {'on': {'TF_ENABLE_ONEDNN_OPTS': '1'},
            'off': {'TF_ENABLE_ONEDNN_OPTS': '0'}}
  if tf_compat.onednn_enabled():
    return {'on': {}, 'off': {'TF_DISABLE_MKL': '1'}}
  return None


pytestmark = pytest.mark.skipif(
    _switch() is None,
    reason='stock TF 1.15 has no oneDNN kernels to compare with Eigen')


def network_outputs(model_name, out_path):
  """Runs `model_name` from seeded weights; saves outputs and gradients.

  Called in a fresh process by the tests (the oneDNN switch is read when
  TensorFlow loads).
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf
  from nets import nets_factory
  rng = np.random.RandomState(0)
  images = rng.uniform(-1, 1, [_BATCH, _IMAGE_SIZE, _IMAGE_SIZE, 3])
  results = {'onednn': tf_compat.onednn_enabled()}
  for training in (False, True):
    with tf.Graph().as_default():
      tf.set_random_seed(0)
      network_fn = nets_factory.get_network_fn(model_name, 1001,
                                               is_training=training)
      logits, _ = network_fn(tf.constant(images, tf.float32))
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.constant([3, 7]), logits=logits))
      variables = tf.global_variables()
      fetches = {'logits': logits}
      if training:
        weights = [v for v in tf.trainable_variables()
                   if v.op.name.endswith('weights')]
        fetches['first_gradient'] = tf.gradients(loss, weights[0])[0]
        fetches['last_gradient'] = tf.gradients(loss, weights[-1])[0]
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # Moving statistics away from 0/1, so inference batch norm matters.
        for variable in variables:
          name = variable.op.name
          shape = variable.get_shape().as_list()
          if name.endswith('moving_mean'):
            variable.load(rng.normal(0, 0.1, shape), sess)
          elif name.endswith('moving_variance'):
            variable.load(rng.uniform(0.5, 1.5, shape), sess)
        values = sess.run(fetches)
    for key, value in values.items():
      results['%s_%s' % ('train' if training else 'infer', key)] = (
          value.tolist())
  with open(out_path, 'w') as f:
    json.dump(results, f)


def _run(code, env_update, repo_root, script_env):
  env = dict(script_env, **env_update)
  proc = subprocess.run([sys.executable, '-c', code], cwd=repo_root, env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]


def _outputs(model_name, state, tmp_path, repo_root, script_env):
  path = str(tmp_path / ('%s_%s.json' % (model_name, state)))
  code = ('from tests.test_onednn import network_outputs; '
          'network_outputs(%r, %r)' % (model_name, path))
  _run(code, _switch()[state], repo_root, script_env)
  with open(path) as f:
    return json.load(f)


def _compare(model_name, keys, tmp_path, repo_root, script_env):
  on = _outputs(model_name, 'on', tmp_path, repo_root, script_env)
  off = _outputs(model_name, 'off', tmp_path, repo_root, script_env)
  # Each side really ran the kernels it names, or the test compares nothing.
  assert (on['onednn'], off['onednn']) == (True, False)
  for key in keys:
    expected = np.array(off[key])
    # Another summation order in every layer: V1's logits at 96x96 were
    # measured 1.6e-5 of their largest value apart (net_helpers.assert_close
    # allows 1e-5, for one library against itself).
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(np.array(on[key]), expected, rtol=1e-4,
                               atol=1e-4 * scale)


@pytest.mark.slow
@pytest.mark.parametrize('model_name', _NETWORKS)
def test_outputs_match_with_onednn_off(model_name, tmp_path, repo_root,
                                       script_env):
  _compare(model_name, ['infer_logits'], tmp_path, repo_root, script_env)


def training_gradients(image_size, out_path):
  """V1 in training mode: every Relu6 input and every weight gradient (npz).

  Called in a fresh process by the tests (the oneDNN switch is read when
  TensorFlow loads). The Relu6 inputs tell which elements pass a gradient.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf
  from nets import nets_factory
  images = np.random.RandomState(0).uniform(
      -1, 1, [_BATCH, image_size, image_size, 3])
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(0)
    network_fn = nets_factory.get_network_fn('mobilenet_v1', 1001,
                                             is_training=True)
    logits, _ = network_fn(tf.constant(images, tf.float32))
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant([3, 7]), logits=logits))
    weights = [v for v in tf.trainable_variables()
               if v.op.name.endswith('weights')]
    fetches = {'gradient/%02d' % index: gradient for index, gradient in
               enumerate(tf.gradients(loss, weights))}
    relus = [op for op in graph.get_operations() if op.type == 'Relu6']
    fetches.update({'relu6/%02d' % index: op.inputs[0]
                    for index, op in enumerate(relus)})
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = sess.run(fetches)
  np.savez(out_path, onednn=tf_compat.onednn_enabled(), **values)


def _training_gradients(image_size, tmp_path, repo_root, script_env):
  results = []
  for state in ('on', 'off'):
    path = str(tmp_path / ('gradients_%d_%s.npz' % (image_size, state)))
    code = ('from tests.test_onednn import training_gradients; '
            'training_gradients(%d, %r)' % (image_size, path))
    _run(code, _switch()[state], repo_root, script_env)
    results.append(dict(np.load(path)))
  on, off = results
  assert (bool(on['onednn']), bool(off['onednn'])) == (True, False)
  return on, off


def _gradient_error(on, off, key):
  return np.abs(on[key] - off[key]).max() / np.abs(off[key]).max()


def _flipped_layers(on, off):
  """{layer index: flipped elements} where Relu6 passes a gradient on one
  side only, after checking that each flip sits at the clip boundaries."""
  flipped = {}
  for key in sorted(k for k in off if k.startswith('relu6/')):
    passes_on = (on[key] > 0) & (on[key] < 6)
    passes_off = (off[key] > 0) & (off[key] < 6)
    flips = passes_on != passes_off
    if flips.any():
      # Rounding moved the value across 0 or 6, not a different result.
      distance = np.minimum(np.abs(off[key]), np.abs(off[key] - 6))[flips]
      assert distance.max() <= 1e-4 * np.abs(off[key]).max(), key
      flipped[int(key.split('/')[1])] = int(flips.sum())
  return flipped


# Training-mode gradients are not continuous in the activations: Relu6 passes
# a gradient only strictly between 0 and 6. Another summation order (oneDNN
# against Eigen) moves a pre-activation by ~1e-6 of its layer's scale, and
# one that sits that close to 0 then passes its gradient on one side only;
# the training-mode batch norm below it spreads that element's share over
# its whole channel, so every earlier layer's gradient moves by percents.
# Measured on TF 2.21 (V1, batch 2): at 96x96 three elements flip (layers
# 10 and 11), the weight gradients below them differ by up to 0.19 of their
# largest value, those above agree to 9e-5; at 64x64 nothing flips and
# every gradient agrees to 1.0e-4. docs/performance.md has the numbers.
@pytest.mark.slow
@pytest.mark.parametrize('image_size', [64, 96])
def test_gradients_match_with_onednn_off_above_relu6_flips(
    image_size, tmp_path, repo_root, script_env):
  on, off = _training_gradients(image_size, tmp_path, repo_root, script_env)
  flipped = _flipped_layers(on, off)
  # Relu6 layer i follows weight i (V1: one Relu6 per convolution); weights
  # above the last flip see the same gradient on both sides.
  first_exact = max(flipped) + 1 if flipped else 0
  gradients = sorted(k for k in off if k.startswith('gradient/'))
  assert first_exact < len(gradients) - 1, flipped  # something is compared
  for key in gradients[first_exact:]:
    # Seen up to 1.0e-4 (the logits layer at 64x64); a flip moves 1e-2+.
    assert _gradient_error(on, off, key) <= 3e-4, (key, flipped)


def _export_files(state, tmp_path, repo_root, script_env):
  export_dir = str(tmp_path / state)
  code = ('from benchmarks import tasks; '
          'tasks.run_task("export", {"impl": "ours", '
          '"model_name": "mobilenet_v2_035", "image_size": 64, '
          '"infer_batch_size": 2, "int8": True, "convert_in_process": True, '
          '"export_dir": %r})' % export_dir)
  _run(code, _switch()[state], repo_root, script_env)
  files = {}
  for folder, _, names in os.walk(export_dir):
    for name in names:
      if name.endswith(('.pb', '.tflite')):
        with open(os.path.join(folder, name), 'rb') as f:
          files[os.path.relpath(os.path.join(folder, name), export_dir)] = (
              f.read())
  return files


@pytest.mark.slow
def test_tflite_files_are_the_same_with_onednn_off(tmp_path, repo_root,
                                                     script_env):
  on = _export_files('on', tmp_path, repo_root, script_env)
  off = _export_files('off', tmp_path, repo_root, script_env)
  assert sum(name.endswith('.tflite') for name in on) >= 4  # float and int8
  assert sorted(on) == sorted(off)
  # The frozen graph's folded weights are computed by TensorFlow's kernels
  # and differ in rounding; the TFLite files were measured identical.
  different = [name for name in on
               if name.endswith('.tflite') and on[name] != off[name]]
  assert different == []
