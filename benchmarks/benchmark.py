#!/usr/bin/env python
r"""Benchmarks our slim MobileNets side by side with keras.applications.

    make bench [TF=2]                       # full run (mobilenet_v1/v2/v3, 224)
    make bench BENCH_ARGS=--quick           # smoke run (small, one run)
    python benchmarks/benchmark.py --models=mobilenet_v1 --runs=5

For each model, and for ours and the Keras equivalent in turn (runs
interleaved, alternating which goes first), it measures in a process of its
own:

* training images/s on a synthetic in-memory batch (`train_synthetic`) and
  from TFRecords through `datasets/input_pipeline.py` with inception
  preprocessing (`train_tfrecord`), in a bare `session.run(train_op)` loop;
  the same loop with the dataset's own head (`train_loop`), and what users
  run on those TFRecords (`train_script`): `train_image_classifier.py`
  against Keras `model.fit` (benchmarks/e2e.py);
* batch-1 latency and batch-N images/s of the checkpoint graph
  (`infer_checkpoint`), the frozen graph (`infer_frozen`), the float
  TFLite model (`infer_tflite`) and the full-integer one
  (`infer_tflite_int8`);
* the peak resident memory of each;

and, untimed, the top-1 agreement of the int8 TFLite model with the float
one on the validation split (`--int8_agreement`). Networks the running
stack lacks (MobileNet V3 before nets.mobilenet.mobilenet_v3 exists; its
Keras side on TF 1.15) are skipped with a note. It then writes medians,
ratios ours/Keras, multiply-adds (from `nets/model_analysis.py`) and
GMAC/s, and the targets of issues 7 and 16 as
`<output_dir>/benchmark_<stack>[_quick].md` and `.json` (the JSON also has
every run). Exits non-zero if any measurement failed.
"""


from concurrent import futures
import datetime
import itertools
import json
import os
import shutil
import sys
import tempfile
import time

# Run as a script (`python benchmarks/benchmark.py`): import from the repo.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import models  # noqa: E402
from benchmarks import options  # noqa: E402
from benchmarks import pytorch_column  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks import runner  # noqa: E402

FLAGS = flags.FLAGS

def _cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except (IOError, OSError):
    pass
  return 'unknown CPU'


def _cpu_flags():
  """The CPU's vector and matrix extensions that decide which kernels run."""
  wanted = ('avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
            'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8')
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          present = set(line.split(':', 1)[1].split())
          return [flag for flag in wanted if flag in present]
  except (IOError, OSError):
    pass
  return []


def _log(message):
  print(message)
  sys.stdout.flush()


def _measure_spec(opts, model, impl, measurement, paths, run):
  """The parameters of one measurement task."""
  task, kind = models.MEASUREMENTS[measurement]
  spec = {'impl': impl, 'model_name': model, 'image_size': opts['image_size'],
          'settings': opts['settings']}
  if task in ('train', 'train_script'):
    spec.update(input=kind, train_batch_size=opts['train_batch_size'],
                warmup_steps=opts['warmup_steps'],
                train_steps=opts['train_steps'],
                dataset_dir=paths.get('dataset_dir'),
                num_readers=opts['num_readers'],
                num_preprocessing_threads=opts['num_preprocessing_threads'])
    if measurement == 'train_loop':
      spec['num_classes'] = paths['num_classes']
    if task == 'train_script':
      # The script gets killed before its task is, so it is never orphaned.
      spec.update(warmup_steps=opts['script_warmup_steps'],
                  keras_fit=opts['keras_fit'],
                  timeout_s=max(60, opts['task_timeout'] - 60),
                  work_dir=_script_work_dir(paths, model, impl, run))
      if opts['quick']:
        # A smoke run: the script in the task's process, without summaries.
        spec.update(train_in_process=True, save_summaries_secs=0)
  else:
    spec.update(format=kind, infer_batch_size=opts['infer_batch_size'],
                warmup_iters=opts['warmup_iters'],
                latency_iters=opts['latency_iters'],
                throughput_iters=opts['throughput_iters'])
    spec.update(paths['exports'][(model, impl)])
  return task, spec


def _script_work_dir(paths, model, impl, run):
  """Where a train_script measurement's train_dir and log go."""
  return os.path.join(paths['work_dir'], 'script', model,
                      '%s_run%d' % (impl, run))


def _describe(result):
  parts = []
  if 'latency_ms' in result:
    parts.append('b1 %.2f ms' % result['latency_ms'])
  if 'images_per_sec' in result:
    parts.append('%.2f img/s' % result['images_per_sec'])
  parts.append('peak %.0f MiB' % result['peak_rss_mib'])
  return ', '.join(parts)


def available_implementations(opts, environment):
  """Which implementations of each model the running stack has.

  Args:
    opts: resolved options.
    environment: the `environment` task's result (`nets`: nets_factory
      names; `keras_applications`: the application classes that exist).

  Returns:
    ({model: [implementations]} of the models that run, [notes on what
    was left out]).
  """
  impls, notes = {}, []
  for model in opts['models']:
    if model not in environment['nets']:
      notes.append('%s: not in nets_factory on this branch; skipped.' % model)
      continue
    keras_class = models.KERAS_EQUIVALENTS.get(model, (None,))[0]
    impls[model] = [impl for impl in opts['implementations']
                    if impl != 'keras' or
                    keras_class in environment['keras_applications']]
    if keras_class is None and 'keras' in opts['implementations']:
      notes.append('%s: keras.applications has no equivalent; ours (and '
                   'PyTorch) only.' % model)
    elif 'keras' in opts['implementations'] and 'keras' not in impls[model]:
      notes.append('%s: keras.applications.%s does not exist in %s; ours '
                   'only.' % (model, keras_class, environment['keras']))
  return impls, notes


def _agreement_specs(opts, work_dir, paths, model_names, trained=None):
  """One `agreement` task spec per model.

  `trained`: {model: train_dir} of networks trained on the dataset here,
  which a model without --agreement_checkpoints takes instead of training
  one of its own.
  """
  trained = trained or {}
  specs = []
  for model in model_names:
    specs.append((model, {
        'model_name': model, 'image_size': opts['image_size'],
        'dataset_dir': (opts['agreement_dataset_dir'] or
                        paths['dataset_dir']),
        'preprocessing': opts['agreement_preprocessing'],
        'work_dir': os.path.join(work_dir, 'agreement', model),
        'calibration_images': opts['calibration_images'],
        'settings': opts['settings'],
        'checkpoint': (opts['agreement_checkpoints'].get(model) or
                       trained.get(model)),
        'train_steps': opts['agreement_train_steps'],
        'train_batch_size': opts['train_batch_size'],
        'num_readers': opts['num_readers'],
        'num_preprocessing_threads': opts['num_preprocessing_threads'],
        'convert_in_process': opts['convert_in_process'],
        'train_in_process': opts['quick'],
        'save_summaries_secs': 0 if opts['quick'] else None}))
  return specs


def run_benchmark(opts, work_dir, command):
  """Runs every task and returns the results dict (as written to JSON)."""
  start = time.time()
  load_before = os.getloadavg()
  log_dir = os.path.join(work_dir, 'logs')
  os.makedirs(log_dir)
  tasks = runner.Runner(opts['start_method'], opts['task_timeout'], log_dir)
  _log('Benchmark work dir: %s (task logs in %s)' % (work_dir, log_dir))

  # Fresh, so that its starting memory is that of a new process that has
  # imported TensorFlow, the networks and Keras.
  environment, _ = tasks.run('environment', {}, fresh=True)
  _log('TensorFlow %s, Python %s, Keras: %s' % (
      environment['tensorflow'], environment['python'], environment['keras']))
  impls, skipped = available_implementations(opts, environment)
  for note in skipped:
    _log('Skipped: ' + note)
  model_names = [m for m in opts['models'] if m in impls]
  torch_tasks, torch_environment, torch_note = pytorch_column.probe(
      opts['pytorch_python'], opts['task_timeout'], log_dir)
  _log(torch_note or 'PyTorch %s in %s' % (torch_environment['torch'],
                                           torch_tasks.python))

  # Preparation: multiply-adds, the TFRecord set, exported models.
  prep = [('analyze', model, {'model_name': model,
                              'image_size': opts['image_size']})
          for model in model_names]
  paths = {'exports': {}, 'work_dir': work_dir}
  uses_records = [m for m in opts['measurements']
                  if models.MEASUREMENTS[m][1] == 'tfrecord']
  if uses_records or (opts['int8_agreement'] and
                      not opts['agreement_dataset_dir']):
    paths['dataset_dir'] = os.path.join(work_dir, 'shapes')
    prep.append(('dataset', None, {
        'dataset_dir': paths['dataset_dir'],
        'tfrecord_image_size': opts['tfrecord_image_size'],
        'tfrecord_images': opts['tfrecord_images'],
        'validation_images': opts['validation_images']}))
  if any(m.startswith('infer_') for m in opts['measurements']):
    for model in model_names:
      for impl in impls[model]:
        prep.append(('export', (model, impl), {
            'impl': impl, 'model_name': model,
            'image_size': opts['image_size'],
            'infer_batch_size': opts['infer_batch_size'],
            'fold_batch_norms': opts['fold_batch_norms'],
            'int8': 'infer_tflite_int8' in opts['measurements'],
            'onnx': 'infer_onnx' in opts['measurements'],
            'convert_in_process': opts['convert_in_process'],
            'export_dir': os.path.join(work_dir, 'export', model, impl)}))
  macs = {}
  with futures.ThreadPoolExecutor(opts['jobs']) as pool:
    done = [(task, key, pool.submit(tasks.run, task, spec))
            for task, key, spec in prep]
    for task, key, future in done:
      result, wall_s = future.result()
      if task == 'analyze':
        macs[key] = result
      elif task == 'dataset':
        opts['tfrecord_images'] = result['num_examples']
        paths['num_classes'] = result['num_classes']
        _log('TFRecords: %d images of %dx%d in %.0f s' % (
            result['num_examples'], opts['tfrecord_image_size'],
            opts['tfrecord_image_size'], wall_s))
      else:
        paths['exports'][key] = {
            k: v for k, v in result.items()
            if k in ('checkpoint', 'frozen', 'output_name', 'onnx') or
            k.startswith('tflite_')}
        macs[key[0]]['params_%s' % key[1]] = result['params']
        _log('Exported %s %s in %.0f s' % (key[0], key[1], wall_s))

  # Measurements, interleaved ours / Keras.
  plan = []
  for run in range(opts['runs']):
    for model in model_names:
      for measurement in opts['measurements']:
        # Alternate which implementation goes first, so drifting machine
        # load favours neither.
        order = list(impls[model])
        if torch_tasks:
          order += pytorch_column.implementations_for(model, measurement)
        if run % 2:
          order.reverse()
        plan.extend((run + 1, model, measurement, impl) for impl in order)
  records, errors = [], []
  counter = itertools.count(1)

  trace_dir = opts['trace_dir']
  if opts['profile'] and trace_dir and not os.path.isdir(trace_dir):
    os.makedirs(trace_dir)

  def measure(item):
    run, model, measurement, impl = item
    if impl in pytorch_column.IMPLEMENTATIONS:
      task, spec = pytorch_column.measure_spec(opts, model, measurement, impl)
    else:
      task, spec = _measure_spec(opts, model, impl, measurement, paths, run)
    # Traced: the graph runs of this process (not TFLite, not the script).
    traceable = task == 'train' or measurement in ('infer_checkpoint',
                                                   'infer_frozen')
    if opts['profile'] and run == 1 and traceable:
      spec['profile'] = True
      if trace_dir:
        spec['trace_path'] = os.path.join(trace_dir, '%s_%s_%s_%s.json' % (
            environment['stack'], model, measurement, impl))
    record = {'model': model, 'measurement': measurement, 'impl': impl,
              'run': run, 'fresh_process': tasks.fresh(run == 1),
              'load_1m_before': os.getloadavg()[0]}
    try:
      if impl in pytorch_column.IMPLEMENTATIONS:
        record['result'], record['wall_s'] = torch_tasks.run(task, spec)
      else:
        record['result'], record['wall_s'] = tasks.run(
            task, spec, fresh=record['fresh_process'])
      status = _describe(record['result'])
    except runner.TaskError as e:
      record['error'] = str(e)
      status = 'FAILED: %s' % str(e).strip().split('\n')[-1]
    _log('[%d/%d] run %d %s %s %s: %s (load %.2f)' % (
        next(counter), len(plan), run, model, measurement, impl, status,
        record['load_1m_before']))
    return record

  with futures.ThreadPoolExecutor(opts['jobs']) as pool:
    records = list(pool.map(measure, plan))
  errors = [record for record in records if 'error' in record]

  # Untimed: one agreement check per model, after the timings.
  agreement = {}
  if opts['int8_agreement']:
    # Training the network (no checkpoint given) takes longer than a
    # measurement: these tasks get AGREEMENT_TIMEOUTS task timeouts.
    slow_tasks = runner.Runner(
        opts['start_method'], options.AGREEMENT_TIMEOUTS * opts['task_timeout'],
        log_dir)
    # A smoke run reuses the network its training-script run trained.
    trained = {} if not opts['quick'] or opts['agreement_dataset_dir'] else {
        r['model']: os.path.join(_script_work_dir(
            paths, r['model'], 'ours', r['run']), 'train_dir')
        for r in records if r['measurement'] == 'train_script' and
        r['impl'] == 'ours' and 'error' not in r}
    for model, spec in _agreement_specs(opts, work_dir, paths, model_names,
                                        trained):
      spec['timeout_s'] = options.AGREEMENT_TIMEOUTS * opts['task_timeout'] - 60
      try:
        agreement[model], wall_s = slow_tasks.run('agreement', spec,
                                                  fresh=True)
        _log('int8 agreement %s: %.3f on %d images (%.0f s)' % (
            model, agreement[model]['agreement'], agreement[model]['images'],
            wall_s))
      except runner.TaskError as e:
        errors.append({'model': model, 'measurement': 'int8_agreement',
                       'impl': 'ours', 'run': 1, 'error': str(e)})
        _log('int8 agreement %s FAILED: %s' % (
            model, str(e).strip().split('\n')[-1]))

  summary = report.summarize(records, {m: v['macs'] for m, v in macs.items()},
                             model_names, opts['measurements'])
  meta = {k: v for k, v in opts.items()
          if k not in ('output_dir', 'work_dir', 'trace_dir')}
  torch_rows = pytorch_column.summarize(records, model_names)
  meta.update(environment=environment, cpu_model=_cpu_model(),
              cpu_flags=_cpu_flags(),
              models=model_names, skipped=skipped,
              num_classes=paths.get('num_classes'),
              cpus=options.available_cpus(), load_before=list(load_before),
              load_after=list(os.getloadavg()), wall_s=time.time() - start,
              date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
              command=command)
  return {'meta': meta, 'macs': macs, 'summary': summary,
          'agreement': agreement,
          'targets': (report.check_targets(summary, model_names, agreement) +
                      pytorch_column.check_targets(torch_rows)),
          'pytorch': {'python': torch_tasks and torch_tasks.python,
                      'environment': torch_environment, 'note': torch_note,
                      'rows': torch_rows},
          'errors': errors, 'runs': records}


def write_results(results, output_dir):
  """Writes benchmark_<stack>[_quick].{json,md}; returns their paths."""
  if not os.path.isdir(output_dir):
    os.makedirs(output_dir)
  name = 'benchmark_%s%s' % (results['meta']['environment']['stack'],
                             '_quick' if results['meta']['quick'] else '')
  json_path = os.path.join(output_dir, name + '.json')
  md_path = os.path.join(output_dir, name + '.md')
  with open(json_path, 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  with open(md_path, 'w') as f:
    f.write(markdown(results) + '\n')
  return json_path, md_path


def markdown(results):
  """The report's Markdown, with the PyTorch column where there is one."""
  lines = [report.markdown(results)]
  if 'pytorch' in results:
    lines.extend(pytorch_column.markdown(results['pytorch']))
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    sys.stderr.write('benchmark.py: unexpected arguments %s. Pass options as '
                     '--flag=value (see --help).\n' % ' '.join(argv[1:]))
    return 2
  try:
    opts = options.resolve_options(FLAGS)
  except options.UsageError as e:
    sys.stderr.write('benchmark.py: %s Run `python benchmarks/benchmark.py '
                     '--help` for all flags.\n' % e)
    return 2
  # Children inherit the environment: quiet TensorFlow logging, and TF
  # 1.15's TFLite converter binary (next to the interpreter) on PATH.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  bin_dir = os.path.dirname(sys.executable)
  if bin_dir not in os.environ.get('PATH', '').split(os.pathsep):
    os.environ['PATH'] = bin_dir + os.pathsep + os.environ.get('PATH', '')
  os.environ['PYTHONPATH'] = _REPO_ROOT + os.pathsep + os.environ.get(
      'PYTHONPATH', '')
  if opts['settings']['xla']:
    # Without this flag the session's jit level only compiles GPU clusters.
    os.environ['TF_XLA_FLAGS'] = (os.environ.get('TF_XLA_FLAGS', '') +
                                  ' --tf_xla_cpu_global_jit').strip()

  temporary = opts['work_dir'] is None
  work_dir = tempfile.mkdtemp(prefix='mobilenet_bench_') if temporary else (
      opts['work_dir'])
  if not temporary and os.path.exists(work_dir) and os.listdir(work_dir):
    sys.stderr.write('benchmark.py: --work_dir=%s is not empty. Pass an empty '
                     'or new directory (or none, for a temporary one).\n' %
                     work_dir)
    return 2
  command = 'python benchmarks/benchmark.py ' + ' '.join(sys.argv[1:])
  try:
    results = run_benchmark(opts, work_dir, command.strip())
  except runner.TaskError as e:
    sys.stderr.write('benchmark.py: a preparation step failed: %s\n' % e)
    return 1
  finally:
    if temporary:
      shutil.rmtree(work_dir, ignore_errors=True)
  json_path, md_path = write_results(results, opts['output_dir'])
  print()
  print(markdown(results))
  print('Wrote %s and %s' % (md_path, json_path))
  if results['errors']:
    sys.stderr.write('benchmark.py: %d measurement(s) failed; see Errors in '
                     '%s.\n' % (len(results['errors']), md_path))
    return 1
  return 0


if __name__ == '__main__':
  options.define_flags()
  # --help lists the flags, which options.py defines.
  flags.adopt_module_key_flags(options)
  app.run(main)
