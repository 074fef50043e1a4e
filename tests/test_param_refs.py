"""Library messages name parameters; only the entry scripts spell flags.

Library code names the parameters a message is about with `ref`, in
backquotes (`core/param_refs.py`): `str()` of the error shows plain names,
and the scripts (`cli/script_utils.py`) show `--flags`. The source scans
below keep command-line spellings out of the library packages, and
backquoted names that do not come from `ref`.
"""


import ast
import collections
import io
import logging as std_logging
import os
import re
import subprocess
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
from absl import flags
from absl import logging
import pytest

from datasets import dataset_errors
from core import errors
from cli import script_utils
from core import param_refs
from training import optimizers
from tests import test_export_lib as lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY_PACKAGES = ('core', 'training', 'export', 'datasets', 'deployment',
                    'nets', 'preprocessing', 'weights')

# `--name`, `--%s` or a bare `--` that a name is appended to, not `---`.
FLAG_SPELLING = re.compile(r'(?<![\w-])--(?:[A-Za-z_%{]|$)')

# Files of the library packages that are command-line code by nature.
ALLOWED_FILES = {
    # The one place that spells parameter names as flags, for the scripts.
    'cli/script_utils.py',
    # Reads absl's --verbosity from sys.argv at import, before flags are
    # parsed, to set TensorFlow's C++ log level in time (lane: logs).
    'cli/logs.py',
    # The export scripts' flag definitions: help texts talk about flags.
    'cli/export_flags.py',
    # slim's entry scripts at slim's paths: they turn their flags into the
    # main scripts' command lines and name flags in their errors.
    'nets/mobilenet_v1_train.py',
    'nets/mobilenet_v1_eval.py',
    'nets/post_training_quantization.py',
}
# Single literals that must stay: a command line users run, quoted as advice.
ALLOWED_LITERALS = {
    ('datasets/dataset_errors.py',
     'python download_and_convert_data.py --dataset_name=%s '
     '--dataset_dir=%s'),
}


def _library_files():
  for package in LIBRARY_PACKAGES:
    for root, _, names in os.walk(os.path.join(REPO_ROOT, package)):
      for name in sorted(names):
        if name.endswith('.py'):
          path = os.path.join(root, name)
          yield os.path.relpath(path, REPO_ROOT).replace(os.sep, '/'), path


def _docstring_nodes(tree):
  """The string nodes that are docstrings (documentation, not messages)."""
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                         ast.AsyncFunctionDef)) and node.body:
      first = node.body[0]
      if isinstance(first, ast.Expr) and _string_value(first.value):
        found.add(id(first.value))
  return found


def _string_value(node):
  """The text of a string literal node, else None (Python 3.7 and 3.8+)."""
  value = getattr(node, 'value', getattr(node, 's', None))
  if isinstance(node, (ast.Constant, getattr(ast, 'Str', ast.Constant))):
    return value if isinstance(value, str) else None
  return None


def _message_literals(relative, source):
  """(line, text) of each string literal that is not a docstring."""
  tree = ast.parse(source, relative)
  docstrings = _docstring_nodes(tree)
  for node in ast.walk(tree):
    text = _string_value(node)
    if text is not None and id(node) not in docstrings:
      yield node.lineno, text


def flag_spellings(relative, source):
  """(line, literal) of each non-docstring literal that spells a flag."""
  return [(line, text) for line, text in _message_literals(relative, source)
          if FLAG_SPELLING.search(text)
          and (relative, text) not in ALLOWED_LITERALS]


def backquoted_names(relative, source):
  """(line, literal) of each non-docstring literal holding `a_name`.

  Scripts would print such a word as a flag; only `ref` writes them.
  """
  return [(line, text) for line, text in _message_literals(relative, source)
          if param_refs.names_in(text)]


def _scan_library(find):
  found = []
  for relative, path in _library_files():
    if relative in ALLOWED_FILES:
      continue
    with io.open(path, encoding='utf-8') as f:
      source = f.read()
    found += ['%s:%d: %r' % (relative, line, text)
              for line, text in find(relative, source)]
  return found


def test_library_literals_name_no_flags():
  found = _scan_library(flag_spellings)
  assert not found, (
      'Library code spells command-line flags; name the parameter with '
      'errors.ref / param_refs.ref instead:\n' + '\n'.join(found))


def test_library_literals_backquote_no_names():
  found = _scan_library(backquoted_names)
  assert not found, (
      'A backquoted name in a library message is printed as a flag by the '
      'scripts; use errors.ref for a parameter, other quotes for anything '
      'else:\n' + '\n'.join(found))


def test_the_scans_find_flags_and_names_and_skip_docstrings():
  source = ('"""Module doc: --learning_rate is fine here."""\n'
            'def f():\n'
            '  """Function doc --train_dir."""\n'
            '  raise ValueError("--learning_rate must be > 0")\n'
            'A = "--%s=%d" % ("x", 1)\n'
            'B = "--" + "name"\n'
            'C = "a ---- separator, x--y and -- alone"\n')
  lines = sorted(line for line, _ in flag_spellings('example.py', source))
  assert lines == [4, 5, 6]
  source = ('"""Doc: the `checkpoint` file."""\n'
            'A = "no `checkpoint` file"\n'
            'B = "run `make venv` or `tf.Graph`"\n')
  assert [line for line, _ in backquoted_names('example.py', source)] == [2]


def test_str_shows_names_and_scripts_show_flags():
  error = errors.InputError('%s is bad; lower %s.' %
                            (errors.ref('learning_rate', 5), errors.ref('x')))
  assert str(error) == 'learning_rate=5 is bad; lower x.'
  assert (script_utils.as_command_line(error) ==
          '--learning_rate=5 is bad; lower --x.')
  assert (script_utils.as_command_line(error, {'x': 'other'}) ==
          '--learning_rate=5 is bad; lower --other.')
  assert errors.marked(error) == '`learning_rate`=5 is bad; lower `x`.'
  assert str(script_utils.ScriptError(errors.marked(error))) == (
      '--learning_rate=5 is bad; lower --x.')
  assert param_refs.names_in(errors.marked(error)) == ['learning_rate', 'x']


def test_values_are_never_taken_for_marks():
  # A value with `--` or names in it stays exactly as given.
  error = errors.InputError('%s missing' % errors.ref('path', '/a--b/x_y'))
  assert script_utils.as_command_line(error) == '--path=/a--b/x_y missing'
  # Backquoted text that is no identifier is not a name.
  text = 'run `make venv` or pass `tf.Graph`; %s' % errors.ref('x')
  assert script_utils.as_command_line(text) == (
      'run `make venv` or pass `tf.Graph`; --x')
  with pytest.raises(ValueError):
    errors.ref('--learning_rate')


def test_only_flags_and_referenced_names_are_spelled_as_flags():
  # A message quoted from another library (the words here are ones no
  # library module of ours passes to `ref`) keeps its backquotes...
  foreign = ('Keras: `quux_units` must divide `quux_heads`; see '
             '`quux_call`.')
  assert script_utils.as_command_line(foreign) == foreign
  assert not param_refs.is_referenced('quux_units')
  # ...but a word that is a flag of the running script is that flag,
  defined = flags.FlagValues()
  flags.DEFINE_integer('quux_units', 1, 'units', flag_values=defined)
  assert script_utils.as_command_line(foreign, flag_values=defined) == (
      'Keras: --quux_units must divide `quux_heads`; see `quux_call`.')
  # as is a name the script renames, and one our library wrote with `ref`.
  assert script_utils.as_command_line(
      foreign, {'quux_call': 'call'}, flag_values=defined) == (
          'Keras: --quux_units must divide `quux_heads`; see --call.')
  ours = errors.InputError('%s is too small.' % errors.ref('quux_heads'))
  assert param_refs.is_referenced('quux_heads')
  assert script_utils.as_command_line(ours) == '--quux_heads is too small.'
  # The log lines a script prints follow the same rule.
  record = std_logging.LogRecord('absl', std_logging.WARNING, __file__, 1,
                                 '%s', (foreign,), None)
  script_utils._LogFlagSpelling(  # pylint: disable=protected-access
      script_utils.flag_spelling()).filter(record)
  assert record.getMessage() == (
      'Keras: `quux_units` must divide --quux_heads; see `quux_call`.')


def test_wrapped_errors_keep_their_marks():
  inner = dataset_errors.SettingError('%s must be >= 1.' %
                                      dataset_errors.ref('num_validation'))
  assert isinstance(inner, ValueError)
  outer = errors.InputError('Cannot convert: %s' % errors.marked(inner))
  assert str(outer) == 'Cannot convert: num_validation must be >= 1.'
  assert (script_utils.as_command_line(outer) ==
          'Cannot convert: --num_validation must be >= 1.')
  with pytest.raises(script_utils.ScriptError, match='--num_validation'):
    with script_utils.command_line_errors():
      raise outer


def test_library_log_lines_spell_flags_only_while_a_script_runs():
  messages = []

  class Collect(std_logging.Handler):

    def emit(self, record):
      messages.append(record.getMessage())

  handler = Collect()
  logger = logging.get_absl_logger()
  logger.addHandler(handler)
  try:
    logging.warning('waiting (%s).', errors.ref('ps_timeout_secs'))
    script_utils.run_or_exit(
        lambda: logging.warning('waiting (%s).',
                                errors.ref('ps_timeout_secs')), 'prog',
        {'ps_timeout_secs': 'ps_wait'})
    logging.warning('after (%s).', errors.ref('ps_timeout_secs'))
  finally:
    logger.removeHandler(handler)
  assert messages == ['waiting (`ps_timeout_secs`).', 'waiting (--ps_wait).',
                      'after (`ps_timeout_secs`).']


def test_run_or_exit_prints_a_library_error_with_the_flag(capsys):
  config = collections.namedtuple('Config', 'optimizer')('no_such_optimizer')
  with pytest.raises(optimizers.UnknownNameError) as error:
    optimizers.optimizer(config, 0.1)
  assert str(error.value).startswith('optimizer=no_such_optimizer is not ')
  with pytest.raises(SystemExit) as exit_info:
    script_utils.run_or_exit(lambda: optimizers.optimizer(config, 0.1),
                             'train_image_classifier')
  assert exit_info.value.code == 1
  stderr = capsys.readouterr().err
  assert 'train_image_classifier: error: --optimizer=no_such_optimizer' in (
      stderr)
  assert '`' not in stderr


def test_export_tflite_names_its_own_flag_for_a_library_parameter(tmp_path):
  # tflite.convert names its `graph_def_file`; export_tflite's flag for it
  # is --input_graph (export_tflite.FLAG_NAMES).
  import export_tflite  # pylint: disable=g-import-not-at-top
  missing = str(tmp_path / 'missing.pb')
  with pytest.raises(script_utils.ScriptError) as error:
    lib.run_script(export_tflite, ['--input_graph=' + missing,
                                   '--output_file=' + str(tmp_path / 'm')])
  assert str(error.value) == '--input_graph=%s: no such file.' % missing
  assert str(error.value.__cause__) == 'graph_def_file=%s: no such file.' % (
      missing)


@pytest.mark.slow
def test_conversion_script_spells_a_renamed_parameter(tmp_path, script_env):
  # generate_shapes names its `image_size`; the script's flag for it is
  # --shapes_image_size (download_and_convert_data.FLAG_NAMES).
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, 'download_and_convert_data.py'),
       '--dataset_name=shapes', '--dataset_dir=' + str(tmp_path / 'out'),
       '--shapes_image_size=8'],
      env=script_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      universal_newlines=True)
  assert result.returncode == 1, result.stderr
  assert ('download_and_convert_data.py: error: --shapes_image_size must be '
          '>= 16 pixels, got 8.') in ' '.join(result.stderr.split())
  assert 'Traceback' not in result.stderr
