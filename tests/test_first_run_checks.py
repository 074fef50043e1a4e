"""The first run's checks: the training record, the batch-norm pitfall,
quiet logs, the launchers' choice of Python, and the make targets."""


import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from training import batch_norm_check as bn
from cli import logs
from training import run_record
from cli import script_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------- run record


def _record(**changes):
  values = dict(model_name='mobilenet_v1_025', image_size=64,
                preprocessing_name='cifarnet', dataset_name='shapes',
                num_classes=6, labels_offset=0, batch_norm_decay=0.99,
                moving_average_decay=None)
  values.update(changes)
  return run_record.make_record(**values)


def test_record_round_trip_and_lookup(tmp_path):
  train_dir = str(tmp_path / 'train')
  record = _record()
  path = run_record.write_record(train_dir, record)
  assert os.path.basename(path) == run_record.RECORD_FILENAME
  assert os.listdir(train_dir) == [run_record.RECORD_FILENAME]  # no temp
  assert json.load(open(path))['image_size'] == 64
  prefix = os.path.join(train_dir, 'model.ckpt-50')
  for model_path in (train_dir, prefix, prefix + '.index', path):
    assert run_record.find_record(model_path) == path, model_path
  assert run_record.read_record(path) == record
  assert run_record.find_record(str(tmp_path)) is None
  assert run_record.find_record('') is None


def test_copy_record_beside_an_exported_model(tmp_path):
  train_dir, export_dir = str(tmp_path / 'train'), str(tmp_path / 'export')
  run_record.write_record(train_dir, _record(image_size=96))
  copy = run_record.copy_record(os.path.join(train_dir, 'model.ckpt-5'),
                                export_dir)
  assert copy == run_record.find_record(os.path.join(export_dir, 'm.tflite'))
  assert run_record.read_record(copy)['image_size'] == 96
  assert run_record.copy_record(train_dir, train_dir) == os.path.join(
      train_dir, run_record.RECORD_FILENAME)
  assert run_record.copy_record(str(tmp_path / 'none'), export_dir) is None


@pytest.mark.parametrize('content, message', [
    ('{not json', 'cannot read'),
    ('[1, 2]', 'not a JSON object'),
    ('{"model_name": "mobilenet_v1"}', 'lacks image_size'),
])
def test_damaged_record_is_reported(tmp_path, content, message):
  path = tmp_path / run_record.RECORD_FILENAME
  path.write_text(content)
  with pytest.raises(run_record.RecordError, match=message):
    run_record.read_record(str(path))


@pytest.mark.parametrize('changes, message', [
    (dict(image_size='64'), 'image_size'),
    (dict(num_classes=0), 'positive'),
    (dict(batch_norm_decay=1.5), r'batch_norm_decay=1.5 is not in \[0, 1\)'),
    (dict(labels_offset=True), 'labels_offset'),
])
def test_make_record_rejects_bad_values(changes, message):
  with pytest.raises(run_record.RecordError, match=message):
    _record(**changes)


EVAL_FLAGS = {'model_name': 'model_name', 'image_size': 'eval_image_size',
              'preprocessing_name': 'preprocessing_name',
              'dataset_name': 'dataset_name', 'labels_offset': 'labels_offset',
              'moving_average_decay': 'moving_average_decay'}
EVAL_DEFAULTS = {'model_name': 'mobilenet_v1', 'eval_image_size': None,
                 'preprocessing_name': '', 'dataset_name': 'shapes',
                 'labels_offset': 0, 'moving_average_decay': None}


def test_merge_takes_what_the_user_did_not_give():
  merged = run_record.merge(_record(), 'out/train/training_record.json',
                            EVAL_FLAGS, {'dataset_name': 'shapes'},
                            EVAL_DEFAULTS)
  assert merged.values['model_name'] == 'mobilenet_v1_025'
  assert merged.values['eval_image_size'] == 64
  assert merged.values['preprocessing_name'] == 'cifarnet'
  assert merged.conflicts == []
  assert merged.taken_line() == (
      'from out/train/training_record.json: model_name=mobilenet_v1_025, '
      'eval_image_size=64, preprocessing_name=cifarnet, labels_offset=0')


def test_merge_keeps_given_flags_and_reports_contradictions():
  given = {'eval_image_size': 224, 'model_name': 'mobilenet_v1_025',
           'moving_average_decay': 0.9999}
  merged = run_record.merge(_record(), 'rec.json', EVAL_FLAGS, given,
                            EVAL_DEFAULTS)
  assert merged.values['eval_image_size'] == 224
  assert merged.values['moving_average_decay'] == 0.9999
  # The record names parameters; a script shows them as its flags.
  assert [script_utils.as_command_line(c) for c in merged.conflicts] == [
      '--eval_image_size=224 but the model was trained at 64 (rec.json)',
      '--moving_average_decay=0.9999 but the model was trained with '
      'moving_average_decay=none (rec.json)']
  assert ('model_name', 'mobilenet_v1_025') not in merged.taken
  other = run_record.merge(_record(), 'rec.json', EVAL_FLAGS,
                           {'model_name': 'mobilenet_v2'}, EVAL_DEFAULTS)
  assert script_utils.as_command_line(other.conflicts[0]).startswith(
      '--model_name=mobilenet_v2 but the model was trained as '
      'mobilenet_v1_025')
  same_float = run_record.merge(
      _record(batch_norm_decay=0.99), 'r', {'batch_norm_decay': 'bn'},
      {'bn': 0.99 + 1e-12}, {})
  assert same_float.conflicts == [] and same_float.taken_line() is None
  with pytest.raises(run_record.RecordError, match='no such record field'):
    run_record.merge(_record(), 'r', {'size': 'image_size'}, {}, {})


# ------------------------------------------------------ batch-norm pitfall


def test_initial_share_and_steps_to_converge():
  assert bn.initial_share(0.9997, 1500) == pytest.approx(0.9997 ** 1500)
  assert 0.63 < bn.initial_share(0.9997, 1500) < 0.64
  for decay in (0.9997, 0.997, 0.99, 0.5):
    needed = bn.steps_to_converge(decay)
    assert bn.initial_share(decay, needed) <= bn.RESIDUAL_LIMIT
    assert bn.initial_share(decay, needed - 1) > bn.RESIDUAL_LIMIT


def test_short_run_with_released_decay_is_warned():
  check = bn.check_convergence(1500, None, 0.9997)
  assert not check.converged
  warning = script_utils.as_command_line(check.warning())
  assert '--max_number_of_steps=1500' in warning
  assert '64%' in warning
  assert '--batch_norm_decay=%g' % check.suggested_decay in warning
  assert str(bn.steps_to_converge(0.9997)) in warning
  assert bn.check_convergence(1500, check.suggested_decay, 0.9997).converged
  assert bn.check_convergence(1500, 0.99, 0.9997).warning() is None
  assert bn.check_convergence(None, None, 0.9997).converged
  assert bn.check_convergence(20000, None, 0.9997).converged


def test_a_very_short_run_at_the_lowest_decay_is_told_only_to_train_longer():
  # auto's floor (0.5) is already in use: advising it again would be a loop.
  decay = bn.resolve_decay('auto', 3, 0.9997)
  assert decay == bn.AUTO_MIN_DECAY
  warning = script_utils.as_command_line(
      bn.check_convergence(3, decay, 0.9997).warning())
  assert 'batch_norm_decay' not in warning
  assert 'Train at least %d steps' % bn.steps_to_converge(decay) in warning


@pytest.mark.parametrize('steps', [10, 100, 1500, 5000, 20000, 10 ** 6])
def test_auto_decay_converges_and_keeps_long_runs_at_the_nets_decay(steps):
  decay = bn.resolve_decay('auto', steps, 0.9997)
  assert bn.AUTO_MIN_DECAY <= decay <= 0.9997
  assert bn.check_convergence(steps, decay, 0.9997).converged
  if steps >= bn.AUTO_WINDOWS / (1 - 0.9997):
    assert decay == 0.9997


def test_auto_decay_formula():
  assert bn.auto_decay(1500, 0.9997) == pytest.approx(0.9866)
  assert bn.auto_decay(100, 0.997) == 0.8
  assert bn.auto_decay(20, 0.997) == bn.AUTO_MIN_DECAY
  assert bn.auto_decay(None, 0.997) == 0.997


@pytest.mark.parametrize('value, expected', [
    (None, None), ('', None), ('0.99', 0.99), (0.9, 0.9), ('AUTO', 0.9866)])
def test_resolve_decay(value, expected):
  assert bn.resolve_decay(value, 1500, 0.9997) == pytest.approx(expected)


@pytest.mark.parametrize('value', ['fast', '1.0', -0.1, 'nan'])
def test_resolve_decay_rejects_bad_values(value):
  with pytest.raises(ValueError, match='batch_norm_decay=.*auto'):
    bn.resolve_decay(value, 1500, 0.9997)


def test_network_decays_are_the_arg_scopes_defaults():
  import inspect  # pylint: disable=g-import-not-at-top
  from nets import mobilenet_v1  # pylint: disable=g-import-not-at-top
  from nets.mobilenet import mobilenet  # pylint: disable=g-import-not-at-top
  v1 = inspect.signature(mobilenet_v1.mobilenet_v1_arg_scope)
  v2 = inspect.signature(mobilenet.training_scope)
  assert bn.network_decay('mobilenet_v1_025') == (
      v1.parameters['batch_norm_decay'].default)
  assert bn.network_decay('mobilenet_v2') == v2.parameters['bn_decay'].default
  assert bn.network_decay('mobilenet_v2_140') == 0.997
  # Every factory network has one (V3 and EdgeTPU too: MODEL_NAME=
  # mobilenet_v3_small make run trains with --batch_norm_decay=auto), and it
  # is its arg scope's default.
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  for name, record in sorted(nets_factory.NETWORKS.items()):
    keyword = record.batch_norm_decay_keyword
    parameters = inspect.signature(record.arg_scope).parameters
    if keyword not in parameters:  # V2's training_scope(**kwargs) passes on
      parameters = v2.parameters
    default = parameters[keyword].default
    assert bn.network_decay(name) == default, name
  with pytest.raises(ValueError, match='resnet_v1_50'):
    bn.network_decay('resnet_v1_50')


def test_moving_statistics_names():
  names = ['A/BatchNorm/moving_mean', 'A/BatchNorm/moving_variance',
           'A/BatchNorm/moving_mean/ExponentialMovingAverage',
           'B/BatchNorm/moving_mean', 'A/weights', 'global_step']
  assert bn.moving_statistics_names(names) == [
      ('A/BatchNorm/moving_mean', 'A/BatchNorm/moving_variance')]


def _train_statistics(decay, steps, seed=0):
  """Moving statistics after `steps` slim-style updates of 3 layers."""
  rng = np.random.RandomState(seed)
  means, variances = {}, {}
  for layer in range(3):
    true_mean = rng.normal(0, 2, 32)
    true_var = rng.uniform(0.001, 4, 32)
    mean, var = np.zeros(32), np.ones(32)
    for _ in range(steps):
      batch_mean = true_mean + rng.normal(0, 0.05, 32)
      batch_var = true_var * rng.uniform(0.9, 1.1, 32)
      mean = decay * mean + (1 - decay) * batch_mean
      var = decay * var + (1 - decay) * batch_var
    means['l%d' % layer], variances['l%d' % layer] = mean, var
  return means, variances


def test_stale_statistics_are_detected_after_a_short_run():
  means, variances = _train_statistics(0.9997, 1500)
  stale = bn.find_stale_statistics(means, variances)
  assert stale is not None and not stale.untouched
  assert stale.layers == 3
  # The smallest variance bounds the initial share 0.9997**1500 from above.
  assert bn.initial_share(0.9997, 1500) <= stale.max_share < 0.7
  text = script_utils.as_command_line(
      bn.explain_stale(stale, 'train/model.ckpt-1500', 1500, 0.9997))
  assert 'still close to their initial values' in text
  assert '64%' in text and '--batch_norm_decay=auto' in text
  assert str(bn.steps_to_converge(0.9997)) in text


def test_trained_statistics_are_not_reported():
  decay = bn.auto_decay(1500, 0.9997)
  assert bn.find_stale_statistics(*_train_statistics(decay, 1500)) is None
  assert bn.find_stale_statistics({}, {}) is None


def test_never_updated_statistics_are_reported():
  means = {'a': np.zeros(8), 'b': np.zeros(4)}
  variances = {'a': np.ones(8), 'b': np.ones(4)}
  stale = bn.find_stale_statistics(means, variances)
  assert stale.untouched
  assert 'UPDATE_OPS' in bn.explain_stale(stale, 'ckpt')


# ------------------------------------------------------------------- logs


@pytest.mark.parametrize('argv, expected', [
    (['x'], None), (['x', '--verbosity=1'], 1), (['x', '-v', '2'], 2),
    (['x', '--verbosity', '-1'], -1), (['x', '--verbosity=loud'], None)])
def test_verbosity_from_argv(argv, expected):
  assert logs.verbosity_from_argv(argv) == expected


def test_cpp_log_level():
  assert logs.cpp_log_level(['x'], {}) == '2'
  assert logs.cpp_log_level(['x', '--verbosity=1'], {}) == '0'
  assert logs.cpp_log_level(['x', '--verbosity=0'], {}) == '2'
  assert logs.cpp_log_level(['x'], {'TF_CPP_MIN_LOG_LEVEL': '1'}) is None


def test_is_noise():
  site = os.path.join(os.sep, 'venv', 'site-packages')
  tf_file = os.path.join(site, 'tensorflow', 'python', 'training', 'x.py')
  ours = os.path.join(REPO, 'train_image_classifier.py')
  assert logs.is_noise(20, 'Graph was finalized.', tf_file, (site,))
  assert not logs.is_noise(30, 'Out of range', tf_file, (site,))
  assert not logs.is_noise(20, 'step 100/1500, loss = 1.2', ours, (site,))
  assert logs.is_noise(30, 'From x.py: f (from y) is deprecated and will be '
                       'removed in a future version.', ours, (site,))


_LOG_SCRIPT = textwrap.dedent('''
    from absl import app, flags, logging
    from cli import logs
    from core import tf_compat
    import tensorflow.compat.v1 as tf

    def main(_):
      logs.quiet_logging(flags.FLAGS.verbosity)
      tf.logging.set_verbosity(tf.logging.INFO)
      tf.logging.info('tf-event %d', 1)
      logging.info('absl-event')
      with tf.Session() as session:
        session.run(tf.initialize_all_variables())  # deprecated on both stacks

    app.run(main)
    ''')


def _run_log_script(tmp_path, *args):
  script = tmp_path / 'log_script.py'
  script.write_text(_LOG_SCRIPT)
  env = dict(os.environ, PYTHONPATH=REPO)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)
  result = subprocess.run([sys.executable, str(script)] + list(args),
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=300)
  assert result.returncode == 0, result.stdout[-3000:]
  return result.stdout


@pytest.mark.slow
def test_each_log_record_once_and_noise_only_when_verbose(tmp_path):
  quiet = _run_log_script(tmp_path)
  assert quiet.count('tf-event 1') == 1, quiet
  assert quiet.count('absl-event') == 1, quiet
  assert 'deprecated' not in quiet
  assert 'INFO:tensorflow' not in quiet
  assert 'cpu_feature_guard' not in quiet  # TensorFlow's C++ start-up notes
  verbose = _run_log_script(tmp_path, '--verbosity=1')
  assert verbose.count('tf-event 1') == 1, verbose
  assert verbose.count('initialize_all_variables') >= 1, verbose
  assert 'is deprecated' in verbose
  assert 'cpu_feature_guard' in verbose


# ------------------------------------------------- launchers and make


def _fake_repo(tmp_path, venvs):
  """A copy of scripts/python_env.sh with the given .venv/<name> pythons."""
  root = tmp_path / 'repo'
  (root / 'scripts').mkdir(parents=True)
  shutil.copy(os.path.join(REPO, 'scripts', 'python_env.sh'),
              str(root / 'scripts'))
  (root / 'scripts' / 'show.sh').write_text(
      u'set -euo pipefail\nsource "$(dirname "${BASH_SOURCE[0]}")/'
      u'python_env.sh"\necho "PYTHON=$PYTHON CPP=${TF_CPP_MIN_LOG_LEVEL:-}"\n')
  for name in venvs:
    bin_dir = root / '.venv' / name / 'bin'
    bin_dir.mkdir(parents=True)
    os.symlink(sys.executable, str(bin_dir / 'python'))
  return root


def _show(root, args=(), **env_changes):
  env = {k: v for k, v in os.environ.items()
         if k not in ('PYTHON', 'VIRTUAL_ENV', 'CONDA_PREFIX', 'TF',
                      'TF1_BUILD', 'TF_CPP_MIN_LOG_LEVEL')}
  env.update(env_changes)
  return subprocess.run(['bash', str(root / 'scripts' / 'show.sh')] +
                        list(args), env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, universal_newlines=True)


def test_launchers_use_the_project_environment(tmp_path):
  root = _fake_repo(tmp_path, ['tf1', 'tf2', 'tf1-onednn'])
  venv = str(root / '.venv')
  assert _show(root).stdout.strip() == (
      'PYTHON=%s/tf1/bin/python CPP=2' % venv)
  assert '/tf2/bin/python' in _show(root, TF='2').stdout
  assert '/tf1-onednn/bin/python' in _show(
      root, TF='1', TF1_BUILD='onednn').stdout
  assert _show(root, PYTHON='/my/python').stdout.startswith(
      'PYTHON=/my/python ')
  assert _show(root, VIRTUAL_ENV='/some/env').stdout.startswith(
      'PYTHON=python ')
  assert _show(root, ['--verbosity=1']).stdout.strip().endswith('CPP=')
  assert _show(root, TF_CPP_MIN_LOG_LEVEL='0').stdout.strip().endswith(
      'CPP=0')
  only_tf2 = _fake_repo(tmp_path / 'b', ['tf2'])
  assert '/tf2/bin/python' in _show(only_tf2).stdout
  none = _show(_fake_repo(tmp_path / 'c', []))
  assert none.returncode == 1
  assert "make venv TF=2" in none.stderr


def test_every_launcher_sources_python_env():
  scripts = os.path.join(REPO, 'scripts')
  # shell_rc.sh is the rc file of `make shell`, which sets PATH itself.
  launchers = [n for n in os.listdir(scripts) if n.endswith('.sh') and
               n not in ('python_env.sh', 'find_python.sh', 'shell_rc.sh')]
  assert 'main_job.sh' in launchers
  for name in launchers:
    with open(os.path.join(scripts, name)) as f:
      text = f.read()
    assert 'python_env.sh' in text, name
    assert 'PYTHON:-python' not in text, name


def _make(*args, **kwargs):
  # Under `make test TF=2`, MAKEFLAGS would pass TF=2 on to this make too.
  env = {name: value
         for name, value in kwargs.pop('env', os.environ).items()
         if name not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'TF', 'TF1_BUILD')}
  return subprocess.run(['make', '--no-print-directory'] + list(args),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, env=env, **kwargs)


def _requirements_for(*args):
  result = _make('-f', os.path.join(REPO, 'Makefile'), '--eval',
                 'show-requirements: ; @$(REQUIREMENTS_EDIT) $(REQUIREMENTS)',
                 'show-requirements', *args, cwd=REPO)
  assert result.returncode == 0, result.stderr
  return result.stdout.splitlines()


def test_tf1_onednn_build_swaps_only_the_tensorflow_wheel():
  stock = _requirements_for('TF=1')
  onednn = _requirements_for('TF=1', 'TF1_BUILD=onednn')
  assert 'tensorflow==1.15.5' in stock
  assert 'intel-tensorflow==1.15.2' in onednn
  assert 'tensorflow==1.15.5' not in onednn
  assert [l for l in stock if l != 'tensorflow==1.15.5'] == [
      l for l in onednn if l != 'intel-tensorflow==1.15.2']
  assert not any(l.startswith('tf-keras') for l in _requirements_for('TF=2'))
  dry = _make('-n', 'run', 'TF=1', 'TF1_BUILD=onednn', 'FRESH=1', cwd=REPO)
  assert '.venv/tf1-onednn/bin/python' in dry.stdout
  assert 'OUT=out/tf1-onednn' in dry.stdout and 'FRESH=1' in dry.stdout
  bad = _make('-n', 'test', 'TF=2', 'TF1_BUILD=onednn', cwd=REPO)
  assert bad.returncode != 0 and 'TF=1 only' in bad.stderr
  typo = _make('-n', 'test', 'TF1_BUILD=mkl', cwd=REPO)
  assert typo.returncode != 0 and 'onednn' in typo.stderr


def _make_copy(tmp_path):
  """The Makefile and what its stamp depends on, in a scratch folder."""
  root = tmp_path / 'make'
  (root / 'scripts').mkdir(parents=True)
  for name in ('Makefile', 'requirements.txt', 'requirements-tf2.txt',
               'requirements-test.txt', 'scripts/find_python.sh'):
    shutil.copy(os.path.join(REPO, name), str(root / name))
  return root


def test_clean_keeps_the_environments_and_distclean_removes_them(tmp_path):
  root = _make_copy(tmp_path)
  for path in ('.venv/tf1/bin/python', 'out/tf1/train/checkpoint',
               'nets/__pycache__/x.pyc'):
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(u'x')
  assert _make('clean', cwd=str(root)).returncode == 0
  assert (root / '.venv/tf1/bin/python').exists()
  assert not (root / 'out').exists()
  assert not (root / 'nets/__pycache__').exists()
  assert _make('distclean', cwd=str(root)).returncode == 0
  assert not (root / '.venv').exists()


def test_make_shell_puts_the_environment_first(tmp_path):
  root = _make_copy(tmp_path)
  venv = root / '.venv' / 'tf2'
  (venv / 'bin').mkdir(parents=True)
  os.symlink(sys.executable, str(venv / 'bin' / 'python'))
  (venv / '.installed').write_text(u'')  # newer than the requirements
  env = dict(os.environ, SHELL='/bin/bash', HOME=str(tmp_path))
  result = _make('shell', 'TF=2', cwd=str(root), env=env,
                 input='echo "which=$(command -v python) ve=$VIRTUAL_ENV"\n')
  assert result.returncode == 0, result.stderr
  assert 'which=%s/bin/python' % venv in result.stdout
  assert 've=%s' % venv in result.stdout


def test_make_shell_keeps_the_environment_first_after_a_pyenv_bashrc(
    tmp_path):
  """A ~/.bashrc that puts another python first (as `pyenv init` does)
  runs, and the environment is still the one `python` finds."""
  root = _make_copy(tmp_path)
  shutil.copy(os.path.join(REPO, 'scripts', 'shell_rc.sh'),
              str(root / 'scripts'))
  venv = root / '.venv' / 'tf2'
  (venv / 'bin').mkdir(parents=True)
  os.symlink(sys.executable, str(venv / 'bin' / 'python'))
  (venv / '.installed').write_text(u'')
  shims = tmp_path / 'pyenv' / 'shims'
  shims.mkdir(parents=True)
  (shims / 'python').write_text(u'#!/bin/sh\necho pyenv python\n')
  (shims / 'python').chmod(0o755)
  (tmp_path / '.bashrc').write_text(
      u'export PATH="%s:$PATH"\nPS1="user-prompt$ "\nRC_READ=yes\n' % shims)
  env = dict(os.environ, SHELL='/bin/bash', HOME=str(tmp_path))
  result = _make('shell', 'TF=2', cwd=str(root), env=env,
                 input='echo "which=$(command -v python) rc=$RC_READ"\n')
  assert result.returncode == 0, result.stderr
  assert 'which=%s/bin/python rc=yes' % venv in result.stdout
  assert '(tf2) user-prompt$ ' in result.stderr  # the prompt names it


def _main_job(tmp_path, out, **env_changes):
  env = dict(os.environ, OUT=str(out), PYTHON='true', MAX_STEPS='1500',
             MAKE_RUN='make run TF=2')
  env.update(env_changes)
  return subprocess.run(['bash', 'scripts/main_job.sh'], cwd=REPO, env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True)


def test_main_job_says_what_it_reuses_and_how_to_start_over(tmp_path):
  out = tmp_path / 'out'
  (out / 'train').mkdir(parents=True)
  (out / 'shapes').mkdir()
  (out / 'shapes' / 'shapes_validation_00000-of-00002.tfrecord').write_text(
      u'')
  (out / 'train' / 'checkpoint').write_text(
      u'model_checkpoint_path: "model.ckpt-1500"\n'
      u'all_model_checkpoint_paths: "model.ckpt-1500"\n')
  result = _main_job(tmp_path, out)
  assert result.returncode == 0, result.stderr
  assert 'Reusing the shapes dataset in %s/shapes' % out in result.stdout
  assert ('Reusing the checkpoints in %s/train (already at step 1500 of '
          '1500: nothing left to train; evaluation and export run again). '
          'To start over: make run TF=2 FRESH=1 OUT=%s' % (out, out)
          in result.stdout)
  going_on = _main_job(tmp_path, out, MAX_STEPS='3000')
  assert 'training goes on from step 1500 to 3000' in going_on.stdout
  fresh = _main_job(tmp_path, out, FRESH='1')
  assert 'FRESH=1: deleting %s' % out in fresh.stdout
  assert 'Reusing' not in fresh.stdout
  assert not (out / 'train').exists()


def test_main_job_fresh_deletes_only_its_own_outputs(tmp_path):
  out = tmp_path / 'mine'
  (out / 'train').mkdir(parents=True)
  (out / 'thesis.tex').write_text(u'precious')
  result = _main_job(tmp_path, out, FRESH='1')
  assert result.returncode == 1
  assert 'not deleting' in result.stderr and 'thesis.tex' in result.stderr
  assert (out / 'thesis.tex').exists() and (out / 'train').exists()
