"""Parameter names inside messages, spelled by whoever shows the message.

Library code says which parameter a message is about with `ref`:

    raise SomeError('%s must be > 0.' % param_refs.ref('learning_rate'))
    raise SomeError('%s is not a directory.' % param_refs.ref('dataset_dir', d))

The mark is invisible to the library: `plain` (and `str()` of an error built
on `MessageWithRefs`) shows `learning_rate` / `dataset_dir=/some/dir`, the
names a Python caller passes. Only the entry scripts spell the marks as
command-line flags (`cli.script_utils`), so no library knows the
shape of a command line.

The module sits in `nets`, the bottom layer, only so that every package may
import it; it knows nothing about networks and imports nothing.
"""


import logging
import re

# ASCII's record/unit separators: no path, number or name a user types holds
# them, so a value put into a message is never taken for a mark.
_OPEN = '\x1e'
_CLOSE = '\x1f'
_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
_MARK = re.compile(_OPEN + r'([A-Za-z_][A-Za-z0-9_]*)' + _CLOSE)


def ref(name, *value):
  """The parameter `name` marked for a message; `name=value` given a value.

  Args:
    name: the parameter's name, as a Python caller passes it.
    *value: at most one value, shown after `=`.

  Returns:
    A string to put into a message.
  """
  if len(value) > 1:
    raise TypeError('ref takes one value at most, got %d.' % len(value))
  if not _NAME.match(name):
    raise ValueError('%r is not a parameter name.' % (name,))
  mark = _OPEN + name + _CLOSE
  return '%s=%s' % (mark, value[0]) if value else mark


def spell(text, spelling):
  """`text` with each mark replaced by `spelling(name)`."""
  return _MARK.sub(lambda match: spelling(match.group(1)), text)


def plain(text):
  """`text` with each mark shown as the bare parameter name."""
  return spell(text, lambda name: name)


def names_in(text):
  """The parameter names marked in `text`, in order."""
  return _MARK.findall(text)


class MessageWithRefs(object):
  """Mixin for exceptions whose message may hold `ref` marks.

  `str()` shows plain names; `marked_message()` keeps the marks for a
  caller that spells them (or wraps the message into another error).
  """

  def marked_message(self):
    return super(MessageWithRefs, self).__str__()

  def __str__(self):
    return plain(self.marked_message())


def marked(error):
  """The message of `error` with its marks kept (any exception)."""
  if isinstance(error, MessageWithRefs):
    return error.marked_message()
  return str(error)


class _LogSpelling(logging.Filter):
  """Spells the marks of log records, plain unless a script says otherwise."""

  def __init__(self):
    super(_LogSpelling, self).__init__()
    self.spelling = None

  def filter(self, record):
    try:
      message = record.getMessage()
    except Exception:  # pylint: disable=broad-except
      return True  # The handler reports the bad record as it would anyway.
    if _OPEN in message:
      record.msg = spell(message, self.spelling or (lambda name: name))
      record.args = ()
    return True


# Library modules log through absl, whose records all pass this logger.
_LOG_SPELLING = _LogSpelling()
logging.getLogger('absl').addFilter(_LOG_SPELLING)


def set_log_spelling(spelling):
  """Spells marks in log records with `spelling` (None: plain names).

  Returns:
    The spelling in use before, to restore later.
  """
  previous = _LOG_SPELLING.spelling
  _LOG_SPELLING.spelling = spelling
  return previous
