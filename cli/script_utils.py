"""What the entry scripts share to report errors on the command line.

Library code raises `core.errors.InputError` subclasses; an entry
script runs its work through `run_or_exit`, which prints such an error as
one wrapped paragraph after the program's name and exits with status 1,
instead of a traceback:

    def main(_):
      script_utils.run_or_exit(lambda: train(FLAGS), PROGRAM)

Library messages name parameters in backquotes (`param_refs.ref`); here,
and only here, those names become flags ("`learning_rate`" ->
"--learning_rate"), in printed errors and, while `run_or_exit` runs, in log
lines. A script whose flag has another name than the library's parameter
passes `flag_names`. Only a defined flag, or a name `ref` wrote, is
spelled so: other backquoted words (in a message quoted from TensorFlow or
Keras) stay as they are.
"""


import contextlib
import logging as std_logging
import sys
import textwrap
import typing

from absl import flags
from absl import logging

from core import errors
from core import param_refs
from training import preemption


def help_exits_with_success():
  """Makes --help, --helpshort and --helpfull exit with status 0.

  absl prints the help and exits with 1, so a shell or CI step that only
  asks for help looks failed. Registers absl's help flags now
  (`app.define_help_flags` is idempotent; `app.run` calls it again) and
  turns their exit status 1 into 0. Every entry script imports this
  module, which calls it once.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  app.define_help_flags()
  for name in ('help', 'helpshort', 'helpfull'):
    flag = flags.FLAGS[name]
    if getattr(flag, 'exits_with_success', False):
      continue

    def parse(argument, absl_parse=flag.parse):
      try:
        absl_parse(argument)
      except SystemExit as e:
        raise SystemExit(0 if e.code == 1 else e.code)

    flag.parse = parse
    flag.exits_with_success = True


help_exits_with_success()


class ScriptError(errors.InputError):
  """Bad command-line input; the message names the flag and the fix.

  Its `str()` spells backquoted names as flags: this is the error of a
  command line, raised by the scripts (or by `command_line_errors`).
  """

  def __init__(self, message, flag_names=None):
    super(ScriptError, self).__init__(message)
    self.flag_names = flag_names

  def __str__(self):
    return as_command_line(errors.marked(self), self.flag_names)


def flag_spelling(flag_names=None, flag_values=None):
  """A function that spells a parameter name as its command-line flag.

  A backquoted word that is neither a flag in `flag_values` (or
  `flag_names`) nor a name `param_refs.ref` wrote is not a parameter: it
  keeps its backquotes.

  Args:
    flag_names: {parameter name: flag name} where the two differ.
    flag_values: the flags that exist; the global `flags.FLAGS` by default.
  """
  flag_names = flag_names or {}
  defined = flags.FLAGS if flag_values is None else flag_values

  def spelling(name):
    if name in flag_names:
      return '--' + flag_names[name]
    if name in defined or param_refs.is_referenced(name):
      return '--' + name
    return '`%s`' % name

  return spelling


def as_command_line(message, flag_names=None, flag_values=None):
  """`message` (text or exception) with its parameter names spelled as flags.

  Args:
    message: a string, or an exception; its backquoted names become flags.
    flag_names: {parameter name: flag name} where the two differ.
    flag_values: the flags that exist; the global `flags.FLAGS` by default.
  """
  if isinstance(message, ScriptError) and message.flag_names:
    flag_names = dict(message.flag_names, **(flag_names or {}))
  text = message if isinstance(message, str) else errors.marked(message)
  return param_refs.spell(text, flag_spelling(flag_names, flag_values))


def run_or_exit(fn, program, flag_names=None):
  """Returns `fn()`; on an `InputError`, prints it and exits with status 1.

  Args:
    fn: a callable without arguments.
    program: the script's name, which starts the message.
    flag_names: {parameter name: flag name} where the two differ.
  """
  log_spelling = _LogFlagSpelling(flag_spelling(flag_names))
  logging.get_absl_logger().addFilter(log_spelling)
  try:
    return fn()
  except errors.InputError as e:
    logging.debug('%s failed', program, exc_info=True)
    print_error(program, e, flag_names)
    sys.exit(1)
  finally:
    logging.get_absl_logger().removeFilter(log_spelling)


class _LogFlagSpelling(std_logging.Filter):
  """Spells the backquoted names of absl log records as flags."""

  def __init__(self, spelling):
    super(_LogFlagSpelling, self).__init__()
    self._spelling = spelling

  def filter(self, record):
    try:
      message = record.getMessage()
    except Exception:  # pylint: disable=broad-except
      return True  # The handler reports the bad record as it would anyway.
    if '`' in message:
      record.msg, record.args = param_refs.spell(message, self._spelling), ()
    return True


def print_error(program, message, flag_names=None):
  """Writes `message` to stderr as `run_or_exit` does.

  Args:
    program: the script's name, which starts the message.
    message: the error text (or the error); lines after the first are kept
      as they are; parameter names are spelled as flags.
    flag_names: {parameter name: flag name} where the two differ.
  """
  text = as_command_line(message, flag_names)
  sys.stderr.write('\n%s: error: %s\n' % (program, _paragraph(text)))
  sys.stderr.flush()


def _paragraph(text):
  """Wraps the first line of `text` at 79 columns; keeps the others."""
  lines = text.split('\n')
  # Paths stay whole: no breaks at hyphens or inside long words.
  head = textwrap.fill(lines[0], width=79, subsequent_indent='  ',
                       break_on_hyphens=False, break_long_words=False)
  return '\n'.join([head] + lines[1:])


@contextlib.contextmanager
def command_line_errors(flag_names=None):
  """Inside the block, a library `InputError` becomes a `ScriptError`.

  The library's error stays reachable as the new error's `__cause__`; the
  new one keeps its backquoted names and spells them as flags.

  Args:
    flag_names: {parameter name: flag name} where the two differ.
  """
  try:
    yield
  except ScriptError:
    raise
  except errors.InputError as e:
    raise ScriptError(errors.marked(e), flag_names) from e


class StopHandling(typing.NamedTuple):
  """How `script_main` runs a script that stops cleanly on a signal.

  signals: `signals(flag_values)`, a `preemption.StopSignals` not entered
    yet (it may raise `InputError` for a bad grace period).
  stopped_line: `stopped_line(stop_signals, result)`, the log line after a
    stop; the script then exits with 128 + the signal's number.
  """
  signals: typing.Callable
  stopped_line: typing.Callable


def run_stoppable(program, run, flag_names, stop_handling):
  """`run_or_exit(run)` with stop-signal handlers; exits 128 + signal if
  stopped.

  Args:
    program: the script's name, which starts the message.
    run: `run(stop_signals=...)`, given the entered `StopSignals`.
    flag_names: {parameter name: flag name} where the two differ.
    stop_handling: a `StopHandling`.
  """
  stop_signals = run_or_exit(
      lambda: stop_handling.signals(flags.FLAGS), program, flag_names)
  with stop_signals as stop:
    result = run_or_exit(
        lambda: run(stop_signals=stop), program, flag_names)
  if stop.signum is not None:
    logging.info('%s', stop_handling.stopped_line(stop, result))
    sys.exit(preemption.exit_status(stop.signum))
