"""Checkpoints: finding them, checking they fit a graph, choosing weights.

One place maps a graph's variables to the checkpoint tensors that restore
them, moving averages included (`moving_average_map`), for training's
fine-tune initialization, evaluation and export alike.
"""


from absl import logging

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf
import tf_slim as slim

from core import errors
from nets import nets_factory
from training import quantization

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

# What tf.train.ExponentialMovingAverage appends to a variable's name to
# name its shadow copy.
EMA_SUFFIX = '/ExponentialMovingAverage'

# Classification head scopes: they change with the number of classes.
_HEAD_SCOPES = ('Logits', 'AuxLogits')

# Mismatch lines listed in a CheckpointMismatchError before "... and N more".
_MAX_LISTED = 12


class CheckpointError(errors.InputError):
  """A checkpoint that is missing, unreadable or does not fit the graph."""


def resolve_checkpoint(path, setting_name='checkpoint_path'):
  """The checkpoint prefix that `path` names.

  Args:
    path: a prefix such as `train/model.ckpt-100`, or a directory (its
      newest checkpoint).
    setting_name: the parameter that gave `path` (for the message).

  Raises:
    CheckpointError: nothing found.
  """
  if tf.gfile.IsDirectory(path):
    newest = tf.train.latest_checkpoint(path)
    if newest:
      return newest
    raise CheckpointError(
        '%s=%s is a directory without a checkpoint (no "checkpoint" file '
        'naming an existing one). Pass a checkpoint prefix such as '
        'DIR/model.ckpt-1000, or the train_dir of a run that saved one.' %
        (ref(setting_name), path))
  if tf.gfile.Exists(path + '.index') or tf.gfile.Exists(path):
    return path
  raise CheckpointError('%s=%s: no such checkpoint (expected %s.index and '
                        'its data files, or a directory holding '
                        'checkpoints).' % (ref(setting_name), path, path))


def checkpoint_shapes(checkpoint):
  """{tensor name: shape as a list} of everything stored in `checkpoint`.

  Raises:
    CheckpointError: it cannot be read.
  """
  try:
    reader = tf.train.load_checkpoint(checkpoint)
    shape_map = reader.get_variable_to_shape_map()
  except (tf.errors.OpError, IOError, ValueError) as e:
    raise CheckpointError('Cannot read checkpoint %s: %s' %
                          (checkpoint, str(e).split('\n')[0]))
  return {name: list(shape) for name, shape in shape_map.items()}


def checkpoint_step(checkpoint):
  """The `global_step` saved in `checkpoint`, or None without one."""
  reader = tf.train.load_checkpoint(checkpoint)
  if not reader.has_tensor('global_step'):
    return None
  return int(reader.get_tensor('global_step'))


def moving_average_map(variables, checkpoint_names, use_averages=True):
  """Maps checkpoint tensor names to the `variables` they restore.

  With `use_averages`, a variable whose moving-average shadow is in the
  checkpoint is restored from the shadow (the smoother estimate training
  kept); every other variable from its own saved value.

  Args:
    variables: the variables to restore.
    checkpoint_names: the tensor names the checkpoint holds.
    use_averages: False maps every variable to its own name.

  Returns:
    (var_map, averaged): {checkpoint name: variable} and the list of the
    variables restored from a shadow.
  """
  var_map, averaged = {}, []
  for var in variables:
    shadow = var.op.name + EMA_SUFFIX
    if use_averages and shadow in checkpoint_names:
      var_map[shadow] = var
      averaged.append(var)
    else:
      var_map[var.op.name] = var
  return var_map, averaged


def require_moving_averages(checkpoint, checkpoint_names):
  """Fails when a checkpoint holds no shadow variable at all.

  Raises:
    CheckpointError: naming the checkpoint.
  """
  if any(name.endswith(EMA_SUFFIX) for name in checkpoint_names):
    return
  raise CheckpointError(
      '%s is set but checkpoint %s holds no moving '
      'averages: it has no ExponentialMovingAverage variables (no names '
      'ending in ...%s), so it was trained without %s. '
      'Drop %s to use its trained weights, or pass a '
      'checkpoint trained with it.' %
      (ref('moving_average_decay'), checkpoint, EMA_SUFFIX,
       ref('moving_average_decay'), ref('moving_average_decay')))


def _main_scope(names):
  """The top-level scope most of `names` share ('' for none)."""
  counts = {}
  for name in names:
    top = name.split('/')[0]
    counts[top] = counts.get(top, 0) + 1
  return max(counts, key=counts.get) if counts else ''


def _head_scope(name):
  """'MobilenetV1/Logits' for a variable of a head, else None."""
  parts = name.split('/')
  if len(parts) > 2 and parts[1] in _HEAD_SCOPES:
    return '/'.join(parts[:2])
  return None


def _mismatch_advice(var_to_source, shapes, missing, wrong_shape,
                     model_name, fine_tuning):
  """The sentence telling which setting makes a checkpoint fit."""
  bad = [w[0] for w in wrong_shape] + missing
  model_scope = _main_scope(v.op.name for v in var_to_source.values())
  saved_scope = _main_scope(n for n in shapes if n != 'global_step')
  heads = set(_head_scope(name) for name in bad)
  body_shapes = [w for w in wrong_shape if _head_scope(w[0]) is None]
  if saved_scope and model_scope and saved_scope != model_scope:
    return ('The checkpoint holds a %s model but %s builds %s: '
            'pass the %s of the checkpoint\'s network.' %
            (saved_scope, ref('model_name', model_name), model_scope,
             ref('model_name')))
  if None not in heads:
    advice = ('Only the classification head differs (another number of '
              'classes): pass the %s/%s the '
              'checkpoint was trained with' %
              (ref('dataset_name'), ref('labels_offset')))
    if fine_tuning:
      advice += (', or %s to train a new head' %
                 ref('checkpoint_exclude_scopes', ','.join(sorted(heads))))
    return advice + '.'
  if body_shapes:
    name, saved, built = body_shapes[0]
    ratio = float(saved[-1]) / max(1, built[-1])
    try:
      fitting = nets_factory.closest_width_variant(model_name, ratio)
    except ValueError:  # Not a factory name: no variant to suggest.
      fitting = None
    suggestion = (' (%s)' % ref('model_name', fitting)
                  if fitting and fitting != model_name else '')
    return ('The checkpoint was trained with another width (e.g. %s has '
            '%.2fx the channels): pass the %s with the '
            'checkpoint\'s depth multiplier%s.' %
            (name, ratio, ref('model_name'), suggestion))
  advice = ('Pass the %s and other settings the checkpoint was trained '
            'with' % ref('model_name'))
  if any(name.endswith(EMA_SUFFIX) for name in missing):
    advice += (', or drop %s (it has no moving averages)' %
               ref('moving_average_decay'))
  if fine_tuning:
    advice += (', or %s to keep missing variables at '
               'their initial values' % ref('ignore_missing_vars'))
  return advice + '.'


def check_checkpoint_fits(var_to_source, checkpoint, setting_name,
                          model_name, ignore_missing=False,
                          fine_tuning=False, resuming=False):
  """Checks that every variable to restore is saved, with its shape.

  Args:
    var_to_source: {checkpoint name: variable} to restore.
    checkpoint: the checkpoint prefix.
    setting_name: the parameter that named the checkpoint (for the
      message).
    model_name: the network's name (for the message).
    ignore_missing: leave variables that the checkpoint lacks out of the
      result (they keep their initial values) instead of failing.
    fine_tuning: the checkpoint starts a fine-tuning run; the message
      suggests excluding the head or ignoring missing variables.
    resuming: the checkpoint is the training directory's own; the message
      suggests a fresh directory.

  Returns:
    The {checkpoint name: variable} map to restore.

  Raises:
    CheckpointError: listing each missing or differently shaped variable.
  """
  shapes = checkpoint_shapes(checkpoint)
  missing, wrong_shape, restore = [], [], {}
  for source, var in sorted(var_to_source.items()):
    built = var.get_shape().as_list()
    if source not in shapes:
      missing.append(source)
    elif shapes[source] != built:
      wrong_shape.append((source, shapes[source], built))
    else:
      restore[source] = var
  if missing and ignore_missing:
    for name in missing:
      logging.warning('Variable %s is missing from checkpoint %s; it keeps '
                      'its initial value (%s).',
                      name, checkpoint, ref('ignore_missing_vars'))
    missing = []
  if not missing and not wrong_shape:
    return restore
  float_message = quantization.float_checkpoint_message(
      missing, shapes, checkpoint, setting_name)
  if float_message:
    raise CheckpointError(float_message)
  advice = _mismatch_advice(var_to_source, shapes, missing, wrong_shape,
                            model_name, fine_tuning)
  if resuming:
    advice += (' If %s belongs to another run, use a new %s (training '
               'resumes from the checkpoint in it).' %
               (ref('train_dir'), ref('train_dir')))
  lines = ['  %s: checkpoint %s vs model %s' % w for w in wrong_shape]
  lines += ['  %s: missing from the checkpoint' % name for name in missing]
  if len(lines) > _MAX_LISTED:
    lines = lines[:_MAX_LISTED] + [
        '  ... and %d more' % (len(lines) - _MAX_LISTED)]
  raise CheckpointError(
      '%s does not fit %s: %d variable(s) have another '
      'shape, %d are missing. %s\n%s' %
      (ref(setting_name, checkpoint), ref('model_name', model_name),
       len(wrong_shape), len(missing),
       advice, '\n'.join(lines)))


def fine_tune_saver(checkpoint_path, model_name, exclude_scopes=(),
                    ignore_missing_vars=False):
  """A saver that initializes the model variables from another checkpoint.

  Only model variables are restored, never the optimizer's slots or the
  global step, and none under `exclude_scopes`; each comes from its moving
  average when the checkpoint has one.

  Args:
    checkpoint_path: checkpoint prefix or directory to start from.
    model_name: the network's name (for messages).
    exclude_scopes: variable name prefixes to leave at their initial
      values (e.g. a new head).
    ignore_missing_vars: leave variables the checkpoint lacks alone
      instead of failing.

  Returns:
    (saver, checkpoint prefix), or (None, None) when nothing is restored.

  Raises:
    CheckpointError: the checkpoint does not fit the model.
  """
  checkpoint = resolve_checkpoint(checkpoint_path)
  variables = [v for v in slim.get_model_variables()
               if not any(v.op.name.startswith(s) for s in exclude_scopes)]
  var_map, averaged = moving_average_map(variables,
                                         checkpoint_shapes(checkpoint))
  restore = check_checkpoint_fits(
      var_map, checkpoint, 'checkpoint_path', model_name,
      ignore_missing=ignore_missing_vars, fine_tuning=True)
  if not restore:
    logging.warning('Nothing to restore from %s.', checkpoint)
    return None, None
  logging.info('Fine-tuning from %s: restoring %d variables (%d from their '
               'moving averages), excluding scopes %s.', checkpoint,
               len(restore), len(averaged), list(exclude_scopes) or 'none')
  return tf.train.Saver(restore, name='fine_tune_saver'), checkpoint

