"""Crash-safe, resumable writing of a split as sharded TFRecords.

Each shard is written under a temporary name and renamed when complete; a
per-split manifest lists the finished shards, so an interrupted conversion
resumes without duplicates and a finished one is not redone.
"""


import collections
import concurrent.futures
import functools
import hashlib
import json
import os

from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import atomic_files
from datasets import conversion_progress
from datasets import dataset_errors

MANIFEST_FORMAT = '%s_%s_manifest.json'  # (dataset name, split name)


def manifest_path(dataset_dir, dataset_name, split_name):
  return os.path.join(dataset_dir, MANIFEST_FORMAT % (dataset_name, split_name))


def read_manifest(dataset_dir, dataset_name, split_name):
  """Returns the split's manifest dict, or None when there is none."""
  path = manifest_path(dataset_dir, dataset_name, split_name)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'rb') as f:
    try:
      return json.loads(f.read().decode('utf-8'))
    except ValueError as e:
      raise dataset_errors.DatasetError(
          'Manifest %s is not valid JSON (%s). Delete it and re-run `%s`.' %
          (path, e, dataset_errors.CONVERT_COMMAND % (dataset_name, dataset_dir)))


def split_is_complete(dataset_dir, dataset_name, split_name, plan_info):
  """True if a finished conversion with the same settings is on disk.

  Lets a converter skip expensive preparation (extracting an archive) when
  there is nothing left to do.

  Args:
    dataset_dir: output directory.
    dataset_name: dataset name (manifest prefix).
    split_name: the split.
    plan_info: the settings `write_split` would get.

  Returns:
    bool.
  """
  manifest = read_manifest(dataset_dir, dataset_name, split_name)
  if not manifest or not manifest.get('complete'):
    return False
  if json.loads(json.dumps(plan_info)) != manifest.get('plan_info'):
    return False
  for name, info in manifest['shards'].items():
    path = os.path.join(dataset_dir, name)
    if not os.path.exists(path) or os.path.getsize(path) != info['bytes']:
      return False
  return True


def _write_manifest(dataset_dir, dataset_name, split_name, manifest):
  with atomic_files.atomic_write(manifest_path(dataset_dir, dataset_name, split_name)) as f:
    f.write(json.dumps(manifest, indent=1, sort_keys=True).encode('utf-8'))


def _write_shard(path, items, example_fn, progress=None):
  """Writes one shard under a temporary name and renames it when complete."""
  tmp = atomic_files.temporary_name(path)
  num_examples = 0
  skipped = []
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for item in items:
        try:
          example = example_fn(item)
        except dataset_errors.UnreadableImageError as e:
          logging.warning('Skipping unreadable image %s', e)
          skipped.append(str(e))
        else:
          writer.write(example)
          num_examples += 1
        if progress is not None:
          progress.advance()
    atomic_files.commit_file(tmp, path)
  except BaseException:
    atomic_files.remove_quietly(tmp)
    raise
  return num_examples, skipped


def default_shard_name(dataset_name, split_name, index, num_shards):
  return '%s_%s_%05d-of-%05d.tfrecord' % (dataset_name, split_name, index,
                                          num_shards)


_SplitPlan = collections.namedtuple(
    '_SplitPlan', ['names', 'paths', 'shard_items', 'fingerprint'])


def _plan(dataset_dir, dataset_name, split_name, items, num_shards,
          plan_info, shard_name_fn, round_robin=False):
  """Shard names and contents, and the fingerprint that identifies them."""
  num_shards = max(1, min(int(num_shards), len(items)))
  names = [shard_name_fn(dataset_name, split_name, i, num_shards)
           for i in range(num_shards)]
  if round_robin:
    shard_items = [items[i::num_shards] for i in range(num_shards)]
  else:
    bounds = [len(items) * i // num_shards for i in range(num_shards + 1)]
    shard_items = [items[bounds[i]:bounds[i + 1]] for i in range(num_shards)]
  identity = [names, [repr(item) for item in items], plan_info]
  if round_robin:  # Appended only here: other splits keep their fingerprint.
    identity.append('round_robin')
  fingerprint = hashlib.sha256(json.dumps(
      identity, sort_keys=True).encode('utf-8')).hexdigest()
  return _SplitPlan(names, [os.path.join(dataset_dir, n) for n in names],
                    shard_items, fingerprint)


def _reusable_shards(dataset_dir, dataset_name, split_name, old, plan):
  """{name: info} of the shards a previous run of the same plan finished.

  Shards of a different plan are deleted, and so are temporaries of
  interrupted writes.
  """
  done = {}
  if old and old.get('fingerprint') == plan.fingerprint:
    for name, info in old.get('shards', {}).items():
      path = os.path.join(dataset_dir, name)
      if os.path.exists(path) and os.path.getsize(path) == info.get('bytes'):
        done[name] = info
  elif old:
    logging.warning('%s %s was converted with other sources or settings; '
                    'converting it again.', dataset_name, split_name)
    for name in old.get('shards', {}):
      atomic_files.remove_quietly(os.path.join(dataset_dir, name))
  atomic_files.remove_stale_temporaries(plan.paths)
  return done


def _write_pending(plan, todo, example_fn, num_workers, manifest, save,
                   progress):
  """Writes shards `todo` in parallel, recording each in `manifest`."""
  done = manifest['shards']
  workers = num_workers or os.cpu_count() or 1
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    futures = {pool.submit(_write_shard, plan.paths[i], plan.shard_items[i],
                           example_fn, progress): i for i in todo}
    try:
      for future in concurrent.futures.as_completed(futures):
        i = futures[future]
        count, skipped = future.result()
        done[plan.names[i]] = {'num_examples': count, 'skipped': skipped,
                               'bytes': os.path.getsize(plan.paths[i])}
        save()
        # DEBUG: the progress lines (images, rate, ETA) and the summary
        # already say this; the manifest lists every shard.
        logging.debug('%s: %d/%d shards, %d examples', progress.label,
                      len(done), len(plan.names),
                      sum(s['num_examples'] for s in done.values()))
    except BaseException:
      for future in futures:
        future.cancel()
      raise


def write_split(dataset_dir, dataset_name, split_name, items, example_fn,
                num_shards, num_classes, num_workers=None, plan_info=None,
                shard_name_fn=default_shard_name,
                progress_interval_secs=conversion_progress.DEFAULT_INTERVAL_SECS,
                round_robin=False):
  """Writes a split as sharded TFRecords, crash-safely and resumably.

  The split's manifest (`<dataset>_<split>_manifest.json`) is written first
  with a fingerprint of the plan (shard names, items, `plan_info`) and is
  updated as each shard is renamed into place. A re-run with the same plan
  keeps the shards the manifest lists (and whose size matches), removes
  leftover temporary files and writes only the rest; a finished split is not
  touched. A different plan (other sources or settings) starts the split over.
  A full disk stops the split with DiskFullError; a shard only ever appears
  under its name once complete, so the re-run after freeing space finishes.

  Args:
    dataset_dir: output directory.
    dataset_name: prefix of the manifest (and of default shard names).
    split_name: e.g. `train`.
    items: list of items; `repr(item)` must identify it (e.g. (path, label)).
    example_fn: item -> serialized `tf.train.Example`; may raise
      UnreadableImageError to skip the item (logged and counted).
    num_shards: number of shards (at most one per item).
    num_classes: stored in the manifest for the reader.
    num_workers: parallel shard writers (default: CPU count).
    plan_info: JSON-able settings that change the output (seed, sizes...).
    shard_name_fn: (dataset_name, split_name, index, num_shards) -> file name.
    progress_interval_secs: least time between two progress lines.
    round_robin: item k goes to shard k % num_shards (slim's Visual Wake
      Words layout) instead of consecutive runs of items per shard.

  Returns:
    The final manifest dict.

  Raises:
    DatasetError: there are no items.
    DiskFullError: no space left (or a size limit) in `dataset_dir`.
  """
  if not items:
    raise dataset_errors.DatasetError(
        'No examples to write for %s split %r.' % (dataset_name, split_name))
  os.makedirs(dataset_dir, exist_ok=True)
  with dataset_errors.disk_full_explained(dataset_dir):
    plan = _plan(dataset_dir, dataset_name, split_name, items, num_shards,
                 plan_info, shard_name_fn, round_robin)
    old = read_manifest(dataset_dir, dataset_name, split_name)
    done = _reusable_shards(dataset_dir, dataset_name, split_name, old, plan)
    if old and old.get('complete') and len(done) == len(plan.names):
      logging.info('%s %s is already converted (%d examples); nothing to do.',
                   dataset_name, split_name, old['num_examples'])
      return old
    manifest = {
        'dataset': dataset_name, 'split': split_name, 'complete': False,
        'fingerprint': plan.fingerprint, 'num_shards': len(plan.names),
        'num_classes': int(num_classes), 'plan_info': plan_info,
        'shards': done,
    }
    save = functools.partial(_write_manifest, dataset_dir, dataset_name,
                             split_name, manifest)
    save()
    todo = [i for i, name in enumerate(plan.names) if name not in done]
    if done:
      logging.info('%s %s: resuming, %d of %d shards already complete.',
                   dataset_name, split_name, len(done), len(plan.names))
    progress = conversion_progress.ConversionProgress(
        '%s %s' % (dataset_name, split_name),
        sum(len(plan.shard_items[i]) for i in todo), progress_interval_secs)
    _write_pending(plan, todo, example_fn, num_workers, manifest, save,
                   progress)
    _mark_complete(manifest, plan.names, save)
  _log_summary(dataset_dir, manifest)
  return manifest


def _mark_complete(manifest, names, save):
  shards = manifest['shards']
  manifest.update(
      complete=True,
      num_examples=sum(shards[name]['num_examples'] for name in names),
      num_skipped=sum(len(shards[name]['skipped']) for name in names))
  save()


def _log_summary(dataset_dir, manifest):
  dataset_name, split_name = manifest['dataset'], manifest['split']
  if manifest['num_skipped']:
    first = next(s for info in manifest['shards'].values()
                 for s in info['skipped'])
    logging.warning('%s %s: skipped %d unreadable file(s), e.g. %s (all are '
                    'listed in %s).', dataset_name, split_name,
                    manifest['num_skipped'], first,
                    manifest_path(dataset_dir, dataset_name, split_name))
  logging.info('%s %s: wrote %d examples in %d shards.', dataset_name,
               split_name, manifest['num_examples'], manifest['num_shards'])


def open_sharded_output_tfrecords(exit_stack, base_path, num_shards):
  """Opens `num_shards` TFRecord writers named `<base_path>-NNNNN-of-NNNNN`.

  slim's interface for writers that the caller fills itself: each writer is
  entered into `exit_stack` (a `contextlib.ExitStack`), which closes them.
  Unlike `write_split`, these files are written in place, without a manifest
  or crash safety.

  Args:
    exit_stack: the `contextlib.ExitStack` that owns the writers.
    base_path: path prefix of the shard files.
    num_shards: how many writers to open.

  Returns:
    The writers, shard k at index k.
  """
  return [exit_stack.enter_context(tf.io.TFRecordWriter(
      '%s-%05d-of-%05d' % (base_path, index, num_shards)))
          for index in range(num_shards)]
