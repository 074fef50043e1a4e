"""The project's modules import each other without cycles, and the lower
packages (core, networks, datasets, preprocessing) import only the layers
below them, never training, export, weights, benchmarks or the scripts.

Imports are read from the source (function-local ones included), so the
check needs no TensorFlow.
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED_DIRS = {'.venv', '.git', 'out', 'tests', 'results', '__pycache__'}
# What each lower package may import (itself included): core <- nets <- data.
ALLOWED_IMPORTS = {
    'core': {'core'},
    'nets': {'core', 'nets'},
    'datasets': {'core', 'nets', 'datasets', 'preprocessing'},
    'preprocessing': {'core', 'nets', 'preprocessing'},
}
# Slim ships these three scripts inside nets/; they are entry scripts that
# drive the root scripts, not network code.
SLIM_SCRIPTS_IN_NETS = {'nets.mobilenet_v1_train', 'nets.mobilenet_v1_eval',
                        'nets.post_training_quantization'}


def _project_modules():
  """Dotted module name -> file path, for every project .py file."""
  modules = {}
  for root, dirs, files in os.walk(REPO):
    dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and
               not d.startswith('.')]
    for name in files:
      if name.endswith('.py'):
        relative = os.path.relpath(os.path.join(root, name), REPO)[:-3]
        dotted = relative.replace(os.sep, '.')
        if dotted.endswith('.__init__'):
          dotted = dotted[:-len('.__init__')]
        modules[dotted] = os.path.join(root, name)
  return modules


def _is_main_guard(node):
  """Whether `node` is `if __name__ == '__main__':`."""
  test = getattr(node, 'test', None)
  return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and
          getattr(test.left, 'id', None) == '__name__' and
          [getattr(c, 'value', getattr(c, 's', None))
           for c in test.comparators] == ['__main__'])


def _walk_importable(tree):
  """The nodes of a module, less its top-level `__main__` block.

  That block runs only when the module is the program (`python -m`), never
  for a module importing it, so what it imports is no dependency of the
  module's importers.
  """
  for node in tree.body:
    if not _is_main_guard(node):
      yield from ast.walk(node)


def _imported_names(path, module):
  """Dotted names `module` imports (both `import a.b` and `from a import b`)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  package = module if path.endswith('__init__.py') else module.rpartition(
      '.')[0]
  names = set()
  for node in _walk_importable(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(p for p in parts + [base] if p)
      # `from pkg import name`: the module pkg.name when there is one, else
      # pkg (import_graph strips names down to the module that defines them).
      names.update(base + '.' + alias.name for alias in node.names)
  return names


def import_graph():
  """Project module -> the project modules it imports."""
  modules = _project_modules()
  graph = {}
  for module, path in modules.items():
    targets = set()
    for name in _imported_names(path, module):
      # `from nets import mobilenet_v1` names the module nets.mobilenet_v1;
      # `from nets.x import f` names nets.x.f, whose module is nets.x.
      while name and name not in modules:
        name = name.rpartition('.')[0]
      if name and name != module:
        targets.add(name)
    graph[module] = targets
  return graph


def _cycles(graph):
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for target in sorted(graph[node]):
      if target not in index:
        visit(target)
        low[node] = min(low[node], low[target])
      elif target in on_stack:
        low[node] = min(low[node], index[target])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return found


def test_reader_sees_local_and_relative_imports():
  graph = import_graph()
  # nets.model_analysis hands `python -m` over to a script in its
  # `__main__` block only; function-local imports still count.
  assert 'analyze_model' not in graph['nets.model_analysis']
  assert 'cli.common_flags' in graph['analyze_model']
  main_block = ast.parse("import a\nif __name__ == '__main__':\n  import b\n"
                         "def f():\n  import c\n")
  assert [n.names[0].name for n in _walk_importable(main_block)
          if isinstance(n, ast.Import)] == ['a', 'c']
  assert 'benchmarks.workloads' in graph['benchmarks.tasks']
  assert 'nets.mobilenet.mobilenet' in graph['nets.mobilenet.mobilenet_v2']
  assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [
      ['a', 'b', 'c']]


def test_no_import_cycles():
  assert _cycles(import_graph()) == []


@pytest.mark.parametrize('package', sorted(ALLOWED_IMPORTS))
def test_lower_packages_import_only_below_them(package):
  graph = import_graph()
  allowed = ALLOWED_IMPORTS[package]
  upward = sorted(
      '%s -> %s' % (module, target)
      for module, targets in graph.items()
      if module.split('.')[0] == package and module not in SLIM_SCRIPTS_IN_NETS
      for target in targets if target.split('.')[0] not in allowed)
  assert upward == []


# The packages of library code: they take plain arguments and configs, so none
# of them may import the command-line layer.
LIBRARY_PACKAGES = ('core', 'nets', 'datasets', 'preprocessing', 'deployment',
                    'training', 'export', 'weights')


def test_only_scripts_import_the_command_line_layer():
  graph = import_graph()
  into_cli = sorted(
      '%s -> %s' % (module, target)
      for module, targets in graph.items()
      if module.split('.')[0] in LIBRARY_PACKAGES and
      module not in SLIM_SCRIPTS_IN_NETS
      for target in targets if target.split('.')[0] == 'cli')
  assert into_cli == []
