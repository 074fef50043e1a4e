"""docs/export.md's commands name existing scripts and their own flags."""

import os

import pytest

from tests import test_readme_commands as readme

DOC = os.path.join(readme.REPO, 'docs', 'export.md')


def _doc_python_commands():
  with open(DOC) as f:
    commands = readme.readme_commands(f.read())
  found = []
  for number, tokens in commands:
    if tokens[0] not in ('python', 'python3'):
      continue
    if tokens[1] == '-m':
      target, rest = '-m ' + tokens[2], tokens[3:]
    else:
      target, rest = tokens[1], tokens[2:]
    found.append((number, target, readme._flag_names(rest)))
  return found


@pytest.mark.slow
def test_every_doc_command_uses_an_existing_script_and_its_flags():
  commands = _doc_python_commands()
  scripts = {target for _, target, _ in commands}
  assert {'export_model.py', 'export_onnx.py', 'export_saved_model.py',
          'classify_image.py'} <= scripts
  unknown = []
  for number, target, used in commands:
    if target.startswith('-m tensorflow'):
      continue  # TensorFlow's own tools (saved_model_cli)
    assert os.path.exists(readme._target_path(target)), (number, target)
    names = readme._flags_in_process(target) | readme.ABSL_FLAGS
    unknown += ['docs/export.md:%d: %s --%s' % (number, target, name)
                for name in used if name not in names]
  assert not unknown, '\n'.join(unknown)
