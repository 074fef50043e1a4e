"""What the entry scripts share to report errors on the command line.

Library code raises `deployment.errors.InputError` subclasses; an entry
script runs its work through `run_or_exit`, which prints such an error as
one wrapped paragraph after the program's name and exits with status 1,
instead of a traceback:

    def main(_):
      script_utils.run_or_exit(lambda: train(FLAGS), PROGRAM)
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import contextlib
import sys
import textwrap

from absl import logging

from deployment import errors


class ScriptError(errors.InputError):
  """Bad command-line input; the message names the flag and the fix."""


def run_or_exit(fn, program):
  """Returns `fn()`; on an `InputError`, prints it and exits with status 1.

  Args:
    fn: a callable without arguments.
    program: the script's name, which starts the message.
  """
  try:
    return fn()
  except errors.InputError as e:
    logging.debug('%s failed', program, exc_info=True)
    print_error(program, str(e))
    sys.exit(1)


def print_error(program, message):
  """Writes `message` to stderr as `run_or_exit` does.

  Args:
    program: the script's name, which starts the message.
    message: the error text; lines after the first are kept as they are.
  """
  sys.stderr.write('\n%s: error: %s\n' % (program, _paragraph(message)))
  sys.stderr.flush()


def _paragraph(text):
  """Wraps the first line of `text` at 79 columns; keeps the others."""
  lines = text.split('\n')
  # Paths stay whole: no breaks at hyphens or inside long words.
  head = textwrap.fill(lines[0], width=79, subsequent_indent='  ',
                       break_on_hyphens=False, break_long_words=False)
  return '\n'.join([head] + lines[1:])


@contextlib.contextmanager
def command_line_errors():
  """Inside the block, a library `InputError` becomes a `ScriptError`.

  The library's error stays reachable as the new error's `__cause__`.
  """
  try:
    yield
  except ScriptError:
    raise
  except errors.InputError as e:
    raise ScriptError(str(e)) from e
