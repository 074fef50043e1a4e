"""The one place that knows which TensorFlow this code runs on.

Import this module before `tf_slim` is used (every module of this project
does so through `from core import tf_compat`). It

* aliases `tf_keras.legacy_tf_layers` to `tf_keras.src.legacy_tf_layers`
  where TF >= 2.14 moved it, because tf-slim 1.1.0's `batch_norm` reaches it
  through `tensorflow.python.layers.normalization`;
* puts back, on the TensorFlow-internal modules tf-slim 1.1.0 imports, every
  name it references there that newer TensorFlow moved elsewhere
  (`ops.Tensor`, `ops.IndexedSlices`, `array_ops.stack`,
  `control_flow_ops.cond`, `variable_scope.variable`, ...; the table is
  `_MOVED_INTERNALS`). Each one is the public TensorFlow object of the same
  meaning, installed only where the name is missing;
* disables eager execution on TF 2, since slim networks, queues and
  `tf.train` savers are graph-mode APIs, and with it TF 2's tensor
  equality: outside eager execution `==` and `hash` of tensors and
  variables are identity either way, but with equality on each call first
  asks whether it runs eagerly, which made graph building (tf_keras'
  batch norm hashes every global variable per weight it adds) about a
  third slower;
* exposes `IS_TF2` / `TF_VERSION` for the few APIs that really differ
  (e.g. `tf.contrib.quantize` exists only on TF 1.15);
* turns TensorFlow 2's oneDNN kernels on (`TF_ENABLE_ONEDNN_OPTS=1`)
  before importing it, unless the variable is set already: TF >= 2.9 turns
  them on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX, and runs
  its older Eigen kernels elsewhere (AVX2-only CPUs, most desktops), where
  oneDNN trains these networks about twice as fast (docs/performance.md).
  `TF_ENABLE_ONEDNN_OPTS=0` keeps them off. TF 1.15 has no such switch;
  for its Intel build it sets `KMP_BLOCKTIME=0` instead, unless set;
* imports TensorFlow so that `TF_CPP_MIN_LOG_LEVEL` holds for what its C++
  code prints while loading: TF 2.21 writes its "oneDNN custom operations
  are on" notice (twice, each after absl's "before absl::InitializeLog()"
  line) whatever the level, on every CPU where oneDNN is on by default.
  At level >= 1 (the scripts set 2, see cli/logs.py) those start-up
  INFO lines, and at >= 2 WARNING ones, are dropped; anything else it
  printed is passed on.

Nothing else in the code base branches on the TensorFlow version.
"""


import importlib
import importlib.util
import os
import re
import sys
import tempfile

# absl's C++ log records: severity letter, MMDD (0000 before absl is set
# up), time; and its notice that it is not set up yet.
_CPP_RECORD = re.compile(r'^([IWEF])\d{4} ')
_ABSL_NOT_INITIALIZED = 'All log messages before absl::InitializeLog()'
# The level from which INFO and WARNING records are dropped; E and F stay.
_HIDDEN_FROM_LEVEL = {'I': 1, 'W': 2}


def startup_lines_to_keep(text, level):
  """The lines of TensorFlow's import-time output that `level` lets through.

  Args:
    text: what was written to the standard error while importing.
    level: the TF_CPP_MIN_LOG_LEVEL in effect (0 keeps everything).

  Returns:
    The kept lines, each with its line end.
  """
  kept = []
  for line in text.splitlines(True):
    record = _CPP_RECORD.match(line)
    if record and level >= _HIDDEN_FROM_LEVEL.get(record.group(1), 9):
      continue
    if level >= 1 and _ABSL_NOT_INITIALIZED in line:
      continue
    kept.append(line)
  return kept


def _cpp_log_level():
  try:
    return int(os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0'))
  except ValueError:
    return 0


def _import_tensorflow():
  """`import tensorflow`, its C++ start-up output filtered by log level.

  The C++ runtime writes its start-up notices (CPU features, oneDNN) to file
  descriptor 2 before Python's logging exists, so only a redirected
  descriptor can hold them back; without this every script starts with
  lines TF_CPP_MIN_LOG_LEVEL asked to hide (tests/test_tf_compat.py).
  """
  level = _cpp_log_level()
  if level < 1 or 'tensorflow' in sys.modules:
    return importlib.import_module('tensorflow')
  sys.stderr.flush()
  saved_fd = os.dup(2)
  with tempfile.TemporaryFile(mode='w+b') as captured:
    os.dup2(captured.fileno(), 2)
    try:
      return importlib.import_module('tensorflow')
    finally:
      sys.stderr.flush()
      os.dup2(saved_fd, 2)
      os.close(saved_fd)
      captured.seek(0)
      text = captured.read().decode('utf-8', 'replace')
      sys.stderr.write(''.join(startup_lines_to_keep(text, level)))
      sys.stderr.flush()


ONEDNN_VARIABLE = 'TF_ENABLE_ONEDNN_OPTS'


def _set_default(variable, value, for_tf1):
  """Sets environment `variable` to `value` before TensorFlow is imported,
  for one TensorFlow major version only, unless the user set it.

  Set in os.environ, so the processes this one starts inherit the choice.

  Returns:
    Who decided the variable: 'project default', 'user' (it was set
    before), 'not applicable' (the other TensorFlow; TF 1.x is told by its
    `tensorflow_core` package, which TF >= 2.2 no longer has) or 'too late'
    (TensorFlow was imported before this module, with whatever the
    variable said then).
  """
  if variable in os.environ:
    return 'user'
  if 'tensorflow' in sys.modules:
    return 'too late'
  is_tf1 = importlib.util.find_spec('tensorflow_core') is not None
  if is_tf1 != for_tf1:
    return 'not applicable'
  os.environ[variable] = value
  return 'project default'


# TF 2's oneDNN kernels (docs/performance.md).
ONEDNN_SETTING = _set_default(ONEDNN_VARIABLE, '1', for_tf1=False)

# Only Intel's OpenMP runtime, which intel-tensorflow 1.15 (TF1_BUILD=onednn)
# loads, reads it; the stock wheel has no OpenMP and ignores it. By default
# that runtime keeps its threads spinning for 200 ms after each parallel
# region, and on a few cores they take the CPU from TensorFlow's own
# threads: with 0 the oneDNN build trained V1/V2 1.26x/1.51x as fast and
# answered one image 22 %/14 % sooner (docs/performance.md). TF 2's oneDNN
# runs on TensorFlow's own thread pool.
OPENMP_BLOCKTIME_VARIABLE = 'KMP_BLOCKTIME'
OPENMP_BLOCKTIME_SETTING = _set_default(OPENMP_BLOCKTIME_VARIABLE, '0',
                                        for_tf1=True)

_tf = _import_tensorflow()

TF_VERSION = tuple(int(part) for part in _tf.__version__.split('.')[:2])
IS_TF2 = TF_VERSION[0] >= 2

_LEGACY_LAYERS = 'tf_keras.legacy_tf_layers'
_LEGACY_LAYERS_SRC = 'tf_keras.src.legacy_tf_layers'
_LEGACY_SUBMODULES = ('base', 'convolutional', 'core', 'normalization',
                      'pooling', 'variable_scope_shim')


def _alias_legacy_tf_layers():
  """Makes `tf_keras.legacy_tf_layers[.x]` importable on TF >= 2.14.

  Returns:
    True if the alias was installed, False if it was not needed.

  Raises:
    ImportError: if neither location exists (tf-keras missing or mismatched).
  """
  try:
    importlib.import_module(_LEGACY_LAYERS + '.normalization')
    return False
  except ImportError:
    pass
  try:
    package = importlib.import_module(_LEGACY_LAYERS_SRC)
  except ImportError as e:
    raise ImportError(
        'tf_slim.batch_norm needs tf_keras.legacy_tf_layers, which was not '
        'found (%s). Install the tf-keras release that matches TensorFlow %s '
        '(see requirements-tf2.txt), e.g. `make venv TF=2`.' %
        (e, _tf.__version__))
  sys.modules[_LEGACY_LAYERS] = package
  for name in _LEGACY_SUBMODULES:
    try:
      module = importlib.import_module('%s.%s' % (_LEGACY_LAYERS_SRC, name))
    except ImportError:
      continue
    sys.modules['%s.%s' % (_LEGACY_LAYERS, name)] = module
  importlib.import_module('tf_keras').legacy_tf_layers = package
  return True


# Names tf-slim 1.1.0 reads from TensorFlow-internal modules that TF 2.x
# moved out of them, mapped to the public object that replaced each one.
# tests/test_tf_compat.py walks tf_slim's source to keep this list complete.
_MOVED_INTERNALS = {
    'tensorflow.python.framework.ops': {
        'Tensor': lambda: _tf.Tensor,
        'IndexedSlices': lambda: _tf.IndexedSlices,
    },
    'tensorflow.python.ops.array_ops': {
        'stack': lambda: _tf.stack,
        'unstack': lambda: _tf.unstack,
    },
    'tensorflow.python.ops.control_flow_ops': {
        'cond': lambda: _tf.compat.v1.cond,
        'case': lambda: _tf.compat.v1.case,
        'Assert': lambda: _tf.debugging.Assert,
        'while_loop': lambda: _tf.compat.v1.while_loop,
    },
    'tensorflow.python.ops.variable_scope': {
        # tf-slim's local_variable/global_variable; VariableV1 takes the same
        # keywords (collections, use_resource, ...).
        'variable': lambda: _tf.compat.v1.Variable,
    },
}


def _restore_moved_internals():
  """Installs each missing name of `_MOVED_INTERNALS` on its module.

  Returns:
    The restored names as sorted 'module.name' strings (empty when the
    running TensorFlow still has all of them).
  """
  restored = []
  for module_name, names in sorted(_MOVED_INTERNALS.items()):
    module = importlib.import_module(module_name)
    for name, replacement in sorted(names.items()):
      if not hasattr(module, name):
        setattr(module, name, replacement())
        restored.append('%s.%s' % (module_name, name))
  return tuple(restored)


# Harmless on TF 1.15, which still has every name of the table.
RESTORED_INTERNALS = _restore_moved_internals()
if IS_TF2:
  LEGACY_LAYERS_ALIASED = _alias_legacy_tf_layers()
  _tf.compat.v1.disable_eager_execution()
  _tf.compat.v1.disable_tensor_equality()
else:
  LEGACY_LAYERS_ALIASED = False


def onednn_enabled():
  """Whether this process's TensorFlow runs its oneDNN kernels.

  TF 2 answers from `TF_ENABLE_ONEDNN_OPTS` and the CPU; TF 1.15 only
  for Intel's build (intel-tensorflow, `TF_DISABLE_MKL=1` turns it off).
  """
  # pylint: disable=g-import-not-at-top
  if IS_TF2:
    from tensorflow.python.util import _pywrap_util_port as port
  else:
    from tensorflow.python import pywrap_tensorflow as port
  return bool(port.IsMklEnabled())
