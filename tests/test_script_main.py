"""common_flags.script_main: the one main() of the export-style scripts."""

from absl import app
from absl import flags
import pytest

import common_flags
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
      flag_values) or 'done')
  assert main(['some_script.py']) == 'done'
  assert main(None) == 'done'  # as slim's tests call it
  assert len(calls) == 2


def test_positional_arguments_go_to_run_only_when_it_takes_them():
  main = common_flags.script_main(PROGRAM, lambda flag_values: None)
  with pytest.raises(app.UsageError, match='Unexpected arguments: stray'):
    main(['some_script.py', 'stray'])
  main = common_flags.script_main(
      PROGRAM, lambda flag_values, arguments: arguments,
      takes_arguments=True)
  assert main(['some_script.py', 'a.jpg', 'b.jpg']) == ['a.jpg', 'b.jpg']


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
