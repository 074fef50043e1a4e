r"""Evaluates a trained image classifier on one split of a dataset.

Computes Accuracy (top-1) and Recall_5 (the label is among the 5 highest
logits) over every example of the split exactly once, the last partial batch
included. Results are printed, written as TensorBoard summaries
(`eval/Accuracy`, `eval/Recall_5`) and as JSON in --eval_dir:
`metrics-<global step>.json` for each checkpoint and `metrics.json` for the
latest one.

--checkpoint_path is a checkpoint prefix or a directory (its latest
checkpoint). With --eval_interval_secs the script watches the directory and
evaluates every new checkpoint (beside a running training job) until
--timeout seconds pass without one.

Examples:

  python eval_image_classifier.py --checkpoint_path=/tmp/shapes_v1 \
      --eval_dir=/tmp/shapes_v1/eval --dataset_dir=/tmp/shapes \
      --model_name=mobilenet_v1_025 --eval_image_size=64

  # Watch mode, beside training:
  python eval_image_classifier.py --checkpoint_path=/tmp/shapes_v1 \
      --eval_dir=/tmp/shapes_v1/eval --dataset_dir=/tmp/shapes \
      --eval_interval_secs=60 --timeout=3600
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import json
import math
import os
import re
import time

from absl import app
from absl import flags
from absl import logging

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

import common_flags
from deployment import script_utils
from training import checkpoint_recovery  # (issue 17)

PROGRAM = 'eval_image_classifier.py'

# Metric name -> k of "the label is among the top k logits".
_METRICS = (('Accuracy', 1), ('Recall_5', 5))


def define_flags(flag_values=flags.FLAGS):
  """Defines every flag of this script.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  common_flags.define_eval_flags(flag_values)


define_flags()
# --helpshort lists the flags defined in common_flags too.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def parse_flags(argv):
  """Parses `argv` into a fresh FlagValues with this script's flags.

  Args:
    argv: list of flag strings, e.g. ['--checkpoint_path=/tmp/x'].

  Returns:
    A parsed `flags.FlagValues`.
  """
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  flag_values([PROGRAM] + list(argv))
  return flag_values


def _check_flags(opts):
  """Checks flag values that need no graph.

  Raises:
    ScriptError: naming the bad flag.
  """
  for name in ('batch_size', 'num_readers', 'num_preprocessing_threads'):
    if getattr(opts, name) < 1:
      raise script_utils.ScriptError('--%s must be >= 1, got %d.' %
                                     (name, getattr(opts, name)))
  if opts.max_num_batches is not None and opts.max_num_batches < 1:
    raise script_utils.ScriptError('--max_num_batches must be >= 1 (or '
                                   'unset to evaluate every example).')
  if opts.eval_interval_secs is not None and opts.eval_interval_secs < 0:
    raise script_utils.ScriptError('--eval_interval_secs must be >= 0.')
  if opts.quantize and tf_compat.IS_TF2:
    raise script_utils.ScriptError(
        '--quantize builds a fake-quantized eval graph with '
        'tf.contrib.quantize, which exists only on TensorFlow 1.15; this is '
        'TensorFlow %s. Evaluate the float checkpoint, and quantize after '
        'training at export (post-training quantization).' % tf.__version__)


def build_eval_graph(opts):
  """Builds the evaluation graph in the default graph.

  Args:
    opts: parsed flags.

  Returns:
    A dict: `iterator`, `logits`, `labels`, `counts` (dict of per-batch
    int64 tensors `examples`, `Accuracy`, `Recall_5`: number of examples and
    of hits), `global_step`, `var_to_source` (dict checkpoint name ->
    variable to restore), `num_samples`, `num_classes`.

  Raises:
    ScriptError: for bad flags or data.
  """
  dataset = script_utils.get_dataset(opts)
  script_utils.check_labels_offset(dataset, opts.labels_offset,
                                   opts.dataset_name)
  num_classes = dataset.num_classes - opts.labels_offset
  network_fn = script_utils.get_network_fn(opts, num_classes,
                                           is_training=False)
  preprocessing_fn = script_utils.get_preprocessing_fn(opts,
                                                       is_training=False)
  image_size = opts.eval_image_size or network_fn.default_image_size
  script_utils.check_image_size(image_size, '--eval_image_size')

  global_step = tf.train.get_or_create_global_step()
  with tf.device('/device:CPU:0'):
    data = script_utils.make_input_dataset(
        opts, dataset, preprocessing_fn, image_size, is_training=False)
    iterator = tf.data.make_initializable_iterator(data)
    images, labels = iterator.get_next()
    labels = tf.cast(labels, tf.int64)
  logits, _ = network_fn(images)
  if opts.quantize:
    # tf.contrib exists only on TF 1.15 (_check_flags stops TF 2 earlier).
    from tensorflow.contrib import quantize as contrib_quantize
    contrib_quantize.create_eval_graph()

  counts = {'examples': tf.size(labels, out_type=tf.int64)}
  for name, k in _METRICS:
    # in_top_k counts ties at the boundary as hits, like "fewer than k
    # classes score strictly higher than the label".
    hits = tf.nn.in_top_k(tf.cast(logits, tf.float32), labels,
                          min(k, num_classes))
    counts[name] = tf.reduce_sum(tf.cast(hits, tf.int64))

  # Model variables (from their moving averages with
  # --moving_average_decay), plus other variables such as --quantize's
  # ranges; the global step is restored when the checkpoint has it.
  model_variables = set(slim.get_model_variables())
  var_to_source = {}
  for var in tf.global_variables():
    if var.op.name == global_step.op.name:
      continue
    name = var.op.name
    if opts.moving_average_decay and var in model_variables:
      name += script_utils.EMA_SUFFIX
    var_to_source[name] = var
  return {
      'iterator': iterator,
      'logits': logits,
      'labels': labels,
      'counts': counts,
      'global_step': global_step,
      'var_to_source': var_to_source,
      'num_samples': dataset.num_samples,
      'num_classes': num_classes,
      'dataset': dataset,
  }


def restore_saver(opts, model, checkpoint):
  """Builds a saver restoring `checkpoint` into the eval graph.

  Model variables come from their ExponentialMovingAverage shadows when
  --moving_average_decay is set; the global step when the checkpoint has it.

  Args:
    opts: parsed flags.
    model: the dict from `build_eval_graph`.
    checkpoint: checkpoint prefix.

  Returns:
    (saver, whether it restores the global step). Savers are cached in
    `model`, so watch mode does not grow the graph per checkpoint.

  Raises:
    ScriptError: if the checkpoint does not fit the model.
  """
  var_to_source = dict(model['var_to_source'])
  shapes = script_utils.checkpoint_shapes(checkpoint)
  if opts.moving_average_decay and not any(
      n.endswith(script_utils.EMA_SUFFIX) for n in shapes):
    raise script_utils.ScriptError(
        '--moving_average_decay is set but checkpoint %s has no '
        'ExponentialMovingAverage variables (it was trained without '
        '--moving_average_decay). Drop --moving_average_decay.' % checkpoint)
  if opts.moving_average_decay:
    # Variables that were not averaged in training (e.g. ones added after
    # the averages were set up) are restored from their own values.
    raw = [n for n in var_to_source if n not in shapes and
           n[:-len(script_utils.EMA_SUFFIX)] in shapes]
    for name in raw:
      var_to_source[name[:-len(script_utils.EMA_SUFFIX)]] = (
          var_to_source.pop(name))
    if raw:
      logging.warning('%d variables have no moving average in %s; using '
                      'their values.', len(raw), checkpoint)
  var_to_source = script_utils.check_checkpoint_fits(
      var_to_source, checkpoint, '--checkpoint_path', opts.model_name)
  global_step = model['global_step']
  restores_step = global_step.op.name in shapes
  if restores_step:
    var_to_source[global_step.op.name] = global_step
  key = frozenset(var_to_source)
  savers = model.setdefault('savers', {})
  if key not in savers:
    savers[key] = tf.train.Saver(var_to_source)
  return savers[key], restores_step


def _step_of(checkpoint, session, global_step, restored_step):
  """The checkpoint's global step (from the variable, else its file name)."""
  if restored_step:
    return int(session.run(global_step))
  match = re.search(r'-(\d+)$', checkpoint)
  return int(match.group(1)) if match else 0


def _write_json(path, data):
  """Writes `data` as JSON to `path` atomically (temporary file + rename)."""
  tmp = '%s.tmp-%d' % (path, os.getpid())
  with tf.gfile.GFile(tmp, 'w') as f:
    f.write(json.dumps(data, indent=2, sort_keys=True) + '\n')
  tf.gfile.Rename(tmp, path, overwrite=True)


def evaluate_checkpoint(opts, model, checkpoint, graph):
  """Evaluates one checkpoint and writes its metrics.

  Args:
    opts: parsed flags.
    model: the dict from `build_eval_graph` (built in `graph`).
    checkpoint: checkpoint prefix.
    graph: the eval graph.

  Returns:
    The metrics dict (also written to --eval_dir).
  """
  with graph.as_default():
    saver, restores_step = restore_saver(opts, model, checkpoint)
  num_batches = int(math.ceil(model['num_samples'] / float(opts.batch_size)))
  if opts.max_num_batches:
    num_batches = min(num_batches, opts.max_num_batches)
  log_every = max(1, num_batches // 10)
  totals = dict((name, 0) for name in model['counts'])
  start = time.time()
  config = tf.ConfigProto(allow_soft_placement=True)
  with tf.Session(opts.master, graph=graph, config=config) as session, \
      script_utils.explain_input_errors(opts, model['dataset']):
    session.run(model['init_ops'])
    saver.restore(session, checkpoint)
    step = _step_of(checkpoint, session, model['global_step'], restores_step)
    batches = 0
    while not opts.max_num_batches or batches < opts.max_num_batches:
      try:
        counts = session.run(model['counts'])
      except tf.errors.OutOfRangeError:
        break
      batches += 1
      for name, value in counts.items():
        totals[name] += int(value)
      if batches % log_every == 0 or batches == num_batches:
        logging.info('Evaluated batch %d/%d (%d examples, %.1f s)', batches,
                     num_batches, totals['examples'], time.time() - start)
  examples = totals['examples']
  metrics = {
      'checkpoint': checkpoint,
      'global_step': step,
      'num_examples': examples,
      'num_batches': batches,
      'dataset_name': opts.dataset_name,
      'dataset_split_name': opts.dataset_split_name,
      'model_name': opts.model_name,
      'moving_average': bool(opts.moving_average_decay),
  }
  for name, _ in _METRICS:
    metrics[name] = totals[name] / float(examples) if examples else 0.0
  if not opts.max_num_batches and examples != model['num_samples']:
    logging.warning('The split has %d examples but the dataset declares '
                    'num_samples=%d.', examples, model['num_samples'])

  tf.gfile.MakeDirs(opts.eval_dir)
  writer = tf.summary.FileWriterCache.get(opts.eval_dir)
  summary = tf.Summary(value=[
      tf.Summary.Value(tag='eval/%s' % name, simple_value=metrics[name])
      for name, _ in _METRICS])
  writer.add_summary(summary, step)
  writer.flush()
  _write_json(os.path.join(opts.eval_dir, 'metrics-%d.json' % step), metrics)
  _write_json(os.path.join(opts.eval_dir, 'metrics.json'), metrics)
  print('%s: Accuracy = %.4f, Recall_5 = %.4f over %d examples '
        '(global step %d, %s)' % (PROGRAM, metrics['Accuracy'],
                                  metrics['Recall_5'], examples, step,
                                  checkpoint), flush=True)
  return metrics


def evaluate(opts):
  """Evaluates --checkpoint_path once, or every new checkpoint in watch mode.

  Args:
    opts: parsed flags (e.g. from `parse_flags`).

  Returns:
    The list of metrics dicts, one per evaluated checkpoint.

  Raises:
    ScriptError: for bad flags, data or checkpoints.
  """
  _check_flags(opts)
  script_utils.check_writable_dir(opts.eval_dir, '--eval_dir')
  watch = opts.eval_interval_secs is not None
  if watch and not tf.gfile.IsDirectory(opts.checkpoint_path):
    raise script_utils.ScriptError(
        '--eval_interval_secs watches a directory for new checkpoints, but '
        '--checkpoint_path=%s is not a directory. Pass the train_dir, or '
        'drop --eval_interval_secs to evaluate one checkpoint.' %
        opts.checkpoint_path)
  if not watch:
    # Fail on a missing checkpoint before building anything.
    checkpoint = script_utils.resolve_checkpoint(opts.checkpoint_path)

  graph = tf.Graph()
  with graph.as_default():
    model = build_eval_graph(opts)
    model['init_ops'] = [tf.local_variables_initializer(),
                         tf.tables_initializer(),
                         model['iterator'].initializer]
  if not watch:
    return [evaluate_checkpoint(opts, model, checkpoint, graph)]

  results = []
  logging.info('Watching %s for new checkpoints every %d s (timeout: %s).',
               opts.checkpoint_path, opts.eval_interval_secs,
               '%s s' % opts.timeout if opts.timeout is not None else 'none')
  for checkpoint in tf.train.checkpoints_iterator(
      opts.checkpoint_path, min_interval_secs=opts.eval_interval_secs,
      timeout=opts.timeout):
    try:
      results.append(evaluate_checkpoint(opts, model, checkpoint, graph))
    except (tf.errors.OpError, script_utils.ScriptError) as e:
      # issue 17: training deleted it (max_to_keep) before we read it, or
      # it cannot be read in full (damaged); go on with the next one.
      problem = checkpoint_recovery.unreadable_reason(checkpoint)
      if problem is None:
        raise
      logging.warning('Skipping checkpoint %s: %s (%s).', checkpoint,
                      problem, str(e).split('\n')[0])
  logging.info('No new checkpoint for %s s; stopping (--timeout).',
               opts.timeout)
  return results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s (flags need the --name='
                         'value form).' % ' '.join(argv[1:]))
  script_utils.run_or_exit(lambda: evaluate(FLAGS), PROGRAM)


if __name__ == '__main__':
  app.run(main)
