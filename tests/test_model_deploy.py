"""Tests for deployment/model_deploy.py: devices, clones, loss and gradients."""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np
import pytest

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from deployment import model_deploy


def _device_of(fn_or_string, op):
  """Resolves a device string or device function for `op`."""
  if callable(fn_or_string):
    return fn_or_string(op)
  return fn_or_string


def test_default_config_places_one_clone_locally():
  config = model_deploy.DeploymentConfig()
  assert config.clone_device(0) == ''
  assert config.clone_scope(0) == ''
  assert config.variables_device() == ''
  assert config.inputs_device() == '/device:CPU:0'
  assert config.caching_device() is None
  assert config.is_chief


def test_clones_get_their_own_devices_and_scopes():
  gpus = model_deploy.DeploymentConfig(num_clones=2)
  assert [gpus.clone_device(i) for i in range(2)] == [
      '/device:GPU:0', '/device:GPU:1']
  assert [gpus.clone_scope(i) for i in range(2)] == ['clone_0', 'clone_1']
  # Variables shared by GPU towers live on the CPU, as do the optimizer's.
  assert gpus.variables_device() == '/device:CPU:0'
  assert gpus.optimizer_device() == '/device:CPU:0'
  cpus = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
  assert [cpus.clone_device(i) for i in range(2)] == [
      '/device:CPU:0', '/device:CPU:0']
  with pytest.raises(ValueError, match='clone_index'):
    cpus.clone_device(2)


def test_ps_tasks_hold_variables_round_robin():
  config = model_deploy.DeploymentConfig(
      num_clones=1, replica_id=1, num_replicas=2, num_ps_tasks=2)
  assert config.clone_device(0) == '/job:worker/task:1'
  assert config.inputs_device() == '/job:worker/task:1/device:CPU:0'
  assert config.optimizer_device() == '/job:worker/task:1/device:CPU:0'
  assert not config.is_chief
  with tf.device(config.variables_device()):
    a = tf.Variable(1.0, name='a')
    b = tf.Variable(2.0, name='b')
    c = tf.Variable(3.0, name='c')
    not_a_variable = tf.constant(1.0) + 1.0
  assert [v.op.device for v in (a, b, c)] == [
      '/job:ps/task:0', '/job:ps/task:1', '/job:ps/task:0']
  assert not_a_variable.op.device == '/job:worker/task:1/device:CPU:0'
  caching = config.caching_device()
  assert _device_of(caching, not_a_variable.op) == not_a_variable.op.device


@pytest.mark.parametrize('kwargs, flag', [
    ({'num_clones': 0}, 'num_clones'),
    ({'num_replicas': 2}, 'num_ps_tasks'),
    ({'replica_id': 3, 'num_replicas': 2, 'num_ps_tasks': 1}, 'replica_id'),
    ({'num_ps_tasks': -1}, 'num_ps_tasks'),
])
def test_bad_config_is_rejected(kwargs, flag):
  with pytest.raises(ValueError, match=flag):
    model_deploy.DeploymentConfig(**kwargs)


def _linear_model(inputs, targets):
  """A 2->1 linear model with an l2 regularizer and a squared loss."""
  weights = slim.model_variable(
      'weights', shape=[2, 1], initializer=tf.constant_initializer(0.5),
      regularizer=slim.l2_regularizer(0.1))
  predictions = tf.matmul(inputs, weights)
  tf.losses.mean_squared_error(targets, predictions)
  return predictions


def test_two_clones_share_variables_and_average_gradients():
  """Regularization is added once; task gradients are averaged."""
  x = [np.array([[1., 2.]], np.float32), np.array([[3., -1.]], np.float32)]
  y = [np.array([[1.]], np.float32), np.array([[-2.]], np.float32)]
  inputs = tf.placeholder(tf.float32, [2, 1, 2])
  targets = tf.placeholder(tf.float32, [2, 1, 1])
  config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
  counter = iter(range(2))

  def model_fn():
    i = next(counter)
    return _linear_model(inputs[i], targets[i])

  clones = model_deploy.create_clones(config, model_fn)
  assert [c.scope for c in clones] == ['clone_0', 'clone_1']
  assert len(slim.get_model_variables()) == 1
  optimizer = tf.train.GradientDescentOptimizer(1.0)
  total_loss, grads_and_vars = model_deploy.optimize_clones(clones, optimizer)
  assert len(grads_and_vars) == 1
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    loss, grad = sess.run([total_loss, grads_and_vars[0][0]],
                          {inputs: np.stack(x), targets: np.stack(y)})
  w = np.full([2, 1], 0.5, np.float32)
  per_clone_loss = [float(np.mean((xi.dot(w) - yi) ** 2))
                    for xi, yi in zip(x, y)]
  per_clone_grad = [2 * xi.T.dot(xi.dot(w) - yi) for xi, yi in zip(x, y)]
  # l2_regularizer(0.1) is 0.1 * sum(w^2) / 2, gradient 0.1 * w.
  expected_loss = np.mean(per_clone_loss) + 0.1 * np.sum(w ** 2) / 2
  expected_grad = np.mean(per_clone_grad, axis=0) + 0.1 * w
  np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-6)


def test_deploy_builds_a_train_op_that_steps_and_summaries():
  config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)

  def model_fn():
    predictions = _linear_model(tf.constant([[1., 2.]]), tf.constant([[1.]]))
    tf.summary.scalar('activation', tf.reduce_mean(predictions))
    return predictions

  model = model_deploy.deploy(config, model_fn,
                              optimizer=tf.train.GradientDescentOptimizer(0.1),
                              summarize_gradients=True)
  assert len(model.clones) == 2
  assert model.summary_op is not None
  global_step = tf.train.get_global_step()
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    first = sess.run(model.train_op)
    second = sess.run(model.train_op)
    summary = tf.Summary.FromString(sess.run(model.summary_op))
    assert sess.run(global_step) == 2
  assert second < first
  tags = set(v.tag for v in summary.value)
  assert {'Losses/total_loss', 'Losses/regularization_loss',
          'Losses/clone_0/clone_loss', 'Losses/clone_1/clone_loss',
          'weights/gradient', 'weights/gradient_norm'} <= tags
  assert 'clone_0/activation' in tags
  # What model_fn summarizes is kept for the first clone only.
  assert 'clone_1/activation' not in tags


def test_optimize_clones_without_losses_says_so():
  config = model_deploy.DeploymentConfig()
  clones = model_deploy.create_clones(config, lambda: tf.constant(1.0))
  with pytest.raises(ValueError, match='tf.losses'):
    model_deploy.optimize_clones(clones, tf.train.GradientDescentOptimizer(1.))
