"""The base class of the errors that library code raises for bad input.

Library modules (training/, export/, deployment/cluster.py, ...) raise
subclasses of `InputError` whose message says what was wrong and how to fix
it. They know nothing about the command line: a message names the settings
it is about with `param_refs.ref('learning_rate')`, which `str()` shows as
the plain parameter name and only the entry scripts spell as a flag
(`cli.script_utils`), printing the error as one paragraph.
"""


from core import param_refs

# Library modules build their messages with these two.
ref = param_refs.ref
marked = param_refs.marked


class InputError(param_refs.MessageWithRefs, ValueError):
  """Bad configuration, data or checkpoint given to library code."""
