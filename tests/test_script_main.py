"""common_flags.script_main: the one main() of the export-style scripts."""

import os
import subprocess
import sys

from absl import app
from absl import flags
import pytest

from cli import common_flags
from core import errors

PROGRAM = 'some_script.py'


@pytest.fixture(autouse=True)
def parsed_flags():
  # As after app.run: main() reads --verbosity.
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def test_runs_the_library_call_with_the_flags():
  calls = []
  main = common_flags.script_main(PROGRAM, lambda flag_values: calls.append(
      flag_values) or 'a result')
  # None, whatever run returns: app.run exits with main's return value.
  assert main(['some_script.py']) is None
  assert main(None) is None  # as slim's tests call it
  assert len(calls) == 2


def test_positional_arguments_go_to_run_only_when_it_takes_them():
  main = common_flags.script_main(PROGRAM, lambda flag_values: None)
  with pytest.raises(app.UsageError, match='Unexpected arguments: stray'):
    main(['some_script.py', 'stray'])
  seen = []
  main = common_flags.script_main(
      PROGRAM, lambda flag_values, arguments: seen.append(arguments),
      takes_arguments=True)
  main(['some_script.py', 'a.jpg', 'b.jpg'])
  assert seen == [['a.jpg', 'b.jpg']]


def test_bad_input_is_one_paragraph_naming_the_flag(capsys):
  def run(flag_values):
    del flag_values
    raise errors.InputError('%s must be positive.' %
                            errors.ref('image_size'))

  main = common_flags.script_main(PROGRAM, run,
                                  flag_names={'image_size': 'output_size'})
  with pytest.raises(SystemExit) as exit_info:
    main(['some_script.py'])
  assert exit_info.value.code == 1
  printed = capsys.readouterr().err
  assert printed.strip().startswith(PROGRAM + ': error: ')
  assert '--output_size must be positive.' in printed
  assert 'Traceback' not in printed


def test_a_script_that_succeeds_exits_with_status_zero(tmp_path, repo_root,
                                                       script_env):
  # app.run exits with main's return value: a result returned by mistake
  # turns success into status 1.
  output = str(tmp_path / 'graph.pb')
  result = subprocess.run(
      [sys.executable, 'export_inference_graph.py',
       '--model_name=mobilenet_v1_025', '--image_size=32',
       '--output_file=' + output], cwd=repo_root, env=script_env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  assert result.returncode == 0, result.stderr
  assert os.path.getsize(output) > 0
