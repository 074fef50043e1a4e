"""The README's commands, checked mechanically and a cheap few run.

Every `python ...`, `bash scripts/...`, `scripts/...` and `make ...` command
in the README (fenced bash/sh blocks and inline code) must name a script
or make target that exists, and each --flag must be one that script
defines; the set-up (how to enter the environment) must come before the
first `python` recipe.
"""


import concurrent.futures
import contextlib
import importlib
import io
import os
import re
import shlex
import subprocess
import sys

from absl import flags
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, 'README.md')

# Flags every absl program accepts.
ABSL_FLAGS = {
    'help', 'helpshort', 'helpfull', 'helpxml', 'flagfile', 'undefok',
    'verbosity', 'v', 'logtostderr', 'alsologtostderr', 'log_dir',
    'stderrthreshold', 'showprefixforinfo', 'only_check_args', 'pdb',
    'pdb_post_mortem', 'run_with_pdb', 'run_with_profiling', 'profile_file',
    'use_cprofile_for_profiling', 'logger_levels'}
_FENCE = re.compile(r'^```(\w*)\s*$')
_HELP_LINE = re.compile(r'^  --(?:\[no\])?([A-Za-z0-9_]+):')


def _readme():
  with open(README) as f:
    return f.read()


def _logical_lines(block):
  """Joins backslash continuations and lines inside open quotes."""
  lines, pending = [], ''
  for line in block.split('\n'):
    pending += line
    if pending.endswith('\\'):
      pending = pending[:-1] + ' '
      continue
    try:
      shlex.split(pending, comments=True)
    except ValueError:  # an open quote: the command goes on
      pending += '\n'
      continue
    lines.append(pending)
    pending = ''
  if pending.strip():
    lines.append(pending)
  return lines


def readme_commands(text=None):
  """(line number, tokens) of each shell command in the README."""
  text = _readme() if text is None else text
  commands = []
  in_shell, in_fence, block, start = False, False, [], 0
  for number, line in enumerate(text.split('\n'), 1):
    fence = _FENCE.match(line)
    if fence and not in_fence:
      in_fence, in_shell = True, fence.group(1) in ('bash', 'sh', 'shell')
      block, start = [], number + 1
      continue
    if fence and in_fence:
      if in_shell:
        for logical in _logical_lines('\n'.join(block)):
          commands.append((start, shlex.split(logical, comments=True)))
      in_fence = False
      continue
    if in_fence:
      block.append(line)
      continue
    for span in re.findall(r'`([^`]+)`', line):
      if re.match(r'([A-Z_][A-Z0-9_]*=\S*\s+)*'
                  r'(python|make|bash scripts/|scripts/)\S*\s', span + ' '):
        try:
          commands.append((number, shlex.split(span)))
        except ValueError:
          pass
  return [(n, _strip_env(tokens)) for n, tokens in commands if tokens]


def _strip_env(tokens):
  """Drops leading VAR=value assignments."""
  i = 0
  while i < len(tokens) and re.match(r'^[A-Z_][A-Z0-9_]*=', tokens[i]):
    i += 1
  return tokens[i:]


def _flag_names(tokens):
  names = []
  for token in tokens:
    token = token.strip('[]')
    if token.startswith('--') and len(token) > 2:
      names.append(token[2:].split('=')[0])
  return names


def python_commands():
  """{script or -m module: [(line, flag names)]} of the README."""
  found = {}
  for number, tokens in readme_commands():
    if (tokens[0] not in ('python', 'python3') or len(tokens) < 2 or
        tokens[1] == '...'):  # `python ...` in prose: no command
      continue
    if tokens[1] == '-m':
      target, rest = '-m ' + tokens[2], tokens[3:]
    else:
      target, rest = tokens[1], tokens[2:]
    found.setdefault(target, []).append((number, _flag_names(rest)))
  return found


def _module_name(target):
  if target.startswith('-m '):
    return target[3:]
  return target[:-len('.py')].replace('/', '.')


def _target_path(target):
  if target.startswith('-m '):
    return os.path.join(REPO, *target[3:].split('.')) + '.py'
  return os.path.join(REPO, target)


def _flags_in_process(target):
  """The flags of a script with define_flags(flag_values), else None."""
  with open(_target_path(target)) as f:
    if 'def define_flags(flag_values' not in f.read():
      return None  # it defines its flags at import: ask --helpfull instead
  module = importlib.import_module(_module_name(target))
  define = getattr(module, 'define_flags', None)
  if define is None:
    return None
  flag_values = flags.FlagValues()
  define(flag_values)
  return set(flag_values)


def _flags_from_help(target):
  """The flags `--helpfull` lists (scripts that define them at import)."""
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  command = [sys.executable] + target.split() + ['--helpfull']
  result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=600)
  names = set()
  for line in result.stdout.split('\n'):
    match = _HELP_LINE.match(line)
    if match:
      names.add(match.group(1))
  assert names, '%s --helpfull listed no flags:\n%s' % (
      target, result.stdout[-2000:])
  return names


_FLAGS = {}


def script_flags():
  """{target: set of flag names}, computed once per session."""
  if not _FLAGS:
    targets = [t for t in python_commands() if os.path.exists(_target_path(t))]
    slow = []
    for target in targets:
      names = _flags_in_process(target)
      if names is None:
        slow.append(target)
      else:
        _FLAGS[target] = names
    with concurrent.futures.ThreadPoolExecutor(max(1, len(slow))) as pool:
      for target, names in zip(slow, pool.map(_flags_from_help, slow)):
        _FLAGS[target] = names
  return _FLAGS


def test_readme_parser_finds_the_commands():
  text = ('Run `make run TF=2`.\n```bash\nX=1 python a.py --b=1 \\\n'
          '  --c  # comment\nT=\'{"a":\n 1}\' python d.py [--e=2] ...\n```\n'
          '```python\npython_code()\n```\n')
  assert readme_commands(text) == [
      (1, ['make', 'run', 'TF=2']),
      (3, ['python', 'a.py', '--b=1', '--c']),
      (3, ['python', 'd.py', '[--e=2]', '...'])]
  assert _flag_names(['python', 'd.py', '[--e=2]', '...', '--nof']) == [
      'e', 'nof']


def test_every_readme_script_exists():
  commands = python_commands()
  assert 'train_image_classifier.py' in commands
  missing = [t for t in commands if not os.path.exists(_target_path(t))]
  assert not missing, 'README names scripts that do not exist: %s' % missing
  for number, tokens in readme_commands():
    script = None
    if tokens[0] == 'bash' and len(tokens) > 1:
      script = tokens[1]
    elif tokens[0].startswith('scripts/'):
      script = tokens[0]
    if script:
      assert os.path.exists(os.path.join(REPO, script)), (number, script)


@pytest.mark.slow
def test_every_readme_flag_is_defined_by_its_script():
  known = script_flags()
  unknown = []
  for target, uses in sorted(python_commands().items()):
    names = known[target] | ABSL_FLAGS
    for number, used in uses:
      for name in used:
        negated = name[2:] if name.startswith('no') else None
        if name not in names and negated not in names:
          unknown.append('README.md:%d: %s --%s' % (number, target, name))
  assert not unknown, 'flags the scripts do not define:\n' + '\n'.join(
      unknown)


def _make_targets():
  with open(os.path.join(REPO, 'Makefile')) as f:
    text = f.read()
  targets = set(re.findall(r'^([A-Za-z][\w-]*):', text, re.M))
  return targets, text


def _fresh_make_env():
  """The environment of a user's shell, without what a calling make adds.

  Under `make test TF1_BUILD=onednn`, make exports its command-line
  variables (MAKEFLAGS and the variables themselves) to this process, and a
  README command such as `make run TF=2` would inherit TF1_BUILD.
  """
  env = dict(os.environ)
  for name in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'TF',
               'TF1_BUILD', 'VENV', 'PYTEST_ARGS', 'PYTEST_WORKERS'):
    env.pop(name, None)
  return env


def test_every_readme_make_command_exists_and_parses():
  targets, makefile = _make_targets()
  commands = [(n, t) for n, t in readme_commands() if t[0] == 'make']
  assert len(commands) >= 5
  for number, tokens in commands:
    goals = [t for t in tokens[1:] if '=' not in t and not t.startswith('-')]
    variables = [t.split('=')[0] for t in tokens[1:] if '=' in t]
    for goal in goals:
      assert goal in targets, 'README.md:%d: no make target %s' % (number,
                                                                    goal)
    for variable in variables:
      assert re.search(r'\$\(%s\)|^%s\s*[?:]?=' % (variable, variable),
                       makefile, re.M), (number, variable)
    dry = subprocess.run(['make', '-n'] + tokens[1:], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=_fresh_make_env())
    assert dry.returncode == 0, 'README.md:%d: %s\n%s' % (
        number, ' '.join(tokens), dry.stderr)


def test_setup_comes_before_the_first_python_recipe():
  text = _readme()
  first_recipe = min(number for uses in python_commands().values()
                     for number, _ in uses)
  lines = text.split('\n')
  setup = [i for i, line in enumerate(lines, 1)
           if 'make shell' in line or 'source .venv/' in line]
  assert setup and setup[0] < first_recipe, (
      'the README must show how to enter the environment (make shell / '
      'source .venv/...) before its first python recipe (line %d)' %
      first_recipe)


@pytest.mark.slow
def test_readme_model_analysis_command_runs():
  command = next(t for _, t in readme_commands()
                 if t[:3] == ['python', '-m', 'nets.model_analysis'])
  # Optional arguments are shown in [brackets]: run without them.
  args = [t for t in command[3:] if not t.startswith('[')]
  # In this process: the module's own flag parser and what its main runs
  # (its __main__ is run by test_every_readme_flag_is_defined_by_its_script).
  from nets import model_analysis  # pylint: disable=g-import-not-at-top
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    assert model_analysis.run_from_flags(model_analysis.parse_flags(args)) == 0
  # The README's table gives 568.7 M MACs for mobilenet_v1 at 224.
  assert '(568.7 M)' in printed.getvalue()
  assert '| mobilenet_v1 | 224 | 568.7 M |' in _readme()


def test_readme_make_help_runs():
  result = subprocess.run(['make', '--no-print-directory', 'help'], cwd=REPO,
                          stdout=subprocess.PIPE, universal_newlines=True)
  assert result.returncode == 0
  for words in ('make shell', 'FRESH=1', 'distclean', 'TF1_BUILD=onednn'):
    assert words in result.stdout
