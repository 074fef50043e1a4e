"""Where the ops of a cloned, possibly distributed model are placed.

`DeploymentConfig` answers, for `model_deploy`, where each kind of op goes,
with slim's device strings ('/job:worker' only with ps tasks):

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

Plain Python: the answers are strings and device functions, so this module
needs no TensorFlow. Import `DeploymentConfig` from `model_deploy`, as
slim's code does; it is the same class.
"""


__all__ = ['DeploymentConfig']

# DeploymentConfig's constructor defaults, by argument name.
DEPLOYMENT_DEFAULTS = {'num_clones': 1,
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
