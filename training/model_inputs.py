"""Looks up the dataset, network and preprocessing a job names, and checks them.

Every function takes plain values (names, directories, sizes) and raises
`InputError` with a message that says what to change, before any graph is
run. The `*_name` arguments of the messages are the names under which the
caller's user gave the value (the entry scripts pass their flag names).
"""


import collections
import contextlib
import functools
import os
import typing
from typing import Optional

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_errors
from datasets import dataset_factory
from datasets import input_pipeline
from core import errors
from nets import nets_factory
from preprocessing import preprocessing_factory

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# The MobileNets shrink their input 32-fold; a smaller image leaves no cell
# in the last feature map.
MIN_IMAGE_SIZE = 32


class InputConfig(typing.NamedTuple):
  """What to read and how to feed it to which network.

  Defaults are train_image_classifier.py's flag defaults (tests check it);
  image_size None means the network's default size.
  """
  dataset_dir: str
  dataset_name: str = 'imagenet'
  dataset_split_name: str = 'train'
  labels_offset: int = 0
  batch_size: int = 32
  num_readers: int = 4
  num_preprocessing_threads: int = 4
  model_name: str = 'mobilenet_v1'
  preprocessing_name: Optional[str] = None
  use_grayscale: bool = False
  image_size: Optional[int] = None
  use_explicit_padding: Optional[bool] = None

# The pieces a training or evaluation graph is built from.
ModelInputs = collections.namedtuple('ModelInputs', [
    'dataset', 'num_classes', 'network_fn', 'image_size', 'data'])


class InputError(errors.InputError):
  """A dataset, network, preprocessing or directory that cannot be used."""


def split_scopes(value):
  """Turns 'A/B, C' into ['A/B', 'C']; None or '' give []."""
  if not value:
    return []
  return [part.strip() for part in value.split(',') if part.strip()]


def _first_line(error):
  """TensorFlow appends long traces to messages; keep the first line."""
  return (getattr(error, 'message', None) or str(error)).split('\n')[0]


def _creation_hint(dataset_name):
  """One sentence saying which command writes the dataset's files."""
  command = dataset_errors.CONVERT_COMMAND % (dataset_name, 'DIR')
  if dataset_name == 'shapes':
    return ' Create the embedded set with `%s`.' % command
  return ' Create it with `%s`.' % command


def get_dataset(dataset_name, split_name, dataset_dir):
  """Returns the `slim.dataset.Dataset` of one split, checking its files exist.

  Args:
    dataset_name: a name known to `datasets.dataset_factory`.
    split_name: e.g. 'train' or 'validation'.
    dataset_dir: the directory holding the split's TFRecord files.

  Raises:
    InputError: no directory, an unknown name or split, or no files.
  """
  hint = _creation_hint(dataset_name)
  if not dataset_dir:
    raise InputError('%s is required: the directory holding the '
                     'TFRecord files of %s.%s' %
                     (ref('dataset_dir'), ref('dataset_name', dataset_name),
                      hint))
  if not tf.gfile.IsDirectory(dataset_dir):
    raise InputError('%s does not exist or is not a directory.%s' %
                     (ref('dataset_dir', dataset_dir), hint))
  try:
    dataset = dataset_factory.get_dataset(dataset_name, split_name,
                                          dataset_dir)
  except errors.InputError:
    raise
  except (ValueError, KeyError, IOError, OSError,
          tf.errors.NotFoundError) as e:
    raise InputError('Cannot load %s %s from %s: %s' %
                     (ref('dataset_name', dataset_name),
                      ref('dataset_split_name', split_name),
                      ref('dataset_dir', dataset_dir), errors.marked(e)))
  sources = dataset.data_sources
  patterns = sources if isinstance(sources, (list, tuple)) else [sources]
  if not any(tf.gfile.Glob(pattern) for pattern in patterns):
    raise InputError('No files match %s for %s in %s.%s' %
                     (', '.join(patterns),
                      ref('dataset_split_name', split_name),
                      ref('dataset_dir', dataset_dir), hint))
  return dataset


def make_input_dataset(dataset, preprocessing_fn, image_size, batch_size,
                       is_training, num_readers, num_preprocessing_threads,
                       labels_offset):
  """The tf.data pipeline of (images, labels) batches of `dataset`.

  Args:
    dataset: a `slim.dataset.Dataset` from `get_dataset`.
    preprocessing_fn: the preprocessing function.
    image_size: side of the square output images, in pixels.
    batch_size: examples per batch.
    is_training: True repeats and shuffles; False reads each example once
      and keeps the last, partial batch.
    num_readers: files read in parallel.
    num_preprocessing_threads: parallel preprocessing calls.
    labels_offset: subtracted from every label.

  Raises:
    InputError: bad arguments or damaged data files.
  """
  try:
    return input_pipeline.make_dataset(
        dataset, preprocessing_fn, image_size, batch_size,
        is_training=is_training, num_readers=num_readers,
        num_preprocessing_threads=num_preprocessing_threads,
        labels_offset=labels_offset)
  except (ValueError, tf.errors.DataLossError) as e:
    raise InputError('Cannot read the dataset files %s: %s' %
                     (dataset.data_sources, _first_line(e)))


@contextlib.contextmanager
def explain_input_errors(dataset, dataset_name, dataset_dir):
  """Inside the block, a damaged TFRecord becomes an `InputError` naming it.

  Args:
    dataset: the `slim.dataset.Dataset` being read.
    dataset_name: its name (for the message).
    dataset_dir: its directory (for the message).

  Yields:
    Nothing.
  """
  try:
    with input_pipeline.raise_corrupt_shard_errors(dataset):
      yield
  except tf.errors.DataLossError as e:
    raise InputError('A data file of %s in %s is damaged: %s Re-create '
                     'the dataset with download_and_convert_data.py.' %
                     (ref('dataset_name', dataset_name),
                      ref('dataset_dir', dataset_dir), _first_line(e)))


_BACKGROUND_NAMES = ('background', 'none', '')


def check_labels_offset(dataset, labels_offset, dataset_name):
  """Checks that subtracting `labels_offset` leaves valid, real classes.

  Args:
    dataset: a `slim.dataset.Dataset`.
    labels_offset: the offset subtracted from its labels.
    dataset_name: its name (for the message).

  Raises:
    InputError: an offset out of range, or one that would drop a class
      other than a background class.
  """
  count = dataset.num_classes
  if not 0 <= labels_offset < count:
    raise InputError(
        '%s must be in [0, %d) for %s, which has %d classes.' %
        (ref('labels_offset', labels_offset), count,
         ref('dataset_name', dataset_name), count))
  names = dataset.labels_to_names
  if not labels_offset or not names:
    return
  dropped = [names.get(label) for label in range(labels_offset)]
  real = [n for n in dropped
          if n is not None and n.lower() not in _BACKGROUND_NAMES]
  if real:
    raise InputError(
        '%s is inconsistent with %s: its '
        'label 0 is the real class %r, not a background class, so it would '
        'become -1. Use %s (offset 1 is for 1001-class '
        'ImageNet-style labels with background at 0).' %
        (ref('labels_offset', labels_offset),
         ref('dataset_name', dataset_name), dropped[0],
         ref('labels_offset', 0)))


def get_network_fn(model_name, num_classes, weight_decay=0.0,
                   is_training=False, batch_norm_decay=None,
                   use_explicit_padding=None):
  """The `nets_factory` network function of `model_name`.

  Args:
    model_name: a key of `nets_factory.networks_map`.
    num_classes: outputs of the classification head.
    weight_decay: L2 weight decay of the network's weights.
    is_training: build for training (batch norm in training mode).
    batch_norm_decay: decay of the batch-norm moving statistics; None keeps
      the network's default.
    use_explicit_padding: True pads symmetrically (as PyTorch, for timm's
      weights), False as TensorFlow's SAME; None keeps the network's own.

  Raises:
    InputError: an unknown model name (the message lists the known ones).
  """
  try:
    network_fn = nets_factory.get_network_fn(
        model_name, num_classes=num_classes, weight_decay=weight_decay,
        is_training=is_training, batch_norm_decay=batch_norm_decay)
    return with_padding(network_fn, use_explicit_padding)
  except (ValueError, KeyError) as e:
    known = getattr(nets_factory, 'networks_map', None)
    listing = ''
    if known and 'Valid' not in str(e):
      listing = ' Valid names: %s.' % ', '.join(sorted(known))
    raise InputError('Bad %s: %s%s' % (ref('model_name', model_name),
                                        errors.marked(e), listing))


def with_padding(network_fn, use_explicit_padding):
  """`network_fn` building with `use_explicit_padding` unless it is None."""
  if use_explicit_padding is None:
    return network_fn

  @functools.wraps(network_fn)
  def padded_network_fn(images, **kwargs):
    kwargs.setdefault('use_explicit_padding', use_explicit_padding)
    return network_fn(images, **kwargs)

  padded_network_fn.default_image_size = network_fn.default_image_size
  return padded_network_fn


def get_preprocessing_fn(name, is_training, use_grayscale=False):
  """The `preprocessing_factory` function of a model or preprocessing name.

  Raises:
    InputError: an unknown name.
  """
  try:
    return preprocessing_factory.get_preprocessing(
        name, is_training=is_training, use_grayscale=use_grayscale)
  except (ValueError, KeyError) as e:
    raise InputError(errors.marked(e))


def check_image_size(size, setting_name):
  """Checks that images of `size` pixels fit through a MobileNet.

  Args:
    size: side of the square input, in pixels.
    setting_name: the parameter that set it, e.g. 'eval_image_size'.

  Raises:
    InputError: if `size` is below `MIN_IMAGE_SIZE`.
  """
  if size >= MIN_IMAGE_SIZE:
    return
  raise InputError(
      '%s=%d is too small: the MobileNets downsample by 32, so images must '
      'be at least %d pixels. Use %s=%d or larger (the nets are trained at '
      '224; the embedded shapes set has 64x64 images).' %
      (ref(setting_name), size, MIN_IMAGE_SIZE, ref(setting_name),
       MIN_IMAGE_SIZE))


def check_writable_dir(path, setting_name):
  """Creates directory `path` if needed and checks a file can be written.

  Args:
    path: the directory.
    setting_name: the parameter that named it, e.g. 'train_dir'.

  Raises:
    InputError: it cannot be created or written to.
  """
  probe = os.path.join(path, '.write_test_%d' % os.getpid())
  try:
    tf.gfile.MakeDirs(path)
    with tf.gfile.GFile(probe, 'w') as f:
      f.write('ok')
    tf.gfile.Remove(probe)
  except (tf.errors.OpError, IOError, OSError) as e:
    raise InputError('%s=%s is not a writable directory (%s). Choose a '
                     'directory you can write to.' %
                     (ref(setting_name), path, _first_line(e)))


def check_inputs(config, is_training, image_size_name, weight_decay=0.0,
                 batch_norm_decay=None):
  """Looks up every name of an `InputConfig` and checks its values.

  Builds nothing in any graph, so a job can check all of its inputs before
  it writes anything (arguments as for `prepare`).

  Returns:
    (dataset, num_classes, network_fn, preprocessing_fn, image_size).

  Raises:
    InputError: any name, directory, offset or size that does not work.
  """
  dataset = get_dataset(config.dataset_name, config.dataset_split_name,
                        config.dataset_dir)
  check_labels_offset(dataset, config.labels_offset, config.dataset_name)
  num_classes = dataset.num_classes - config.labels_offset
  network_fn = get_network_fn(config.model_name, num_classes,
                              weight_decay=weight_decay,
                              is_training=is_training,
                              batch_norm_decay=batch_norm_decay,
                              use_explicit_padding=config.use_explicit_padding)
  preprocessing_fn = get_preprocessing_fn(
      config.preprocessing_name or config.model_name, is_training,
      use_grayscale=config.use_grayscale)
  image_size = config.image_size or network_fn.default_image_size
  check_image_size(image_size, image_size_name)
  return dataset, num_classes, network_fn, preprocessing_fn, image_size


def prepare(config, is_training, image_size_name, weight_decay=0.0,
            batch_norm_decay=None):
  """Looks up and checks everything an `InputConfig` names.

  Args:
    config: an `InputConfig`.
    is_training: for training (augmenting, shuffled, repeated input and a
      network in training mode) or for evaluation.
    image_size_name: the parameter that sets the image size (for
      messages).
    weight_decay: L2 weight decay of the network.
    batch_norm_decay: the network's batch-norm decay; None: its default.

  Returns:
    A `ModelInputs`; `data` is the `tf.data.Dataset` of (images, labels),
    built in the default graph.

  Raises:
    InputError: any name, directory, offset or size that does not work.
  """
  dataset, num_classes, network_fn, preprocessing_fn, image_size = (
      check_inputs(config, is_training, image_size_name, weight_decay,
                   batch_norm_decay))
  data = make_input_dataset(
      dataset, preprocessing_fn, image_size, config.batch_size, is_training,
      config.num_readers, config.num_preprocessing_threads,
      config.labels_offset)
  return ModelInputs(dataset, num_classes, network_fn, image_size, data)
