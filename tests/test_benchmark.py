"""Tests of benchmarks/: the report arithmetic, flag checks, a --quick run.

No timing is asserted: the smoke test checks that every row is there with
sane positive figures.
"""


import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import models
from benchmarks import report

# The smoke run benchmarks one small network (a second would double its
# time); V2's graphs are checked by test_builds_the_v2_training_graphs.
_SMOKE_MODELS = ('mobilenet_v1_025',)


def _record(model, measurement, impl, run, **result):
  return {'model': model, 'measurement': measurement, 'impl': impl,
          'run': run, 'result': result}


def test_summary_takes_medians_and_ratios_of_medians():
  ours = [10.0, 30.0, 20.0]
  keras = [10.0, 40.0, 5.0]
  records = [_record('m', 'train_synthetic', 'ours', i + 1,
                     images_per_sec=v, peak_rss_mib=100.0 + i,
                     first_step_s=1.0, rss_start_mib=50.0)
             for i, v in enumerate(ours)]
  records += [_record('m', 'train_synthetic', 'keras', i + 1,
                      images_per_sec=v, peak_rss_mib=200.0,
                      first_step_s=1.0, rss_start_mib=50.0)
              for i, v in enumerate(keras)]
  records.append({'model': 'm', 'measurement': 'train_synthetic',
                  'impl': 'ours', 'run': 4, 'error': 'ignored'})
  rows = report.summarize(records, {'m': 2e9}, ['m'], ['train_synthetic'])
  assert len(rows) == 1
  row = rows[0]
  assert row['ours']['runs'] == 3
  assert row['ours']['images_per_sec'] == 20.0
  assert row['keras']['images_per_sec'] == 10.0
  assert row['ratio']['images_per_sec'] == pytest.approx(2.0)
  assert row['ours']['peak_rss_mib'] == 101.0
  assert row['ratio']['peak_rss_mib'] == pytest.approx(101.0 / 200.0)
  # 2 GMAC per image at 20 images/s.
  assert row['ours']['gmacs_per_sec'] == pytest.approx(40.0)


def test_summary_takes_memory_from_fresh_processes_when_there_are_any():
  records = []
  for run, (fresh, speed, peak) in enumerate([(True, 10.0, 900.0),
                                              (False, 30.0, 300.0),
                                              (False, 20.0, 310.0)]):
    for impl in ('ours', 'keras'):
      record = _record('m', 'train_synthetic', impl, run + 1,
                       images_per_sec=speed, peak_rss_mib=peak,
                       first_step_s=1.0, rss_start_mib=peak / 2)
      record['fresh_process'] = fresh
      records.append(record)
  row = report.summarize(records, {}, ['m'], ['train_synthetic'])[0]
  assert row['ours']['images_per_sec'] == 20.0  # Timings: every run.
  assert row['ours']['peak_rss_mib'] == 900.0  # Memory: the fresh run.
  assert row['ours']['memory_from'] == 'fresh'
  assert row['ours']['memory_runs'] == 1
  for record in records:
    record['fresh_process'] = False
  row = report.summarize(records, {}, ['m'], ['train_synthetic'])[0]
  assert row['ours']['peak_rss_mib'] == 310.0
  assert row['ours']['memory_from'] == 'forked'


def test_summary_marks_a_side_without_successful_runs():
  records = [_record('m', 'infer_frozen', 'ours', 1, latency_ms=2.0,
                     latency_ms_p90=3.0, images_per_sec=50.0,
                     peak_rss_b1_mib=1.0, peak_rss_mib=2.0,
                     rss_start_mib=1.0),
             {'model': 'm', 'measurement': 'infer_frozen', 'impl': 'keras',
              'run': 1, 'error': 'boom'}]
  row = report.summarize(records, {}, ['m'], ['infer_frozen'])[0]
  assert row['ours']['latency_ms'] == 2.0
  assert row['keras'] is None
  assert row['ratio'] == {}


def _row(model, measurement, ours, keras):
  ratio = {k: ours[k] / keras[k] for k in ours if k in keras}
  return {'model': model, 'measurement': measurement, 'ours': ours,
          'keras': keras, 'ratio': ratio}


def test_targets_compare_with_the_goals_of_issue_7():
  rows = [
      _row('m', 'train_synthetic', {'images_per_sec': 13.0},
           {'images_per_sec': 10.0}),
      _row('m', 'train_tfrecord', {'images_per_sec': 11.0},
           {'images_per_sec': 10.0}),
      _row('m', 'infer_frozen', {'images_per_sec': 9.0, 'latency_ms': 30.0},
           {'images_per_sec': 10.0, 'latency_ms': 30.0}),
      _row('m', 'infer_tflite', {'images_per_sec': 20.0, 'latency_ms': 9.0},
           {'images_per_sec': 10.0, 'latency_ms': 9.0}),
  ]
  targets = {(t['target'], t['description']): t
             for t in report.check_targets(rows, ['m'])}
  by_name = {}
  for (name, _), target in targets.items():
    by_name.setdefault(name, []).append(target)
  train = {t['description']: t['met'] for t in by_name['train_vs_keras']}
  assert train == {'training img/s ours/Keras (synthetic input)': True,
                   'training img/s ours/Keras (tfrecord input)': False}
  infer = {t['description']: t['met'] for t in by_name['infer_vs_keras']}
  assert infer == {'inference batch-N img/s ours/Keras (frozen)': False,
                   'inference batch-N img/s ours/Keras (tflite)': True}
  (tflite,) = by_name['tflite_vs_frozen_latency']
  assert tflite['value'] == pytest.approx(9.0 / 30.0)
  assert tflite['met'] is True
  (pipeline,) = by_name['tfrecord_vs_synthetic']
  assert pipeline['value'] == pytest.approx(11.0 / 13.0)
  assert pipeline['met'] is False


def test_targets_of_issue_16_script_overhead_int8_and_agreement():
  rows = [
      _row('m', 'train_loop', {'images_per_sec': 10.5},
           {'images_per_sec': 10.0}),
      _row('m', 'train_script', {'images_per_sec': 10.0},
           {'images_per_sec': 8.0}),
      _row('m', 'infer_frozen', {'images_per_sec': 9.0, 'latency_ms': 30.0},
           {'images_per_sec': 10.0, 'latency_ms': 30.0}),
      _row('m', 'infer_tflite_int8', {'images_per_sec': 9.0,
                                      'latency_ms': 12.0},
           {'images_per_sec': 10.0, 'latency_ms': 12.0}),
  ]
  agreement = {'m': {'agreement': 0.995}}
  targets = {t['target']: t
             for t in report.check_targets(rows, ['m'], agreement)}
  assert targets['script_vs_keras_fit']['value'] == pytest.approx(1.25)
  assert targets['script_vs_keras_fit']['met'] is True
  # The bare loop is 5 % faster: the script's steps take 5 % longer.
  assert targets['script_overhead']['value'] == pytest.approx(0.05)
  assert targets['script_overhead']['met'] is False
  assert targets['int8_vs_frozen_latency']['value'] == pytest.approx(0.4)
  assert targets['int8_vs_frozen_latency']['met'] is False
  assert targets['int8_agreement']['met'] is True
  int8 = [t for t in report.check_targets(rows, ['m'])
          if t['description'].endswith('(tflite_int8)')]
  assert int8 and int8[0]['value'] == pytest.approx(0.9)
  # Without an agreement measurement there is no agreement target.
  assert 'int8_agreement' not in {
      t['target'] for t in report.check_targets(rows, ['m'])}


def test_driver_skips_networks_the_stack_lacks():
  from benchmarks import benchmark  # pylint: disable=g-import-not-at-top
  opts = {'models': ['mobilenet_v1', 'mobilenet_v3_small',
                     'mobilenet_v3_large'],
          'implementations': ['ours', 'keras']}
  environment = {'nets': ['mobilenet_v1', 'mobilenet_v3_large'],
                 'keras_applications': ['MobileNet'],
                 'keras': 'tf.keras 2.2.4-tf'}
  impls, notes = benchmark.available_implementations(opts, environment)
  assert impls == {'mobilenet_v1': ['ours', 'keras'],
                   'mobilenet_v3_large': ['ours']}
  assert len(notes) == 2
  assert any('mobilenet_v3_small' in n and 'nets_factory' in n
             for n in notes)
  assert any('MobileNetV3Large' in n for n in notes)


def test_networks_without_a_keras_equivalent_run_ours_and_pytorch():
  from benchmarks import benchmark  # pylint: disable=g-import-not-at-top
  from benchmarks import models  # pylint: disable=g-import-not-at-top
  assert 'mobilenet_v4_hybrid_medium' in models.BENCHMARKED_MODELS
  assert 'mobilenet_v4_hybrid_medium' not in models.KERAS_EQUIVALENTS
  opts = {'models': ['mobilenet_v4_conv_small'],
          'implementations': ['ours', 'keras']}
  environment = {'nets': ['mobilenet_v4_conv_small'],
                 'keras_applications': ['MobileNet'], 'keras': 'keras 3'}
  impls, notes = benchmark.available_implementations(opts, environment)
  assert impls == {'mobilenet_v4_conv_small': ['ours']}
  assert notes == ['mobilenet_v4_conv_small: keras.applications has no '
                   'equivalent; ours (and PyTorch) only.']


_PROGRESS_LOG = '\n'.join([
    'I1201 23:59:58.500000 1406 train_image_classifier.py:258] task 0 step '
    '1/4, loss = 1.7883, lr = 0.01',
    'INFO:tensorflow:task 0 step 1/4, loss = 1.7883',
    'I1201 23:59:59.500000 1406 train_image_classifier.py:258] task 0 step '
    '2/4, loss = 1.7455, lr = 0.01, 2.2 images/sec, ETA 0:00:14',
    'W1201 23:59:59.600000 1406 other.py:1] task 0 step 9/4, loss = 0',
    'I1202 00:00:00.000000 1406 train_image_classifier.py:258] task 0 step '
    '3/4, loss = 1.9173, lr = 0.01, 176.1 images/sec',
    'I1202 00:00:00.250000 1406 train_image_classifier.py:258] task 0 step '
    '4/4, loss = 1.8391, lr = 0.01, 205.9 images/sec',
])


def test_trainer_log_gives_step_times_across_midnight():
  from benchmarks import e2e  # pylint: disable=g-import-not-at-top
  stamps = e2e.parse_step_times(_PROGRESS_LOG)
  assert [step for step, _ in stamps] == [1, 2, 3, 4]
  times = [t for _, t in stamps]
  assert times[1] - times[0] == pytest.approx(1.0)
  assert times[2] - times[1] == pytest.approx(0.5)  # Past midnight.
  assert times[3] - times[2] == pytest.approx(0.25)
  # Skipping steps 1-2 times steps 3 and 4: 2 steps of 8 in 0.75 s.
  steady = e2e.steady_state(stamps, 2, batch_size=8)
  assert steady['images_per_sec'] == pytest.approx(16 / 0.75)
  assert steady['step_times_s'] == pytest.approx([0.5, 0.25])
  with pytest.raises(e2e.TrainerError):
    e2e.steady_state(stamps, 4, batch_size=8)


def test_trainer_flags_are_flags_of_the_training_script():
  from benchmarks import e2e  # pylint: disable=g-import-not-at-top
  import train_image_classifier  # pylint: disable=g-import-not-at-top
  spec = {'dataset_dir': '/data/shapes', 'model_name': 'mobilenet_v1_025',
          'train_batch_size': 8, 'image_size': 64, 'num_readers': 2,
          'num_preprocessing_threads': 3}
  parsed = train_image_classifier.parse_flags(
      e2e.trainer_flags(spec, '/tmp/train', 7, log_every_n_steps=1))
  assert parsed.max_number_of_steps == 7
  assert parsed.batch_size == 8 and parsed.train_image_size == 64
  assert parsed.weight_decay == 0.0
  assert parsed.learning_rate_decay_type == 'fixed'
  assert parsed.optimizer == 'rmsprop'
  assert parsed.num_preprocessing_threads == 3
  assert parsed.log_every_n_steps == 1
  assert parsed.save_summaries_secs == 600  # The script's own default.
  # The agreement check's network (which --quick does not train: it takes
  # the one the script's timed run trained).
  spec.update(train_steps=30, preprocessing='cifarnet', save_summaries_secs=0)
  parsed = train_image_classifier.parse_flags(
      e2e.agreement_trainer_flags(spec, '/tmp/agreement'))
  assert parsed.max_number_of_steps == 30 and parsed.log_every_n_steps == 3
  assert parsed.batch_norm_decay == 'auto'
  assert parsed.preprocessing_name == 'cifarnet'
  assert parsed.train_dir == '/tmp/agreement'
  assert parsed.save_summaries_secs == 0


def test_int8_input_is_quantized_with_the_model_scale():
  from benchmarks import workloads  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  batch = np.array([-1.0, 0.0, 0.5, 1.0], np.float32)
  # 1.0 maps to 256, clipped to the top of uint8.
  quantized = workloads.quantize_input(batch, np.uint8, (1.0 / 128, 128))
  assert quantized.dtype == np.uint8
  assert quantized.tolist() == [0, 128, 192, 255]
  same = workloads.quantize_input(batch, np.float32, (0.0, 0))
  assert same.tolist() == batch.tolist()


@pytest.mark.slow
def test_keras_mobilenet_v3_takes_our_input_range():
  from benchmarks import workloads  # pylint: disable=g-import-not-at-top
  if not hasattr(workloads.keras.applications, 'MobileNetV3Small'):
    pytest.skip('keras.applications has no MobileNetV3 on this stack')
  model = workloads.keras_model('mobilenet_v3_small', 32, num_classes=6)
  assert model.output_shape == (None, 6)
  # Its own [0, 255] rescaling would make the comparison unequal.
  assert not any(type(layer).__name__ == 'Rescaling'
                 for layer in model.layers)


@pytest.mark.parametrize('impl', models.IMPLEMENTATIONS)
def test_builds_the_v2_training_graphs(impl):
  from benchmarks import workloads  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  images = tf.zeros([2, 32, 32, 3])
  logits, probabilities, update_ops = workloads.build_network(
      impl, 'mobilenet_v2_035', images, is_training=True)
  assert logits.get_shape().as_list() == [2, workloads.NUM_CLASSES]
  assert probabilities.get_shape().as_list() == [2, workloads.NUM_CLASSES]
  # Each step updates the batch norm mean and variance of every layer.
  moving_means = [v for v in tf.global_variables()
                  if v.op.name.endswith('moving_mean')]
  assert len(moving_means) > 30
  assert len(update_ops) == 2 * len(moving_means)


def _run_benchmark(repo_root, script_env, *args):
  return subprocess.run(
      [sys.executable, os.path.join(repo_root, 'benchmarks', 'benchmark.py')]
      + list(args), cwd=repo_root, env=script_env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, universal_newlines=True, timeout=1500)


def _threads(*args):
  # pylint: disable=g-import-not-at-top
  from benchmarks import options
  from tests.test_benchmark_agreement import _parsed
  settings = options.resolve_options(_parsed(*args))['settings']
  return settings['intra_op_threads'], settings['inter_op_threads']


def test_sessions_default_to_the_threads_tensorflow_picks():
  # The training script runs with TensorFlow's default threads (inter-op =
  # intra-op = usable CPUs); the bare loop and Keras `fit` must too, or the
  # end-to-end comparison and the overhead row compare thread settings.
  from benchmarks import options  # pylint: disable=g-import-not-at-top
  cpus = options.available_cpus()
  assert _threads() == (cpus, cpus)
  assert _threads('--num_threads=3') == (3, 3)
  assert _threads('--num_threads=3', '--inter_op_threads=1') == (3, 1)
  with pytest.raises(options.UsageError, match='--inter_op_threads'):
    _threads('--inter_op_threads=-1')


@pytest.mark.parametrize('flag, named', [
    ('--models=resnet_v1_50', '--models'),
    ('--measurements=train_synthetic,warp_speed', '--measurements'),
    ('--image_size=16', '--image_size'),
])
def test_bad_flags_exit_with_a_message_naming_the_flag(repo_root, script_env,
                                                       flag, named, tmp_path):
  proc = _run_benchmark(repo_root, script_env, flag,
                        '--output_dir=%s' % tmp_path)
  assert proc.returncode == 2
  assert named in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not os.listdir(str(tmp_path))


def _positive(value):
  return (isinstance(value, (int, float)) and math.isfinite(value) and
          value > 0)


@pytest.mark.slow
def test_quick_run_reports_every_row(repo_root, script_env, tmp_path):
  proc = _run_benchmark(repo_root, script_env, '--quick',
                        '--models=%s' % ','.join(_SMOKE_MODELS),
                        '--output_dir=%s' % tmp_path)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  (json_name,) = [n for n in os.listdir(str(tmp_path)) if n.endswith('.json')]
  assert json_name.endswith('_quick.json')
  with open(str(tmp_path / json_name)) as f:
    results = json.load(f)
  with open(str(tmp_path / json_name.replace('.json', '.md'))) as f:
    text = f.read()

  assert results['errors'] == []
  assert results['meta']['quick'] is True
  for key in ('tensorflow', 'python', 'keras'):
    assert results['meta']['environment'][key]
  assert results['meta']['settings']['intra_op_threads'] >= 1
  assert len(results['meta']['load_before']) == 3

  rows = {(r['model'], r['measurement']): r for r in results['summary']}
  assert set(rows) == {(m, k) for m in _SMOKE_MODELS
                       for k in models.MEASUREMENT_ORDER}
  for model in _SMOKE_MODELS:
    assert _positive(results['macs'][model]['macs'])
    for measurement in models.MEASUREMENT_ORDER:
      row = rows[(model, measurement)]
      for impl in models.IMPLEMENTATIONS:
        metrics = row[impl]
        assert metrics['runs'] == 1
        keys = ['images_per_sec', 'gmacs_per_sec', 'peak_rss_mib']
        if measurement.startswith('infer_'):
          keys += ['latency_ms', 'peak_rss_b1_mib']
        for key in keys:
          assert _positive(metrics[key]), (model, measurement, impl, key)
        # A process holds at least the memory it started with.
        assert metrics['peak_rss_mib'] >= metrics['rss_start_mib']
      assert _positive(row['ratio']['images_per_sec'])
      assert '| %s | %s |' % (model, measurement.split('_', 1)[1]) in text

  # The script ran its steps and Keras fit its own.
  script = rows[(_SMOKE_MODELS[0], 'train_script')]
  assert script['ours']['first_step_s'] > 0
  assert script['keras']['first_step_s'] > 0
  # --quick: the script ran inside its task, without summaries; its
  # progress lines still gave the step times.
  (script_run,) = [r['result'] for r in results['runs']
                    if r['measurement'] == 'train_script' and
                    r['impl'] == 'ours']
  assert script_run['in_process'] is True
  assert '--save_summaries_secs=0' in script_run['command']
  assert script_run['steps_logged'] == 4
  (agreement,) = results['agreement'].values()
  assert 0.0 <= agreement['agreement'] <= 1.0
  assert agreement['images'] == 12  # --quick: 2 validation images a class.
  # --quick: the int8 model is the network the script's timed run trained
  # (1 + 1 warm-up + 2 timed steps), not one trained again.
  assert agreement['trained_steps'] == 0
  assert os.path.join('script', _SMOKE_MODELS[0], 'ours_run1',
                      'train_dir', 'model.ckpt-4') in agreement['checkpoint']
  assert 0.0 <= agreement['int8_tied_top1'] <= 1.0
  assert '### int8 TFLite: top-1 agreement' in text

  targets = results['targets']
  assert {t['target'] for t in targets} == {
      'train_vs_keras', 'infer_vs_keras', 'tflite_vs_frozen_latency',
      'tfrecord_vs_synthetic', 'script_vs_keras_fit', 'script_overhead',
      'int8_vs_frozen_latency', 'int8_agreement'}
  assert all(_positive(t['value']) for t in targets
             if t['target'] not in ('script_overhead', 'int8_agreement'))
  assert '### Targets' in text
