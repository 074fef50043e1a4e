"""Checks around a run that need TensorFlow: shapes for the training record,
and the stale batch-norm statistics of a checkpoint.

The decisions themselves live in `training.batch_norm_check` and
`training.run_record` (pure Python); this module feeds them what only a
dataset or a checkpoint can tell. No flags: scripts pass typed values.
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

import tensorflow.compat.v1 as tf

from training import batch_norm_check
from training import model_inputs


def trained_shape(input_config):
  """(num_classes, image_size) a run of `input_config` trains with.

  The same values `model_inputs.prepare` derives, without building a graph,
  so a script can write the training record before training starts.

  Raises:
    InputError: unknown dataset or model name, bad directory or offset.
  """
  dataset = model_inputs.get_dataset(input_config.dataset_name,
                                     input_config.dataset_split_name,
                                     input_config.dataset_dir)
  model_inputs.check_labels_offset(dataset, input_config.labels_offset,
                                   input_config.dataset_name)
  num_classes = dataset.num_classes - input_config.labels_offset
  image_size = input_config.image_size
  if not image_size:
    network_fn = model_inputs.get_network_fn(input_config.model_name,
                                             num_classes)
    image_size = network_fn.default_image_size
  return num_classes, image_size


def default_image_size(model_name):
  """The network's own input size (its default_image_size).

  Raises:
    InputError: an unknown model name.
  """
  return model_inputs.get_network_fn(model_name, 2).default_image_size


def moving_statistics(checkpoint):
  """({layer: moving_mean}, {layer: moving_variance}) stored in a checkpoint."""
  reader = tf.train.load_checkpoint(checkpoint)
  names = reader.get_variable_to_shape_map()
  means, variances = {}, {}
  for mean_name, variance_name in batch_norm_check.moving_statistics_names(
      names):
    layer = mean_name.rsplit('/', 1)[0]
    means[layer] = reader.get_tensor(mean_name)
    variances[layer] = reader.get_tensor(variance_name)
  return means, variances


def stale_statistics_message(checkpoint, global_step=None, decay=None):
  """Why a checkpoint evaluates near chance, or None when its statistics
  look trained (or it has no batch norm).

  Args:
    checkpoint: a checkpoint prefix.
    global_step: its training step, for the explanation.
    decay: the batch-norm decay it was trained with (e.g. from the record).
  """
  means, variances = moving_statistics(checkpoint)
  stale = batch_norm_check.find_stale_statistics(means, variances)
  if stale is None:
    return None
  return batch_norm_check.explain_stale(stale, checkpoint, global_step, decay)
