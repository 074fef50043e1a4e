"""The one place that knows which TensorFlow this code runs on.

Import this module before `tf_slim` is used (every module of this project
does so through `from nets import tf_compat`). It

* aliases `tf_keras.legacy_tf_layers` to `tf_keras.src.legacy_tf_layers`
  where TF >= 2.14 moved it, because tf-slim 1.1.0's `batch_norm` reaches it
  through `tensorflow.python.layers.normalization`;
* restores `control_flow_ops.cond` / `case`, which tf-slim 1.1.0's
  `tfexample_decoder.Image` calls and TF 2.21 no longer defines there;
* disables eager execution on TF 2, since slim networks, queues and
  `tf.train` savers are graph-mode APIs;
* exposes `IS_TF2` / `TF_VERSION` for the few APIs that really differ
  (e.g. `tf.contrib.quantize` exists only on TF 1.15).

Nothing else in the code base branches on the TensorFlow version.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import importlib
import sys

import tensorflow as _tf

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


def _restore_control_flow_aliases():
  """Puts `cond` and `case` back on `control_flow_ops` where TF removed them.

  Returns:
    The names that were restored (empty if none was missing).
  """
  from tensorflow.python.ops import control_flow_ops  # pylint: disable=g-import-not-at-top
  restored = []
  for name in ('cond', 'case'):
    if not hasattr(control_flow_ops, name):
      setattr(control_flow_ops, name, getattr(_tf.compat.v1, name))
      restored.append(name)
  return tuple(restored)


if IS_TF2:
  LEGACY_LAYERS_ALIASED = _alias_legacy_tf_layers()
  CONTROL_FLOW_ALIASES = _restore_control_flow_aliases()
  _tf.compat.v1.disable_eager_execution()
else:
  LEGACY_LAYERS_ALIASED = False
  CONTROL_FLOW_ALIASES = ()
