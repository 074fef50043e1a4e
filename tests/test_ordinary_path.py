"""The entry scripts as a user runs them: relative paths from the repository
root, the same command twice, a failed start corrected, and a run from
another working directory."""

import os
import re
import shlex
import stat
import subprocess
import sys

import pytest

from tests.train_dir_helpers import relative_to_repo
from tests.train_dir_helpers import run_python
from tests.train_dir_helpers import subprocess_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FLAGS = ['--dataset_name=shapes', '--model_name=mobilenet_v1_025',
               '--train_image_size=32', '--batch_size=4',
               '--batch_norm_decay=auto', '--save_summaries_secs=0',
               '--num_readers=1', '--num_preprocessing_threads=1']


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  """The shapes set, generated twice by the same relative command."""
  dataset_dir = relative_to_repo(tmp_path_factory.mktemp('ordinary') / 'shapes')
  command = ['download_and_convert_data.py', '--dataset_name=shapes',
             '--dataset_dir=' + dataset_dir, '--shapes_train_per_class=4',
             '--shapes_validation_per_class=2']
  for run in range(2):
    status, output = run_python(command)
    assert status == 0, output
  assert 'already converted' in output
  return dataset_dir


@pytest.mark.slow
def test_a_failed_start_leaves_no_trace_and_training_resumes_twice(
    shapes_dir, tmp_path):
  train_dir = relative_to_repo(tmp_path / 'out' / 'train')
  base = TRAIN_FLAGS + ['--dataset_dir=' + shapes_dir,
                        '--train_dir=' + train_dir]
  misspelled = [a.replace('mobilenet_v1_025', 'mobilenet_v1_25')
                for a in base]
  status, output = run_python(['train_image_classifier.py'] + misspelled +
                        ['--max_number_of_steps=3'])
  assert status == 1 and 'mobilenet_v1_025' in output, output
  # The real error alone: no batch-norm advice for a network not built.
  assert 'batch-norm' not in output, output
  assert not os.path.exists(os.path.join(REPO, train_dir, '..'))
  # A fine-tuning checkpoint that is not there fails after the directory
  # was taken: what was written there goes again.
  status, output = run_python(['train_image_classifier.py'] + base + [
      '--max_number_of_steps=3', '--checkpoint_path=no/such.ckpt'])
  assert status == 1 and 'no/such.ckpt' in output, output
  assert not os.path.exists(os.path.join(REPO, train_dir, '..'))
  outputs = []
  for steps in (3, 3, 4):
    status, output = run_python(['train_image_classifier.py'] + base +
                          ['--max_number_of_steps=%d' % steps])
    assert status == 0, output
    assert 'other settings than recorded' not in output, output
    outputs.append(output)
  assert 'model.ckpt-3 is already at global step 3' in outputs[1]
  assert 'Resuming from %s/model.ckpt-3' % train_dir in outputs[2]
  assert os.path.exists(os.path.join(REPO, train_dir, 'model.ckpt-4.index'))
  record = os.path.join(REPO, train_dir, 'training_record.json')
  assert stat.S_IMODE(os.stat(record).st_mode) == 0o666 & ~_umask()
  eval_dir = relative_to_repo(tmp_path / 'out' / 'eval')
  for run in range(2):
    status, output = run_python([
        'eval_image_classifier.py', '--checkpoint_path=' + train_dir,
        '--eval_dir=' + eval_dir, '--dataset_name=shapes',
        '--dataset_split_name=validation', '--dataset_dir=' + shapes_dir,
        '--model_name=mobilenet_v1_025', '--eval_image_size=32'])
    assert status == 0 and 'Accuracy = ' in output, output
    assert '%s/model.ckpt-4' % train_dir in output, output


def _umask():
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


@pytest.mark.slow
def test_training_resumes_when_started_from_another_directory(
    shapes_dir, tmp_path):
  """The script by its full path, the paths relative to where it runs."""
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  dataset_dir = os.path.relpath(os.path.join(REPO, shapes_dir),
                                str(elsewhere))
  script = os.path.join(REPO, 'train_image_classifier.py')
  for steps in (2, 3):
    status, output = run_python([script] + TRAIN_FLAGS + [
        '--dataset_dir=' + dataset_dir, '--train_dir=train',
        '--max_number_of_steps=%d' % steps], cwd=str(elsewhere))
    assert status == 0, output
  assert 'Resuming from train/model.ckpt-2' in output, output
  assert (elsewhere / 'train' / 'model.ckpt-3.index').exists()


def _make_run_environment():
  """make's variables for the stack running this test, or a skip reason.

  The running interpreter's environment is passed as VENV, so that make
  runs exactly it; a stale stamp would make `make` rebuild it, so the test
  skips instead.
  """
  from core import tf_compat  # pylint: disable=g-import-not-at-top
  venv = os.path.dirname(os.path.dirname(sys.executable))
  args = ['TF=%d' % (2 if tf_compat.IS_TF2 else 1), 'VENV=' + venv]
  if not os.path.exists(os.path.join(venv, '.installed')):
    return None, 'no make-built environment (%s/.installed)' % venv
  stamp = os.path.join(venv, '.installed')
  if subprocess.run(['make', '-q'] + args + [stamp], cwd=REPO).returncode:
    return None, 'make would rebuild %s first' % venv
  return args, None


@pytest.mark.slow
def test_make_run_twice_from_the_repository_root(tmp_path):
  args, reason = _make_run_environment()
  if reason:
    pytest.skip(reason)
  out = relative_to_repo(tmp_path / 'out')
  command = ['make', 'run'] + args + [
      'OUT=' + out, 'MAX_STEPS=6', 'BATCH_SIZE=4', 'IMAGE_SIZE=32',
      'LOG_EVERY_N_STEPS=3', 'SHAPES_TRAIN_PER_CLASS=4',
      'SHAPES_VALIDATION_PER_CLASS=2']
  env = {k: v for k, v in subprocess_env().items()
         if k not in ('MAKEFLAGS', 'MAKELEVEL', 'MFLAGS', 'FRESH')}
  outputs = []
  for run in range(2):
    result = subprocess.run(command, cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-5000:]
    assert 'Accuracy = ' in result.stdout, result.stdout
    outputs.append(result.stdout)
  assert 'nothing left to train' in outputs[1], outputs[1]
  # Progress lines as plain text, without absl's prefix.
  assert re.search(r'^task 0 step 6/6, loss = ', outputs[0], re.M), (
      outputs[0])
  assert '%s/train/model.ckpt-6 is already at global step 6' % out in (
      outputs[1])
  for output in outputs:
    # A summary every 2 steps of 6, and the evaluated step's accuracy.
    assert re.search(r'Wrote %s/training_curves.png: loss at [3-9] points '
                     r'up to step \d .*; accuracy [\d.]+ %% at step 6\.' %
                     re.escape(out), output), output
  assert '%s/export/model.tflite (float32, not quantized, ' % out in output
  assert 'XNNPACK' not in output  # TF 2.x's interpreter notice
  # The exported model carries its class names.
  with open(os.path.join(REPO, out, 'export', 'labels.txt')) as f:
    assert '2:triangle' in f.read()
  with open(os.path.join(REPO, out, 'training_curves.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  # The TensorBoard hint, pasted: --inspect lists what the UI would show.
  hint = re.search(r'TensorBoard: (.*)   then open', outputs[1]).group(1)
  inspect = subprocess.run(hint + ' --inspect', shell=True, cwd=REPO,
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=300)
  assert inspect.returncode == 0, inspect.stdout
  assert 'Losses/total_loss' in inspect.stdout, inspect.stdout


@pytest.mark.parametrize('script', [
    'train_image_classifier.py',
    pytest.param('classify_image.py', marks=pytest.mark.slow),
    pytest.param('plot_training.py', marks=pytest.mark.slow)])
def test_asking_for_help_succeeds(script):
  for flag in ('--helpshort', '--helpfull'):
    status, output = run_python([script, flag])
    assert status == 0, output
    assert 'Try --helpfull' in output or '--verbosity' in output, output
  status, output = run_python([script, '--no_such_flag'])
  assert status == 1, output


GUIDE = os.path.join(REPO, 'docs', 'getting_started.md')
# What makes the guide's own training recipe fit a test: tiny images, data
# and step counts; everything else runs as written.
_GUIDE_SHRINK = (('download_and_convert_data.py --dataset_name=shapes',
                  'download_and_convert_data.py --dataset_name=shapes '
                  '--shapes_image_size=32 --shapes_train_per_class=4 '
                  '--shapes_validation_per_class=2'),
                 ('--train_image_size=64', '--train_image_size=32'),
                 ('--batch_size=64', '--batch_size=4'),
                 ('--max_number_of_steps=1500', '--max_number_of_steps=4'),
                 ('--save_summaries_steps=50', '--save_summaries_steps=2'))


def _guide_section_commands(title):
  """The logical command lines of the bash blocks under a `## title`."""
  with open(GUIDE) as f:
    text = f.read()
  section = text.split('## ' + title, 1)[1].split('\n## ', 1)[0]
  commands = []
  for block in re.findall(r'```bash\n(.*?)```', section, re.S):
    commands.extend(l for l in block.replace('\\\n', ' ').split('\n')
                    if l.strip())
  return commands


@pytest.mark.slow
def test_the_guides_training_and_export_recipes_run_as_written(tmp_path):
  """docs/getting_started.md, sections 4 and 5, with `out/mine` moved to a
  relative scratch folder and the sizes shrunk."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  mine = relative_to_repo(tmp_path / 'mine')
  image = relative_to_repo(tmp_path / 'image.png')
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(str(tmp_path /
                                                             'image.png'))
  commands = (_guide_section_commands('4. Training your own run') +
              _guide_section_commands('5. Exporting and classifying'))
  assert len(commands) == 7, commands
  outputs = []
  for command in commands:
    for old, new in _GUIDE_SHRINK:
      command = command.replace(old, new)
    command = command.replace('out/mine', mine).replace(
        'out/tf1/export/triangle.png', image)
    assert command.startswith('python '), command
    status, output = run_python(shlex.split(command)[1:])
    assert status == 0, (command, output)
    outputs.append(output)
  assert 'Accuracy = ' in outputs[2]
  assert 'training_curves.png: loss at' in outputs[3]
  assert '(float32, not quantized, ' in outputs[5]
  # Class names found beside the model alone.
  assert re.search(r'^\s+1\. [\d.]+\s+\d\s+\w+$', outputs[6], re.M), outputs[6]
