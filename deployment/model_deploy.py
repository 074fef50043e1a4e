"""Builds one model several times (clones) and trains it as one.

A *clone* is one copy of the model reading its own batch on its own device;
the clones of a process share their variables, and each clone's loss is
divided by the number of clones before the gradients are summed. A
*replica* is one worker process of a cluster; replicas share variables kept
on the parameter-server (ps) tasks. `DeploymentConfig` answers where each
kind of op goes, with slim's strings ('/job:worker' only with ps tasks):

| method             | answer                                               |
|--------------------|------------------------------------------------------|
| clone_device(i)    | ['/job:worker'] + '/device:GPU:i' ('/device:CPU:0'   |
|                    | with clone_on_cpu), also for a single clone          |
| clone_scope(i)     | '' for a single clone, else 'clone_i'                |
| optimizer_device() | ['/job:worker'] + '/device:CPU:0'                    |
| inputs_device()    | ['/job:worker'] + '/device:CPU:0'                    |
| variables_device() | '/device:CPU:0'; with ps tasks a function sending    |
|                    | each variable to '/job:ps/task:N/device:CPU:0', N    |
|                    | round robin                                          |
| caching_device()   | None; with ps tasks, next to the reading op          |

Two consequences for whoever runs the graph. The worker device names no
task, so a worker's session must see only its own task and the ps tasks
(`device_filters=['/job:ps', '/job:worker/task:<i>']`). And clones ask for
GPUs even on a machine without one, so sessions need
`tf.ConfigProto(allow_soft_placement=True)`, which moves such ops to the CPU.

Typical use, four GPU towers:

    towers = model_deploy.DeploymentConfig(num_clones=4)
    with tf.device(towers.inputs_device()):
      batches = make_iterator()
    model = model_deploy.deploy(towers, model_fn, [batches],
                                optimizer=tf.train.AdamOptimizer(1e-3))
    soft = tf.ConfigProto(allow_soft_placement=True)
    with tf.train.MonitoredTrainingSession(config=soft) as sess:
      loss = sess.run(model.train_op)

`model_fn` adds its losses with `tf.losses.*`; a clone's losses, summaries
and update ops are found in the collections by `Clone.scope` ('clone_3/';
'' for a single clone, which matches everything).
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

__all__ = ['create_clones', 'deploy', 'optimize_clones', 'DeployedModel',
           'DeploymentConfig', 'Clone']

# One model copy: what model_fn returned, the name scope it was built in
# (with its trailing '/', as tf.name_scope returns it) and its device.
Clone = collections.namedtuple('Clone', ['outputs', 'scope', 'device'])

# What `deploy` builds: the step op (evaluates to the step's total loss), the
# merged summaries, the total loss tensor and the list of `Clone`.
DeployedModel = collections.namedtuple(
    'DeployedModel', ['train_op', 'summary_op', 'total_loss', 'clones'])

# DeploymentConfig's constructor defaults, by argument name.
_deployment_params = {'num_clones': 1,
                      'clone_on_cpu': False,
                      'replica_id': 0,
                      'num_replicas': 1,
                      'num_ps_tasks': 0,
                      'worker_job_name': 'worker',
                      'ps_job_name': 'ps'}

# Op types that create a variable's storage: these go to a ps task.
_VARIABLE_OP_TYPES = frozenset(
    ['Variable', 'VariableV2', 'VarHandleOp', 'AutoReloadVariable'])
_CPU = '/device:CPU:0'


class _PsRoundRobin(object):
  """Device function: each new variable goes to the next ps task's CPU.

  Ops that are not variables, and ops that already carry a device, keep what
  they have, so the surrounding `tf.device` (the clone's) places them.
  """

  def __init__(self, ps_job, num_tasks):
    self._ps_job = ps_job
    self._num_tasks = num_tasks
    self._next_task = 0

  def __call__(self, op):
    if op.device:
      return op.device
    # An Operation or a bare NodeDef, as TensorFlow's own device setters take.
    definition = getattr(op, 'node_def', op)
    if definition.op not in _VARIABLE_OP_TYPES:
      return op.device
    task = self._next_task
    self._next_task = (task + 1) % self._num_tasks
    return '%s/task:%d%s' % (self._ps_job, task, _CPU)


class DeploymentConfig(object):
  """Where the clones, variables, inputs and optimizer of a model go.

  The constructor's arguments are readable as properties of the same name,
  plus `worker_device` ('/job:<worker_job_name>' with ps tasks, else '') and
  `ps_device` ('/job:<ps_job_name>' with ps tasks, else '').
  """

  def __init__(self, num_clones=1, clone_on_cpu=False, replica_id=0,
               num_replicas=1, num_ps_tasks=0, worker_job_name='worker',
               ps_job_name='ps'):
    """Checks and stores the deployment.

    Args:
      num_clones: model copies per worker process (>= 1).
      clone_on_cpu: build every copy on the CPU instead of on GPU i.
      replica_id: this worker's index among `num_replicas` (0 is the chief).
      num_replicas: how many worker processes train together.
      num_ps_tasks: how many parameter-server tasks hold the variables; 0
        keeps them in this process.
      worker_job_name: the cluster's name for the worker job.
      ps_job_name: the cluster's name for the parameter-server job.

    Raises:
      ValueError: when the numbers contradict each other (several replicas
        without ps tasks, a replica_id outside [0, num_replicas), a count
        below its minimum) or a needed job name is empty.
    """
    if not isinstance(num_clones, int) or num_clones < 1:
      raise ValueError('num_clones must be an integer of at least 1; got '
                       '%r.' % (num_clones,))
    if not isinstance(num_replicas, int) or num_replicas < 1:
      raise ValueError('num_replicas must be an integer of at least 1; got '
                       '%r.' % (num_replicas,))
    if not isinstance(num_ps_tasks, int) or num_ps_tasks < 0:
      raise ValueError('num_ps_tasks must be a non-negative integer; got '
                       '%r.' % (num_ps_tasks,))
    if num_replicas > 1 and num_ps_tasks < 1:
      raise ValueError('%d replicas can only share variables through ps '
                       'tasks: num_ps_tasks must be at least 1.' %
                       num_replicas)
    if num_replicas > 1 or num_ps_tasks > 0:
      if not worker_job_name or not ps_job_name:
        raise ValueError('With ps tasks or replicas both worker_job_name '
                         'and ps_job_name are needed; got %r and %r.' %
                         (worker_job_name, ps_job_name))
    if not 0 <= replica_id < num_replicas:
      raise ValueError('replica_id %r is not a worker index of %d '
                       'replica(s).' % (replica_id, num_replicas))
    self._num_clones = num_clones
    self._clone_on_cpu = clone_on_cpu
    self._replica_id = replica_id
    self._num_replicas = num_replicas
    self._num_ps_tasks = num_ps_tasks
    uses_ps = num_ps_tasks > 0
    self._worker_device = '/job:' + worker_job_name if uses_ps else ''
    self._ps_device = '/job:' + ps_job_name if uses_ps else ''

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
  def ps_device(self):
    return self._ps_device

  @property
  def worker_device(self):
    return self._worker_device

  @property
  def is_chief(self):
    """True for replica 0, the worker that initializes and saves."""
    return self._replica_id == 0

  def _check_clone_index(self, clone_index):
    if not 0 <= clone_index < self._num_clones:
      raise ValueError('clone_index %r is not in [0, %d).' %
                       (clone_index, self._num_clones))

  def caching_device(self):
    """None; with ps tasks, a function caching reads next to the reader."""
    if self._num_ps_tasks > 0:
      return lambda op: op.device
    return None

  def clone_device(self, clone_index):
    """The device of every op of clone `clone_index`.

    Args:
      clone_index: an int in [0, num_clones).

    Returns:
      A `tf.device` string: this worker's CPU with `clone_on_cpu`, else its
      GPU number `clone_index` (also for a single clone).

    Raises:
      ValueError: if `clone_index` is out of range.
    """
    self._check_clone_index(clone_index)
    if self._clone_on_cpu:
      return self._worker_device + _CPU
    return '%s/device:GPU:%d' % (self._worker_device, clone_index)

  def clone_scope(self, clone_index):
    """The name-scope name of clone `clone_index`.

    Args:
      clone_index: an int in [0, num_clones).

    Returns:
      'clone_<clone_index>' with several clones; '' for a single clone,
      whose ops keep their plain names (and match released graphs).

    Raises:
      ValueError: if `clone_index` is out of range.
    """
    self._check_clone_index(clone_index)
    if self._num_clones == 1:
      return ''
    return 'clone_%d' % clone_index

  def optimizer_device(self):
    """This worker's CPU, where gradients are summed and applied."""
    return self._worker_device + _CPU

  def inputs_device(self):
    """This worker's CPU, where the input pipeline runs."""
    return self._worker_device + _CPU

  def variables_device(self):
    """Where variables are created.

    Returns:
      '/device:CPU:0' without ps tasks (one copy shared by all clones);
      with ps tasks, a device function that sends each new variable to
      '/job:<ps>/task:N/device:CPU:0', N cycling over the tasks, and leaves
      every other op to the enclosing device. Each call starts a new cycle
      at task 0.
    """
    if self._num_ps_tasks == 0:
      return _CPU
    return _PsRoundRobin(self._ps_device, self._num_ps_tasks)


def create_clones(config, model_fn, args=None, kwargs=None):
  """Builds `config.num_clones` copies of the model with shared variables.

  Copy i is built under `tf.name_scope(config.clone_scope(i))` and
  `tf.device(config.clone_device(i))`; slim's `variable`/`model_variable`
  (batch norm statistics and layer weights included) are created on
  `config.variables_device()`, and copies after the first reuse them.

  Args:
    config: a `DeploymentConfig`.
    model_fn: called as `model_fn(*args, **kwargs)` once per copy; builds
      the model and adds its losses with `tf.losses.*`.
    args: list of positional arguments of `model_fn`, or None.
    kwargs: dict of keyword arguments of `model_fn`, or None.

  Returns:
    The list of `Clone`, copy 0 first. `Clone.scope` is the scope string
    `tf.name_scope` returned ('clone_0/'; '' for a single clone), ready to
    filter collections: `tf.get_collection(tf.GraphKeys.UPDATE_OPS,
    clone.scope)`.
  """
  positional = list(args or [])
  keywords = dict(kwargs or {})
  variables_device = config.variables_device()
  clones = []
  for index in range(config.num_clones):
    device = config.clone_device(index)
    # Copy 0 creates the variables; the others must find them.
    reuse = True if index > 0 else None
    with slim.arg_scope([slim.model_variable, slim.variable],
                        device=variables_device), \
        tf.name_scope(config.clone_scope(index)) as scope, \
        tf.device(device), \
        tf.variable_scope(tf.get_variable_scope(), reuse=reuse):
      outputs = model_fn(*positional, **keywords)
    clones.append(Clone(outputs=outputs, scope=scope, device=device))
  return clones


def _clone_loss(clone, num_clones, regularization_losses):
  """Adds up one clone's loss, on the clone's device.

  Args:
    clone: a `Clone`.
    num_clones: how many clones share the step (the clone's own losses are
      divided by it, so that summing over clones averages them).
    regularization_losses: losses charged to this clone ([] for all but
      the first clone).

  Returns:
    (loss, task_loss, regularization_loss): the clone's scalar loss and its
    two parts; each is None when the clone has nothing of that kind.
  """
  task_loss, regularization_loss = None, None
  with tf.device(clone.device):
    own_losses = tf.get_collection(tf.GraphKeys.LOSSES, clone.scope)
    if own_losses:
      task_loss = tf.add_n(own_losses, name='clone_loss')
      if num_clones > 1:
        task_loss = tf.truediv(task_loss, float(num_clones),
                               name='scaled_clone_loss')
    if regularization_losses:
      regularization_loss = tf.add_n(regularization_losses,
                                     name='regularization_loss')
    parts = [part for part in (task_loss, regularization_loss)
             if part is not None]
    loss = tf.add_n(parts) if parts else None
  return loss, task_loss, regularization_loss


def _clone_losses(clones, regularization_losses):
  """Every clone's loss with its summaries, and their sum.

  The summaries are created off the clones' devices (GPUs have no summary
  kernels): 'Losses/<clone scope>clone_loss' per clone,
  'Losses/regularization_loss' and 'Losses/total_loss'.

  Args:
    clones: list of `Clone`.
    regularization_losses: losses charged once, to the first clone.

  Returns:
    (total_loss, [(clone, loss)]) over the clones that have a loss;
    total_loss is None when none has.
  """
  per_clone, scalars = [], []
  charged = list(regularization_losses or [])
  for clone in clones:
    with tf.name_scope(clone.scope):
      loss, task_loss, regularization_loss = _clone_loss(
          clone, len(clones), charged)
    charged = []
    if task_loss is not None:
      scalars.append(('Losses/%sclone_loss' % clone.scope, task_loss))
    if regularization_loss is not None:
      scalars.append(('Losses/regularization_loss', regularization_loss))
    if loss is not None:
      per_clone.append((clone, loss))
  total_loss = None
  if per_clone:
    total_loss = tf.add_n([loss for _, loss in per_clone], name='total_loss')
    scalars.append(('Losses/total_loss', total_loss))
  for tag, tensor in scalars:
    tf.summary.scalar(tag, tensor)
  return total_loss, per_clone


def _sum_clone_gradients(gradients_per_clone):
  """Adds up, variable by variable, the gradients of all clones.

  Args:
    gradients_per_clone: one list of (gradient, variable) per clone, all
      over the same variables in the same order.

  Returns:
    A list of (summed gradient, variable), skipping variables that no clone
    has a gradient for. Sparse gradients are summed by concatenating their
    slices.
  """
  summed = []
  for pairs in zip(*gradients_per_clone):
    variable = pairs[0][1]
    gradients = [gradient for gradient, _ in pairs if gradient is not None]
    if len(gradients) > 1:
      if any(isinstance(g, tf.IndexedSlices) for g in gradients):
        slices = [g if isinstance(g, tf.IndexedSlices) else
                  tf.IndexedSlices(g, tf.range(tf.shape(g)[0]))
                  for g in gradients]
        gradients = [tf.IndexedSlices(
            tf.concat([s.values for s in slices], axis=0),
            tf.concat([s.indices for s in slices], axis=0),
            slices[0].dense_shape)]
      else:
        gradients = [tf.add_n(gradients,
                              name=variable.op.name + '/sum_grads')]
    if gradients:
      summed.append((gradients[0], variable))
  return summed


def optimize_clones(clones, optimizer, regularization_losses=None, **kwargs):
  """The total loss of the clones and the gradients that average them.

  Each clone's loss is its own losses divided by the number of clones; the
  regularization losses are added once, to the first clone. Gradients are
  computed per clone on the clone's device, then summed, so the task part
  is averaged over clones and regularization counts once.

  Args:
    clones: the list of `Clone` from `create_clones`.
    optimizer: a `tf.train.Optimizer` (only `compute_gradients` is used).
    regularization_losses: losses to add once; None takes the
      REGULARIZATION_LOSSES collection, [] adds none.
    **kwargs: passed on to `optimizer.compute_gradients` (e.g. `var_list`).

  Returns:
    (total_loss, grads_and_vars): the scalar 'total_loss' and a list of
    (gradient, variable) pairs.

  Raises:
    ValueError: if no clone has any loss.
  """
  if regularization_losses is None:
    regularization_losses = tf.get_collection(
        tf.GraphKeys.REGULARIZATION_LOSSES)
  total_loss, per_clone = _clone_losses(clones, regularization_losses)
  if total_loss is None:
    raise ValueError('The clones have no loss to optimize: model_fn must '
                     'add its losses with tf.losses.* (the LOSSES '
                     'collection), or there must be regularization losses.')
  gradients_per_clone = []
  for clone, loss in per_clone:
    with tf.name_scope(clone.scope), tf.device(clone.device):
      gradients_per_clone.append(optimizer.compute_gradients(loss, **kwargs))
  return total_loss, _sum_clone_gradients(gradients_per_clone)


def _gradient_summaries(grads_and_vars):
  """Summarizes each (gradient, variable): histogram and norm."""
  made = []
  for gradient, variable in grads_and_vars:
    if gradient is None:
      continue
    if isinstance(gradient, tf.IndexedSlices):
      gradient = gradient.values
    name = variable.op.name
    made.append(tf.summary.histogram(name + '/gradient', gradient))
    made.append(tf.summary.scalar(name + '/gradient_norm',
                                  tf.global_norm([gradient])))
  return made


def deploy(config, model_fn, args=None, kwargs=None, optimizer=None,
           summarize_gradients=False):
  """Builds the clones and, with an optimizer, the op of one training step.

  Args:
    config: a `DeploymentConfig`.
    model_fn: see `create_clones`.
    args: positional arguments of `model_fn`, or None.
    kwargs: keyword arguments of `model_fn`, or None.
    optimizer: a `tf.train.Optimizer` to train with; None builds the losses
      only (for evaluation) and leaves `train_op` None.
    summarize_gradients: also summarize each gradient and its norm.

  Returns:
    A `DeployedModel`. Its `train_op` ('train_op') runs the first clone's
    UPDATE_OPS (batch norm statistics) and one optimizer step, which also
    increments the global step (created on the variables device if
    missing), and evaluates to the step's total loss. `summary_op` merges
    the summaries that existed before the call with the new ones, except
    those model_fn made in clones other than the first; None if there are
    none.
  """
  existing = set(tf.get_collection(tf.GraphKeys.SUMMARIES))
  clones = create_clones(config, model_fn, args, kwargs)
  first_clone = clones[0]
  # The statistics of one clone are enough; the others' would race them.
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS, first_clone.scope)
  train_op = None
  with tf.device(config.optimizer_device()):
    if optimizer is None:
      total_loss, _ = _clone_losses(
          clones, tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES))
    else:
      with tf.device(config.variables_device()):
        global_step = tf.train.get_or_create_global_step()
      total_loss, grads_and_vars = optimize_clones(clones, optimizer)
      if summarize_gradients:
        _gradient_summaries(grads_and_vars)
      step = optimizer.apply_gradients(grads_and_vars,
                                       global_step=global_step)
      with tf.control_dependencies([tf.group(*(update_ops + [step]))]):
        train_op = tf.identity(total_loss, name='train_op')
    # What model_fn summarized in clones 1.. repeats clone 0's: left out.
    other_clones = tuple(clone.scope for clone in clones[1:])
    summaries = [
        summary for summary in tf.get_collection(tf.GraphKeys.SUMMARIES)
        if summary in existing or not other_clones or
        not summary.op.name.startswith(other_clones)]
    summary_op = None
    if summaries:
      summary_op = tf.summary.merge(summaries, name='summary_op')
  return DeployedModel(train_op, summary_op, total_loss, clones)
