"""The benchmark's optional PyTorch column (benchmarks/pytorch_column.py).

None of these tests needs torch: a fake interpreter stands in for one that
has it, answering each task with figures that depend on the spec it got, so
the plan, the specs, the merging and the report can be checked; the skip
path runs with this interpreter, which has no torch.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from benchmarks import pytorch_column
from benchmarks import runner
from tests.test_benchmark_agreement import _parsed

# Answers like benchmarks/pytorch_tasks.py; channels_last trains faster
# than NCHW so the report's "best layout" has something to pick.
_FAKE_TASKS = textwrap.dedent('''
    import json, os, sys
    task, spec_path, result_path = sys.argv[2:5]
    with open(spec_path) as f:
      spec = json.load(f)
    with open(os.environ['FAKE_TORCH_LOG'], 'a') as log:
      log.write(json.dumps([task, spec]) + '\\n')
    if os.environ.get('FAKE_TORCH_FAIL'):
      sys.exit(3)
    speed = {'nchw': 4.0, 'channels_last': 8.0}.get(spec.get('layout'), 1.0)
    result = {
        'environment': {'python': '3.11', 'torch': '9.9', 'torchvision': '1',
                        'timm': '2', 'cpu_capability': 'AVX2',
                        'mkldnn_available': True, 'onednn': 'oneDNN v0',
                        'threads': 2},
        'train': {'images_per_sec': speed, 'first_step_s': 0.5,
                  'peak_rss_mib': 100.0},
        'infer': {'images_per_sec': speed, 'latency_ms': 10.0 / speed,
                  'peak_rss_mib': 100.0},
    }[task]
    with open(result_path, 'w') as f:
      json.dump(result, f)
''')


@pytest.fixture
def fake_python(tmp_path, monkeypatch):
  """An executable that runs the fake tasks; returns (path, spec log)."""
  script = tmp_path / 'fake_tasks.py'
  script.write_text(_FAKE_TASKS)
  launcher = tmp_path / 'python-with-torch'
  launcher.write_text('#!/bin/sh\nshift\nexec "%s" "%s" x "$@"\n' %
                      (sys.executable, script))
  launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
  log = tmp_path / 'tasks.log'
  monkeypatch.setenv('FAKE_TORCH_LOG', str(log))
  return str(launcher), log


def _logged(log):
  with open(str(log)) as f:
    return [json.loads(line) for line in f]


def test_without_torch_the_column_is_skipped_with_how_to_install(monkeypatch):
  monkeypatch.setattr(pytorch_column.importlib.util, 'find_spec',
                      lambda name: None)
  tasks, environment, note = pytorch_column.probe('')
  assert tasks is None and environment is None
  assert 'has no torch' in note and '--pytorch_python=' in note
  assert 'pip install torch torchvision timm' in note
  assert pytorch_column.probe('none')[2].startswith('PyTorch column off')


def test_this_interpreter_is_the_default_when_it_has_torch(monkeypatch):
  monkeypatch.setattr(pytorch_column.importlib.util, 'find_spec',
                      lambda name: object())
  assert pytorch_column.find_interpreter('', current='/x/python') == (
      '/x/python', '')
  assert pytorch_column.find_interpreter('/y/python')[0] == '/y/python'


def test_probe_asks_the_named_interpreter(fake_python, tmp_path):
  python, log = fake_python
  tasks, environment, note = pytorch_column.probe(python,
                                                  log_dir=str(tmp_path))
  assert note == '' and tasks.python == python
  assert environment['torch'] == '9.9'
  assert [task for task, _ in _logged(log)] == ['environment']


def test_a_named_interpreter_that_fails_is_an_error(fake_python, monkeypatch,
                                                    tmp_path):
  python, _ = fake_python
  monkeypatch.setenv('FAKE_TORCH_FAIL', '1')
  with pytest.raises(runner.TaskError, match='--pytorch_python=') as raised:
    pytorch_column.probe(python, log_dir=str(tmp_path))
  assert 'exited with status 3' in str(raised.value)
  # Found by default instead: skipped with a note, the benchmark goes on.
  monkeypatch.setattr(pytorch_column.importlib.util, 'find_spec',
                      lambda name: object())
  tasks, _, note = pytorch_column.probe('', current=python)
  assert tasks is None and 'skipped' in note


def test_specs_match_ours_in_size_threads_and_layout():
  opts = {'image_size': 224, 'settings': {'intra_op_threads': 2,
                                          'inter_op_threads': 2},
          'train_batch_size': 32, 'warmup_steps': 1, 'train_steps': 4,
          'infer_batch_size': 32, 'warmup_iters': 3, 'latency_iters': 15,
          'throughput_iters': 2}
  task, spec = pytorch_column.measure_spec(opts, 'mobilenet_v2',
                                           'train_synthetic',
                                           'pytorch_channels_last')
  assert task == 'train'
  assert spec['layout'] == 'channels_last'
  assert (spec['train_batch_size'], spec['image_size']) == (32, 224)
  assert spec['settings'] == opts['settings']
  task, spec = pytorch_column.measure_spec(opts, 'mobilenet_v1',
                                           'infer_frozen', 'pytorch_nchw')
  assert (task, spec['layout'], spec['latency_iters']) == ('infer', 'nchw',
                                                           15)
  # Only the measurements and networks PyTorch has an equivalent of.
  assert pytorch_column.implementations_for('mobilenet_v1', 'infer_frozen')
  assert not pytorch_column.implementations_for('mobilenet_v1',
                                                'train_tfrecord')
  assert not pytorch_column.implementations_for('mobilenet_v1_025',
                                                'train_synthetic')


def _record(impl, run, speed, measurement='train_synthetic'):
  return {'model': 'mobilenet_v2', 'measurement': measurement, 'impl': impl,
          'run': run, 'result': {'images_per_sec': speed,
                                 'latency_ms': 100.0 / speed}}


def test_results_merge_into_medians_ratios_and_a_table():
  records = []
  for run, (ours, keras, nchw, last) in enumerate(
      [(30.0, 20.0, 5.0, 9.0), (10.0, 25.0, 6.0, 12.0),
       (24.0, 15.0, 7.0, 10.0)]):
    records += [_record('ours', run, ours), _record('keras', run, keras),
                _record('pytorch_nchw', run, nchw),
                _record('pytorch_channels_last', run, last)]
  records.append({'model': 'mobilenet_v2', 'measurement': 'train_synthetic',
                  'impl': 'pytorch_nchw', 'run': 4, 'error': 'ignored'})
  (row,) = pytorch_column.summarize(records, ['mobilenet_v2'])
  medians = row['medians']
  assert medians['ours']['images_per_sec'] == 24.0
  assert medians['pytorch_nchw']['runs'] == 3
  assert row['best_pytorch'] == 'pytorch_channels_last'
  assert row['ours_vs_pytorch'] == pytest.approx(24.0 / 10.0)
  (target,) = pytorch_column.check_targets([row])
  assert target['met'] is True and target['goal'] == 1.5
  assert pytorch_column.check_targets([dict(row, ours_vs_pytorch=1.4)])[0][
      'met'] is False
  text = '\n'.join(pytorch_column.markdown({
      'python': '/p', 'environment': {
          'torch': '9.9', 'torchvision': '1', 'timm': '2', 'python': '3.11',
          'cpu_capability': 'AVX2', 'onednn': 'oneDNN v0'},
      'rows': [row]}))
  assert ('| mobilenet_v2 | synthetic | 24.0 | 20.0 | 6.0 | 10.0 | 2.40x |'
          in text)
  assert 'CPU capability AVX2' in text


def test_the_flag_reaches_the_options():
  from benchmarks import options  # pylint: disable=g-import-not-at-top
  assert options.resolve_options(_parsed())['pytorch_python'] == ''
  assert options.resolve_options(_parsed('--pytorch_python=none'))[
      'pytorch_python'] == 'none'


@pytest.mark.slow
def test_benchmark_interleaves_pytorch_with_ours(repo_root, script_env,
                                                 fake_python, tmp_path):
  python, log = fake_python
  script_env['FAKE_TORCH_LOG'] = str(log)
  out_dir = tmp_path / 'results'
  proc = subprocess.run(
      [sys.executable, os.path.join('benchmarks', 'benchmark.py'), '--quick',
       '--models=mobilenet_v2_035', '--implementations=ours',
       '--measurements=train_synthetic', '--runs=2',
       '--noint8_agreement', '--pytorch_python=' + python,
       '--output_dir=' + str(out_dir)],
      cwd=repo_root, env=script_env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=1500)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  stack = 'tf2' if sys.version_info >= (3, 8) else 'tf1'
  with open(str(out_dir / ('benchmark_%s_quick.json' % stack))) as f:
    results = json.load(f)
  plan = [(r['run'], r['measurement'], r['impl']) for r in results['runs']]
  # Run 2 reverses the order, so neither side always goes first.
  assert plan == [
      (1, 'train_synthetic', 'ours'), (1, 'train_synthetic', 'pytorch_nchw'),
      (1, 'train_synthetic', 'pytorch_channels_last'),
      (2, 'train_synthetic', 'pytorch_channels_last'),
      (2, 'train_synthetic', 'pytorch_nchw'), (2, 'train_synthetic', 'ours')]
  specs = [spec for task, spec in _logged(log) if task == 'train']
  assert len(specs) == 4
  assert {s['train_batch_size'] for s in specs} == {
      results['meta']['train_batch_size']}
  (row,) = results['pytorch']['rows'][:1]
  assert row['best_pytorch'] == 'pytorch_channels_last'
  assert row['medians']['pytorch_nchw']['images_per_sec'] == 4.0
  with open(str(out_dir / ('benchmark_%s_quick.md' % stack))) as f:
    text = f.read()
  assert '### Against PyTorch' in text and 'PyTorch 9.9' in text
  assert '- CPU flags: ' in text
  assert 'train_vs_pytorch' in {t['target'] for t in results['targets']}

