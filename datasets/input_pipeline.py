"""The tf.data input pipeline that training and evaluation share.

  dataset = dataset_factory.get_dataset('shapes', 'train', '/tmp/shapes')
  images, labels = input_pipeline.make_batch(
      dataset, preprocessing_fn, image_size=64, batch_size=32,
      is_training=True)

Training: shard files are shuffled and read `num_readers` at a time
(parallel interleave), records shuffled, decoded and preprocessed on
`num_preprocessing_threads` threads, batched (full batches only), repeated
`num_epochs` times (None: forever) and prefetched.

Evaluation (`is_training=False`): every record of the split exactly once, in
file order, with the last partial batch.

Deterministic mode (`seed` given): the file order, interleave, shuffle and
random preprocessing repeat exactly from run to run. Random preprocessing
then runs on one thread, because stateful random ops shared by parallel
calls draw in scheduling order (decoding stays parallel).

TensorFlow reports a damaged TFRecord only as "DataLossError: corrupted
record at <offset>"; `raise_corrupt_shard_errors` turns that into a
CorruptShardError naming the file. Truncated shards of a dataset with a
manifest are caught before reading starts.
"""


import contextlib
import inspect
import os
import re
import warnings

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_errors
from datasets import tfrecord_checks

CorruptShardError = dataset_errors.CorruptShardError

_AUTOTUNE = tf.data.experimental.AUTOTUNE
_DEFAULT_SHUFFLE_BUFFER = 2048


def data_files(dataset):
  """Sorted list of the dataset's files (data_sources may be globs).

  Args:
    dataset: a `slim.dataset.Dataset`.

  Returns:
    list of file paths.

  Raises:
    DatasetNotFoundError: no file matches.
  """
  sources = dataset.data_sources
  if isinstance(sources, str):
    sources = [sources]
  files = sorted(set(f for pattern in sources for f in tf.io.gfile.glob(
      pattern)))
  if not files:
    raise dataset_errors.DatasetNotFoundError(
        'No files match the dataset sources %s. Create the dataset with `%s`, '
        'or check %s.' % (', '.join(sources),
                          dataset_errors.CONVERT_COMMAND % ('NAME', 'DIR'),
                          dataset_errors.ref('dataset_dir')))
  return files


def check_shard_sizes(dataset, files):
  """Raises CorruptShardError for files shorter/longer than the manifest says.

  Args:
    dataset: a dataset from get_split (may have `shard_sizes`).
    files: the files that will be read.
  """
  expected = getattr(dataset, 'shard_sizes', None) or {}
  for path in files:
    size = expected.get(path)
    if size is not None and tf.io.gfile.stat(path).length != size:
      raise CorruptShardError(
          path, None, 'its size is %d bytes but the conversion wrote %d' %
          (tf.io.gfile.stat(path).length, size))


def _accepts_bbox(fn):
  try:
    parameters = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    return False
  return any(p.name == 'bbox' or p.kind == p.VAR_KEYWORD for p in parameters)


def _set_deterministic(ds, deterministic):
  options = tf.data.Options()
  if hasattr(options, 'deterministic'):
    options.deterministic = deterministic
  else:  # TF 1.15 name.
    options.experimental_deterministic = deterministic
  return ds.with_options(options)


def _check_args(dataset, image_size, batch_size, num_readers,
                num_preprocessing_threads, labels_offset, shuffle_buffer_size,
                num_epochs):
  """Raises ValueError naming the first bad argument."""
  positive = (('image_size', image_size), ('batch_size', batch_size),
              ('num_readers', num_readers),
              ('num_preprocessing_threads', num_preprocessing_threads))
  for name, value in positive:
    if not isinstance(value, int) or value < 1:
      raise ValueError('%s must be a positive integer, got %r.' % (name, value))
  for name, value in (('shuffle_buffer_size', shuffle_buffer_size),
                      ('num_epochs', num_epochs)):
    if value is not None and (not isinstance(value, int) or value < 1):
      raise ValueError('%s must be None or a positive integer, got %r.' %
                       (name, value))
  num_classes = getattr(dataset, 'num_classes', None)
  if not isinstance(labels_offset, int) or labels_offset < 0 or (
      num_classes is not None and labels_offset >= num_classes):
    raise dataset_errors.SettingError(
        '%s must be an integer in [0, num_classes=%s), got %r. '
        'Use %s only to map a dataset with a background class '
        '0 onto a head without one.' %
        (dataset_errors.ref('labels_offset'), num_classes, labels_offset,
         dataset_errors.ref('labels_offset', 1)))


def make_dataset(dataset, preprocessing_fn, image_size, batch_size,
                 is_training, num_readers=4, num_preprocessing_threads=4,
                 labels_offset=0, shuffle_buffer_size=None, num_epochs=None,
                 seed=None):
  """Builds the tf.data pipeline of (images, labels) batches.

  Args:
    dataset: a `slim.dataset.Dataset` (from dataset_factory.get_dataset).
    preprocessing_fn: fn(image, height, width, **kwargs) -> float image; it
      also gets `bbox=` ([1, N, 4] ymin, xmin, ymax, xmax) when the dataset
      has boxes and the function accepts the argument.
    image_size: output height and width.
    batch_size: examples per batch.
    is_training: training (shuffled, repeated, full batches) or evaluation
      (each example once, in file order, last batch partial).
    num_readers: shard files read in parallel (training).
    num_preprocessing_threads: parallel decode + preprocess calls.
    labels_offset: subtracted from every label.
    shuffle_buffer_size: records in the shuffle buffer (training); default
      min(num_samples, max(2048, 16 * batch_size)).
    num_epochs: passes over the data; None repeats forever when training and
      reads once when evaluating.
    seed: makes the pipeline deterministic (see the module docstring). If the
      graph has no seed yet, it is also set as the graph-level seed, so that
      random preprocessing ops get fixed seeds.

  Returns:
    A `tf.data.Dataset` of (images float32 [B, image_size, image_size, C],
    labels int64 [B]).

  Raises:
    ValueError: a bad argument (named in the message).
    DatasetNotFoundError: no data files.
    CorruptShardError: a shard's size differs from its manifest.
  """
  _check_args(dataset, image_size, batch_size, num_readers,
              num_preprocessing_threads, labels_offset, shuffle_buffer_size,
              num_epochs)
  files = data_files(dataset)
  check_shard_sizes(dataset, files)
  deterministic = seed is not None or not is_training
  if seed is not None and tf.get_default_graph().seed is None:
    tf.set_random_seed(seed)

  if is_training:
    readers = min(num_readers, len(files))
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat(num_epochs)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=readers,
                       block_length=1, num_parallel_calls=readers)
    buffer_size = shuffle_buffer_size or min(
        max(_DEFAULT_SHUFFLE_BUFFER, 16 * batch_size),
        max(int(dataset.num_samples or 0), batch_size))
    ds = ds.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
  else:
    ds = tf.data.TFRecordDataset(files)
    if num_epochs is not None:
      ds = ds.repeat(num_epochs)

  decoder = dataset.decoder
  wants_bbox = ('object/bbox' in decoder.list_items() and
                _accepts_bbox(preprocessing_fn))
  items = ['image', 'label'] + (['object/bbox'] if wants_bbox else [])

  def decode(serialized):
    tensors = dict(zip(items, decoder.decode(serialized, items)))
    label = tf.cast(tf.reshape(tensors['label'], []), tf.int64)
    decoded = (tensors['image'], label - labels_offset)
    if wants_bbox:
      decoded += (tf.expand_dims(tf.cast(tensors['object/bbox'], tf.float32),
                                 0),)
    return decoded

  def preprocess(image, label, bbox=None):
    kwargs = {'bbox': bbox} if bbox is not None else {}
    image = preprocessing_fn(image, image_size, image_size, **kwargs)
    image = tf.cast(image, tf.float32)
    channels = image.shape.as_list()[-1] if image.shape.ndims else None
    image.set_shape([image_size, image_size, channels])
    return image, label

  # The functions are graph code already (tf.cond, no Python branching on
  # tensors), so autograph has nothing to convert: left on, it spends ~3 s
  # of CPU per process failing to transform the preprocessing and warns.
  decode = tf.autograph.experimental.do_not_convert(decode)
  preprocess = tf.autograph.experimental.do_not_convert(preprocess)
  # Random ops in preprocessing draw in call order: keep it sequential when
  # the run must repeat exactly.
  sequential = seed is not None and is_training
  if sequential:
    ds = ds.map(decode, num_parallel_calls=num_preprocessing_threads)
    with warnings.catch_warnings():
      # TF warns that the graph seed reaches the random ops: that is the point.
      warnings.filterwarnings('ignore', message='Seed .* from outer graph')
      ds = ds.map(preprocess)
  else:
    decode_and_preprocess = tf.autograph.experimental.do_not_convert(
        lambda s: preprocess(*decode(s)))
    ds = ds.map(decode_and_preprocess,
                num_parallel_calls=num_preprocessing_threads)
  ds = ds.batch(batch_size, drop_remainder=is_training)
  ds = ds.prefetch(_AUTOTUNE)
  return _set_deterministic(ds, deterministic)


def make_batch(dataset, preprocessing_fn, image_size, batch_size, is_training,
               num_readers=4, num_preprocessing_threads=4, labels_offset=0,
               shuffle_buffer_size=None, num_epochs=None, seed=None):
  """Returns (images, labels) tensors from a one-shot iterator.

  Same arguments as `make_dataset`; for graph-mode training and evaluation
  loops. Evaluation raises OutOfRangeError after the last (partial) batch.

  Returns:
    (images float32 [B, image_size, image_size, C], labels int64 [B]).
  """
  ds = make_dataset(dataset, preprocessing_fn, image_size, batch_size,
                    is_training, num_readers=num_readers,
                    num_preprocessing_threads=num_preprocessing_threads,
                    labels_offset=labels_offset,
                    shuffle_buffer_size=shuffle_buffer_size,
                    num_epochs=num_epochs, seed=seed)
  images, labels = tf.data.make_one_shot_iterator(ds).get_next()
  return images, labels


_OFFSET_RE = re.compile(r'record at (\d+)')


def explain_data_loss(error, dataset_or_files):
  """Turns TensorFlow's DataLossError into a CorruptShardError.

  Args:
    error: the `tf.errors.DataLossError` raised while reading.
    dataset_or_files: the dataset being read, or its list of files.

  Returns:
    A CorruptShardError naming the damaged file (found by checking the
    files), or None if no file is damaged.
  """
  if isinstance(error, CorruptShardError):
    return error
  if isinstance(dataset_or_files, (list, tuple)):
    files = list(dataset_or_files)
  else:
    files = data_files(dataset_or_files)
  match = _OFFSET_RE.search(getattr(error, 'message', str(error)))
  return tfrecord_checks.find_corrupt_shard(
      [f for f in files if os.path.exists(f)],
      int(match.group(1)) if match else None)


@contextlib.contextmanager
def raise_corrupt_shard_errors(dataset_or_files):
  """Re-raises DataLossErrors inside the block as CorruptShardError.

    with input_pipeline.raise_corrupt_shard_errors(dataset):
      sess.run(train_op)

  Args:
    dataset_or_files: the dataset being read, or its list of files.

  Yields:
    Nothing.

  Raises:
    CorruptShardError: a shard is damaged; the message names it.
  """
  try:
    yield
  except tf.errors.DataLossError as e:
    found = explain_data_loss(e, dataset_or_files)
    if found is None:
      raise
    raise found from e
