"""Evaluation: top-1 and top-5 hit rates of checkpoints on one split.

Every example of the split counts once, the last partial batch included.
Results go to the log, to TensorBoard summaries (`eval/Accuracy`,
`eval/Recall_5`) and to JSON files in the output folder:
`metrics-<global step>.json` per checkpoint and `metrics.json` for the
latest. `evaluate` scores one checkpoint, or watches a folder and scores
each new checkpoint until none arrives for a while.
"""


import collections
import json
import math
import os
import re
import typing
from typing import Optional

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from core import atomic_files
from core import errors
from datasets import conversion_progress
from training import checkpoint_recovery
from training import checkpoint_watch
from training import checkpoints
from training import model_inputs
from training import quantization

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# Metric name -> k of "the label is among the k highest logits".
METRICS = (('Accuracy', 1), ('Recall_5', 5))
# Least time between two progress lines of one checkpoint's evaluation.
PROGRESS_INTERVAL_SECS = conversion_progress.DEFAULT_INTERVAL_SECS

class EvalConfig(typing.NamedTuple):
  """What to score and where to write the results.

  eval_interval_secs None scores checkpoint_path once, else watches it (a
  folder) until `timeout`. program names the caller in the result line.
  """
  inputs: model_inputs.InputConfig
  checkpoint_path: str
  eval_dir: str
  master: str = ''
  max_num_batches: Optional[int] = None
  eval_interval_secs: Optional[float] = None
  timeout: Optional[float] = None
  moving_average_decay: Optional[float] = None
  quantize: bool = False
  program: str = 'evaluation'

EvalGraph = collections.namedtuple('EvalGraph', [
    'iterator', 'logits', 'labels', 'counts', 'global_step', 'variables',
    'num_samples', 'num_classes', 'dataset', 'init_ops', 'savers'])


class EvaluationError(errors.InputError):
  """Evaluation settings that cannot work."""


def check_config(config):
  """Checks the values of an `EvalConfig` that need no graph.

  Raises:
    EvaluationError: naming the bad value.
  """
  for name in ('batch_size', 'num_readers', 'num_preprocessing_threads'):
    value = getattr(config.inputs, name)
    if value < 1:
      raise EvaluationError('%s must be >= 1, got %d.' % (ref(name), value))
  if config.max_num_batches is not None and config.max_num_batches < 1:
    raise EvaluationError('%s must be >= 1 (or unset to evaluate every '
                          'example).' % ref('max_num_batches'))
  if config.eval_interval_secs is not None and config.eval_interval_secs < 0:
    raise EvaluationError('%s must be >= 0.' % ref('eval_interval_secs'))


def _hit_counts(logits, labels, num_classes):
  """Per-batch int64 counts: examples, and hits of each metric."""
  counts = {'examples': tf.size(labels, out_type=tf.int64)}
  for name, k in METRICS:
    # in_top_k counts a tie at the k-th place as a hit: fewer than k
    # classes score strictly higher than the label.
    hits = tf.nn.in_top_k(tf.cast(logits, tf.float32), labels,
                          min(k, num_classes))
    counts[name] = tf.reduce_sum(tf.cast(hits, tf.int64))
  return counts


def build_eval_graph(config):
  """Builds the evaluation graph of `config` in the default graph.

  Returns:
    An `EvalGraph`. `variables` are those to restore (all but the global
    step, which is restored when the checkpoint has it).

  Raises:
    InputError: bad settings or data.
  """
  global_step = tf.train.get_or_create_global_step()
  with tf.device('/device:CPU:0'):
    inputs = model_inputs.prepare(config.inputs, False, 'eval_image_size')
    iterator = tf.data.make_initializable_iterator(inputs.data)
    images, labels = iterator.get_next()
    labels = tf.cast(labels, tf.int64)
  logits, _ = inputs.network_fn(images)
  if config.quantize:
    quantization.rewrite_for_eval()
  variables = [v for v in tf.global_variables()
               if v.op.name != global_step.op.name]
  return EvalGraph(
      iterator=iterator, logits=logits, labels=labels,
      counts=_hit_counts(logits, labels, inputs.num_classes),
      global_step=global_step, variables=variables,
      num_samples=inputs.dataset.num_samples,
      num_classes=inputs.num_classes, dataset=inputs.dataset,
      init_ops=[tf.local_variables_initializer(), tf.tables_initializer(),
                iterator.initializer],
      savers={})


def restore_saver(config, graph, checkpoint):
  """A saver that restores `checkpoint` into the evaluation graph.

  With `config.moving_average_decay`, variables come from their moving
  averages where the checkpoint has them (`checkpoints.moving_average_map`).

  Returns:
    (saver, whether it restores the global step). Savers are cached in
    `graph.savers`, so watching a folder does not grow the graph.

  Raises:
    CheckpointError: the checkpoint does not fit the graph.
  """
  names = checkpoints.checkpoint_shapes(checkpoint)
  use_averages = bool(config.moving_average_decay)
  if use_averages:
    checkpoints.require_moving_averages(checkpoint, names)
  var_map, averaged = checkpoints.moving_average_map(
      graph.variables, names, use_averages=use_averages)
  model_variables = set(slim.get_model_variables())
  unaveraged = [v for v in model_variables if v not in averaged]
  if use_averages and unaveraged:
    logging.warning('%d variables have no moving average in %s; using '
                    'their values.', len(unaveraged), checkpoint)
  var_map = checkpoints.check_checkpoint_fits(
      var_map, checkpoint, 'checkpoint_path', config.inputs.model_name)
  restores_step = graph.global_step.op.name in names
  if restores_step:
    var_map[graph.global_step.op.name] = graph.global_step
  key = frozenset(var_map)
  if key not in graph.savers:
    graph.savers[key] = tf.train.Saver(var_map)
  return graph.savers[key], restores_step


def _step_of(checkpoint, session, global_step, restored_step):
  """The checkpoint's global step (its variable, else its file name)."""
  if restored_step:
    return int(session.run(global_step))
  match = re.search(r'-(\d+)$', checkpoint)
  return int(match.group(1)) if match else 0


def _write_json(path, data):
  """Writes `data` as JSON at `path` atomically (temporary file, rename)."""
  atomic_files.write_atomically(
      path, json.dumps(data, indent=2, sort_keys=True) + '\n')


def _count(config, graph, tf_graph, saver, checkpoint, restores_step,
           stop_signals=None):
  """Runs every batch; returns (global step, batches, totals), or None when
  `stop_signals` asked to stop before the end."""
  num_batches = int(math.ceil(graph.num_samples /
                              float(config.inputs.batch_size)))
  if config.max_num_batches:
    num_batches = min(num_batches, config.max_num_batches)
  totals = dict((name, 0) for name in graph.counts)
  session_config = tf.ConfigProto(allow_soft_placement=True)
  with tf.Session(config.master, graph=tf_graph,
                  config=session_config) as session, \
      model_inputs.explain_input_errors(graph.dataset,
                                        config.inputs.dataset_name,
                                        config.inputs.dataset_dir):
    session.run(graph.init_ops)
    saver.restore(session, checkpoint)
    step = _step_of(checkpoint, session, graph.global_step, restores_step)
    # A line every PROGRESS_INTERVAL_SECS at most: an evaluation of a few
    # seconds prints only its result.
    progress = conversion_progress.ConversionProgress(
        'Evaluating %s' % os.path.basename(checkpoint),
        min(graph.num_samples, num_batches * config.inputs.batch_size),
        PROGRESS_INTERVAL_SECS)
    batches = 0
    while not config.max_num_batches or batches < config.max_num_batches:
      if stop_signals is not None and stop_signals.requested:
        logging.info('Stopped evaluating %s before its end (a stop signal); '
                     'no metrics were written for it.', checkpoint)
        return None
      try:
        counts = session.run(graph.counts)
      except tf.errors.OutOfRangeError:
        break
      batches += 1
      for name, value in counts.items():
        totals[name] += int(value)
      progress.advance(int(counts['examples']))
  return step, batches, totals


def _publish(config, metrics):
  """Writes the summaries and JSON files of one checkpoint's metrics."""
  step = metrics['global_step']
  tf.gfile.MakeDirs(config.eval_dir)
  writer = tf.summary.FileWriterCache.get(config.eval_dir)
  writer.add_summary(tf.Summary(value=[
      tf.Summary.Value(tag='eval/%s' % name, simple_value=metrics[name])
      for name, _ in METRICS]), step)
  writer.flush()
  _write_json(os.path.join(config.eval_dir, 'metrics-%d.json' % step),
              metrics)
  _write_json(os.path.join(config.eval_dir, 'metrics.json'), metrics)
  size = metrics.get('image_size')
  print('%s: Accuracy = %.4f, Recall_5 = %.4f over %d examples '
        '(global step %d, %s%s)' % (
            config.program, metrics['Accuracy'], metrics['Recall_5'],
            metrics['num_examples'], step, metrics['checkpoint'],
            ', %dx%d images' % (size, size) if size else ''), flush=True)


def evaluate_checkpoint(config, graph, checkpoint, tf_graph,
                        stop_signals=None):
  """Scores one checkpoint and writes its metrics.

  Args:
    config: the `EvalConfig`.
    graph: the `EvalGraph`, built in `tf_graph`.
    checkpoint: the checkpoint prefix.
    tf_graph: the `tf.Graph` holding `graph`.
    stop_signals: a `preemption.StopSignals` whose signal abandons the
      evaluation between two batches; None: none.

  Returns:
    The metrics dict (also written to the output folder); None when it was
    abandoned.
  """
  with tf_graph.as_default():
    saver, restores_step = restore_saver(config, graph, checkpoint)
  counted = _count(config, graph, tf_graph, saver, checkpoint, restores_step,
                   stop_signals)
  if counted is None:
    return None
  step, batches, totals = counted
  examples = totals['examples']
  metrics = {
      'checkpoint': checkpoint, 'global_step': step,
      'num_examples': examples, 'num_batches': batches,
      'dataset_name': config.inputs.dataset_name,
      'dataset_split_name': config.inputs.dataset_split_name,
      'model_name': config.inputs.model_name,
      'image_size': config.inputs.image_size,
      'moving_average': bool(config.moving_average_decay),
  }
  for name, _ in METRICS:
    metrics[name] = totals[name] / float(examples) if examples else 0.0
  if not config.max_num_batches and examples != graph.num_samples:
    logging.warning('The split has %d examples but the dataset declares '
                    'num_samples=%d.', examples, graph.num_samples)
  _publish(config, metrics)
  return metrics


def _watch(config, graph, tf_graph, stop_signals=None, every=False):
  """Scores new checkpoints in the watched folder until the timeout or a
  stop signal; the newest of those that arrived meanwhile, or with `every`
  each one."""
  results = []
  logging.info('Watching %s for new checkpoints every %d s (timeout: %s).',
               config.checkpoint_path, config.eval_interval_secs,
               '%s s' % config.timeout if config.timeout is not None
               else 'none')
  wait = stop_signals.wait if stop_signals is not None else None
  for checkpoint, skipped in checkpoint_watch.watch(
      config.checkpoint_path, config.eval_interval_secs, config.timeout,
      every=every, wait=wait):
    if skipped:
      logging.info('Evaluating the newest checkpoint, %s; skipped %d older '
                   'one(s) not evaluated yet: %s (%s scores each).',
                   checkpoint, len(skipped),
                   ', '.join(os.path.basename(p) for p in skipped),
                   ref('eval_every_checkpoint'))
    try:
      metrics = evaluate_checkpoint(config, graph, checkpoint, tf_graph,
                                    stop_signals)
    except (tf.errors.OpError, ValueError) as e:
      # Training deleted it (max_to_keep) before or while it was read (the
      # saver's restore then raises ValueError), or it cannot be read in
      # full (damaged): go on with the next one.
      problem = checkpoint_recovery.unreadable_reason(checkpoint)
      if problem is None:
        raise
      logging.warning('Skipping checkpoint %s: %s (%s).', checkpoint,
                      problem, errors.marked(e).split('\n')[0])
      continue
    if metrics is None:
      break
    results.append(metrics)
    if stop_signals is not None and stop_signals.requested:
      break
  else:
    if not (stop_signals is not None and stop_signals.requested):
      logging.info('No new checkpoint for %s s; stopping (%s).',
                   config.timeout, ref('timeout'))
  return results


def evaluate(config, stop_signals=None, every_checkpoint=False):
  """Scores `config.checkpoint_path` once, or each new checkpoint.

  Args:
    config: an `EvalConfig`.
    stop_signals: an entered `preemption.StopSignals`: after a signal the
      evaluation running is abandoned (no metrics written) and watching
      ends; None: the signals act as they would.
    every_checkpoint: in watch mode, score every new checkpoint, oldest
      first, instead of the newest of those that arrived meanwhile.

  Returns:
    The list of metrics dicts, one per checkpoint scored.

  Raises:
    InputError: bad settings, data or checkpoints.
  """
  check_config(config)
  model_inputs.check_writable_dir(config.eval_dir, 'eval_dir')
  watch = config.eval_interval_secs is not None
  if watch and not tf.gfile.IsDirectory(config.checkpoint_path):
    raise EvaluationError(
        '%s watches a directory for new checkpoints, but %s is not a '
        'directory. Pass the train_dir, or drop %s to evaluate one '
        'checkpoint.' % (ref('eval_interval_secs'),
                         ref('checkpoint_path', config.checkpoint_path),
                         ref('eval_interval_secs')))
  checkpoint = None
  if not watch:
    # A missing checkpoint fails before anything is built.
    checkpoint = checkpoints.resolve_checkpoint(config.checkpoint_path)
  tf_graph = tf.Graph()
  with tf_graph.as_default():
    graph = build_eval_graph(config)
  if watch:
    return _watch(config, graph, tf_graph, stop_signals, every_checkpoint)
  metrics = evaluate_checkpoint(config, graph, checkpoint, tf_graph,
                                stop_signals)
  return [] if metrics is None else [metrics]
