"""Every hint `make run` prints is a command that does what it says when
pasted: the start-over hint deletes exactly the OUT it names and redoes the
same run.

Runs the real Makefile and scripts/main_job.sh in a scratch copy whose
environment's `python` only records how it was called, so no training
happens and the user's outputs are never at risk.
"""

import os
import re
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_SCRIPTS = ('download_and_convert_data.py', 'train_image_classifier.py',
                 'eval_image_classifier.py', 'export_inference_graph.py',
                 'freeze_graph.py', 'export_tflite.py', 'classify_image.py',
                 'plot_training.py')
# The environment's python: appends its arguments to calls.log.
RECORDER = u'#!/bin/bash\necho "$*" >> "$CALLS_LOG"\n'
_START_OVER = re.compile(r'To start over: (.*) \(deletes (.*)\)$', re.M)
# Variables of the calling make or job that must not leak into the copy.
_JOB_VARIABLES = ('OUT', 'DEFAULT_OUT', 'FRESH', 'MAKE_RUN', 'PYTHON', 'TF',
                  'MAX_STEPS', 'MAKEFLAGS', 'MAKELEVEL', 'MFLAGS',
                  'VIRTUAL_ENV', 'TF1_BUILD')


def _scratch_repo(tmp_path):
  root = tmp_path / 'repo'
  (root / 'scripts').mkdir(parents=True)
  for name in ('Makefile', 'requirements.txt', 'requirements-tf2.txt',
               'requirements-test.txt'):
    shutil.copy(os.path.join(REPO, name), str(root / name))
  for name in os.listdir(os.path.join(REPO, 'scripts')):
    shutil.copy(os.path.join(REPO, 'scripts', name), str(root / 'scripts'))
  for name in ENTRY_SCRIPTS:
    (root / name).write_text(u'')
  python = root / '.venv' / 'tf1' / 'bin' / 'python'
  python.parent.mkdir(parents=True)
  python.write_text(RECORDER)
  python.chmod(0o755)
  (root / '.venv' / 'tf1' / '.installed').write_text(u'')  # newest file
  return root


def _finished_run(root, out, step):
  train = root / out / 'train'
  train.mkdir(parents=True)
  (train / 'checkpoint').write_text(
      u'model_checkpoint_path: "model.ckpt-%d"\n' % step)


def _shell(command, root):
  env = {k: v for k, v in os.environ.items() if k not in _JOB_VARIABLES}
  env['CALLS_LOG'] = str(root / 'calls.log')
  if (root / 'calls.log').exists():
    (root / 'calls.log').unlink()
  result = subprocess.run(['bash', '-c', command], cwd=str(root), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)
  assert result.returncode == 0, (command, result.stdout)
  return result.stdout


def _trainer_call(root):
  with open(str(root / 'calls.log')) as f:
    calls = [l for l in f if 'train_image_classifier.py' in l]
  assert len(calls) == 1, calls
  return calls[0]


def _start_over_hint(output):
  match = _START_OVER.search(output)
  assert match, output
  return match.group(1), match.group(2)


def test_make_run_start_over_hint_deletes_the_out_it_names(tmp_path):
  root = _scratch_repo(tmp_path)
  _finished_run(root, 'out/tf1', 1500)  # the user's finished default run
  _finished_run(root, 'out/ctrlc', 7)
  output = _shell('make run OUT=out/ctrlc MAX_STEPS=7', root)
  hint, deleted = _start_over_hint(output)
  assert 'nothing left to train' in output
  assert deleted == 'out/ctrlc'
  assert hint == 'make run FRESH=1 OUT=out/ctrlc MAX_STEPS=7', hint
  pasted = _shell(hint, root)
  assert 'FRESH=1: deleting out/ctrlc ' in pasted
  assert not (root / 'out/ctrlc/train/checkpoint').exists()
  assert (root / 'out/tf1/train/checkpoint').exists()
  # The same run again, from the start.
  call = _trainer_call(root)
  assert '--train_dir=out/ctrlc/train' in call
  assert '--max_number_of_steps=7 ' in call


def test_the_default_out_is_not_repeated_and_is_the_one_deleted(tmp_path):
  root = _scratch_repo(tmp_path)
  _finished_run(root, 'out/tf1', 1500)
  _finished_run(root, 'out/other', 1500)
  hint, deleted = _start_over_hint(_shell('make run', root))
  assert (hint, deleted) == ('make run FRESH=1', 'out/tf1')
  _shell(hint, root)
  assert not (root / 'out/tf1/train/checkpoint').exists()
  assert (root / 'out/other/train/checkpoint').exists()


def test_the_bash_form_hint_repeats_its_settings(tmp_path):
  root = _scratch_repo(tmp_path)
  _finished_run(root, 'runs/a b', 20)
  _finished_run(root, 'out', 1500)
  output = _shell("PYTHON=.venv/tf1/bin/python OUT='runs/a b' MAX_STEPS=20 "
                  'BATCH_SIZE=4 bash scripts/main_job.sh', root)
  hint, deleted = _start_over_hint(output)
  assert deleted == 'runs/a b'
  pasted = _shell(hint, root)
  assert 'FRESH=1: deleting runs/a b ' in pasted
  assert not (root / 'runs/a b/train').exists()
  assert (root / 'out/train/checkpoint').exists()
  call = _trainer_call(root)
  assert '--batch_size=4 ' in call and '--max_number_of_steps=20 ' in call


def test_summaries_give_about_30_points_for_any_run_length(tmp_path):
  root = _scratch_repo(tmp_path)
  for steps, every in ((1500, 50), (300, 10), (20, 2)):
    _shell('make run FRESH=1 MAX_STEPS=%d' % steps, root)
    assert '--save_summaries_steps=%d' % every in _trainer_call(root)
  assert 1500 // 50 >= 20  # the default make run: at least 20 points


def test_output_for_a_log_file_has_no_terminal_codes(tmp_path):
  root = _scratch_repo(tmp_path)
  output = _shell('make run > run.log 2>&1; cat run.log', root)
  assert '>>> Done.' in output
  assert '\x1b[' not in output
