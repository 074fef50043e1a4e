"""deployment/model_deploy.py: slim's devices and scopes, losses, gradients.

One test per deployment (1 clone, N clones, clones on CPU, replicas, ps
tasks, several GPUs with ps tasks) checks every device string and scope the
config and the clones report, then training steps run on this machine's CPU
with soft placement, as the trainer runs them.
"""


import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from deployment import model_deploy

CPU = '/device:CPU:0'


def _canonical(device):
  """A device string in TensorFlow's canonical field order."""
  return tf.DeviceSpec.from_string(device).to_string()


def _devices(config, what):
  """[config.<what>_device(i) for each clone]."""
  return [getattr(config, what)(i) for i in range(config.num_clones)]


def _classifier_data():
  """16 examples of 4 one-hot features whose label is feature // 2."""
  rng = np.random.RandomState(0)
  labels = rng.randint(0, 2, size=(16, 1)).astype(np.float32)
  inputs = np.zeros((16, 4), np.float32)
  for row, label in enumerate(labels[:, 0]):
    inputs[row, int(2 * label + rng.randint(0, 2))] = 1.0
  return tf.constant(inputs), tf.constant(labels)


def _batch_norm_classifier(inputs, labels):
  """batch_norm (beta + 2 moving stats) then a sigmoid unit: 5 variables."""
  with tf.variable_scope('Classifier'):
    net = slim.batch_norm(inputs, decay=0.1, fused=True)
    predictions = slim.fully_connected(net, 1, activation_fn=tf.sigmoid,
                                       scope='fc')
    tf.losses.log_loss(labels, predictions)
  return predictions


def test_one_clone():
  config = model_deploy.DeploymentConfig()
  assert config.clone_device(0) == '/device:GPU:0'
  assert config.clone_scope(0) == ''
  assert config.optimizer_device() == CPU
  assert config.inputs_device() == CPU
  assert config.variables_device() == CPU
  assert config.caching_device() is None
  assert (config.worker_device, config.ps_device) == ('', '')
  assert config.is_chief
  clones = model_deploy.create_clones(config, _batch_norm_classifier,
                                      _classifier_data())
  [clone] = clones
  assert clone.scope == '' and clone.device == '/device:GPU:0'
  assert clone.outputs.op.name == 'Classifier/fc/Sigmoid'
  assert clone.outputs.device == '/device:GPU:0'
  variables = slim.get_variables()
  assert len(variables) == 5
  assert {v.device for v in variables} == {CPU}
  assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == 2
  total_loss, grads_and_vars = model_deploy.optimize_clones(
      clones, tf.train.GradientDescentOptimizer(1.0))
  assert total_loss.op.name == 'total_loss'
  assert len(grads_and_vars) == len(tf.trainable_variables()) == 3
  assert {g.device for g, _ in grads_and_vars} == {'/device:GPU:0'}


def test_one_clone_on_cpu():
  config = model_deploy.DeploymentConfig(clone_on_cpu=True)
  assert config.clone_device(0) == CPU
  assert config.clone_scope(0) == ''
  assert config.optimizer_device() == config.inputs_device() == CPU
  assert config.variables_device() == CPU


def test_several_clones_on_gpus():
  config = model_deploy.DeploymentConfig(num_clones=3)
  assert _devices(config, 'clone_device') == [
      '/device:GPU:0', '/device:GPU:1', '/device:GPU:2']
  assert _devices(config, 'clone_scope') == ['clone_0', 'clone_1', 'clone_2']
  assert config.optimizer_device() == config.inputs_device() == CPU
  assert config.variables_device() == CPU
  with pytest.raises(ValueError, match='clone_index'):
    config.clone_device(3)
  with pytest.raises(ValueError, match='clone_index'):
    config.clone_scope(3)
  clones = model_deploy.create_clones(config, _batch_norm_classifier,
                                      _classifier_data())
  assert [c.scope for c in clones] == ['clone_0/', 'clone_1/', 'clone_2/']
  assert [c.device for c in clones] == _devices(config, 'clone_device')
  assert [c.outputs.op.name for c in clones] == [
      'clone_%d/Classifier/fc/Sigmoid' % i for i in range(3)]
  # One set of variables, on the CPU, shared by the three towers.
  assert len(slim.get_variables()) == 5
  assert {v.device for v in slim.get_variables()} == {CPU}
  for clone in clones:
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS, clone.scope)) == 2
    assert len(tf.get_collection(tf.GraphKeys.LOSSES, clone.scope)) == 1


def test_several_clones_on_cpu():
  config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
  assert _devices(config, 'clone_device') == [CPU, CPU]
  assert _devices(config, 'clone_scope') == ['clone_0', 'clone_1']
  assert config.variables_device() == config.optimizer_device() == CPU


def test_replicas():
  config = model_deploy.DeploymentConfig(num_replicas=2, num_ps_tasks=2,
                                         replica_id=1)
  # The task is the cluster's business, not part of the device strings.
  assert config.worker_device == '/job:worker'
  assert config.ps_device == '/job:ps'
  assert config.clone_device(0) == '/job:worker/device:GPU:0'
  assert config.clone_scope(0) == ''
  assert config.optimizer_device() == '/job:worker/device:CPU:0'
  assert config.inputs_device() == '/job:worker/device:CPU:0'
  assert callable(config.variables_device())
  assert not config.is_chief
  named = model_deploy.DeploymentConfig(
      num_replicas=2, num_ps_tasks=1, clone_on_cpu=True,
      worker_job_name='trainer', ps_job_name='params')
  assert named.clone_device(0) == '/job:trainer/device:CPU:0'
  assert named.ps_device == '/job:params'


def test_ps_tasks_take_variables_round_robin():
  config = model_deploy.DeploymentConfig(num_ps_tasks=2)
  assert config.clone_device(0) == '/job:worker/device:GPU:0'
  assert config.optimizer_device() == '/job:worker/device:CPU:0'
  with tf.device(config.variables_device()):
    first = tf.Variable(0.0, name='first')
    second = tf.Variable(0.0, name='second')
    third = tf.Variable(0.0, name='third')
    not_a_variable = tf.no_op()
    cached = slim.variable('cached', [],
                           caching_device=config.caching_device())
  assert [_canonical(v.device) for v in (first, second, third, cached)] == [
      '/job:ps/task:0/device:CPU:0', '/job:ps/task:1/device:CPU:0',
      '/job:ps/task:0/device:CPU:0', '/job:ps/task:1/device:CPU:0']
  assert not_a_variable.device == ''
  # Cached reads happen where the reading op is, not on the ps task.
  assert cached.value().device == ''
  assert config.caching_device()(not_a_variable) == ''
  # Every call starts the cycle again at task 0.
  with tf.device(config.variables_device()):
    again = tf.Variable(0.0, name='again')
  assert _canonical(again.device) == '/job:ps/task:0/device:CPU:0'


def test_several_gpus_with_ps_tasks_keep_variables_on_ps_cpus():
  config = model_deploy.DeploymentConfig(num_clones=2, num_ps_tasks=2)
  assert _devices(config, 'clone_device') == [
      '/job:worker/device:GPU:0', '/job:worker/device:GPU:1']
  assert _devices(config, 'clone_scope') == ['clone_0', 'clone_1']
  assert config.inputs_device() == '/job:worker/device:CPU:0'
  assert config.caching_device()(tf.no_op()) == ''
  clones = model_deploy.create_clones(config, _batch_norm_classifier,
                                      _classifier_data())
  assert [c.scope for c in clones] == ['clone_0/', 'clone_1/']
  assert [c.device for c in clones] == _devices(config, 'clone_device')
  variables = slim.get_variables()
  assert len(variables) == 5
  # Created inside clone 0's GPU scope, yet on the ps hosts' CPUs.
  assert [_canonical(v.device) for v in variables] == [
      '/job:ps/task:%d/device:CPU:0' % (i % 2) for i in range(5)]
  optimizer = tf.train.GradientDescentOptimizer(1.0)
  with tf.device(config.optimizer_device()):
    _, grads_and_vars = model_deploy.optimize_clones(clones, optimizer)
  assert {_canonical(g.device) for g, _ in grads_and_vars} == {
      '/job:worker/device:CPU:0'}


@pytest.mark.parametrize('kwargs, message', [
    ({'num_clones': 0}, 'num_clones'),
    ({'num_replicas': 2}, 'num_ps_tasks'),
    ({'replica_id': 3, 'num_replicas': 2, 'num_ps_tasks': 1}, 'replica_id'),
    ({'num_ps_tasks': -1}, 'num_ps_tasks'),
    ({'num_ps_tasks': 1, 'ps_job_name': ''}, 'ps_job_name'),
])
def test_bad_config_is_rejected(kwargs, message):
  with pytest.raises(ValueError, match=message):
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


def _soft_placement_session():
  return tf.Session(config=tf.ConfigProto(allow_soft_placement=True))


@pytest.mark.parametrize('num_clones, clone_on_cpu', [(1, False), (2, True)])
def test_deploy_trains_on_this_cpu_with_soft_placement(num_clones,
                                                       clone_on_cpu):
  # A single clone asks for /device:GPU:0 (slim's answer); soft placement
  # runs it on the CPU when there is no GPU, as the trainer must allow.
  config = model_deploy.DeploymentConfig(num_clones=num_clones,
                                         clone_on_cpu=clone_on_cpu)
  data = _classifier_data()
  model = model_deploy.deploy(config, _batch_norm_classifier, data,
                              optimizer=tf.train.GradientDescentOptimizer(1.0))
  assert model.train_op.op.name == 'train_op'
  assert model.total_loss.op.name == 'total_loss'
  assert [c.device for c in model.clones] == _devices(config, 'clone_device')
  global_step = tf.train.get_global_step()
  assert global_step.device == CPU
  moving_mean = slim.get_variables_by_name('moving_mean')[0]
  with _soft_placement_session() as sess:
    sess.run(tf.global_variables_initializer())
    first = sess.run(model.train_op)
    for _ in range(9):
      last = sess.run(model.train_op)
    assert sess.run(global_step) == 10
    moved, batch_mean = sess.run([moving_mean,
                                  tf.reduce_mean(data[0], axis=0)])
  assert last < first / 2.0
  # decay 0.1: after ten updates the moving mean is the batch mean, 1e-10
  # off.
  np.testing.assert_allclose(moved, batch_mean, rtol=1e-5)


def test_a_gpu_clone_needs_soft_placement_without_a_gpu():
  if tf.config.experimental.list_physical_devices('GPU'):
    pytest.skip('this machine has a GPU')
  model = model_deploy.deploy(model_deploy.DeploymentConfig(),
                              _batch_norm_classifier, _classifier_data(),
                              optimizer=tf.train.GradientDescentOptimizer(1.0))
  with tf.Session() as sess:
    with pytest.raises(tf.errors.InvalidArgumentError, match='GPU'):
      sess.run(tf.global_variables_initializer())
      sess.run(model.train_op)


def test_deploy_summaries_stay_on_the_cpu_and_skip_other_clones():
  config = model_deploy.DeploymentConfig(num_clones=2)
  earlier = tf.summary.scalar('made_before_deploy', tf.constant(1.0))

  def model_fn():
    predictions = _linear_model(tf.constant([[1., 2.]]), tf.constant([[1.]]))
    tf.summary.scalar('activation', tf.reduce_mean(predictions))
    return predictions

  model = model_deploy.deploy(config, model_fn,
                              optimizer=tf.train.GradientDescentOptimizer(0.1),
                              summarize_gradients=True)
  merged = set(model.summary_op.op.inputs)
  assert earlier in merged
  names = {t.op.name for t in merged}
  assert {'Losses/total_loss', 'Losses/regularization_loss',
          'Losses/clone_0/clone_loss', 'Losses/clone_1/clone_loss',
          'weights/gradient', 'weights/gradient_norm',
          'clone_0/activation'} <= names
  assert 'clone_1/activation' not in names
  # Everything but model_fn's own summary is built on the CPU.
  assert {t.device for t in merged if t.op.name != 'clone_0/activation'} == {
      '', CPU}
  assert all(t.device == CPU for t in merged if 'Losses/' in t.op.name)
  with _soft_placement_session() as sess:
    sess.run(tf.global_variables_initializer())
    summary = tf.Summary.FromString(sess.run(model.summary_op))
  assert 'Losses/total_loss' in {v.tag for v in summary.value}


def test_deploy_without_optimizer_builds_losses_only():
  config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
  model = model_deploy.deploy(config, _batch_norm_classifier,
                              _classifier_data())
  assert model.train_op is None
  assert model.total_loss.op.name == 'total_loss'
  assert tf.train.get_global_step() is None
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    assert np.isfinite(sess.run(model.total_loss))


def test_optimize_clones_without_losses_says_so():
  config = model_deploy.DeploymentConfig(clone_on_cpu=True)
  clones = model_deploy.create_clones(config, lambda: tf.constant(1.0))
  with pytest.raises(ValueError, match='tf.losses'):
    model_deploy.optimize_clones(clones, tf.train.GradientDescentOptimizer(1.))
