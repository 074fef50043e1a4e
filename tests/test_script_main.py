"""common_flags.script_main: the one main() of every entry script."""

import ast
import logging
import os
import signal
import subprocess
import sys

from absl import app
from absl import flags
import pytest

from cli import common_flags
from cli import script_utils
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


class _FakeStopSignals(object):
  """Stands in for preemption.StopSignals: records when it is entered."""

  def __init__(self, events, signum):
    self.events = events
    self.signum = None
    self._signum_on_exit = signum

  def __enter__(self):
    self.events.append('handlers installed')
    return self

  def __exit__(self, *unused_exc_info):
    self.signum = self._signum_on_exit
    self.events.append('handlers removed')


def _stoppable_main(events, signum, grace_error=None):
  def signals(flag_values):
    del flag_values
    if grace_error:
      raise errors.InputError(grace_error)
    return _FakeStopSignals(events, signum)

  def run(flag_values, stop_signals):
    del flag_values
    events.append('run with %s' % type(stop_signals).__name__)
    return 'its result'

  return common_flags.script_main(
      PROGRAM, run, stop_handling=script_utils.StopHandling(
          signals=signals,
          stopped_line=lambda stop, result: 'stopped: %s' % result))


def test_stop_handlers_are_installed_before_the_run():
  events = []
  assert _stoppable_main(events, None)(['some_script.py']) is None
  assert events == ['handlers installed', 'run with _FakeStopSignals',
                    'handlers removed']


def test_a_stopped_run_logs_its_line_and_exits_128_plus_the_signal(caplog):
  events = []
  with caplog.at_level(logging.INFO):
    with pytest.raises(SystemExit) as exit_info:
      _stoppable_main(events, signal.SIGTERM)(['some_script.py'])
  assert exit_info.value.code == 143
  assert 'stopped: its result' in caplog.text


def test_a_bad_stop_setting_is_one_paragraph_before_any_run(capsys):
  events = []
  main = _stoppable_main(events, None, '%s must be >= 0.' %
                         errors.ref('preemption_grace_secs'))
  with pytest.raises(SystemExit) as exit_info:
    main(['some_script.py'])
  assert exit_info.value.code == 1
  assert events == []
  assert '--preemption_grace_secs must be >= 0.' in capsys.readouterr().err


# Library modules with a `python -m` entry whose `__main__` block runs an
# entry script's main (nets/ may not import cli/ where importers see it).
_HANDS_OVER = {'nets/model_analysis.py': 'analyze_model.py'}


def _entry_scripts(repo_root):
  for folder in ('', 'nets'):
    for name in sorted(os.listdir(os.path.join(repo_root, folder or '.'))):
      relative = os.path.join(folder, name) if folder else name
      if not name.endswith('.py') or relative in _HANDS_OVER:
        continue
      with open(os.path.join(repo_root, relative)) as f:
        source = f.read()
      if "if __name__ == '__main__':" in source:
        yield relative, source


def _main_from_the_skeleton(source):
  """Whether the module's `main` is `common_flags.script_main(...)`."""
  tree = ast.parse(source)
  defines_main = any(isinstance(node, ast.FunctionDef) and node.name == 'main'
                     for node in tree.body)
  for node in tree.body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
        and getattr(node.targets[0], 'id', None) == 'main'
        and isinstance(node.value, ast.Call)):
      function = node.value.func
      if (getattr(function, 'attr', None) == 'script_main'
          and getattr(function.value, 'id', None) == 'common_flags'):
        return not defines_main
  return False


def test_every_entry_script_takes_its_main_from_the_skeleton(repo_root):
  scripts = dict(_entry_scripts(repo_root))
  assert {'train_image_classifier.py', 'eval_image_classifier.py',
          'classify_image.py', 'download_and_convert_data.py',
          'export_tflite.py', 'nets/mobilenet_v1_train.py'} <= set(scripts)
  own = [name for name, source in scripts.items()
         if not _main_from_the_skeleton(source)]
  assert not own, 'scripts with their own main(): %s' % own
  for module, script in _HANDS_OVER.items():
    with open(os.path.join(repo_root, module)) as f:
      main_block = f.read().partition("if __name__ == '__main__':")[2]
    assert 'app.run(%s.main)' % script[:-len('.py')] in main_block, module
    assert script in scripts


def test_the_skeleton_check_sees_a_hand_written_main():
  assert _main_from_the_skeleton(
      'main = common_flags.script_main(PROGRAM, run)\n')
  assert not _main_from_the_skeleton('def main(argv):\n  run(FLAGS)\n')
