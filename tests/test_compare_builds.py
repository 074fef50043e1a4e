"""Tests of benchmarks/compare_builds.py: order, merge arithmetic, flags.

No timing is asserted: the end-to-end test runs a stand-in "interpreter"
that writes made-up benchmark results, so only the driver is exercised.
"""


import json
import os
import stat
import subprocess
import sys

import pytest

from benchmarks import compare_builds
from benchmarks import report


def test_rounds_alternate_which_build_goes_first():
  assert compare_builds.invocation_order(['stock', 'onednn'], 3) == [
      (1, 'stock'), (1, 'onednn'), (2, 'onednn'), (2, 'stock'),
      (3, 'stock'), (3, 'onednn')]
  # More builds: each takes each position once every len(builds) rounds.
  order = compare_builds.invocation_order(['a', 'b', 'c'], 3)
  firsts = [order[i][1] for i in range(0, 9, 3)]
  assert firsts == ['a', 'b', 'c']
  assert [name for _, name in order[3:6]] == ['b', 'c', 'a']


def _record(model, measurement, impl, images_per_sec, latency_ms=None):
  result = {'images_per_sec': images_per_sec, 'peak_rss_mib': 100.0}
  if latency_ms is not None:
    result['latency_ms'] = latency_ms
  return {'model': model, 'measurement': measurement, 'impl': impl, 'run': 1,
          'fresh_process': True, 'result': result}


def _results(records, measurements=('train_synthetic', 'infer_frozen')):
  return {'meta': {'models': ['m'], 'measurements': list(measurements),
                   'cpu_model': 'test CPU',
                   'environment': {'tensorflow': '1.15', 'python': '3.7',
                                   'onednn_opts': 'n/a'}},
          'macs': {'m': {'macs': 1e6}}, 'runs': records, 'errors': []}


# Images/s of build "a" and "b" in three rounds, and b1 latencies.
_TRAIN = {'a': (10.0, 12.0, 11.0), 'b': (19.0, 25.0, 21.0)}
_LATENCY = {'a': (30.0, 20.0, 25.0), 'b': (9.0, 11.0, 10.0)}


def _invocations():
  invocations = []
  for round_index in range(3):
    for build in ('a', 'b'):
      invocations.append({'build': build, 'results': _results([
          _record('m', 'train_synthetic', 'ours', _TRAIN[build][round_index]),
          _record('m', 'infer_frozen', 'ours', 50.0 + round_index,
                  _LATENCY[build][round_index])])})
  return invocations


def test_merge_gives_medians_per_build_and_ratios_to_the_first():
  invocations = _invocations()
  # A failed measurement and an invocation that wrote nothing count for
  # nothing.
  invocations[1]['results']['runs'].append(
      {'model': 'm', 'measurement': 'train_synthetic', 'impl': 'ours',
       'run': 1, 'fresh_process': True, 'error': 'boom'})
  invocations.append({'build': 'b', 'results': None})
  summaries, rows = compare_builds.merge(invocations, ['a', 'b'])
  assert sorted(summaries) == ['a', 'b']
  by_measurement = {row['measurement']: row for row in rows}
  assert [row['measurement'] for row in rows] == ['train_synthetic',
                                                  'infer_frozen']
  train = by_measurement['train_synthetic']
  assert train['impl'] == 'ours'
  assert train['builds']['a']['images_per_sec'] == 11.0
  assert train['builds']['b']['images_per_sec'] == 21.0
  assert train['builds']['b']['runs'] == 3
  assert train['ratio']['b']['images_per_sec'] == pytest.approx(21.0 / 11.0)
  assert 'latency_ms' not in train['ratio']['b']
  infer = by_measurement['infer_frozen']
  assert infer['builds']['a']['latency_ms'] == 25.0
  assert infer['ratio']['b']['latency_ms'] == pytest.approx(10.0 / 25.0)
  assert infer['ratio']['b']['images_per_sec'] == pytest.approx(1.0)
  # The medians are report.summarize's, not a second implementation.
  assert summaries['b'] == report.summarize(
      [r for i in invocations if i['build'] == 'b' and i['results']
       for r in i['results']['runs']], {'m': 1e6}, ['m'],
      ['train_synthetic', 'infer_frozen'])


def test_merge_leaves_out_what_no_build_ran_and_marks_a_missing_side():
  invocations = [
      {'build': 'a', 'results': _results(
          [_record('m', 'train_synthetic', 'ours', 10.0)],
          measurements=['train_synthetic'])},
      {'build': 'b', 'results': None}]
  _, rows = compare_builds.merge(invocations, ['a', 'b'])
  (row,) = rows  # No Keras row: no build ran Keras.
  assert row['impl'] == 'ours'
  assert row['builds']['b'] is None
  assert row['ratio'] == {'b': {}}
  text = compare_builds.markdown({
      'meta': {'builds': [{'name': 'a', 'python': 'pa'},
                          {'name': 'b', 'python': 'pb'}],
               'rounds': 1, 'cpu_model': 'c', 'load_before': [0.0],
               'load_after': [0.0], 'date': 'd', 'wall_s': 1.0,
               'command': 'cmd'},
      'comparison': rows,
      'invocations': [{'round': 1, 'build': 'b', 'failed': 'no results'}]})
  assert '| m | synthetic | ours | 10.00 | n/a | n/a | n/a | n/a | n/a |' in (
      text)
  assert '- round 1 b: no results' in text


def _executable(path):
  path.write_text(u'#!/bin/sh\n')
  path.chmod(path.stat().st_mode | stat.S_IXUSR)
  return str(path)


def test_builds_flag_is_checked(tmp_path):
  python = _executable(tmp_path / 'python')
  builds = compare_builds.parse_builds(['x=%s' % python, 'y:%s' % python])
  assert builds == [('x', python), ('y', python)]
  for pairs, says in (
      ([], 'at least two'),
      (['x=%s' % python], 'at least two'),
      (['x=%s' % python, 'x=%s' % python], 'repeated'),
      (['x=%s' % python, 'y=%s' % (tmp_path / 'missing')], 'not an executable'),
      (['x=%s' % python, 'y/z=%s' % python], 'not a valid name'),
      (['x=%s' % python, '=%s' % python], 'expected name=python')):
    with pytest.raises(compare_builds.UsageError, match='--builds'):
      compare_builds.parse_builds(pairs)
    with pytest.raises(compare_builds.UsageError, match=says):
      compare_builds.parse_builds(pairs)


# A stand-in for a build's interpreter: it logs its build name and
# arguments and writes made-up results where benchmark.py would.
_FAKE_BENCHMARK = r'''
import json, os, sys
name, log_path, args = sys.argv[1], sys.argv[2], sys.argv[4:]
with open(log_path, 'a') as f:
  f.write(json.dumps([name, args]) + '\n')
output_dir = [a.split('=', 1)[1] for a in args
              if a.startswith('--output_dir=')][0]
speed = {'slow': 10.0, 'fast': 20.0}[name]
record = {'model': 'm', 'measurement': 'train_synthetic', 'impl': 'ours',
          'run': 1, 'fresh_process': True,
          'result': {'images_per_sec': speed, 'peak_rss_mib': 1.0}}
results = {'meta': {'models': ['m'], 'measurements': ['train_synthetic'],
                    'cpu_model': 'test CPU',
                    'environment': {'tensorflow': name, 'python': '3',
                                    'onednn_opts': 'n/a'}},
           'macs': {}, 'runs': [record], 'errors': []}
with open(os.path.join(output_dir, 'benchmark_tf1.json'), 'w') as f:
  json.dump(results, f)
'''


def _fake_build(tmp_path, name, log_path):
  script = tmp_path / 'fake_benchmark.py'
  script.write_text(_FAKE_BENCHMARK)
  path = tmp_path / ('python_' + name)
  path.write_text(u'#!/bin/sh\nexec "%s" "%s" %s "%s" "$@"\n' % (
      sys.executable, script, name, log_path))
  path.chmod(path.stat().st_mode | stat.S_IXUSR)
  return str(path)


def _run(repo_root, script_env, *args):
  return subprocess.run(
      [sys.executable, os.path.join(repo_root, 'benchmarks',
                                    'compare_builds.py')] + list(args),
      cwd=repo_root, env=script_env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def test_runs_each_build_per_round_and_writes_the_comparison(
    repo_root, script_env, tmp_path):
  log_path = str(tmp_path / 'calls.jsonl')
  slow, fast = (_fake_build(tmp_path, n, log_path) for n in ('slow', 'fast'))
  out = tmp_path / 'out'
  proc = _run(repo_root, script_env, '--builds=slow=%s,fast=%s' % (slow, fast),
              '--rounds=2', '--models=mobilenet_v1_025',
              '--measurements=train_synthetic', '--implementations=ours',
              '--image_size=64', '--output_dir=%s' % out, '--tag=t')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  with open(log_path) as f:
    calls = [json.loads(line) for line in f]
  assert [name for name, _ in calls] == ['slow', 'fast', 'fast', 'slow']
  for _, args in calls:
    assert '--runs=1' in args and '--noint8_agreement' in args
    for passed in ('--models=mobilenet_v1_025', '--image_size=64',
                   '--measurements=train_synthetic', '--implementations=ours'):
      assert passed in args
    assert not any(a.startswith(('--rounds', '--builds', '--tag'))
                   for a in args)
    (output_dir,) = [a for a in args if a.startswith('--output_dir=')]
    assert output_dir.startswith('--output_dir=%s' % (out / 'compare_t_runs'))
  with open(str(out / 'compare_t.json')) as f:
    results = json.load(f)
  (row,) = results['comparison']
  assert row['ratio']['fast']['images_per_sec'] == pytest.approx(2.0)
  assert [b['tensorflow'] for b in results['meta']['builds']] == ['slow',
                                                                  'fast']
  text = (out / 'compare_t.md').read_text()
  assert '| **2.00** |' in text
  # A second comparison with the same tag would mix runs: refused.
  again = _run(repo_root, script_env,
               '--builds=slow=%s,fast=%s' % (slow, fast),
               '--output_dir=%s' % out, '--tag=t')
  assert again.returncode == 2 and '--tag' in again.stderr


@pytest.mark.parametrize('flag, named', [
    ('--runs=3', '--runs'),
    ('--int8_agreement', '--int8_agreement'),
    ('--rounds=0', '--rounds'),
    ('--models=resnet_v1_50', '--models'),
    ('--tag=a/b', '--tag'),
])
def test_bad_flags_exit_with_a_message_naming_the_flag(repo_root, script_env,
                                                       tmp_path, flag, named):
  python = _executable(tmp_path / 'python')
  proc = _run(repo_root, script_env, '--builds=a=%s,b=%s' % (python, python),
              flag, '--output_dir=%s' % (tmp_path / 'out'))
  assert proc.returncode == 2
  assert named in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1
  assert not os.path.exists(str(tmp_path / 'out'))
