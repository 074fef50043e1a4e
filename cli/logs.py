"""Quiet, once-per-event logging for the entry scripts.

Entry scripts import this module BEFORE TensorFlow is first imported (that
is, before `from core import tf_compat`):

    from absl import app, flags
    from cli import logs  # first: TensorFlow's C++ side reads the env
    from core import tf_compat
    ...
    def main(argv):
      logs.quiet_logging(FLAGS.verbosity)

Importing it
* sets `TF_CPP_MIN_LOG_LEVEL=2` (C++ errors only) unless the user set it or
  passed `--verbosity=1` or more, because TensorFlow's C++ library reads
  that variable once, when it loads, long before flags are parsed;
* hides the FutureWarning/DeprecationWarning noise the TensorFlow, tf-keras
  and tf-slim packages raise while they are imported.

`quiet_logging(verbosity)` then, once the flags are parsed, makes every
`tf.logging` / `absl.logging` record appear once (see `_single_handler`)
and drops TensorFlow's deprecation notices and the INFO chatter of
installed libraries ("Graph was finalized", "Saving checkpoints for ...");
this project's own records and every library warning stay. With
`--verbosity=1` everything comes back (`TF_CPP_MIN_LOG_LEVEL=0` alone
brings back the C++ messages).

This module must not import TensorFlow at import time.
"""


import logging
import os
import sys
import sysconfig
import warnings

CPP_LOG_LEVEL_VARIABLE = 'TF_CPP_MIN_LOG_LEVEL'
# 0: everything, 1: no INFO, 2: no INFO/WARNING, 3: no ERROR either.
QUIET_CPP_LOG_LEVEL = '2'
VERBOSE_CPP_LOG_LEVEL = '0'
# absl's --verbosity: -1 WARNING (its default), 0 INFO, 1 DEBUG. From this
# level on TensorFlow's own messages are shown again.
VERBOSE_FROM = 1

# Packages whose import-time and call-time Python warnings are hidden.
_NOISY_PACKAGES = r'(tensorflow|tensorflow_core|tf_keras|keras|tf_slim|h5py|google\.protobuf)(\.|$)'
# Text of TensorFlow's deprecation notices (tf.logging and warnings).
_DEPRECATION_MARKERS = ('is deprecated and will be removed',
                        'Instructions for updating',
                        'is scheduled for deletion',
                        'is deprecated. Please use')
# The start of tf.lite.Interpreter's deprecation warning on TF 2; not hidden
# (see _hide_import_warnings).
TFLITE_INTERPRETER_NOTICE = r'\s*Warning: tf\.lite\.Interpreter is deprecated'


def verbosity_from_argv(argv):
  """The --verbosity/-v value in a command line (None when absent).

  Args:
    argv: the command line, e.g. sys.argv.

  Returns:
    The integer value, or None if not given or not an integer.
  """
  value = None
  for i, arg in enumerate(argv[1:], 1):
    for name in ('--verbosity', '-v'):
      if arg.startswith(name + '='):
        value = arg[len(name) + 1:]
      elif arg == name and i + 1 < len(argv):
        value = argv[i + 1]
  try:
    return int(value) if value is not None else None
  except ValueError:
    return None


def cpp_log_level(argv, environ):
  """The TF_CPP_MIN_LOG_LEVEL to set, or None to leave the user's value.

  Args:
    argv: the command line.
    environ: the environment mapping.

  Returns:
    '0' when --verbosity asks for TensorFlow's messages, '2' otherwise;
    None when the variable is already set.
  """
  if environ.get(CPP_LOG_LEVEL_VARIABLE):
    return None
  verbosity = verbosity_from_argv(argv)
  if verbosity is not None and verbosity >= VERBOSE_FROM:
    return VERBOSE_CPP_LOG_LEVEL
  return QUIET_CPP_LOG_LEVEL


def _hide_import_warnings():
  """Ignores the packages' deprecation-category Python warnings."""
  for category in (DeprecationWarning, PendingDeprecationWarning,
                   FutureWarning):
    warnings.filterwarnings('ignore', category=category,
                            module=_NOISY_PACKAGES)
  # E.g. keras' "`layer.apply` is deprecated" (a UserWarning).
  warnings.filterwarnings('ignore', message=r'.*deprecated',
                          module=_NOISY_PACKAGES)
  # Except tf.lite.Interpreter's notice: the project runs TFLite models
  # through LiteRT on TF 2, so this one means a call site was missed.
  warnings.filterwarnings('default', message=TFLITE_INTERPRETER_NOTICE)


def is_deprecation_notice(message):
  """Whether a log message is one of TensorFlow's deprecation notices."""
  return any(marker in message for marker in _DEPRECATION_MARKERS)


def third_party_dirs():
  """Directories installed packages live in (site-packages), normalized."""
  dirs = set()
  for key in ('purelib', 'platlib'):
    path = sysconfig.get_paths().get(key)
    if path:
      dirs.add(os.path.realpath(path))
  tensorflow = sys.modules.get('tensorflow')
  if getattr(tensorflow, '__file__', None):
    dirs.add(os.path.realpath(os.path.dirname(os.path.dirname(
        tensorflow.__file__))))
  return tuple(sorted(dirs))


def is_noise(level, message, pathname, library_dirs):
  """Whether a log record is noise a newcomer need not see.

  Args:
    level: the record's logging level.
    message: its formatted message.
    pathname: the source file that logged it.
    library_dirs: directories of installed packages (third_party_dirs()).

  Returns:
    True for deprecation notices, and for INFO/DEBUG records of installed
    libraries (TensorFlow's "Graph was finalized", "Saving checkpoints",
    ...); this project's own records and every library warning are kept.
  """
  if is_deprecation_notice(message):
    return True
  if level >= logging.WARNING or not pathname:
    return False
  path = os.path.realpath(pathname)
  return any(path.startswith(d + os.sep) for d in library_dirs)


class _DropNoise(logging.Filter):
  """Logging filter applying `is_noise` to each record."""

  def __init__(self):
    super(_DropNoise, self).__init__()
    self.library_dirs = third_party_dirs()

  def filter(self, record):
    try:
      message = record.getMessage()
    except (TypeError, ValueError):
      return True
    return not is_noise(record.levelno, message, record.pathname,
                        self.library_dirs)


def _single_handler(tf_logger):
  """Leaves the root logger's absl handler as the only one printing records.

  Why lines appeared twice: on its first use TensorFlow's logger adds its own
  stderr handler ("INFO:tensorflow:...") if the root logger has none yet.
  `import tensorflow` uses it before `app.run` puts absl's handler on the
  root logger, and the TensorFlow logger also propagates to the root, so
  each record was printed by both handlers.

  Args:
    tf_logger: the 'tensorflow' logging.Logger.
  """
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_handler = absl_logging.get_absl_handler()
  root = logging.getLogger()
  if absl_handler not in root.handlers:
    absl_logging.use_absl_handler()
  for handler in list(tf_logger.handlers):
    if handler is not absl_handler:
      tf_logger.removeHandler(handler)
  tf_logger.propagate = True


def quiet_logging(verbosity=None):
  """Makes each log record print once, without TensorFlow's chatter.

  Call it from an entry script's main(), after the flags are parsed.

  Args:
    verbosity: absl's --verbosity value; VERBOSE_FROM or more keeps
      TensorFlow's INFO messages, deprecation notices and Python warnings.
      None: quiet.

  Returns:
    True if quiet (noise dropped), False if verbose.
  """
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  tf_logger = logging.getLogger('tensorflow')
  _single_handler(tf_logger)
  loggers = (tf_logger, absl_logging.get_absl_logger())
  for logger in loggers:
    for old_filter in [f for f in logger.filters if isinstance(f, _DropNoise)]:
      logger.removeFilter(old_filter)
  verbose = verbosity is not None and verbosity >= VERBOSE_FROM
  if verbose:
    warnings.resetwarnings()
  else:
    noise_filter = _DropNoise()
    for logger in loggers:
      logger.addFilter(noise_filter)
  return not verbose


def _on_import():
  level = cpp_log_level(sys.argv, os.environ)
  if level is not None:
    os.environ[CPP_LOG_LEVEL_VARIABLE] = level
  verbosity = verbosity_from_argv(sys.argv)
  if verbosity is None or verbosity < VERBOSE_FROM:
    _hide_import_warnings()


_on_import()
