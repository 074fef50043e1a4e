"""Parameter names in library messages, written in backquotes.

Library code names the parameter a message is about with `ref`:

    raise errors.InputError('%s must be > 0.' % errors.ref('learning_rate'))
    # the message as raised: "`learning_rate` must be > 0."

Three readers, three spellings of the same text:
* `str()` of a library error (`core.errors.LibraryError`) drops the
  backquotes: a Python caller reads "learning_rate must be > 0.";
* an entry script turns each backquoted name into its flag,
  "--learning_rate must be > 0." (`cli/script_utils.py`, the only place
  that knows flags);
* a library log line keeps the backquotes, unless a script runs the code,
  which then spells the flag there too.

Only a backquoted identifier counts: "`tf.Graph`" or "`make venv`" is left
alone. A script spells only the names of its flags and the names `ref` wrote
in this process (`is_referenced`), so a word that TensorFlow or Keras
backquotes in a message of theirs stays as it was. A value follows its name outside the backquotes (`ref('dataset_dir',
d)` gives "`dataset_dir`=/some/dir"), so a value is never taken for a name.
"""


import re

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
_MARK = re.compile(r'`([A-Za-z_][A-Za-z0-9_]*)`')

# Every name `ref` has written in this process. A message quoted from
# another library may backquote its own words; these are ours.
_REFERENCED = set()


def ref(name, *value):
  """"`name`" for a message; "`name`=value" given a value.

  Args:
    name: the parameter's name, as a Python caller passes it.
    *value: at most one value, shown after `=`.
  """
  if len(value) > 1:
    raise TypeError('ref takes one value at most, got %d.' % len(value))
  if not _NAME.match(name):
    raise ValueError('%r is not a parameter name.' % (name,))
  _REFERENCED.add(name)
  mark = '`%s`' % name
  return '%s=%s' % (mark, value[0]) if value else mark


def is_referenced(name):
  """Whether `ref` has written `name` in this process."""
  return name in _REFERENCED


def spell(text, spelling):
  """`text` with each backquoted name replaced by `spelling(name)`."""
  return _MARK.sub(lambda match: spelling(match.group(1)), text)


def plain(text):
  """`text` with the backquotes around names dropped."""
  return spell(text, lambda name: name)


def names_in(text):
  """The backquoted names in `text`, in order."""
  return _MARK.findall(text)
