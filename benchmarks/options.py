"""The benchmark's flags, their defaults and their checks.

Kept apart from the driver (benchmark.py) and free of TensorFlow imports:
`resolve_options` turns the parsed flags into the options dict the driver
runs with, or raises `UsageError` naming the flag.
"""


import os

from absl import flags

from benchmarks import models
from benchmarks import runner

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Values of the flags left unset: (full run, --quick).
DEFAULTS = {
    'models': ('mobilenet_v1,mobilenet_v2,mobilenet_v3_large,'
               'mobilenet_v3_small', 'mobilenet_v1_025,mobilenet_v2_035'),
    'image_size': (224, 64),
    'train_batch_size': (16, 8),
    'infer_batch_size': (32, 8),
    'runs': (3, 1),
    'warmup_steps': (0, 0),
    'train_steps': (4, 2),
    'warmup_iters': (3, 1),
    'latency_iters': (15, 4),
    'throughput_iters': (2, 2),
    'tfrecord_images': (240, 24),
    'script_warmup_steps': (2, 1),
    'validation_images': (300, 12),
    'calibration_images': (100, 4),
    'agreement_train_steps': (300, 3),
    'jobs': (1, 2),
    'start_method': ('auto', 'forked'),
}


# Task timeouts an agreement task may take (it may train the network).
AGREEMENT_TIMEOUTS = 4


def define_flags(flag_values=flags.FLAGS):
  """Defines the benchmark's flags (unset ones take DEFAULTS).

  Args:
    flag_values: where (default the global FLAGS; tests pass a fresh
      `flags.FlagValues`, to parse flags without a process of their own).
  """
  flags.DEFINE_bool('quick', False,
                    'Smoke run: small networks (mobilenet_v1_025, '
                    'mobilenet_v2_035) at 64x64, small batches, one run, '
                    'one thread per task unless --num_threads says '
                    'otherwise; TFLite conversions (TF 1.15) and the '
                    'training script (without summaries) run inside their '
                    'task, not in processes of their own, and the int8 '
                    'agreement takes the network the script\'s timed run '
                    'trained. Cheaper; its figures are not comparable with '
                    'a full run\'s.', flag_values=flag_values)
  flags.DEFINE_list('models', None,
                    'nets_factory names to benchmark (default '
                    'mobilenet_v1,mobilenet_v2,mobilenet_v3_large,'
                    'mobilenet_v3_small; those nets_factory lacks are '
                    'skipped). Known: %s.' %
                    ', '.join(models.BENCHMARKED_MODELS),
                    flag_values=flag_values)
  flags.DEFINE_list('measurements', list(models.MEASUREMENT_ORDER),
                    'What to measure: %s.' %
                    ', '.join(models.MEASUREMENT_ORDER),
                    flag_values=flag_values)
  flags.DEFINE_list('implementations', list(models.IMPLEMENTATIONS),
                    'ours (slim) and/or keras.', flag_values=flag_values)
  flags.DEFINE_integer('image_size', None, 'Input height and width (224).',
                       flag_values=flag_values)
  flags.DEFINE_integer('train_batch_size', None, 'Training batch (16).',
                       flag_values=flag_values)
  flags.DEFINE_integer('infer_batch_size', None,
                       'Batch of the inference throughput (32).',
                       flag_values=flag_values)
  flags.DEFINE_integer('runs', None,
                       'Runs of every measurement (3); the report gives '
                       'medians.', flag_values=flag_values)
  flags.DEFINE_integer('warmup_steps', None,
                       'Untimed training steps after the first, which '
                       'always runs untimed (0).', flag_values=flag_values)
  flags.DEFINE_integer('train_steps', None, 'Timed training steps (4).',
                       flag_values=flag_values)
  flags.DEFINE_integer('warmup_iters', None,
                       'Untimed batch-1 inference runs after the first (3); '
                       'batch N has one.', flag_values=flag_values)
  flags.DEFINE_integer('latency_iters', None, 'Timed batch-1 runs (15).',
                       flag_values=flag_values)
  flags.DEFINE_integer('throughput_iters', None, 'Timed batch-N runs (2).',
                       flag_values=flag_values)
  flags.DEFINE_integer('num_threads', 0,
                       'intra-op threads of TensorFlow sessions and TFLite '
                       '(0: the CPUs this process may use; --quick: 1).',
                       flag_values=flag_values)
  flags.DEFINE_integer('inter_op_threads', 0,
                       'inter-op threads of TensorFlow sessions (0: as '
                       '--num_threads, which is what TensorFlow picks by '
                       'default and so what the training script runs with).',
                       flag_values=flag_values)
  flags.DEFINE_bool('xla', False,
                    'Compile with XLA: session global_jit_level=ON_1, and '
                    'TF_XLA_FLAGS=--tf_xla_cpu_global_jit so that it applies '
                    'on CPU. Much slower on CPU (see BENCHMARKS.md).',
                    flag_values=flag_values)
  flags.DEFINE_bool('fold_batch_norms', True,
                    'Freeze our models as freeze_graph.py does by default, '
                    'with batch norms folded into the convolutions '
                    '(--nofold_batch_norms: unfolded, like the Keras '
                    'models, which go through plain TensorFlow freezing).',
                    flag_values=flag_values)
  flags.DEFINE_integer('num_preprocessing_threads', 0,
                       'tf.data decode+preprocess calls in parallel '
                       '(0: as --num_threads).', flag_values=flag_values)
  flags.DEFINE_integer('num_readers', 4, 'TFRecord files read in parallel.',
                       flag_values=flag_values)
  flags.DEFINE_integer('tfrecord_images', None,
                       'Images in the generated TFRecord set (240).',
                       flag_values=flag_values)
  flags.DEFINE_integer('script_warmup_steps', None,
                       'train_script: untimed steps after the first (2). '
                       'At least 1: the script\'s second step runs a new '
                       'set of fetches (no summary) and builds its '
                       'executor.', flag_values=flag_values)
  flags.DEFINE_integer('validation_images', None,
                       'Validation images of the generated set, on which '
                       'the int8 top-1 agreement is measured (300).',
                       flag_values=flag_values)
  flags.DEFINE_integer('calibration_images', None,
                       'Train images that calibrate the int8 model of the '
                       'agreement check (100, export_tflite.py\'s default).',
                       flag_values=flag_values)
  flags.DEFINE_enum('keras_fit', 'tf_keras', ['tf_keras', 'keras3'],
                    'train_script: the Keras whose model.fit is timed on TF '
                    '2: tf_keras (Keras 2, as the other Keras rows) or '
                    'keras3 (what tf.keras is on TF >= 2.16 by default).',
                    flag_values=flag_values)
  flags.DEFINE_bool('int8_agreement', True,
                    'Measure the top-1 agreement of the int8 TFLite model '
                    'with the float one (one task per model, untimed).',
                    flag_values=flag_values)
  flags.DEFINE_list('agreement_checkpoints', [],
                    'model=checkpoint (or train_dir) pairs of networks '
                    'trained on the dataset, for the agreement check; a '
                    'model without one is trained here by '
                    'train_image_classifier.py for --agreement_train_steps.',
                    flag_values=flag_values)
  flags.DEFINE_integer('agreement_train_steps', None,
                       'Steps of that training (300).', flag_values=flag_values)
  flags.DEFINE_string('agreement_dataset_dir', None,
                      'A `shapes` dataset (as download_and_convert_data.py '
                      'writes it, e.g. the main job\'s OUT/shapes) whose '
                      'validation split the agreement is measured on and '
                      'whose train split calibrates the int8 model (default: '
                      'the set the benchmark generates).',
                      flag_values=flag_values)
  flags.DEFINE_enum('agreement_preprocessing', 'inception',
                    ['inception', 'cifarnet'],
                    'Evaluation preprocessing of the agreement check: the '
                    'one the networks were trained with (inception, as the '
                    'benchmark trains; cifarnet for the main job\'s '
                    'networks).', flag_values=flag_values)
  flags.DEFINE_integer('tfrecord_image_size', None,
                       'Side of its JPEGs (default: 8/7 of --image_size, '
                       '256 for 224).', flag_values=flag_values)
  flags.DEFINE_string('output_dir', os.path.join(_REPO_ROOT, 'benchmarks',
                                                 'results'),
                      'Where the Markdown and JSON results go.',
                      flag_values=flag_values)
  flags.DEFINE_string('work_dir', None,
                      'Where datasets and exported models go (default: a '
                      'temporary directory, removed afterwards).',
                      flag_values=flag_values)
  flags.DEFINE_bool('profile', False,
                    'Trace one extra step of the first run of every '
                    'measurement (not TFLite) and report the time per op '
                    'type.', flag_values=flag_values)
  flags.DEFINE_string('trace_dir', None,
                      'With --profile, also write those steps as Chrome '
                      'traces (chrome://tracing, ui.perfetto.dev) here.',
                      flag_values=flag_values)
  flags.DEFINE_enum('start_method', None, list(runner.START_METHODS),
                    'How measurement processes start (see '
                    'benchmarks/runner.py): auto (default): a fresh '
                    'interpreter for the first run of each measurement, '
                    'whose peak memory the report gives, forked from a '
                    'server that imported TensorFlow for the repeats; '
                    'fresh or forked for all (--quick: forked).',
                    flag_values=flag_values)
  flags.DEFINE_integer('jobs', None,
                       'Tasks run at once (1; --quick: 2). More than 1 '
                       'makes timings meaningless: for smoke runs only.',
                       flag_values=flag_values)
  flags.DEFINE_string('pytorch_python', '',
                      'Interpreter with torch, torchvision and timm for the '
                      'PyTorch column (training step and eager inference '
                      'of the same networks, NCHW and channels_last, '
                      'interleaved with ours; optional, never a project '
                      'requirement). Default: this interpreter if it can '
                      'import torch, else the column is skipped with a note '
                      'on how to install it; none: no PyTorch column.',
                      flag_values=flag_values)
  flags.DEFINE_integer('task_timeout', 900,
                       'Seconds one measurement may take before it is '
                       'killed (an int8 agreement task, which may train '
                       'the network: %d times as long).' % AGREEMENT_TIMEOUTS,
                       flag_values=flag_values)


class UsageError(ValueError):
  """A flag has a value the benchmark cannot use."""


def available_cpus():
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def resolve_options(flag_values):
  """Fills unset flags from DEFAULTS and checks every value.

  Args:
    flag_values: the parsed FLAGS.

  Returns:
    A dict of options.

  Raises:
    UsageError: naming the flag, its allowed values and what to do.
  """
  which = 1 if flag_values.quick else 0
  opts = {}
  for name, values in DEFAULTS.items():
    value = getattr(flag_values, name)
    opts[name] = values[which] if value is None else value
  if isinstance(opts['models'], str):
    opts['models'] = opts['models'].split(',')
  for name in ('image_size', 'train_batch_size', 'infer_batch_size', 'runs',
               'jobs', 'train_steps', 'latency_iters', 'throughput_iters',
               'tfrecord_images', 'script_warmup_steps', 'validation_images',
               'calibration_images', 'agreement_train_steps'):
    if opts[name] < 1:
      raise UsageError('--%s must be >= 1, got %d.' % (name, opts[name]))
  for name in ('warmup_steps', 'warmup_iters'):
    if opts[name] < 0:
      raise UsageError('--%s must be >= 0, got %d.' % (name, opts[name]))
  if opts['image_size'] < 32:
    raise UsageError('--image_size must be at least 32 (the Keras '
                     'applications refuse smaller inputs), got %d.' %
                     opts['image_size'])
  known = models.BENCHMARKED_MODELS
  unknown = [m for m in opts['models'] if m not in known]
  if unknown or not opts['models']:
    raise UsageError('--models=%s: %s. Choose from %s (networks with a '
                     'keras.applications or PyTorch equivalent).' % (
                         ','.join(opts['models']),
                         'unknown ' + ', '.join(unknown) if unknown
                         else 'empty', ', '.join(known)))
  for name, allowed in (('measurements', models.MEASUREMENT_ORDER),
                        ('implementations', models.IMPLEMENTATIONS)):
    values = getattr(flag_values, name)
    bad = [v for v in values if v not in allowed]
    # No measurement at all: only the (untimed) agreement check.
    agreement_only = (name == 'measurements' and not values and
                      flag_values.int8_agreement)
    if bad or (not values and not agreement_only):
      raise UsageError('--%s=%s: %s. Choose one or more of %s, comma '
                       'separated.' % (name, ','.join(values),
                                       'unknown ' + ', '.join(bad) if bad
                                       else 'empty', ', '.join(allowed)))
    opts[name] = [v for v in allowed if v in values]  # Report order.
  # A smoke run's tasks share the CPUs (--jobs): one thread each wastes
  # no CPU time on threads that wait for a core.
  threads = flag_values.num_threads or (
      1 if flag_values.quick else available_cpus())
  if flag_values.num_threads < 0 or flag_values.inter_op_threads < 0:
    raise UsageError('--num_threads must be >= 0 (0: all usable CPUs) and '
                     '--inter_op_threads >= 0 (0: as --num_threads).')
  opts['settings'] = {'intra_op_threads': threads,
                      'inter_op_threads': (flag_values.inter_op_threads or
                                           threads),
                      'xla': flag_values.xla}
  opts['num_preprocessing_threads'] = (flag_values.num_preprocessing_threads
                                       or threads)
  opts['num_readers'] = flag_values.num_readers
  opts['fold_batch_norms'] = flag_values.fold_batch_norms
  if opts['num_readers'] < 1 or opts['num_preprocessing_threads'] < 0:
    raise UsageError('--num_readers must be >= 1 and '
                     '--num_preprocessing_threads >= 0.')
  opts['tfrecord_image_size'] = (flag_values.tfrecord_image_size or
                                 int(round(opts['image_size'] * 8 / 7.0)))
  if opts['tfrecord_image_size'] < 16:
    raise UsageError('--tfrecord_image_size must be >= 16, got %d.' %
                     opts['tfrecord_image_size'])
  opts['int8_agreement'] = flag_values.int8_agreement
  opts['keras_fit'] = flag_values.keras_fit
  opts['agreement_checkpoints'] = {}
  for pair in flag_values.agreement_checkpoints:
    model, _, path = pair.partition('=')
    if not path or model not in opts['models']:
      raise UsageError('--agreement_checkpoints=%s: expected model=path '
                       'with a model of --models (%s).' %
                       (pair, ','.join(opts['models'])))
    opts['agreement_checkpoints'][model] = path
  opts['agreement_dataset_dir'] = flag_values.agreement_dataset_dir
  opts['agreement_preprocessing'] = flag_values.agreement_preprocessing
  if opts['agreement_dataset_dir'] and not os.path.isdir(
      opts['agreement_dataset_dir']):
    raise UsageError('--agreement_dataset_dir=%s is not a directory; pass '
                     'the folder holding the shapes TFRecords.' %
                     opts['agreement_dataset_dir'])
  opts['quick'] = flag_values.quick
  # TF 1.15 starts a converter process (which imports TensorFlow) for every
  # TFLite conversion; a smoke run converts inside the task instead.
  opts['convert_in_process'] = flag_values.quick
  opts['output_dir'] = flag_values.output_dir
  opts['work_dir'] = flag_values.work_dir
  opts['profile'] = flag_values.profile
  opts['trace_dir'] = flag_values.trace_dir
  opts['task_timeout'] = flag_values.task_timeout
  opts['pytorch_python'] = flag_values.pytorch_python
  return opts
