"""The base classes of the errors that library code raises for bad input.

Library modules (training/, export/, deployment/cluster.py, ...) raise
subclasses of `InputError` whose message says what was wrong and how to fix
it; `datasets/` and `preprocessing/` have their own classes on
`LibraryError`. They know nothing about the command line: a message names
its parameters with `ref('learning_rate')`, "`learning_rate`" in the text
(`core/param_refs.py`). `str()` drops the backquotes; the entry scripts
print the message with flags instead (`cli/script_utils.py`).
"""


from core import param_refs

# Library modules build their messages with this.
ref = param_refs.ref


class LibraryError(ValueError):
  """Bad input to library code; `str()` shows plain parameter names."""

  def __str__(self):
    return param_refs.plain(marked(self))


class InputError(LibraryError):
  """Bad configuration, data or checkpoint given to library code."""


def marked(error):
  """The message of `error` as raised, backquoted names kept.

  What a library error wrapping another one quotes, so that a script still
  finds the names to spell as flags. Any exception may be passed.
  """
  if isinstance(error, LibraryError):
    return ValueError.__str__(error)
  return str(error)
