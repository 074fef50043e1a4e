"""Builds one model several times (clones) and trains it as one.

A *clone* is one copy of the model reading its own batch on its own device;
the clones of a process share their variables, and each clone's loss is
divided by the number of clones before the gradients are summed. A
*replica* is one worker process of a cluster; replicas share variables kept
on the parameter-server (ps) tasks. `DeploymentConfig` (defined in
`deployment_config.py`, imported from here as slim's code does) answers
where each kind of op goes: clones, variables, inputs and the optimizer;
its module docstring lists the devices and what they ask of the session
that runs the graph (device filters, soft placement).

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


import collections

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from deployment import deployment_config

__all__ = ['create_clones', 'deploy', 'optimize_clones', 'DeployedModel',
           'DeploymentConfig', 'Clone']

# One model copy: what model_fn returned, the name scope it was built in
# (with its trailing '/', as tf.name_scope returns it) and its device.
Clone = collections.namedtuple('Clone', ['outputs', 'scope', 'device'])

# What `deploy` builds: the step op (evaluates to the step's total loss), the
# merged summaries, the total loss tensor and the list of `Clone`.
DeployedModel = collections.namedtuple(
    'DeployedModel', ['train_op', 'summary_op', 'total_loss', 'clones'])

DeploymentConfig = deployment_config.DeploymentConfig
# DeploymentConfig's constructor defaults, under slim's name.
_deployment_params = deployment_config.DEPLOYMENT_DEFAULTS


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
