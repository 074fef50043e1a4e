"""The training graph: clones of the network, their loss and one step.

The step is assembled from `deployment.model_deploy`'s pieces
(`create_clones`, `optimize_clones`), the same ones its `deploy` is made
of, plus what training needs beyond `deploy`: a restricted variable list
(trainable_scopes), moving averages and a synchronous-replicas optimizer.
"""


import collections

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from core import errors
from deployment import model_deploy
from training import model_inputs
from training import optimizers
from training import quantization

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# The graph `trainer.train` runs.
TrainGraph = collections.namedtuple('TrainGraph', [
    'deploy_config', 'train_tensor', 'step', 'global_step', 'learning_rate',
    'optimizer', 'summary_op', 'dataset', 'iterator'])
# summary_op is None when the run writes no summaries.


class ScopeError(errors.InputError):
  """A trainable scope that matches no variable."""


def scope_prefix(scope):
  """'' for no scope, else the scope with exactly one trailing '/'."""
  return scope.rstrip('/') + '/' if scope else ''


def make_clone_fn(network_fn, iterator, num_classes, inputs_device,
                  label_smoothing, labels_offset):
  """The per-clone model function: reads a batch, adds the loss.

  Args:
    network_fn: the network function.
    iterator: a `tf.data` iterator of (images, labels) batches.
    num_classes: outputs of the head.
    inputs_device: where the batch is read.
    label_smoothing: spreads this much of each one-hot target evenly.
    labels_offset: what was subtracted from the labels (for the message).

  Returns:
    A function of no arguments returning the clone's end_points.
  """

  def clone_fn():
    with tf.device(inputs_device):
      images, labels = iterator.get_next()
      labels = tf.cast(labels, tf.int64)
      # Labels outside the head would train on all-zero targets: stop.
      in_range = tf.reduce_all(tf.logical_and(labels >= 0,
                                              labels < num_classes))
      check = tf.Assert(in_range, [
          'Labels outside [0, %d) after labels_offset=%d:' %
          (num_classes, labels_offset), labels], name='check_labels')
      with tf.control_dependencies([check]):
        labels = tf.identity(labels)
    logits, end_points = network_fn(images)
    tf.losses.softmax_cross_entropy(tf.one_hot(labels, num_classes), logits,
                                    label_smoothing=label_smoothing,
                                    weights=1.0)
    return end_points

  return clone_fn


def variables_to_train(trainable_scopes, model_name):
  """The trainable variables under `trainable_scopes` (all when empty).

  Raises:
    ScopeError: a scope matches no trainable variable.
  """
  if not trainable_scopes:
    return tf.trainable_variables()
  chosen = []
  for scope in trainable_scopes:
    found = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope)
    if not found:
      tops = sorted(set('/'.join(v.op.name.split('/')[:2])
                        for v in tf.trainable_variables()))
      raise ScopeError('%s: scope %r matches no trainable variable of %s. '
                       'Scopes look like: %s.' %
                       (ref('trainable_scopes'), scope,
                        ref('model_name', model_name), ', '.join(tops[:8])))
    chosen.extend(v for v in found if v not in chosen)
  return chosen


def first_clone_update_ops(first_clone_scope, trainable_scopes):
  """Batch-norm updates of the first clone, only in the trained scopes.

  Statistics outside `trainable_scopes` stay frozen too, so a frozen body
  is left exactly as it was restored.
  """
  prefix = scope_prefix(first_clone_scope)
  kept = []
  for op in tf.get_collection(tf.GraphKeys.UPDATE_OPS, prefix or None):
    name = op.name[len(prefix):]
    if not trainable_scopes or any(name.startswith(s)
                                   for s in trainable_scopes):
      kept.append(op)
  return kept


def build_train_op(deploy_config, clones, optimizer, global_step,
                   var_list, update_ops):
  """One training step over the clones.

  Args:
    deploy_config: the `DeploymentConfig`.
    clones: from `model_deploy.create_clones`.
    optimizer: the optimizer (possibly SyncReplicas-wrapped).
    global_step: the global step variable.
    var_list: the variables to train.
    update_ops: ops to run with each step (batch norm, moving averages).

  Returns:
    (train_tensor, step): the total loss and the global step, both read
    after the step's updates.
  """
  with tf.device(deploy_config.optimizer_device()):
    total_loss, grads_and_vars = model_deploy.optimize_clones(
        clones, optimizer, var_list=var_list)
    update_ops = list(update_ops) + [
        optimizer.apply_gradients(grads_and_vars, global_step=global_step)]
    with tf.control_dependencies([tf.group(*update_ops)]):
      train_tensor = tf.identity(total_loss, name='train_op')
      step = tf.identity(global_step.read_value(), name='step_after')
  return train_tensor, step


def summary_op(deploy_config, clones, learning_rate):
  """Merged summaries: the first clone's activations and losses, the model
  variables and the learning rate (other clones' copies are left out)."""
  first_prefix = scope_prefix(deploy_config.clone_scope(0))
  for name, tensor in clones[0].outputs.items():
    tf.summary.histogram('activations/' + name, tensor)
    tf.summary.scalar('sparsity/' + name, tf.nn.zero_fraction(tensor))
  for loss in tf.get_collection(tf.GraphKeys.LOSSES, first_prefix or None):
    tf.summary.scalar('losses/%s' % loss.op.name, loss)
  for variable in slim.get_model_variables():
    tf.summary.histogram('variables/' + variable.op.name, variable)
  tf.summary.scalar('learning_rate', learning_rate)
  others = [scope_prefix(c.scope) for c in clones[1:]]
  kept = [s for s in tf.get_collection(tf.GraphKeys.SUMMARIES)
          if not any(s.op.name.startswith(p) for p in others)]
  return tf.summary.merge(kept, name='summary_op')


def _optimizer(config, deploy_config, global_step, num_samples,
               variable_averages, averaged_variables):
  """The learning rate and the (possibly synchronous) optimizer."""
  deploy = config.deploy
  with tf.device(deploy_config.optimizer_device()):
    steps_per_decay = optimizers.decay_steps(
        num_samples, config.schedule.num_epochs_per_decay,
        config.inputs.batch_size,
        deploy.replicas_to_aggregate if deploy.sync_replicas else 1)
    rate = optimizers.learning_rate(config.schedule, global_step,
                                    steps_per_decay)
    optimizer = optimizers.optimizer(config.optimizer, rate)
    if deploy.sync_replicas:
      optimizer = tf.train.SyncReplicasOptimizer(
          opt=optimizer, replicas_to_aggregate=deploy.replicas_to_aggregate,
          total_num_replicas=deploy.worker_replicas,
          variable_averages=variable_averages,
          variables_to_average=averaged_variables)
  return rate, optimizer


def _quantize_training_graph(quant_delay):
  """Wraps the forward graph in fake quantization (both stacks)."""
  quantization.rewrite_for_training(quant_delay=quant_delay)


def build(config, deploy_config, before_optimizer=None):
  """Builds the training graph of a `trainer.TrainConfig` in the default graph.

  Args:
    config: the `TrainConfig`.
    deploy_config: the `model_deploy.DeploymentConfig`.
    before_optimizer: called with no arguments once the model exists and
      before any optimizer variable does (checkpoint checks fail faster).

  Returns:
    A `TrainGraph`.
  """
  with tf.device(deploy_config.variables_device()):
    global_step = tf.train.get_or_create_global_step()
  with tf.device(deploy_config.inputs_device()):
    inputs = model_inputs.prepare(
        config.inputs, True, 'train_image_size',
        weight_decay=config.weight_decay,
        batch_norm_decay=config.batch_norm_decay)
    iterator = tf.data.make_initializable_iterator(inputs.data)
  clones = model_deploy.create_clones(deploy_config, make_clone_fn(
      inputs.network_fn, iterator, inputs.num_classes,
      deploy_config.inputs_device(), config.label_smoothing,
      config.inputs.labels_offset))
  if config.quantize_delay >= 0:
    # Fake quantization must wrap the forward graph before gradients exist.
    _quantize_training_graph(config.quantize_delay)
  if before_optimizer:
    before_optimizer()
  averages, averaged = None, None
  if config.moving_average_decay:
    averaged = slim.get_model_variables()
    with tf.device(deploy_config.variables_device()):
      averages = tf.train.ExponentialMovingAverage(
          config.moving_average_decay, global_step)
  rate, optimizer = _optimizer(config, deploy_config, global_step,
                               inputs.dataset.num_samples, averages, averaged)
  update_ops = first_clone_update_ops(deploy_config.clone_scope(0),
                                      config.trainable_scopes)
  if averages is not None and not config.deploy.sync_replicas:
    # (A SyncReplicasOptimizer applies the averages itself, on the chief.)
    with tf.device(deploy_config.variables_device()):
      update_ops.append(averages.apply(averaged))
  train_tensor, step = build_train_op(
      deploy_config, clones, optimizer, global_step,
      variables_to_train(config.trainable_scopes,
                         config.inputs.model_name), update_ops)
  return TrainGraph(
      deploy_config=deploy_config, train_tensor=train_tensor, step=step,
      global_step=global_step, learning_rate=rate, optimizer=optimizer,
      # Histograms of every activation and weight are a good part of the
      # graph; a run that writes no summaries does not build them.
      summary_op=(summary_op(deploy_config, clones, rate)
                  if (config.save_summaries_secs > 0 or
                      config.save_summaries_steps > 0) else None),
      dataset=inputs.dataset, iterator=iterator)
