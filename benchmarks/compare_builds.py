#!/usr/bin/env python
r"""Compares TensorFlow builds on the same benchmark, runs interleaved.

    python benchmarks/compare_builds.py \
        --builds=stock=.venv/tf1/bin/python,onednn=.venv/tf1-onednn/bin/python \
        --models=mobilenet_v1 --measurements=train_synthetic --rounds=3

Each build is an interpreter of its own environment (e.g. TF 1.15.5 and
intel-tensorflow 1.15.2, which cannot share one). For each of `--rounds`
rounds, `benchmarks/benchmark.py` runs once under every build's interpreter
(one run per invocation, `--runs=1`), the first build of a round moving on
by one each round so that drifting machine load favours none. The other
benchmark flags given here (models, measurements, implementations, sizes,
...) are passed on unchanged; the int8 agreement check, which does not
depend on speed, is left out.

All records are then merged into medians per build by
`benchmarks/report.py` and written as `<output_dir>/compare_<tag>.md` and
`.json`: per model, measurement and implementation, each build's median
images/s (and batch-1 latency where there is one) and its ratio to the
first build's. Each invocation's own results and log stay in
`<output_dir>/compare_<tag>_runs/`. Exits non-zero if an invocation or a
measurement failed.
"""


import datetime
import glob
import json
import os
import re
import subprocess
import sys
import time

# Run as a script: import from the repo.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import models  # noqa: E402
from benchmarks import options  # noqa: E402
from benchmarks import report  # noqa: E402

FLAGS = flags.FLAGS
BENCHMARK = os.path.join(_REPO_ROOT, 'benchmarks', 'benchmark.py')

# Benchmark flags this script sets itself, and why.
_CONTROLLED = {
    'runs': 'each invocation runs once; --rounds sets how many there are',
    'work_dir': 'each invocation uses a temporary directory of its own',
}
for _name in ('int8_agreement', 'agreement_checkpoints',
              'agreement_train_steps'):
  _CONTROLLED[_name] = ('the int8 agreement does not depend on the build\'s '
                        'speed; measure it with benchmark.py')
# Benchmark flags this script uses itself, never passed on (the invocations
# write under <output_dir>/compare_<tag>_runs/).
_NOT_PASSED = ('output_dir',)
# Metrics compared between builds (ratio build / first build).
COMPARED = ('images_per_sec', 'latency_ms')
_NAME = re.compile(r'^[A-Za-z0-9_.-]+$')


def define_flags():
  flags.DEFINE_list('builds', None,
                    'name=python pairs, comma separated: a name for each '
                    'build and the interpreter of its environment (name:python '
                    'works too). The first is the baseline of the ratios.')
  flags.DEFINE_integer('rounds', 3,
                       'Invocations of the benchmark per build; the report '
                       'gives medians over them.')
  flags.DEFINE_string('tag', None,
                      'Names the outputs compare_<tag>.{md,json} (default: '
                      'the build names joined by "_").')


class UsageError(ValueError):
  """A flag has a value this script cannot use."""


def parse_builds(pairs):
  """[(name, absolute interpreter path)] from `name=python` strings.

  Raises:
    UsageError: naming --builds, for a malformed pair, a repeated or odd
      name, an interpreter that is not an executable file, or fewer than
      two builds.
  """
  builds = []
  for pair in pairs or []:
    separator = '=' if '=' in pair else ':'
    name, _, python = pair.partition(separator)
    if not name or not python:
      raise UsageError('--builds=%s: expected name=python, e.g. '
                       'stock=.venv/tf1/bin/python.' % pair)
    if not _NAME.match(name) or name in [n for n, _ in builds]:
      raise UsageError('--builds: %r is %s; names are letters, digits, "_", '
                       '"-" and ".", each once.' % (
                           name, 'repeated' if _NAME.match(name) else 'not '
                           'a valid name'))
    # Not resolved through links: a venv's python is a link whose target
    # would run outside the venv.
    python = os.path.abspath(os.path.expanduser(python))
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
      raise UsageError('--builds: the interpreter of %s, %s, is not an '
                       'executable file (build its environment first, e.g. '
                       '`make venv TF=1 TF1_BUILD=onednn`).' % (name, python))
    builds.append((name, python))
  if len(builds) < 2:
    raise UsageError('--builds needs at least two name=python pairs, got %d.'
                     % len(builds))
  return builds


def invocation_order(names, rounds):
  """[(round, name)] in run order; round r starts with build r mod n."""
  order = []
  for round_index in range(rounds):
    shift = round_index % len(names)
    for name in names[shift:] + names[:shift]:
      order.append((round_index + 1, name))
  return order


def passed_on_flags(flag_values):
  """The benchmark flags set on the command line, as --name=value strings.

  The benchmark's flags are those `options.define_flags` defined (defined
  here too, so that they are checked before any run).

  Raises:
    UsageError: for a flag this script sets itself, or a benchmark flag
      value benchmark.py would refuse (checked here, before any run).
  """
  benchmark_flags = set(flag.name for flag in
                        flag_values.get_flags_for_module(options))
  passed = []
  for name in sorted(benchmark_flags):
    flag = flag_values[name]
    if not flag.present or name in _NOT_PASSED:
      continue
    if name in _CONTROLLED:
      raise UsageError('--%s is not passed on to the benchmark: %s.' %
                       (name, _CONTROLLED[name]))
    passed.append(flag.serialize())
  if flag_values['measurements'].present and not flag_values.measurements:
    raise UsageError('--measurements is empty: name one or more (the int8 '
                     'agreement alone is benchmark.py\'s).')
  try:
    options.resolve_options(flag_values)
  except options.UsageError as e:
    raise UsageError(str(e))
  return passed


def benchmark_command(python, passed, output_dir):
  return [python, BENCHMARK, '--runs=1', '--noint8_agreement',
          '--output_dir=%s' % output_dir] + list(passed)


def merge(invocations, build_names):
  """Medians per build of every record, and each build's ratio to the first.

  Args:
    invocations: dicts with `build` and `results` (a benchmark result as
      written to its JSON, or None when the invocation wrote none).
    build_names: builds in report order; the first is the baseline.

  Returns:
    (summaries, rows): {build: `report.summarize` rows} and a list of dicts
    with `model`, `measurement`, `impl`, `builds` ({build: {metric: median,
    'runs': n}} or None) and `ratio` ({build: {metric: build / first}}).
  """
  records = dict((name, []) for name in build_names)
  model_names, measurements, macs = [], [], {}
  for invocation in invocations:
    results = invocation['results']
    if not results:
      continue
    records[invocation['build']].extend(results['runs'])
    for model in results['meta']['models']:
      if model not in model_names:
        model_names.append(model)
    for measurement in results['meta']['measurements']:
      if measurement not in measurements:
        measurements.append(measurement)
    macs.update((m, v['macs']) for m, v in results['macs'].items())
  measurements = [m for m in models.MEASUREMENT_ORDER if m in measurements]
  summaries = dict((name, report.summarize(records[name], macs, model_names,
                                           measurements))
                   for name in build_names)
  rows = []
  for index, first_row in enumerate(summaries[build_names[0]]):
    for impl in models.IMPLEMENTATIONS:
      per_build = dict((name, summaries[name][index][impl])
                       for name in build_names)
      if not any(per_build.values()):
        continue
      rows.append({'model': first_row['model'],
                   'measurement': first_row['measurement'], 'impl': impl,
                   'builds': per_build,
                   'ratio': _ratios(per_build, build_names)})
  return summaries, rows


def _ratios(per_build, build_names):
  base = per_build[build_names[0]] or {}
  ratios = {}
  for name in build_names[1:]:
    metrics = per_build[name] or {}
    ratios[name] = dict((key, metrics[key] / base[key]) for key in COMPARED
                        if metrics.get(key) and base.get(key))
  return ratios


def _fmt(value, digits):
  return 'n/a' if value is None else '%.*f' % (digits, value)


def markdown(results):
  """The comparison table and how it was measured, as Markdown."""
  meta = results['meta']
  names = [build['name'] for build in meta['builds']]
  lines = ['## Builds compared: %s' % ' vs '.join(names), '']
  for build in meta['builds']:
    lines.append('- %s: `%s`, TensorFlow %s, Python %s, oneDNN: %s' % (
        build['name'], build['python'], build.get('tensorflow', '?'),
        build.get('python_version', '?'), build.get('onednn_opts', '?')))
  lines.append('- Medians of %d rounds; each round runs `benchmark.py '
               '--runs=1` once per build, the first build moving on by one '
               'each round. Machine: %s; load average (1 min) %.2f before, '
               '%.2f after; %s; wall time %.0f s.' % (
                   meta['rounds'], meta['cpu_model'], meta['load_before'][0],
                   meta['load_after'][0], meta['date'], meta['wall_s']))
  lines.append('- Command: `%s`' % meta['command'])
  lines.append('')
  header = ['model', 'measurement', 'impl']
  for name in names:
    header.extend(['%s img/s' % name, '%s b1 ms' % name])
  for name in names[1:]:
    header.extend(['%s / %s img/s' % (name, names[0]),
                   '%s / %s b1 ms' % (name, names[0])])
  table = []
  for row in results['comparison']:
    line = [row['model'], report.LABELS[row['measurement']], row['impl']]
    for name in names:
      metrics = row['builds'][name] or {}
      line.extend([_fmt(metrics.get('images_per_sec'), 2),
                   _fmt(metrics.get('latency_ms'), 2)])
    for name in names[1:]:
      ratio = row['ratio'][name]
      line.extend(['**%s**' % _fmt(ratio.get(key), 2) if key in ratio
                   else 'n/a' for key in COMPARED])
    table.append(line)
  lines.extend(report._table(header, table))  # pylint: disable=protected-access
  lines.append('')
  failed = [i for i in results['invocations'] if i['failed']]
  if failed:
    lines.extend(['### Failures', ''])
    lines.extend('- round %d %s: %s' % (i['round'], i['build'], i['failed'])
                 for i in failed)
    lines.append('')
  return '\n'.join(lines)


def _run_invocation(python, passed, runs_dir, round_index, name):
  """Runs one benchmark invocation; returns its record (results or failure)."""
  output_dir = os.path.join(runs_dir, 'round%d_%s' % (round_index, name))
  os.makedirs(output_dir)
  log_path = os.path.join(output_dir, 'benchmark.log')
  env = dict(os.environ)
  # The build's own tools (TF 1.15's TFLite converter) come first on PATH.
  env['PATH'] = os.path.dirname(python) + os.pathsep + env.get('PATH', '')
  start = time.time()
  with open(log_path, 'w') as log:
    code = subprocess.call(benchmark_command(python, passed, output_dir),
                           stdout=log, stderr=subprocess.STDOUT, env=env,
                           cwd=_REPO_ROOT)
  found = glob.glob(os.path.join(output_dir, 'benchmark_*.json'))
  results = None
  if found:
    with open(found[0]) as f:
      results = json.load(f)
  failed = ''
  if results is None:
    failed = 'benchmark.py exited with %d and wrote no results (%s)' % (
        code, log_path)
  elif results['errors']:
    failed = '%d measurement(s) failed (%s)' % (len(results['errors']),
                                                log_path)
  return {'round': round_index, 'build': name, 'exit_code': code,
          'wall_s': time.time() - start, 'log': log_path, 'failed': failed,
          'results': results}


def _build_meta(builds, invocations):
  meta = []
  for name, python in builds:
    entry = {'name': name, 'python': python}
    for invocation in invocations:
      if invocation['build'] == name and invocation['results']:
        env = invocation['results']['meta']['environment']
        entry.update(tensorflow=env['tensorflow'], python_version=env['python'],
                     onednn_opts=env.get('onednn_opts'))
        break
    meta.append(entry)
  return meta


def run_comparison(builds, rounds, passed, output_dir, tag):
  """Runs every invocation and returns the comparison (as in the JSON)."""
  start, load_before = time.time(), os.getloadavg()
  runs_dir = os.path.join(output_dir, 'compare_%s_runs' % tag)
  pythons = dict(builds)
  order = invocation_order([name for name, _ in builds], rounds)
  invocations = []
  for count, (round_index, name) in enumerate(order, 1):
    print('[%d/%d] round %d, %s: benchmark.py under %s' % (
        count, len(order), round_index, name, pythons[name]))
    sys.stdout.flush()
    invocation = _run_invocation(pythons[name], passed, runs_dir, round_index,
                                 name)
    print('    %s in %.0f s' % (invocation['failed'] or 'done',
                                invocation['wall_s']))
    invocations.append(invocation)
  summaries, rows = merge(invocations, [name for name, _ in builds])
  first = next((i['results'] for i in invocations if i['results']), None)
  meta = {'builds': _build_meta(builds, invocations), 'rounds': rounds,
          'passed_on': passed, 'load_before': list(load_before),
          'load_after': list(os.getloadavg()), 'wall_s': time.time() - start,
          'cpu_model': first['meta']['cpu_model'] if first else 'unknown',
          'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
          'command': 'python benchmarks/compare_builds.py ' +
                     ' '.join(sys.argv[1:])}
  return {'meta': meta, 'summaries': summaries, 'comparison': rows,
          'invocations': [dict((k, v) for k, v in i.items()
                               if k != 'results') for i in invocations]}


def _resolve(flag_values):
  builds = parse_builds(flag_values.builds)
  if flag_values.rounds < 1:
    raise UsageError('--rounds must be >= 1, got %d.' % flag_values.rounds)
  tag = flag_values.tag or '_'.join(name for name, _ in builds)
  if not _NAME.match(tag):
    raise UsageError('--tag=%s: use letters, digits, "_", "-" and ".".' % tag)
  return builds, tag, passed_on_flags(flag_values)


def main(argv):
  if len(argv) > 1:
    sys.stderr.write('compare_builds.py: unexpected arguments %s. Pass '
                     'options as --flag=value (see --help).\n' %
                     ' '.join(argv[1:]))
    return 2
  try:
    builds, tag, passed = _resolve(FLAGS)
  except UsageError as e:
    sys.stderr.write('compare_builds.py: %s Run `python '
                     'benchmarks/compare_builds.py --help` for all flags.\n'
                     % e)
    return 2
  output_dir = FLAGS.output_dir
  runs_dir = os.path.join(output_dir, 'compare_%s_runs' % tag)
  if os.path.exists(runs_dir) and os.listdir(runs_dir):
    sys.stderr.write('compare_builds.py: %s holds an earlier comparison\'s '
                     'runs. Move it away or pass another --tag.\n' % runs_dir)
    return 2
  results = run_comparison(builds, FLAGS.rounds, passed, output_dir, tag)
  paths = [os.path.join(output_dir, 'compare_%s.%s' % (tag, ext))
           for ext in ('json', 'md')]
  with open(paths[0], 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  text = markdown(results)
  with open(paths[1], 'w') as f:
    f.write(text + '\n')
  print()
  print(text)
  print('Wrote %s and %s' % (paths[1], paths[0]))
  failed = [i for i in results['invocations'] if i['failed']]
  if failed:
    sys.stderr.write('compare_builds.py: %d invocation(s) had failures; see '
                     'Failures in %s.\n' % (len(failed), paths[1]))
    return 1
  return 0


if __name__ == '__main__':
  options.define_flags()
  define_flags()
  flags.adopt_module_key_flags(options)
  app.run(main)
