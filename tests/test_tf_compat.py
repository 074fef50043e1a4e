"""core/tf_compat.py keeps every TensorFlow internal that tf-slim uses alive.

Two kinds of checks: a static one that reads tf_slim's source for the names
it takes from TensorFlow modules and looks each one up, and running ones that
evaluate the tf-slim layers whose code paths reach those names.
"""


import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from core import tf_compat
import tensorflow.compat.v1 as tf
import tf_slim as slim

from nets import mobilenet_v1


def unresolved_tensorflow_references(source=None):
  """Names tf_slim's modules take from `tensorflow.*` that do not resolve.

  Every `from tensorflow... import x [as y]` and `import tensorflow... as y`
  of a non-test tf_slim module binds a name; every attribute chain on such a
  name (`ops.Tensor`, `tf.nn.relu`, `ops.GraphKeys.UPDATE_OPS`) is looked up
  through modules and classes, as Python would when the line runs.

  Self-contained (its own imports) so a fresh interpreter can run its
  source without importing core.tf_compat first.

  Args:
    source: optional {label: python source} to scan instead of tf_slim.

  Returns:
    (unresolved, checked): sorted dotted names that fail to resolve, and the
    number of distinct dotted names looked up.
  """
  import ast  # pylint: disable=g-import-not-at-top
  import importlib  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import types  # pylint: disable=g-import-not-at-top

  if source is None:
    import tf_slim  # pylint: disable=g-import-not-at-top
    root = os.path.dirname(tf_slim.__file__)
    source = {}
    for folder, _, files in os.walk(root):
      for name in files:
        if name.endswith('.py') and not name.endswith('_test.py'):
          path = os.path.join(folder, name)
          with open(path) as f:
            source[os.path.relpath(path, root)] = f.read()

  missing = object()

  def lookup(obj, attr):
    try:  # lazy modules may raise anything but AttributeError
      return getattr(obj, attr)
    except Exception:  # pylint: disable=broad-except
      return missing

  def import_name(module_name, attr=None):
    try:
      module = importlib.import_module(module_name)
    except ImportError:
      return missing
    if attr is None:
      return module
    try:
      return importlib.import_module(module_name + '.' + attr)
    except ImportError:
      return lookup(module, attr)

  unresolved, checked = set(), set()
  for text in source.values():
    tree = ast.parse(text)
    bound = {}
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(
          'tensorflow'):
        for alias in node.names:
          dotted = node.module + '.' + alias.name
          checked.add(dotted)
          obj = import_name(node.module, alias.name)
          if obj is missing:
            unresolved.add(dotted)
          else:
            bound[alias.asname or alias.name] = (dotted, obj)
      elif isinstance(node, ast.Import):
        for alias in node.names:
          if alias.name.startswith('tensorflow') and alias.asname:
            checked.add(alias.name)
            obj = import_name(alias.name)
            if obj is missing:
              unresolved.add(alias.name)
            else:
              bound[alias.asname] = (alias.name, obj)
    for node in ast.walk(tree):
      if not isinstance(node, ast.Attribute):
        continue
      attrs = []
      base = node
      while isinstance(base, ast.Attribute):
        attrs.insert(0, base.attr)
        base = base.value
      if not isinstance(base, ast.Name) or base.id not in bound:
        continue
      dotted, obj = bound[base.id]
      for attr in attrs:
        if not isinstance(obj, (types.ModuleType, type)):
          break  # an instance or function: its attributes are dynamic
        dotted += '.' + attr
        checked.add(dotted)
        obj = lookup(obj, attr)
        if obj is missing:
          unresolved.add(dotted)
          break
  return sorted(unresolved), len(checked)


def _references_in_fresh_interpreter(import_compat):
  """Runs the scan in a new interpreter, with or without core.tf_compat."""
  code = '\n'.join([
      'import json',
      'from core import tf_compat' if import_compat else '',
      textwrap.dedent(inspect.getsource(unresolved_tensorflow_references)),
      'print(json.dumps(unresolved_tensorflow_references()))',
  ])
  out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])[0]


def test_the_scan_finds_a_missing_internal():
  # The scanner itself must see a broken reference, or its silence is empty.
  fake = {'fake.py': ('from tensorflow.python.framework import ops\n'
                      'from tensorflow.python.ops import no_such_module\n'
                      'x = ops.NoSuchThing\n'
                      'y = ops.GraphKeys.UPDATE_OPS\n'
                      'z = ops.GraphKeys.NO_SUCH_KEY\n')}
  unresolved, checked = unresolved_tensorflow_references(fake)
  assert unresolved == [
      'tensorflow.python.framework.ops.GraphKeys.NO_SUCH_KEY',
      'tensorflow.python.framework.ops.NoSuchThing',
      'tensorflow.python.ops.no_such_module']
  assert checked == 6


def test_every_tensorflow_name_tf_slim_uses_resolves():
  unresolved, checked = unresolved_tensorflow_references()
  assert unresolved == []
  assert checked > 300, 'the scan found too few references: %d' % checked


@pytest.mark.slow
def test_compat_restores_exactly_what_this_tensorflow_lacks():
  # Without the shim, the names that do not resolve are the ones it puts
  # back (plus the legacy-layers module it aliases); with it, none.
  without = _references_in_fresh_interpreter(import_compat=False)
  restored = set(tf_compat.RESTORED_INTERNALS)
  legacy = [name for name in without
            if name.startswith('tensorflow.python.layers.')]
  assert sorted(set(without) - set(legacy)) == sorted(restored)
  assert bool(legacy) == tf_compat.LEGACY_LAYERS_ALIASED
  if not tf_compat.IS_TF2:
    assert not restored  # TF 1.15 still has every name
  elif tf_compat.TF_VERSION >= (2, 16):
    assert 'tensorflow.python.framework.ops.Tensor' in restored
  assert _references_in_fresh_interpreter(import_compat=True) == []


def test_start_up_output_follows_the_cpp_log_level():
  text = ('WARNING: All log messages before absl::InitializeLog() is called '
          'are written to STDERR\n'
          'I0000 00:00:1.5 123 port.cc:153] oneDNN custom operations are on.\n'
          'W0000 00:00:1.6 123 x.cc:1] a warning\n'
          'E0000 00:00:1.7 123 y.cc:2] an error\n'
          'Illegal instruction, not a log record\n')
  kept = lambda level: ''.join(tf_compat.startup_lines_to_keep(text, level))
  assert kept(0) == text
  assert kept(1) == ('W0000 00:00:1.6 123 x.cc:1] a warning\n'
                     'E0000 00:00:1.7 123 y.cc:2] an error\n'
                     'Illegal instruction, not a log record\n')
  assert kept(2) == ('E0000 00:00:1.7 123 y.cc:2] an error\n'
                     'Illegal instruction, not a log record\n')


def test_importing_at_the_scripts_log_level_prints_nothing():
  # TF 2.21 prints its oneDNN notice at import whatever TF_CPP_MIN_LOG_LEVEL
  # says, where oneDNN is on by default (AVX-512 CPUs); the scripts' level
  # (2) must still mean quiet, so each log line is said once, or not at all.
  code = 'from core import tf_compat; print("imported")'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True,
                       env=env)
  assert out.returncode == 0, out.stderr
  assert out.stdout == 'imported\n'
  assert out.stderr == ''


def _compat_state_in_fresh_interpreter(variable, value, state,
                                       log_level='2'):
  """Imports core.tf_compat in a new interpreter; returns (state, stderr).

  `variable` starts as `value` (None: unset; this process has set it
  already, so it is removed from the child's); `state` is the expression
  the child prints as JSON, e.g. [tf_compat.ONEDNN_SETTING, ...].
  """
  code = ('import json, os\n'
          'from core import tf_compat\n'
          'print(json.dumps(%s))\n' % state)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=log_level)
  env.pop(variable, None)
  if value is not None:
    env[variable] = value
  out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True,
                       env=env)
  assert out.returncode == 0, out.stderr
  return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def _import_compat_in_fresh_interpreter(onednn_variable, log_level='2'):
  """(oneDNN setting, TF_ENABLE_ONEDNN_OPTS, oneDNN on), stderr."""
  return _compat_state_in_fresh_interpreter(
      'TF_ENABLE_ONEDNN_OPTS', onednn_variable,
      '[tf_compat.ONEDNN_SETTING, os.environ.get("TF_ENABLE_ONEDNN_OPTS"), '
      'tf_compat.onednn_enabled()]', log_level)


def test_onednn_is_on_by_default_on_tf2_only():
  state, _ = _import_compat_in_fresh_interpreter(None)
  if tf_compat.IS_TF2:
    # Whatever the CPU: TF 2.21 alone leaves it off without AVX-512 VNNI.
    assert state == ['project default', '1', True]
  else:
    assert state[:2] == ['not applicable', None]


@pytest.mark.parametrize('value', ['0', '1'])
def test_a_user_setting_of_onednn_is_kept(value):
  state, _ = _import_compat_in_fresh_interpreter(value)
  assert state[:2] == ['user', value]
  if tf_compat.IS_TF2:
    assert state[2] == (value == '1')


def _openmp_blocktime_in_fresh_interpreter(value):
  return _compat_state_in_fresh_interpreter(
      'KMP_BLOCKTIME', value,
      '[tf_compat.OPENMP_BLOCKTIME_SETTING, os.environ.get("KMP_BLOCKTIME")]'
  )[0]


def test_openmp_threads_stop_spinning_by_default_on_tf1_only():
  if tf_compat.IS_TF2:
    assert _openmp_blocktime_in_fresh_interpreter(None) == [
        'not applicable', None]
  else:
    assert _openmp_blocktime_in_fresh_interpreter(None) == [
        'project default', '0']
  assert _openmp_blocktime_in_fresh_interpreter('30') == ['user', '30']


@pytest.mark.slow
def test_the_onednn_notice_is_hidden_only_at_the_scripts_log_level():
  # With oneDNN on by default TF 2.21 prints its notice on every CPU; the
  # scripts' level must hide it, level 0 must still show it.
  state, quiet = _import_compat_in_fresh_interpreter(None, log_level='2')
  assert quiet == ''
  if not state[2]:
    pytest.skip('oneDNN is off in this TensorFlow: no notice to hide')
  _, loud = _import_compat_in_fresh_interpreter(None, log_level='0')
  assert 'oneDNN custom operations are on' in loud


def test_graph_mode_compares_tensors_by_identity_without_asking_eager():
  # TF 2's tensor equality, left on, changes nothing outside eager mode but
  # makes every variable `==` and `hash` first ask whether it runs eagerly:
  # tf_keras' batch norm hashes all global variables per weight it adds.
  variable = tf.Variable(1.0)
  assert not tf.executing_eagerly()
  assert hash(variable) == id(variable)
  assert variable == variable and variable != tf.Variable(1.0)
  assert not tf.Tensor._USE_EQUALITY  # pylint: disable=protected-access


# --- the layers whose code paths reach those names, run for real ---------

def _normalized(values, axes):
  mean = values.mean(axis=axes, keepdims=True)
  var = values.var(axis=axes, keepdims=True)
  return mean, var


@pytest.mark.parametrize('rank', [2, 4])
@pytest.mark.parametrize('fused', [True, False, None])
@pytest.mark.parametrize('updates_collections',
                         [None, tf.GraphKeys.UPDATE_OPS],
                         ids=['in_place', 'update_ops'])
def test_batch_norm_trains_and_updates_moving_stats(rank, fused,
                                                    updates_collections):
  shape = [6, 3] if rank == 2 else [2, 3, 3, 3]
  data = np.random.RandomState(rank).normal(5.0, 3.0, shape).astype(np.float32)
  inputs = tf.constant(data)
  outputs = slim.batch_norm(inputs, decay=0.5, epsilon=1e-5, center=True,
                            scale=True, is_training=True, fused=fused,
                            updates_collections=updates_collections)
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  assert bool(update_ops) == (updates_collections is not None)
  moving_mean = slim.get_variables_by_name('moving_mean')[0]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    result = sess.run([outputs] + update_ops)[0]
    moved = sess.run(moving_mean)
  axes = tuple(range(rank - 1))
  mean, var = _normalized(result, axes)
  np.testing.assert_allclose(mean, 0.0, atol=1e-4)
  np.testing.assert_allclose(var, 1.0, rtol=1e-3)
  # decay 0.5 from 0: the moving mean is half the batch mean after one step
  # (in place with updates_collections=None, else through UPDATE_OPS).
  np.testing.assert_allclose(moved, 0.5 * data.mean(axis=axes), rtol=1e-4)


@pytest.mark.parametrize('rank', [2, 4])
def test_batch_norm_inference_uses_moving_stats(rank):
  shape = [4, 3] if rank == 2 else [2, 2, 2, 3]
  data = np.random.RandomState(7).normal(2.0, 1.0, shape).astype(np.float32)
  outputs = slim.batch_norm(tf.constant(data), is_training=False,
                            epsilon=1e-3, updates_collections=None)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    result = sess.run(outputs)
  # Fresh moving stats are mean 0, variance 1.
  np.testing.assert_allclose(result, data / np.sqrt(1.0 + 1e-3), rtol=1e-5)


def test_batch_norm_with_a_training_placeholder():
  # is_training as a tensor takes smart_cond's graph branch.
  data = np.arange(12, dtype=np.float32).reshape([4, 3])
  training = tf.placeholder(tf.bool, [])
  outputs = slim.batch_norm(tf.constant(data), is_training=training,
                            updates_collections=None, epsilon=1e-5)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    trained = sess.run(outputs, {training: True})
    inferred = sess.run(outputs, {training: False})
  np.testing.assert_allclose(trained.mean(axis=0), 0.0, atol=1e-5)
  assert not np.allclose(inferred, trained)


def test_mobilenet_v1_trains_with_in_place_batch_norm_updates():
  # A common detection setting: batch_norm_updates_collections=None.
  images = tf.constant(np.random.RandomState(0).uniform(
      -1, 1, [2, 32, 32, 3]).astype(np.float32))
  arg_scope = mobilenet_v1.mobilenet_v1_arg_scope(
      is_training=True, batch_norm_updates_collections=None)
  with slim.arg_scope(arg_scope):
    logits, _ = mobilenet_v1.mobilenet_v1(images, num_classes=5,
                                          depth_multiplier=0.25)
  assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
  moving_mean = slim.get_variables_by_name('moving_mean')[0]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    values = sess.run(logits)
    moved = sess.run(moving_mean)
  assert values.shape == (2, 5) and np.all(np.isfinite(values))
  assert np.any(moved != 0.0), 'in-place batch norm update did not run'


@pytest.mark.parametrize('rank', [2, 4])
def test_layer_norm_normalizes_each_example(rank):
  shape = [3, 8] if rank == 2 else [2, 3, 3, 4]
  data = np.random.RandomState(3).normal(4.0, 2.0, shape).astype(np.float32)
  outputs = slim.layer_norm(tf.constant(data))
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    result = sess.run(outputs)
  mean, var = _normalized(result, tuple(range(1, rank)))
  np.testing.assert_allclose(mean, 0.0, atol=1e-4)
  np.testing.assert_allclose(var, 1.0, rtol=1e-2)


def test_group_norm_normalizes_each_group():
  data = np.random.RandomState(4).normal(-3.0, 2.0, [2, 3, 3, 4]).astype(
      np.float32)
  outputs = slim.group_norm(tf.constant(data), groups=2)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    result = sess.run(outputs)
  groups = result.reshape([2, 3, 3, 2, 2])  # channels split into 2 groups
  mean, var = _normalized(groups, (1, 2, 4))
  np.testing.assert_allclose(mean, 0.0, atol=1e-4)
  np.testing.assert_allclose(var, 1.0, rtol=1e-2)


def _box_sum_3x3(data):
  """Sum over each 3x3 neighbourhood (zero padded), per channel."""
  padded = np.pad(data, [(0, 0), (1, 1), (1, 1), (0, 0)], mode='constant')
  height, width = data.shape[1:3]
  return sum(padded[:, i:i + height, j:j + width, :]
             for i in range(3) for j in range(3))


@pytest.mark.parametrize('num_outputs', [None, 2])
def test_separable_conv2d_computes_depthwise_then_pointwise(num_outputs):
  data = np.random.RandomState(5).uniform(0, 1, [1, 4, 4, 3]).astype(
      np.float32)
  outputs = slim.separable_conv2d(
      tf.constant(data), num_outputs, [3, 3], depth_multiplier=1,
      weights_initializer=tf.ones_initializer(),
      pointwise_initializer=tf.ones_initializer(), activation_fn=None)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    result = sess.run(outputs)
  expected = _box_sum_3x3(data)
  if num_outputs:
    expected = np.repeat(expected.sum(axis=3, keepdims=True), num_outputs, 3)
  np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_conv2d_transpose_spreads_each_pixel():
  data = np.array([[1., 2.], [3., 4.]], np.float32).reshape([1, 2, 2, 1])
  outputs = slim.conv2d_transpose(
      tf.constant(data), 1, [2, 2], stride=2, padding='SAME',
      weights_initializer=tf.ones_initializer(), activation_fn=None)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    result = sess.run(outputs)
  expected = np.kron(data[0, :, :, 0], np.ones([2, 2], np.float32))
  np.testing.assert_allclose(result[0, :, :, 0], expected)


def test_local_and_global_variable_helpers():
  # Both call variable_scope.variable, which TF 2.21 no longer has.
  local = slim.local_variable([1.0, 2.0], name='counts')
  shared = slim.global_variable(3.0, name='shared')
  assert local in tf.local_variables() and local not in tf.global_variables()
  assert shared in tf.global_variables()
  assert shared not in tf.trainable_variables()
  with tf.Session() as sess:
    sess.run([tf.local_variables_initializer(),
              tf.global_variables_initializer()])
    np.testing.assert_allclose(sess.run(local), [1.0, 2.0])
    assert sess.run(shared) == 3.0


def test_sparse_gradients_are_scaled_and_clipped():
  # slim.learning checks gradients against ops.IndexedSlices.
  table = tf.Variable(np.ones([4, 2], np.float32), name='table')
  loss = tf.reduce_sum(tf.gather(table, [0, 2]) * 3.0)
  [(gradient, variable)] = tf.train.GradientDescentOptimizer(
      1.0).compute_gradients(loss, [table])
  assert isinstance(gradient, tf.IndexedSlices)
  [(scaled, _)] = slim.learning.multiply_gradients(
      [(gradient, variable)], {table: 0.5})
  [(clipped, _)] = slim.learning.clip_gradient_norms(
      [(gradient, variable)], 1.0)
  assert isinstance(scaled, tf.IndexedSlices)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    scaled_values, clipped_values = sess.run([scaled.values, clipped.values])
  np.testing.assert_allclose(scaled_values, np.full([2, 2], 1.5))
  # Four entries of 3: norm 6, clipped to 1.
  np.testing.assert_allclose(np.linalg.norm(clipped_values), 1.0, rtol=1e-5)
