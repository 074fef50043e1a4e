"""Deploys a model over several clones (towers), replicas and ps tasks.

A *clone* is one copy of the model that reads its own batch; clones of one
process share variables and their gradients are averaged. A *replica* is one
worker process of a cluster; replicas share variables that live on parameter
server (ps) tasks. `DeploymentConfig` decides where every kind of op goes:

| what              | no ps tasks                   | with ps tasks           |
|-------------------|-------------------------------|-------------------------|
| variables         | with the clone (one clone),   | ps tasks, round robin   |
|                   | else the local CPU            | (replica_device_setter) |
| clone i           | GPU i, or the CPU with        | the same, on this       |
|                   | clone_on_cpu ('' for 1 clone) | worker                  |
| inputs            | the local CPU                 | this worker's CPU       |
| optimizer         | the local CPU with several    | this worker's CPU       |
|                   | clones ('' for one clone)     |                         |

Usage:

    config = model_deploy.DeploymentConfig(num_clones=2, clone_on_cpu=True)
    with tf.device(config.variables_device()):
      global_step = tf.train.get_or_create_global_step()
    clones = model_deploy.create_clones(config, model_fn, [iterator])
    total_loss, grads_and_vars = model_deploy.optimize_clones(clones, opt)

or everything at once with `deploy(config, model_fn, args, optimizer=opt)`.

`model_fn` adds its losses with `tf.losses.*` (the `LOSSES` collection); each
clone's losses are found by the clone's name scope. Regularization losses are
added once, to the first clone's loss.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections
import contextlib

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

__all__ = ['DeploymentConfig', 'Clone', 'DeployedModel', 'create_clones',
           'optimize_clones', 'deploy']

# One model copy: what model_fn returned, its name scope and its device.
Clone = collections.namedtuple('Clone', ['outputs', 'scope', 'device'])

# The result of `deploy`.
DeployedModel = collections.namedtuple(
    'DeployedModel', ['train_op', 'summary_op', 'total_loss', 'clones'])


def _scope_prefix(scope):
  """Collection filter of a clone scope: 'clone_1/' (not clone_10), or None."""
  return scope + '/' if scope else None


def _name_scope(scope):
  """`tf.name_scope(scope)`, or no new scope for '' (a single clone)."""
  return tf.name_scope(scope) if scope else contextlib.nullcontext()


class DeploymentConfig(object):
  """Where clones, variables, inputs and the optimizer of a model run.

  Attributes are read-only properties named like the constructor arguments.
  """

  def __init__(self, num_clones=1, clone_on_cpu=False, replica_id=0,
               num_replicas=1, num_ps_tasks=0, worker_job_name='worker',
               ps_job_name='ps'):
    """Creates a DeploymentConfig.

    Args:
      num_clones: number of model clones in this process (>= 1).
      clone_on_cpu: put every clone on the CPU instead of GPU `i`.
      replica_id: index of this worker among `num_replicas` (0 = chief).
      num_replicas: number of worker processes (replicas).
      num_ps_tasks: number of parameter-server tasks; 0 keeps variables local.
      worker_job_name: cluster job name of the workers.
      ps_job_name: cluster job name of the parameter servers.

    Raises:
      ValueError: if the arguments are inconsistent.
    """
    if not isinstance(num_clones, int) or num_clones < 1:
      raise ValueError('num_clones (--num_clones) must be an integer >= 1, '
                       'got %r.' % (num_clones,))
    if not isinstance(num_replicas, int) or num_replicas < 1:
      raise ValueError('num_replicas (--worker_replicas) must be an integer '
                       '>= 1, got %r.' % (num_replicas,))
    if not isinstance(num_ps_tasks, int) or num_ps_tasks < 0:
      raise ValueError('num_ps_tasks (--num_ps_tasks) must be an integer >= '
                       '0, got %r.' % (num_ps_tasks,))
    if not 0 <= replica_id < num_replicas:
      raise ValueError('replica_id (--task) must be in [0, %d) for %d '
                       'replicas, got %r.' %
                       (num_replicas, num_replicas, replica_id))
    if num_replicas > 1 and num_ps_tasks < 1:
      raise ValueError('%d replicas (--worker_replicas) need parameter '
                       'servers to share variables: set --num_ps_tasks >= 1.'
                       % num_replicas)
    if num_ps_tasks > 0 and not (worker_job_name and ps_job_name):
      raise ValueError('worker_job_name and ps_job_name must be non-empty '
                       'when num_ps_tasks > 0.')
    self._num_clones = num_clones
    self._clone_on_cpu = clone_on_cpu
    self._replica_id = replica_id
    self._num_replicas = num_replicas
    self._num_ps_tasks = num_ps_tasks
    self._worker_job_name = worker_job_name
    self._ps_job_name = ps_job_name
    # The job/task prefix of every device of this worker.
    if num_ps_tasks > 0:
      self._worker_device = '/job:%s/task:%d' % (worker_job_name, replica_id)
    else:
      self._worker_device = ''

  @property
  def num_clones(self):
    return self._num_clones

  @property
  def clone_on_cpu(self):
    return self._clone_on_cpu

  @property
  def replica_id(self):
    return self._replica_id

  @property
  def num_replicas(self):
    return self._num_replicas

  @property
  def num_ps_tasks(self):
    return self._num_ps_tasks

  @property
  def worker_job_name(self):
    return self._worker_job_name

  @property
  def ps_job_name(self):
    return self._ps_job_name

  @property
  def is_chief(self):
    return self._replica_id == 0

  @property
  def worker_device(self):
    """The '/job:worker/task:N' prefix of this worker ('' without ps)."""
    return self._worker_device

  def caching_device(self):
    """Device for caching variable reads (None: read where they live).

    Returns:
      With ps tasks, a function placing a variable's cached copy next to the
      op that reads it (so each worker reads a variable once per step);
      otherwise None.
    """
    if self._num_ps_tasks > 0:
      return lambda op: op.device
    return None

  def clone_device(self, clone_index):
    """Device of clone `clone_index`.

    Args:
      clone_index: int in [0, num_clones).

    Returns:
      A device string; '' (TensorFlow's default placement) for a single
      clone that is not forced onto the CPU.

    Raises:
      ValueError: if `clone_index` is out of range.
    """
    if not 0 <= clone_index < self._num_clones:
      raise ValueError('clone_index must be in [0, %d), got %r.' %
                       (self._num_clones, clone_index))
    if self._clone_on_cpu:
      return self._worker_device + '/device:CPU:0'
    if self._num_clones == 1:
      return self._worker_device
    return self._worker_device + '/device:GPU:%d' % clone_index

  def clone_scope(self, clone_index):
    """Name scope of clone `clone_index` ('' for a single clone).

    Args:
      clone_index: int in [0, num_clones).

    Returns:
      'clone_<i>' with several clones, else ''.

    Raises:
      ValueError: if `clone_index` is out of range.
    """
    if not 0 <= clone_index < self._num_clones:
      raise ValueError('clone_index must be in [0, %d), got %r.' %
                       (self._num_clones, clone_index))
    if self._num_clones > 1:
      return 'clone_%d' % clone_index
    return ''

  def optimizer_device(self):
    """Device where gradients are averaged and applied (this worker's CPU)."""
    if self._num_ps_tasks > 0 or self._num_clones > 1:
      return self._worker_device + '/device:CPU:0'
    return ''

  def inputs_device(self):
    """Device of the input pipeline (this worker's CPU)."""
    return self._worker_device + '/device:CPU:0'

  def variables_device(self):
    """Device (string or function) for creating variables.

    Returns:
      With ps tasks, a `tf.train.replica_device_setter` function that puts
      variables round-robin on the ps tasks and other ops on this worker's
      CPU; with several local clones, the local CPU (shared by all towers);
      otherwise '' (variables live with the single clone).
    """
    if self._num_ps_tasks > 0:
      return tf.train.replica_device_setter(
          ps_tasks=self._num_ps_tasks,
          ps_device='/job:%s' % self._ps_job_name,
          worker_device=self._worker_device + '/device:CPU:0')
    if self._num_clones > 1:
      return '/device:CPU:0'
    return ''


def create_clones(config, model_fn, args=None, kwargs=None):
  """Calls `model_fn` once per clone, sharing variables between the clones.

  Each call runs under the clone's name scope and device, with variables
  created on `config.variables_device()` and reused by clones after the
  first.

  Args:
    config: a `DeploymentConfig`.
    model_fn: callable `model_fn(*args, **kwargs)` that builds the model and
      adds its losses with `tf.losses.*`; its return value is kept in
      `Clone.outputs`.
    args: optional list of positional arguments for `model_fn`.
    kwargs: optional dict of keyword arguments for `model_fn`.

  Returns:
    A list of `Clone`, one per clone, the first being the chief clone.
  """
  args = args or []
  kwargs = kwargs or {}
  clones = []
  with slim.arg_scope([slim.model_variable, slim.variable],
                      device=config.variables_device()):
    for i in range(config.num_clones):
      scope = config.clone_scope(i)
      device = config.clone_device(i)
      with _name_scope(scope):
        with tf.device(device):
          reuse = True if i > 0 else None
          with tf.variable_scope(tf.get_variable_scope(), reuse=reuse):
            outputs = model_fn(*args, **kwargs)
      clones.append(Clone(outputs, scope, device))
  return clones


def _clone_loss(clone, num_clones, regularization_losses):
  """Sums one clone's losses, scaled for averaging, plus regularization.

  Args:
    clone: a `Clone`.
    num_clones: number of clones (the clone's losses are divided by it).
    regularization_losses: losses to add to this clone (only the first
      clone gets them), or an empty list.

  Returns:
    (loss, clone_loss, regularization_loss): the scalar sum (None if the
    clone has no losses) and its two parts (each None when absent).
  """
  clone_loss, regularization_loss = None, None
  with tf.device(clone.device):
    losses = tf.get_collection(tf.GraphKeys.LOSSES,
                               _scope_prefix(clone.scope))
    if losses:
      clone_loss = tf.add_n(losses, name='clone_loss')
      if num_clones > 1:
        clone_loss = tf.truediv(clone_loss, 1.0 * num_clones,
                                name='scaled_clone_loss')
    if regularization_losses:
      regularization_loss = tf.add_n(regularization_losses,
                                     name='regularization_loss')
    parts = [p for p in (clone_loss, regularization_loss) if p is not None]
    loss = tf.add_n(parts) if parts else None
  return loss, clone_loss, regularization_loss


def _sum_gradients(clone_grads):
  """Sums the gradients of each variable over the clones.

  Args:
    clone_grads: a list (one per clone) of lists of (gradient, variable),
      all over the same variables in the same order.

  Returns:
    A list of (summed gradient, variable) for variables with a gradient.
  """
  summed = []
  for grads_and_vars in zip(*clone_grads):
    var = grads_and_vars[0][1]
    grads = [g for g, _ in grads_and_vars if g is not None]
    if not grads:
      continue
    if len(grads) == 1:
      total = grads[0]
    elif any(isinstance(g, tf.IndexedSlices) for g in grads):
      # Sparse gradients (embeddings) are summed by concatenation.
      slices = [g if isinstance(g, tf.IndexedSlices) else
                tf.IndexedSlices(g, tf.range(tf.shape(g)[0]))
                for g in grads]
      total = tf.IndexedSlices(
          tf.concat([s.values for s in slices], axis=0),
          tf.concat([s.indices for s in slices], axis=0),
          slices[0].dense_shape)
    else:
      total = tf.add_n(grads, name=var.op.name + '/sum_grads')
    summed.append((total, var))
  return summed


def _gather_losses(clones, regularization_losses):
  """Builds every clone's loss and their sum, with loss summaries.

  Args:
    clones: list of `Clone`.
    regularization_losses: losses added once, to the first clone.

  Returns:
    (total_loss, [(clone, clone's loss)]) for the clones that have losses;
    total_loss is None when none has.
  """
  clone_losses = []
  summaries = []
  for i, clone in enumerate(clones):
    # 'clone_0/' re-enters the clone's scope instead of making clone_0_1.
    with _name_scope(clone.scope + '/' if clone.scope else ''):
      loss, clone_loss, regularization_loss = _clone_loss(
          clone, len(clones), regularization_losses if i == 0 else [])
    if loss is None:
      continue
    clone_losses.append((clone, loss))
    if clone_loss is not None:
      summaries.append(('/'.join(filter(None, ['Losses', clone.scope,
                                              'clone_loss'])), clone_loss))
    if regularization_loss is not None:
      summaries.append(('Losses/regularization_loss', regularization_loss))
  total_loss = None
  if clone_losses:
    total_loss = tf.add_n([loss for _, loss in clone_losses],
                          name='total_loss')
    summaries.append(('Losses/total_loss', total_loss))
  # Made outside the clone scopes, so the tags are exactly these names.
  for tag, tensor in summaries:
    tf.summary.scalar(tag, tensor)
  return total_loss, clone_losses


def optimize_clones(clones, optimizer, regularization_losses=None, **kwargs):
  """Computes the total loss and the clone-averaged gradients.

  Each clone's loss is its summed losses divided by the number of clones;
  regularization losses are added once (to the first clone). The gradients
  of the clone losses are then summed, which averages the per-clone task
  gradients and counts regularization once. Adds scalar summaries
  `Losses/<clone scope>/clone_loss`, `Losses/regularization_loss` and
  `Losses/total_loss`.

  Args:
    clones: list of `Clone` from `create_clones`.
    optimizer: a `tf.train.Optimizer`.
    regularization_losses: losses to add once; None means
      `tf.losses.get_regularization_losses()`.
    **kwargs: passed to `optimizer.compute_gradients` (e.g. `var_list`).

  Returns:
    (total_loss, grads_and_vars): the scalar total loss and a list of
    (gradient, variable) pairs.

  Raises:
    ValueError: if no clone has any loss.
  """
  if regularization_losses is None:
    regularization_losses = tf.losses.get_regularization_losses()
  total_loss, clone_losses = _gather_losses(clones, regularization_losses)
  if total_loss is None:
    raise ValueError('No losses found: model_fn must add its losses with '
                     'tf.losses.* (the LOSSES collection).')
  clone_grads = []
  for clone, loss in clone_losses:
    with _name_scope(clone.scope + '/' if clone.scope else ''):
      with tf.device(clone.device):
        clone_grads.append(optimizer.compute_gradients(loss, **kwargs))
  return total_loss, _sum_gradients(clone_grads)


def _gradient_summaries(grads_and_vars):
  """Histogram and norm summaries of each gradient.

  Args:
    grads_and_vars: list of (gradient, variable).

  Returns:
    A list of summary ops.
  """
  summaries = []
  for grad, var in grads_and_vars:
    values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
    summaries.append(tf.summary.histogram(var.op.name + '/gradient', values))
    summaries.append(tf.summary.scalar(var.op.name + '/gradient_norm',
                                       tf.global_norm([values])))
  return summaries


def deploy(config, model_fn, args=None, kwargs=None, optimizer=None,
           summarize_gradients=False):
  """Creates the clones and, given an optimizer, the training op.

  Args:
    config: a `DeploymentConfig`.
    model_fn: see `create_clones`.
    args: positional arguments for `model_fn`.
    kwargs: keyword arguments for `model_fn`.
    optimizer: a `tf.train.Optimizer`, or None to build losses only.
    summarize_gradients: add histogram summaries of the gradients.

  Returns:
    A `DeployedModel`: `train_op` (a tensor that evaluates to the total loss
    after running the update ops and one optimizer step; None without an
    optimizer), `summary_op` (merged summaries of the first clone and the
    losses, or None), `total_loss` and `clones`.
  """
  summaries_before = set(tf.get_collection(tf.GraphKeys.SUMMARIES))
  with tf.device(config.variables_device()):
    global_step = tf.train.get_or_create_global_step()
  clones = create_clones(config, model_fn, args, kwargs)
  first_clone = clones[0]
  # Batch-norm statistics are updated from the first clone only.
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS,
                                 _scope_prefix(first_clone.scope))
  train_op = None
  with tf.device(config.optimizer_device()):
    if optimizer is not None:
      total_loss, grads_and_vars = optimize_clones(clones, optimizer)
      if summarize_gradients:
        _gradient_summaries(grads_and_vars)
      update_ops.append(optimizer.apply_gradients(grads_and_vars,
                                                  global_step=global_step))
      with tf.control_dependencies([tf.group(*update_ops)]):
        train_op = tf.identity(total_loss, name='train_op')
    else:
      total_loss, _ = _gather_losses(clones,
                                     tf.losses.get_regularization_losses())
  # Summaries that model_fn made in the other clones duplicate the first's.
  other_scopes = [c.scope + '/' for c in clones[1:]]
  summaries = [
      s for s in tf.get_collection(tf.GraphKeys.SUMMARIES)
      if s not in summaries_before and
      not any(s.op.name.startswith(p) for p in other_scopes)]
  summary_op = tf.summary.merge(summaries, name='summary_op') if summaries \
      else None
  return DeployedModel(train_op, summary_op, total_loss, clones)
