"""The commands of README.md and docs/*.md, checked mechanically.

Every `python ...`, `bash scripts/...`, `scripts/...` and `make ...` command
in those pages (fenced bash/sh blocks and inline code) must name a script
or make target that exists, and each --flag must be one that script
defines; a cheap few are run. The README must show how to enter the
environment before its first `python` recipe, and link every docs page;
relative links in every page must point to files and headings that
exist.
"""


import collections
import concurrent.futures
import contextlib
import glob
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
# Every page whose commands are checked, relative to REPO.
PAGES = ['README.md'] + sorted(
    os.path.relpath(path, REPO)
    for path in glob.glob(os.path.join(REPO, 'docs', '*.md')))

# Flags every absl program accepts.
ABSL_FLAGS = {
    'help', 'helpshort', 'helpfull', 'helpxml', 'flagfile', 'undefok',
    'verbosity', 'v', 'logtostderr', 'alsologtostderr', 'log_dir',
    'stderrthreshold', 'showprefixforinfo', 'only_check_args', 'pdb',
    'pdb_post_mortem', 'run_with_pdb', 'run_with_profiling', 'profile_file',
    'use_cprofile_for_profiling', 'logger_levels'}
_FENCE = re.compile(r'^\s*```(\w*)\s*$')  # indented in lists too
_HELP_LINE = re.compile(r'^  --(?:\[no\])?([A-Za-z0-9_]+):')
_ARGPARSE_HELP_LINE = re.compile(r'^  --([A-Za-z0-9_]+)')


def _read(page):
  with open(os.path.join(REPO, page)) as f:
    return f.read()


def _readme():
  return _read('README.md')


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


_HEREDOC = re.compile(r'<<-?\s*[\'"]?(\w+)[\'"]?')
# Tokens that end a command: pipes, lists, redirections, prose in brackets.
_COMMAND_END = re.compile(r'^(\||\|\||&&|;|&|\d*[<>].*|\(.*)$')


def readme_commands(text=None):
  """(line number, tokens) of each shell command of a page (the README)."""
  text = _readme() if text is None else text
  commands = []
  in_shell, in_fence, block, start, heredoc = False, False, [], 0, None
  for number, line in enumerate(text.split('\n'), 1):
    fence = _FENCE.match(line)
    if fence and not in_fence:
      in_fence, in_shell = True, fence.group(1) in ('bash', 'sh', 'shell')
      block, start, heredoc = [], number + 1, None
      continue
    if fence and in_fence:
      if in_shell:
        for logical in _logical_lines('\n'.join(block)):
          commands.append((start, shlex.split(logical, comments=True)))
      in_fence = False
      continue
    if in_fence:
      if heredoc is not None:  # a here-document's body is not shell
        heredoc = None if line.strip() == heredoc else heredoc
        continue
      match = _HEREDOC.search(line)
      if match:
        heredoc = match.group(1)
      block.append(line)
      continue
    for span in re.findall(r'`([^`]+)`', line):
      if re.match(r'([A-Z_][A-Z0-9_]*=\S*\s+)*'
                  r'((\.venv/tf[\w-]*/bin/)?python|make|bash scripts/|scripts/)'
                  r'\S*\s', span + ' '):
        try:
          commands.append((number, shlex.split(span)))
        except ValueError:
          pass
  commands = [(n, _strip_env(tokens)) for n, tokens in commands]
  return [(n, tokens) for n, tokens in commands if tokens]


def _strip_env(tokens):
  """Drops leading VAR=value assignments and what follows the command."""
  i = 0
  while i < len(tokens) and re.match(r'^[A-Z_][A-Z0-9_]*=', tokens[i]):
    i += 1
  tokens = tokens[i:]
  for j, token in enumerate(tokens):
    if j and _COMMAND_END.match(token):
      return tokens[:j]
  return tokens


def _flag_names(tokens):
  names = []
  for token in tokens:
    token = token.strip('[]')
    if token.startswith('--') and len(token) > 2:
      names.append(token[2:].split('=')[0])
  return names


_PYTHON = re.compile(r'^(\.venv/tf[\w-]*/bin/)?python3?$')


def _is_project_module(module):
  top = module.split('.')[0]
  return (os.path.isdir(os.path.join(REPO, top)) or
          os.path.exists(os.path.join(REPO, top + '.py')))


def python_commands(text=None):
  """{script or -m module: [(line, flag names)]} of a page (the README).

  `python -c`, `python -` (a script on stdin) and `-m` modules from
  outside the project (`-m venv`, TensorFlow's tools) are not checked.
  """
  found = {}
  for number, tokens in readme_commands(text):
    if (not _PYTHON.match(tokens[0]) or len(tokens) < 2 or
        tokens[1] in ('...', '-', '-c')):  # `python ...` in prose: no command
      continue
    if tokens[1] == '-m':
      if not _is_project_module(tokens[2]):
        continue
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
  """The flags `--helpfull` lists (scripts that define them at import);
  for an argparse script (one run by another Python), what `--help` lists."""
  with open(_target_path(target)) as f:
    uses_argparse = 'argparse.ArgumentParser' in f.read()
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  command = [sys.executable] + target.split() + [
      '--help' if uses_argparse else '--helpfull']
  result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=600)
  names = set()
  for line in result.stdout.split('\n'):
    match = (_ARGPARSE_HELP_LINE if uses_argparse else _HELP_LINE).match(line)
    if match:
      names.add(match.group(1))
  assert names, '%s --helpfull listed no flags:\n%s' % (
      target, result.stdout[-2000:])
  return names


_FLAGS = {}


def script_flags():
  """{target: set of flag names} of every page's scripts, computed once.

  Only scripts that a page gives flags are asked.
  """
  if not _FLAGS:
    targets = set()
    for page in PAGES:
      for target, uses in python_commands(_read(page)).items():
        if any(used for _, used in uses) and os.path.exists(
            _target_path(target)):
          targets.add(target)
    slow = []
    for target in sorted(targets):
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


def test_readme_parser_skips_heredocs_and_what_follows_a_command():
  text = ('```bash\nPYTHONPATH=. python - a <<\'END\'\nprint("it\'s")\n'
          'END\nmake run > run.log 2>&1\nmake run FRESH=1 (deletes out)\n```\n')
  assert readme_commands(text) == [
      (2, ['python', '-', 'a']), (2, ['make', 'run']),
      (2, ['make', 'run', 'FRESH=1'])]
  assert python_commands('`.venv/tf2/bin/python x.py --a=1`\n'
                         '`python -m venv /tmp/v`\n') == {'x.py': [(1, ['a'])]}


@pytest.mark.parametrize('page', PAGES)
def test_every_script_a_page_names_exists(page):
  commands = python_commands(_read(page))
  if page == 'README.md':
    assert 'train_image_classifier.py' in commands
  missing = [t for t in commands if not os.path.exists(_target_path(t))]
  assert not missing, '%s names scripts that do not exist: %s' % (page,
                                                                  missing)
  for number, tokens in readme_commands(_read(page)):
    script = None
    if tokens[0] == 'bash' and len(tokens) > 1:
      script = tokens[1]
    elif tokens[0].startswith('scripts/'):
      script = tokens[0]
    if script:
      assert os.path.exists(os.path.join(REPO, script)), (page, number,
                                                          script)


def unknown_flags(page, known, text=None):
  """'page:line: script --flag' for each flag its script does not define."""
  unknown = []
  text = _read(page) if text is None else text
  for target, uses in sorted(python_commands(text).items()):
    for number, used in uses:
      if not used:
        continue
      names = known[target] | ABSL_FLAGS
      for name in used:
        negated = name[2:] if name.startswith('no') else None
        if name not in names and negated not in names:
          unknown.append('%s:%d: %s --%s' % (page, number, target, name))
  return unknown


@pytest.fixture(scope='module')
def known_flags():
  """script_flags(); module-scoped, so conftest.py runs its users on one
  worker and the scripts are asked once."""
  return script_flags()


@pytest.mark.slow
@pytest.mark.parametrize('page', PAGES)
def test_every_flag_a_page_names_is_defined_by_its_script(page,
                                                          known_flags):
  unknown = unknown_flags(page, known_flags)
  assert not unknown, 'flags the scripts do not define:\n' + '\n'.join(
      unknown)


def test_a_misspelled_flag_is_found():
  text = ('```bash\npython train_image_classifier.py --train_dir=a '
          '--trian_dir=b --notrain_dir [--train_dir=c]\n```\n')
  known = {'train_image_classifier.py': {'train_dir'}}
  assert unknown_flags('x.md', known, text) == [
      'x.md:2: train_image_classifier.py --trian_dir']


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


_DRY_RUNS = {}


@pytest.mark.parametrize('page', PAGES)
def test_every_make_command_a_page_names_exists_and_parses(page):
  targets, makefile = _make_targets()
  launchers = ''.join(_read(path) for path in glob.glob(
      os.path.join(REPO, 'scripts', '*.sh')))
  commands = [(n, t) for n, t in readme_commands(_read(page))
              if t[0] == 'make']
  if page == 'README.md':
    assert len(commands) >= 4
  for number, tokens in commands:
    goals = [t for t in tokens[1:] if '=' not in t and not t.startswith('-')]
    variables = [t.split('=')[0] for t in tokens[1:] if '=' in t]
    for goal in goals:
      assert goal in targets, '%s:%d: no make target %s' % (page, number,
                                                             goal)
    for variable in variables:  # make's own, or a launcher's setting
      assert (re.search(r'\$\(%s\)|^%s\s*[?:]?=' % (variable, variable),
                        makefile, re.M) or
              re.search(r'\$\{?%s\b' % variable, launchers)), (
                  page, number, variable)
    key = tuple(tokens[1:])
    if key not in _DRY_RUNS:  # the same command on several pages: once
      _DRY_RUNS[key] = subprocess.run(
          ['make', '-n'] + tokens[1:], cwd=REPO, stdout=subprocess.PIPE,
          stderr=subprocess.PIPE, universal_newlines=True,
          env=_fresh_make_env())
    dry = _DRY_RUNS[key]
    assert dry.returncode == 0, '%s:%d: %s\n%s' % (
        page, number, ' '.join(tokens), dry.stderr)


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
def test_the_model_analysis_command_runs():
  networks = _read(os.path.join('docs', 'networks.md'))
  command = next(t for _, t in readme_commands(networks)
                 if t[:3] == ['python', '-m', 'nets.model_analysis'])
  # Optional arguments are shown in [brackets]: run without them.
  args = [t for t in command[3:] if not t.startswith('[')]
  # In this process: the flag parser and the run of analyze_model.py, which
  # the module's __main__ hands over to (run as a process by
  # test_every_flag_a_page_names_is_defined_...).
  import analyze_model  # pylint: disable=g-import-not-at-top
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    analyze_model.run(analyze_model.parse_flags(args))
  # The page's table gives 568.7 M MACs for mobilenet_v1 at 224.
  assert '(568.7 M)' in printed.getvalue()
  assert '| mobilenet_v1 | 224 | 568.7 M |' in networks


_LINK = re.compile(r'\]\(([^)\s]+)\)')


def _anchors(path):
  """The heading anchors GitHub gives a Markdown file."""
  anchors, seen, in_fence = set(), collections.Counter(), False
  with open(path) as f:
    for line in f:
      if _FENCE.match(line):
        in_fence = not in_fence
      heading = None if in_fence else re.match(r'^#+\s+(.*?)\s*$', line)
      if heading:
        slug = re.sub(r'[^\w\- ]', '', heading.group(1).lower()).replace(
            ' ', '-')
        anchors.add('%s-%d' % (slug, seen[slug]) if seen[slug] else slug)
        seen[slug] += 1
  return anchors


def test_the_readme_links_every_docs_page():
  readme = _readme()
  missing = [page for page in PAGES[1:] if '(%s)' % page not in readme]
  assert not missing, 'README.md does not link %s' % missing


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_point_to_files_and_headings_that_exist(page):
  broken = []
  for number, line in enumerate(_read(page).split('\n'), 1):
    for link in _LINK.findall(line):
      if re.match(r'^[a-z]+:', link):
        continue  # a URL
      target, _, anchor = link.partition('#')
      path = os.path.normpath(os.path.join(REPO, os.path.dirname(page),
                                           target or os.path.basename(page)))
      if not os.path.exists(path) or (
          anchor and path.endswith('.md') and anchor not in _anchors(path)):
        broken.append('%s:%d: %s' % (page, number, link))
  assert not broken, 'links to files or headings that do not exist:\n' + (
      '\n'.join(broken))


def test_readme_make_help_runs():
  result = subprocess.run(['make', '--no-print-directory', 'help'], cwd=REPO,
                          stdout=subprocess.PIPE, universal_newlines=True)
  assert result.returncode == 0
  for words in ('make shell', 'FRESH=1', 'distclean', 'TF1_BUILD=onednn'):
    assert words in result.stdout
