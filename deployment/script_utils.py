"""Helpers shared by the flag-driven entry points (train, eval, export).

They turn flags into a dataset, network and preprocessing function, check
them before any graph is run, and report bad input as one clear paragraph
that names the flag or file and what to do, instead of a traceback:

    def main(_):
      script_utils.run_or_exit(lambda: train(FLAGS), 'train_image_classifier')

Every check raises `ScriptError` (a `ValueError`), so the same functions
can be used from Python, where a caller may catch it.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import contextlib
import os
import sys
import textwrap

from absl import logging

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

# Below this many pixels the MobileNets' 32x total stride leaves less than
# one cell of the final feature map.
MIN_IMAGE_SIZE = 32

# Suffix of ExponentialMovingAverage shadow variables in checkpoints.
EMA_SUFFIX = '/ExponentialMovingAverage'

# Scopes of classification heads, which are replaced when fine-tuning on a
# dataset with another number of classes.
_HEAD_SCOPES = ('Logits', 'AuxLogits')


class ScriptError(ValueError):
  """Bad input to an entry point; its message says which flag and what to do."""


def run_or_exit(fn, program):
  """Runs `fn()`, turning `ScriptError`s into a message and exit status 1.

  Args:
    fn: a callable without arguments.
    program: name of the script, used as the message prefix.

  Returns:
    Whatever `fn()` returns.
  """
  try:
    return fn()
  except ScriptError as e:
    logging.debug('%s failed', program, exc_info=True)
    print_error(program, str(e))
    sys.exit(1)


def print_error(program, message):
  """Writes `message` to stderr as run_or_exit does: one wrapped paragraph.

  Args:
    program: name of the script, used as the message prefix.
    message: the error message.
  """
  sys.stderr.write('\n%s: error: %s\n' % (program, _paragraph(message)))
  sys.stderr.flush()


def _paragraph(text):
  """Wraps the first line of `text`; keeps indented detail lines as they are."""
  lines = text.split('\n')
  # Paths stay whole (no breaks at hyphens or inside long words).
  head = textwrap.fill(lines[0], width=79, subsequent_indent='  ',
                       break_on_hyphens=False, break_long_words=False)
  return '\n'.join([head] + lines[1:])


def split_scopes(value):
  """Splits a comma-separated scopes flag value into a list (may be empty)."""
  if not value:
    return []
  return [s.strip() for s in value.split(',') if s.strip()]


def get_dataset(opts):
  """Loads the dataset of --dataset_name, --dataset_split_name, --dataset_dir.

  Args:
    opts: parsed flags with dataset_name, dataset_split_name, dataset_dir.

  Returns:
    A `slim.dataset.Dataset`.

  Raises:
    ScriptError: unknown name, missing directory or no files for the split.
  """
  from datasets import dataset_factory  # pylint: disable=g-import-not-at-top
  how_to_make = ''
  if opts.dataset_name == 'shapes':
    how_to_make = (' Create the embedded set with `python '
                   'download_and_convert_data.py --dataset_name=shapes '
                   '--dataset_dir=DIR`.')
  else:
    how_to_make = (' Create it with `python download_and_convert_data.py '
                   '--dataset_name=%s --dataset_dir=DIR`.' % opts.dataset_name)
  if not opts.dataset_dir:
    raise ScriptError('--dataset_dir is required: the directory holding the '
                      'TFRecord files of --dataset_name=%s.%s' %
                      (opts.dataset_name, how_to_make))
  if not tf.gfile.IsDirectory(opts.dataset_dir):
    raise ScriptError('--dataset_dir=%s does not exist or is not a '
                      'directory.%s' % (opts.dataset_dir, how_to_make))
  try:
    dataset = dataset_factory.get_dataset(
        opts.dataset_name, opts.dataset_split_name, opts.dataset_dir)
  except ScriptError:
    raise
  except (ValueError, KeyError, IOError, OSError,
          tf.errors.NotFoundError) as e:
    raise ScriptError('Cannot load --dataset_name=%s '
                      '--dataset_split_name=%s from --dataset_dir=%s: %s' %
                      (opts.dataset_name, opts.dataset_split_name,
                       opts.dataset_dir, e))
  pattern = dataset.data_sources
  patterns = pattern if isinstance(pattern, (list, tuple)) else [pattern]
  if not any(tf.gfile.Glob(p) for p in patterns):
    raise ScriptError('No files match %s for --dataset_split_name=%s in '
                      '--dataset_dir=%s.%s' %
                      (', '.join(patterns), opts.dataset_split_name,
                       opts.dataset_dir, how_to_make))
  return dataset


def make_input_dataset(opts, dataset, preprocessing_fn, image_size,
                       is_training):
  """Builds the tf.data pipeline of (images, labels) batches from flags.

  Args:
    opts: parsed flags with batch_size, num_readers,
      num_preprocessing_threads, labels_offset and the dataset flags.
    dataset: a `slim.dataset.Dataset`.
    preprocessing_fn: the preprocessing function.
    image_size: output image size.
    is_training: training (shuffled, repeated) or evaluation (each example
      once, last batch partial).

  Returns:
    A `tf.data.Dataset` of (images, labels).

  Raises:
    ScriptError: bad arguments or damaged data files.
  """
  from datasets import input_pipeline  # pylint: disable=g-import-not-at-top
  try:
    return input_pipeline.make_dataset(
        dataset, preprocessing_fn, image_size, opts.batch_size,
        is_training=is_training, num_readers=opts.num_readers,
        num_preprocessing_threads=opts.num_preprocessing_threads,
        labels_offset=opts.labels_offset)
  except (ValueError, tf.errors.DataLossError) as e:
    raise ScriptError('Cannot read --dataset_name=%s --dataset_split_name=%s '
                      'from --dataset_dir=%s: %s' %
                      (opts.dataset_name, opts.dataset_split_name,
                       opts.dataset_dir, _message(e)))


@contextlib.contextmanager
def explain_input_errors(opts, dataset):
  """Turns a damaged-TFRecord error inside the block into a ScriptError.

  Args:
    opts: parsed flags with the dataset flags.
    dataset: the `slim.dataset.Dataset` being read.

  Yields:
    Nothing.

  Raises:
    ScriptError: naming the damaged file when TensorFlow reports data loss.
  """
  from datasets import input_pipeline  # pylint: disable=g-import-not-at-top
  try:
    with input_pipeline.raise_corrupt_shard_errors(dataset):
      yield
  except tf.errors.DataLossError as e:
    raise ScriptError('A data file of --dataset_name=%s in --dataset_dir=%s '
                      'is damaged: %s Re-create the dataset with '
                      'download_and_convert_data.py.' %
                      (opts.dataset_name, opts.dataset_dir, _message(e)))


def _message(error):
  """The first line of an error's message (TensorFlow adds long traces)."""
  return (getattr(error, 'message', None) or str(error)).split('\n')[0]


def check_labels_offset(dataset, labels_offset, dataset_name):
  """Checks that --labels_offset fits the dataset's labels.

  Args:
    dataset: a `slim.dataset.Dataset`.
    labels_offset: the --labels_offset value.
    dataset_name: the --dataset_name value (for the message).

  Raises:
    ScriptError: if the offset would produce negative labels or no classes.
  """
  if labels_offset < 0 or labels_offset >= dataset.num_classes:
    raise ScriptError(
        '--labels_offset=%d must be in [0, %d) for --dataset_name=%s, which '
        'has %d classes.' % (labels_offset, dataset.num_classes, dataset_name,
                             dataset.num_classes))
  names = dataset.labels_to_names
  if labels_offset > 0 and names:
    # Labels below the offset are dropped; only a background class may be.
    dropped = [names.get(i) for i in range(labels_offset)]
    if any(n is not None and n.lower() not in ('background', 'none', '')
           for n in dropped):
      raise ScriptError(
          '--labels_offset=%d is inconsistent with --dataset_name=%s: its '
          'label 0 is the real class %r, not a background class, so it would '
          'become -1. Use --labels_offset=0 (offset 1 is for 1001-class '
          'ImageNet-style labels with background at 0).' %
          (labels_offset, dataset_name, dropped[0]))


def get_network_fn(opts, num_classes, weight_decay=0.0, is_training=False):
  """Returns the network function of --model_name.

  Args:
    opts: parsed flags with model_name.
    num_classes: number of classes of the head.
    weight_decay: l2 weight decay.
    is_training: whether the network is built for training.

  Returns:
    The function from `nets_factory.get_network_fn`.

  Raises:
    ScriptError: if --model_name is unknown.
  """
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  try:
    return nets_factory.get_network_fn(
        opts.model_name, num_classes=num_classes, weight_decay=weight_decay,
        is_training=is_training,
        batch_norm_decay=getattr(opts, 'batch_norm_decay', None))
  except (ValueError, KeyError) as e:
    valid = getattr(nets_factory, 'networks_map', None)
    extra = ''
    if valid and 'Valid' not in str(e):
      extra = ' Valid names: %s.' % ', '.join(sorted(valid))
    raise ScriptError('Bad --model_name=%s: %s%s' %
                      (opts.model_name, e, extra))


def get_preprocessing_fn(opts, is_training):
  """Returns the preprocessing of --preprocessing_name (or --model_name).

  Args:
    opts: parsed flags with preprocessing_name, model_name, use_grayscale.
    is_training: whether to distort images for training.

  Returns:
    `fn(image, height, width, **kwargs)`.

  Raises:
    ScriptError: if the name is unknown.
  """
  # Imported here so that users of the other helpers need no preprocessing.
  from preprocessing import preprocessing_factory
  name = opts.preprocessing_name or opts.model_name
  try:
    return preprocessing_factory.get_preprocessing(
        name, is_training=is_training, use_grayscale=opts.use_grayscale)
  except (ValueError, KeyError) as e:
    raise ScriptError(str(e))


def check_image_size(size, flag_name):
  """Checks an image-size flag value.

  Args:
    size: the image size in pixels.
    flag_name: e.g. '--train_image_size'.

  Raises:
    ScriptError: if the size is smaller than MIN_IMAGE_SIZE.
  """
  if size < MIN_IMAGE_SIZE:
    raise ScriptError(
        '%s=%d is too small: the MobileNets downsample by 32, so images must '
        'be at least %d pixels. Use %s=%d or larger (the nets are trained at '
        '224; the embedded shapes set has 64x64 images).' %
        (flag_name, size, MIN_IMAGE_SIZE, flag_name, MIN_IMAGE_SIZE))


def resolve_checkpoint(path, flag_name='--checkpoint_path'):
  """Returns the checkpoint prefix for a file prefix or a directory.

  Args:
    path: a checkpoint prefix (e.g. `train/model.ckpt-100`) or a directory
      (its latest checkpoint).
    flag_name: flag that supplied `path` (for the message).

  Returns:
    The checkpoint prefix.

  Raises:
    ScriptError: if no checkpoint is found.
  """
  if tf.gfile.IsDirectory(path):
    checkpoint = tf.train.latest_checkpoint(path)
    if not checkpoint:
      raise ScriptError('%s=%s is a directory without a checkpoint (no '
                        '`checkpoint` file naming an existing one). Pass a '
                        'checkpoint prefix such as DIR/model.ckpt-1000, or '
                        'the train_dir of a run that saved one.' %
                        (flag_name, path))
    return checkpoint
  if tf.gfile.Exists(path + '.index') or tf.gfile.Exists(path):
    return path
  raise ScriptError('%s=%s: no such checkpoint (expected %s.index and its '
                    'data files, or a directory holding checkpoints).' %
                    (flag_name, path, path))


def checkpoint_shapes(checkpoint):
  """Returns {name: shape list} of a checkpoint's variables.

  Args:
    checkpoint: a checkpoint prefix.

  Raises:
    ScriptError: if the checkpoint cannot be read.
  """
  try:
    reader = tf.train.load_checkpoint(checkpoint)
    return {k: list(v) for k, v in reader.get_variable_to_shape_map().items()}
  except (tf.errors.OpError, IOError, ValueError) as e:
    raise ScriptError('Cannot read checkpoint %s: %s' %
                      (checkpoint, str(e).split('\n')[0]))


def _model_scope(names):
  """The most common top-level scope of variable names ('' if none)."""
  counts = {}
  for name in names:
    top = name.split('/')[0]
    counts[top] = counts.get(top, 0) + 1
  return max(counts, key=counts.get) if counts else ''


def _head_scope(name):
  """'MobilenetV1/Logits' for a head variable, else None."""
  parts = name.split('/')
  if len(parts) > 2 and parts[1] in _HEAD_SCOPES:
    return '/'.join(parts[:2])
  return None


def check_checkpoint_fits(var_to_source, checkpoint, flag_name,
                          model_name, ignore_missing=False,
                          fine_tuning=False, resuming=False):
  """Checks that checkpoint variables exist with the shapes of the model's.

  Args:
    var_to_source: dict {checkpoint name: tf.Variable} to restore.
    checkpoint: checkpoint prefix.
    flag_name: the flag that named the checkpoint, e.g. '--checkpoint_path'.
    model_name: the --model_name value (for the message).
    ignore_missing: drop variables missing from the checkpoint instead of
      failing (--ignore_missing_vars).
    fine_tuning: the checkpoint initializes a model to fine-tune, so
      --checkpoint_exclude_scopes and --ignore_missing_vars are suggested.
    resuming: the checkpoint is the latest of --train_dir, so a new
      directory is suggested.

  Returns:
    The dict to restore, without missing variables when `ignore_missing`.

  Raises:
    ScriptError: naming each mismatching variable and the flag that fixes it.
  """
  shapes = checkpoint_shapes(checkpoint)
  missing, wrong_shape, restore = [], [], {}
  for source, var in sorted(var_to_source.items()):
    model_shape = var.get_shape().as_list()
    if source not in shapes:
      missing.append(source)
      continue
    if shapes[source] != model_shape:
      wrong_shape.append((source, shapes[source], model_shape))
      continue
    restore[source] = var
  if missing and ignore_missing:
    for name in missing:
      logging.warning('Variable %s is missing from checkpoint %s; it keeps '
                      'its initial value (--ignore_missing_vars).',
                      name, checkpoint)
    missing = []
  if not missing and not wrong_shape:
    return restore

  details = ['  %s: checkpoint %s vs model %s' % (n, c, m)
             for n, c, m in wrong_shape]
  details += ['  %s: missing from the checkpoint' % n for n in missing]
  if len(details) > 12:
    details = details[:12] + ['  ... and %d more' % (len(details) - 12)]
  bad_names = [d[0] for d in wrong_shape] + missing
  model_scope = _model_scope(v.op.name for v in var_to_source.values())
  ckpt_scope = _model_scope(n for n in shapes if n != 'global_step')
  heads = set(_head_scope(n) for n in bad_names)
  body_wrong_shape = [w for w in wrong_shape if _head_scope(w[0]) is None]
  if ckpt_scope and model_scope and ckpt_scope != model_scope:
    fix = ('The checkpoint holds a %s model but --model_name=%s builds %s: '
           'pass the --model_name of the checkpoint\'s network.' %
           (ckpt_scope, model_name, model_scope))
  elif None not in heads:
    heads = sorted(heads)
    fix = ('Only the classification head differs (another number of '
           'classes): pass the --dataset_name/--labels_offset the '
           'checkpoint was trained with')
    if fine_tuning:
      fix += (', or --checkpoint_exclude_scopes=%s to train a new head' %
              ','.join(heads))
    fix += '.'
  elif body_wrong_shape:
    name, ckpt_shape, model_shape = body_wrong_shape[0]
    ratio = float(ckpt_shape[-1]) / max(1, model_shape[-1])
    fix = ('The checkpoint was trained with another width (e.g. %s has '
           '%.2fx the channels): pass the --model_name with the '
           'checkpoint\'s depth multiplier (mobilenet_v1, mobilenet_v1_075, '
           'mobilenet_v1_050, mobilenet_v1_025, mobilenet_v2, '
           'mobilenet_v2_140, mobilenet_v2_050, mobilenet_v2_035).' %
           (name, ratio))
  else:
    fix = 'Pass the --model_name and flags the checkpoint was trained with'
    if any(n.endswith(EMA_SUFFIX) for n in missing):
      fix += ', or drop --moving_average_decay (it has no moving averages)'
    if fine_tuning:
      fix += (', or --ignore_missing_vars to keep missing variables at '
              'their initial values')
    fix += '.'
  if resuming:
    fix += (' If --train_dir belongs to another run, use a new --train_dir '
            '(training resumes from the checkpoint in it).')
  raise ScriptError(
      '%s=%s does not fit --model_name=%s: %d variable(s) have another '
      'shape, %d are missing. %s\n%s' %
      (flag_name, checkpoint, model_name, len(wrong_shape), len(missing), fix,
       '\n'.join(details)))


def check_writable_dir(path, flag_name):
  """Creates `path` if needed and checks that files can be written there.

  Args:
    path: a directory.
    flag_name: the flag that named it.

  Raises:
    ScriptError: if it cannot be created or written.
  """
  probe = os.path.join(path, '.write_test_%d' % os.getpid())
  try:
    tf.gfile.MakeDirs(path)
    with tf.gfile.GFile(probe, 'w') as f:
      f.write('ok')
    tf.gfile.Remove(probe)
  except (tf.errors.OpError, IOError, OSError) as e:
    raise ScriptError('%s=%s is not a writable directory (%s). Choose a '
                      'directory you can write to.' %
                      (flag_name, path, str(e).split('\n')[0]))
