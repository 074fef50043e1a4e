"""Turns the benchmark's raw runs into medians, ratios, targets and Markdown.

Pure Python (no TensorFlow): `summarize` reduces the per-run records to one
row per (model, measurement) with the median of each metric for ours and
for Keras and the ratio ours/Keras; `check_targets` evaluates the goals of
issue 7; `markdown` renders the tables.
"""


import collections

from benchmarks import models

# Metrics each kind of task reports (medians over runs are taken of each).
TRAIN_METRICS = ('images_per_sec', 'images_per_cpu_sec', 'first_step_s',
                 'peak_rss_mib', 'rss_start_mib')
INFER_METRICS = ('latency_ms', 'latency_ms_p90', 'images_per_sec',
                 'images_per_cpu_sec', 'peak_rss_b1_mib', 'peak_rss_mib',
                 'rss_start_mib')
RATIO_METRICS = ('images_per_sec', 'images_per_cpu_sec', 'latency_ms',
                 'peak_rss_mib')
MEMORY_METRICS = ('peak_rss_b1_mib', 'peak_rss_mib', 'rss_start_mib')

# Goals of issue 7 (ratios measured in one run).
TRAIN_VS_KERAS = 1.2
INFER_VS_KERAS = 1.0
TFLITE_VS_FROZEN_LATENCY = 1.0 / 3.0
TFRECORD_VS_SYNTHETIC = 0.9
# Goals of issue 16: the training script against Keras fit, its per-step
# overhead over a bare loop on the same input, int8 TFLite latency and
# agreement with float.
SCRIPT_VS_KERAS_FIT = 1.2
SCRIPT_OVERHEAD = 0.03
INT8_VS_FROZEN_LATENCY = 1.0 / 3.0
INT8_AGREEMENT = 0.99

# How the tables name each measurement (its input, or what runs).
LABELS = {
    'train_synthetic': 'synthetic',
    'train_tfrecord': 'tfrecord',
    'train_loop': 'loop',
    'train_script': 'script',
    'infer_checkpoint': 'checkpoint',
    'infer_frozen': 'frozen',
    'infer_tflite': 'tflite',
    'infer_tflite_int8': 'tflite_int8',
    'infer_onnx': 'onnx',
}


def median(values):
  """The median of a non-empty list of numbers."""
  ordered = sorted(values)
  middle = len(ordered) // 2
  if len(ordered) % 2:
    return float(ordered[middle])
  return (ordered[middle - 1] + ordered[middle]) / 2.0


def _task_of(measurement):
  return models.MEASUREMENTS[measurement][0]


def summarize(records, macs, model_names, measurements):
  """One row per (model, measurement): medians for ours and Keras, ratios.

  Timings are medians over all successful runs; memory over the runs in a
  fresh process (`fresh_process`) when there are any, since a forked
  process's resident memory leaves out library pages (benchmarks/runner.py).

  Args:
    records: the raw runs: dicts with `model`, `measurement`, `impl`,
      `fresh_process` and `result` (a task's result dict) or `error`.
    macs: {model: multiply-adds per image}.
    model_names: models in report order.
    measurements: measurements in report order.

  Returns:
    A list of dicts with `model`, `measurement`, `ours` and `keras` (dicts of
    median metrics plus `runs`, `memory_runs`, `memory_from` ('fresh' or
    'forked') and `gmacs_per_sec`, or None when no run succeeded) and
    `ratio` ({metric: ours / keras}).
  """
  groups = collections.defaultdict(list)
  for record in records:
    if 'result' in record:
      groups[(record['model'], record['measurement'], record['impl'])].append(
          record)
  rows = []
  for model in model_names:
    for measurement in measurements:
      keys = (INFER_METRICS if _task_of(measurement) == 'infer'
              else TRAIN_METRICS)
      row = {'model': model, 'measurement': measurement, 'ratio': {}}
      for impl in models.IMPLEMENTATIONS:
        group = groups.get((model, measurement, impl))
        if not group:
          row[impl] = None
          continue
        fresh = [r for r in group if r.get('fresh_process')]
        memory_group = fresh or group
        metrics = {}
        for key in keys:
          source = memory_group if key in MEMORY_METRICS else group
          values = [r['result'][key] for r in source if key in r['result']]
          if len(values) == len(source):
            metrics[key] = median(values)
        metrics.update(runs=len(group), memory_runs=len(memory_group),
                       memory_from='fresh' if fresh else 'forked')
        if macs.get(model):
          # Forward multiply-adds per image times images per second.
          metrics['gmacs_per_sec'] = (macs[model] *
                                      metrics['images_per_sec'] / 1e9)
        row[impl] = metrics
      if row['ours'] and row['keras']:
        for key in RATIO_METRICS:
          if row['keras'].get(key):
            row['ratio'][key] = row['ours'][key] / row['keras'][key]
      rows.append(row)
  return rows


def _find(rows, model, measurement):
  for row in rows:
    if row['model'] == model and row['measurement'] == measurement:
      return row
  return None


def _target(name, model, value, goal, higher_is_better, description,
            value_cpu=None):
  met = None
  if value is not None:
    met = value >= goal if higher_is_better else value <= goal
  return {'target': name, 'model': model, 'value': value,
          'value_cpu': value_cpu, 'goal': goal,
          'higher_is_better': higher_is_better, 'met': met,
          'description': description}


def _ours_ratio(rows, model, numerator, denominator, key):
  """ours[key] of one measurement over ours[key] of another, or None."""
  top, bottom = _find(rows, model, numerator), _find(rows, model, denominator)
  if top is None or bottom is None:
    return None, False
  if not (top['ours'] and bottom['ours'] and top['ours'].get(key) and
          bottom['ours'].get(key)):
    return None, True
  return top['ours'][key] / bottom['ours'][key], True


def _issue16_targets(rows, model, agreement):
  """The goals of issue 16 for one model."""
  targets = []
  script = _find(rows, model, 'train_script')
  if script is not None:
    targets.append(_target(
        'script_vs_keras_fit', model, script['ratio'].get('images_per_sec'),
        SCRIPT_VS_KERAS_FIT, True,
        'training img/s train_image_classifier.py / Keras fit'))
  # Overhead: how much longer a script step takes than a bare-loop step.
  ratio, present = _ours_ratio(rows, model, 'train_loop', 'train_script',
                               'images_per_sec')
  if present:
    targets.append(_target(
        'script_overhead', model, None if ratio is None else ratio - 1.0,
        SCRIPT_OVERHEAD, False,
        'per-step overhead of train_image_classifier.py over a bare '
        'session.run loop (bare img/s / script img/s - 1)'))
  ratio, present = _ours_ratio(rows, model, 'infer_tflite_int8',
                               'infer_frozen', 'latency_ms')
  if present:
    targets.append(_target(
        'int8_vs_frozen_latency', model, ratio, INT8_VS_FROZEN_LATENCY, False,
        'batch-1 latency int8 TFLite / float frozen graph (ours)'))
  if agreement and model in agreement:
    targets.append(_target(
        'int8_agreement', model, agreement[model]['agreement'],
        INT8_AGREEMENT, True, 'top-1 agreement int8 / float TFLite'))
  return targets


def check_targets(rows, model_names, agreement=None):
  """The goals of issues 7 and 16, evaluated on the summary rows.

  Args:
    rows: from `summarize`.
    model_names: models in report order.
    agreement: {model: the `agreement` task's result}, if measured.

  Returns:
    A list of dicts with `target`, `model`, `value` (None when a figure is
    missing), `value_cpu` (the same ratio per second of CPU time, for the
    ours/Keras targets), `goal`, `higher_is_better`, `met` (by `value`;
    None when unknown) and a `description`.
  """
  targets = []
  for model in model_names:
    for measurement in ('train_synthetic', 'train_tfrecord'):
      row = _find(rows, model, measurement)
      if row is not None:
        targets.append(_target(
            'train_vs_keras', model, row['ratio'].get('images_per_sec'),
            TRAIN_VS_KERAS, True,
            'training img/s ours/Keras (%s input)' % LABELS[measurement],
            row['ratio'].get('images_per_cpu_sec')))
    for measurement in ('infer_checkpoint', 'infer_frozen', 'infer_tflite',
                        'infer_tflite_int8'):
      row = _find(rows, model, measurement)
      if row is not None:
        targets.append(_target(
            'infer_vs_keras', model, row['ratio'].get('images_per_sec'),
            INFER_VS_KERAS, True,
            'inference batch-N img/s ours/Keras (%s)' % LABELS[measurement],
            row['ratio'].get('images_per_cpu_sec')))
    tflite = _find(rows, model, 'infer_tflite')
    frozen = _find(rows, model, 'infer_frozen')
    if tflite is not None and frozen is not None:
      value = None
      if tflite['ours'] and frozen['ours']:
        value = tflite['ours']['latency_ms'] / frozen['ours']['latency_ms']
      targets.append(_target(
          'tflite_vs_frozen_latency', model, value, TFLITE_VS_FROZEN_LATENCY,
          False, 'batch-1 latency TFLite / frozen graph (ours)'))
    tfrecord = _find(rows, model, 'train_tfrecord')
    synthetic = _find(rows, model, 'train_synthetic')
    if tfrecord is not None and synthetic is not None:
      value = None
      if tfrecord['ours'] and synthetic['ours']:
        value = (tfrecord['ours']['images_per_sec'] /
                 synthetic['ours']['images_per_sec'])
      targets.append(_target(
          'tfrecord_vs_synthetic', model, value, TFRECORD_VS_SYNTHETIC, True,
          'training img/s TFRecord+preprocessing / synthetic (ours)'))
    targets.extend(_issue16_targets(rows, model, agreement))
  return targets


# ----------------------------------------------------------------- Markdown


def _fmt(value, digits=1):
  if value is None:
    return 'n/a'
  return '%.*f' % (digits, value)


def _get(metrics, key):
  return metrics.get(key) if metrics else None


def _ratio(row, key):
  value = row['ratio'].get(key)
  return '**%.2f**' % value if value is not None else 'n/a'


def _table(header, lines):
  out = ['| ' + ' | '.join(header) + ' |',
         '|' + '|'.join(['---'] * len(header)) + '|']
  out.extend('| ' + ' | '.join(line) + ' |' for line in lines)
  return out


def markdown(results):
  """Renders a benchmark result (as written to the JSON) as Markdown.

  Args:
    results: dict with `meta`, `macs`, `summary`, `targets`, `errors`.

  Returns:
    The Markdown text.
  """
  meta = results['meta']
  env = meta['environment']
  settings = meta['settings']
  lines = ['## %s: TensorFlow %s, Python %s%s' % (
      env['stack'].upper(), env['tensorflow'], env['python'],
      ' (quick smoke run)' if meta['quick'] else ''), '']
  lines.append('- Keras: %s' % env['keras'])
  lines.append('- Machine: %s, %d CPU cores usable; load average (1 min) '
               '%.2f before, %.2f after; %s' % (
                   meta['cpu_model'], meta['cpus'], meta['load_before'][0],
                   meta['load_after'][0], meta['date']))
  lines.append('- CPU flags: %s' % (', '.join(meta['cpu_flags']) or 'none of '
                                    'AVX2/AVX-512/AMX') if 'cpu_flags' in meta
               else '- CPU flags: not recorded')
  lines.append('- Threads: intra-op %d, inter-op %d, tf.data preprocessing '
               '%d, TFLite %s; XLA %s; oneDNN: %s' % (
                   settings['intra_op_threads'], settings['inter_op_threads'],
                   meta['num_preprocessing_threads'],
                   (str(settings['intra_op_threads'])
                    if env['stack'] == 'tf2' else '1 (not settable in 1.15)'),
                   'on' if settings['xla'] else 'off', env['onednn_opts']))
  lines.append('- Frozen graphs: ours from `export.freeze` (freeze_graph.py) '
               '%s; Keras from plain `convert_variables_to_constants`' % (
                   'with batch norms folded into the convolutions'
                   if meta.get('fold_batch_norms', True) else
                   'without batch norm folding (--nofold_batch_norms)'))
  starts = {'auto': 'the first in a fresh interpreter, repeats forked',
            'fresh': 'each in a fresh interpreter',
            'forked': 'each forked from a server that imported TensorFlow'}
  lines.append('- Input %dx%d, 1001 classes; training batch %d (RMSProp, '
               'softmax cross-entropy, no weight decay, %d timed steps after '
               'the first and %d warm-up); inference batch 1 (%d timed runs) '
               'and %d (%d timed runs); median of %d interleaved runs, each '
               'in a process of its own (%s)' % (
                   meta['image_size'], meta['image_size'],
                   meta['train_batch_size'], meta['train_steps'],
                   meta['warmup_steps'], meta['latency_iters'],
                   meta['infer_batch_size'], meta['throughput_iters'],
                   meta['runs'], starts[meta['start_method']]))
  lines.append('- TFRecords: %d `shapes` JPEGs of %dx%d, inception '
               'preprocessing (training), %d readers' % (
                   meta['tfrecord_images'], meta['tfrecord_image_size'],
                   meta['tfrecord_image_size'], meta['num_readers']))
  lines.append('- Wall time %.0f s. Command: `%s`' % (meta['wall_s'],
                                                    meta['command']))
  if meta['jobs'] > 1:
    lines.append('- **%d tasks ran at once: the timings are not comparable '
                 '(smoke run).**' % meta['jobs'])
  for note in meta.get('skipped', []):
    lines.append('- Skipped: %s' % note)
  lines.append('')

  summary = results['summary']
  macs = results['macs']
  train_rows = [r for r in summary if _task_of(r['measurement']) != 'infer']
  if train_rows:
    lines.append('### Training (images/s)')
    lines.append('')
    table = []
    for row in train_rows:
      ours, theirs = row['ours'], row['keras']
      table.append([
          row['model'], LABELS[row['measurement']],
          _fmt(_get(ours, 'images_per_sec'), 2),
          _fmt(_get(theirs, 'images_per_sec'), 2),
          _ratio(row, 'images_per_sec'),
          _ratio(row, 'images_per_cpu_sec'),
          _fmt(_get(ours, 'gmacs_per_sec'), 2),
          _fmt(_get(theirs, 'gmacs_per_sec'), 2),
          _fmt(_get(ours, 'peak_rss_mib'), 0),
          _fmt(_get(theirs, 'peak_rss_mib'), 0)])
    lines.extend(_table(['model', 'input', 'ours img/s', 'Keras img/s',
                         'ours/Keras', 'ours/Keras per CPU-s',
                         'ours GMAC/s (fwd)', 'Keras GMAC/s (fwd)',
                         'ours peak MiB', 'Keras peak MiB'], table))
    lines.append('')
    lines.extend(_workload_note(meta, train_rows))
  infer_rows = [r for r in summary if _task_of(r['measurement']) == 'infer']
  if infer_rows:
    batch = meta['infer_batch_size']
    lines.append('### Inference (batch-1 latency, batch-%d throughput)' %
                 batch)
    lines.append('')
    table = []
    for row in infer_rows:
      ours, theirs = row['ours'], row['keras']
      table.append([
          row['model'], LABELS[row['measurement']],
          _fmt(_get(ours, 'latency_ms'), 2),
          _fmt(_get(theirs, 'latency_ms'), 2),
          _ratio(row, 'latency_ms'),
          _fmt(_get(ours, 'images_per_sec'), 1),
          _fmt(_get(theirs, 'images_per_sec'), 1),
          _ratio(row, 'images_per_sec'),
          _ratio(row, 'images_per_cpu_sec'),
          _fmt(_get(ours, 'gmacs_per_sec'), 2),
          '%s / %s' % (_fmt(_get(ours, 'peak_rss_b1_mib'), 0),
                       _fmt(_get(ours, 'peak_rss_mib'), 0)),
          '%s / %s' % (_fmt(_get(theirs, 'peak_rss_b1_mib'), 0),
                       _fmt(_get(theirs, 'peak_rss_mib'), 0))])
    lines.extend(_table(
        ['model', 'format', 'ours b1 ms', 'Keras b1 ms', 'ours/Keras (b1 ms)',
         'ours b%d img/s' % batch, 'Keras b%d img/s' % batch,
         'ours/Keras (img/s)', 'ours/Keras per CPU-s', 'ours GMAC/s',
         'ours peak MiB b1 / b%d' % batch,
         'Keras peak MiB b1 / b%d' % batch], table))
    lines.append('')
  if macs:
    lines.append('Multiply-adds per image (`nets/model_analysis.py`; the '
                 'Keras models have the same layers): ' + ', '.join(
                     '%s %.1f M' % (model, value['macs'] / 1e6)
                     for model, value in sorted(macs.items())) + '. GMAC/s '
                 'counts forward multiply-adds per image times images/s '
                 '(a training step also runs the backward pass, about twice '
                 'the forward work). "per CPU-s" ratios compare images per '
                 'second of the process\'s CPU time, which other load on the '
                 'machine disturbs less than wall time. Peak MiB is the '
                 'process\'s VmHWM, including the interpreter and '
                 'TensorFlow: %s' %
                 _memory_note(results))
    lines.append('')
  lines.extend(_agreement_lines(results.get('agreement')))
  profiles = [r for r in results['runs']
              if 'result' in r and 'profile' in r['result']]
  if profiles:
    lines.append('### Where the time goes (one traced step; share of summed '
                 'op time)')
    lines.append('')
    for record in profiles:
      profile = record['result']['profile']
      total = profile['total_ms'] or 1.0
      lines.append('- %s %s %s (%.0f ms of ops): %s' % (
          record['model'], record['measurement'], record['impl'],
          profile['total_ms'], ', '.join(
              '%s %.0f%%' % (op, 100.0 * ms / total)
              for op, ms in profile['ops'][:8])))
    lines.append('')
  if results['targets']:
    lines.append('### Targets')
    lines.append('')
    table = []
    for target in results['targets']:
      met = {True: 'yes', False: '**no**', None: 'n/a'}[target['met']]
      table.append([target['description'], target['model'],
                    _fmt(target['value'], 2),
                    _fmt(target.get('value_cpu'), 2)
                    if target.get('value_cpu') is not None else '',
                    '%s %.2f' % ('>=' if target['higher_is_better'] else '<=',
                                 target['goal']), met])
    lines.extend(_table(['target', 'model', 'value', 'per CPU-s', 'goal',
                         'met'], table))
    lines.append('')
  if results['errors']:
    lines.append('### Errors')
    lines.append('')
    for error in results['errors']:
      lines.append('- %s %s %s run %d: %s' % (
          error['model'], error['measurement'], error['impl'], error['run'],
          error['error'].strip().split('\n')[-1]))
    lines.append('')
  return '\n'.join(lines)


def _workload_note(meta, train_rows):
  """Says what the loop and script rows run, when the table has them."""
  shown = set(row['measurement'] for row in train_rows)
  if not shown & set(['train_loop', 'train_script']):
    return []
  return [
      '"loop": the bare `session.run(train_op)` loop on the TFRecords with '
      'the dataset\'s head (%d classes, as the script builds it). '
      '"script": ours is `train_image_classifier.py` run as a subprocess '
      '(RMSProp, fixed learning rate, no weight decay, '
      '`--log_every_n_steps=1`, its default hooks, summaries and '
      'checkpoints; images/s from its progress-line timestamps), Keras is '
      '`model.fit` on the same `tf.data` pipeline (%s), over %d timed steps '
      'after the first and %d warm-up; its first-step time counts from the '
      'process start. Peak MiB of the script is its own process\'s.' % (
          meta.get('num_classes', 0),
          '%s, eager, a tf.function per step' % meta.get('keras_fit',
                                                          'tf_keras')
          if meta['environment']['stack'] == 'tf2' else 'graph mode',
          meta['train_steps'],
          meta.get('script_warmup_steps', 0)), '']


def _agreement_lines(agreement):
  """The int8 / float top-1 agreement table."""
  if not agreement:
    return []
  table = []
  for model, result in sorted(agreement.items()):
    table.append([model, '%.4f' % result['agreement'],
                  '%.3f' % result['float_accuracy'],
                  '%.3f' % result['int8_accuracy'],
                  '%.3f' % result.get('int8_tied_top1', 0.0),
                  str(result['images']),
                  ('given checkpoint' if not result['trained_steps'] else
                   'trained %d steps by the script' % result['trained_steps'])])
  lines = ['### int8 TFLite: top-1 agreement with float TFLite', '']
  lines.extend(_table(['model', 'agreement', 'float top-1 accuracy',
                       'int8 top-1 accuracy', 'int8 top-1 tied',
                       'validation images',
                       'weights'], table))
  lines.extend(['', 'Both models come from the same frozen graph (batch '
                'norms folded); the int8 one is full-integer (uint8 input '
                'and output), calibrated on train images as '
                '`export_tflite.py --quantization=full_integer` does. "tied": '
                'images whose int8 top probability (uint8) is shared by '
                'another class, where the first class counts; many ties '
                'mean a network without clear winners (e.g. barely '
                'trained), whose agreement says little.', ''])
  return lines


def _memory_note(results):
  """Says where the peak-memory figures come from."""
  env = results['meta']['environment']
  sources = set(row[impl]['memory_from'] for row in results['summary']
                for impl in models.IMPLEMENTATIONS if row[impl])
  note = ''
  if env.get('rss_start_mib'):
    note = ('a fresh process holds %.0f MiB after importing TensorFlow, the '
            'networks and Keras. ' % env['rss_start_mib'])
  if sources == set(['fresh']):
    return note + 'Memory is from the runs in a fresh process.'
  return note + ('Memory is (at least partly) from forked processes, which '
                 'leave out library pages they never touch: lower than a '
                 'fresh process\'s.')
