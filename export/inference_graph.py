"""Builds a classifier's inference graph and loads its weights.

Every export path (GraphDef, frozen graph, SavedModel, TFLite) and the
classify command build their graph with `build_inference_graph`, so they all
have the same input placeholder (`input`), the same network in inference
mode and the same output node (`MobilenetV1/Predictions/Reshape_1`,
`MobilenetV2/Predictions/Reshape_1`), the names that freezing and TFLite
tools look nodes up by.
"""


import collections

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_factory
from core import errors
from training import checkpoints
from training import model_inputs
from training import quantization

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

INPUT_NODE_NAME = 'input'

# Checkpoint variable that gives the head size of a checkpoint
# (`<scope>/Logits/Conv2d_1c_1x1/biases`).
_LOGITS_BIASES_SUFFIX = '/Logits/Conv2d_1c_1x1/biases'

class ExportError(errors.InputError):
  """Export settings or a checkpoint that cannot give an inference graph."""


InferenceGraph = collections.namedtuple(
    'InferenceGraph',
    ['images', 'logits', 'predictions', 'end_points', 'image_size',
     'output_node_name'])


def num_classes_from_checkpoint(checkpoint):
  """Returns the head size stored in a checkpoint, or None if it has none.

  Args:
    checkpoint: a checkpoint prefix.
  """
  for name, shape in checkpoints.checkpoint_shapes(checkpoint).items():
    if name.endswith(_LOGITS_BIASES_SUFFIX) and len(shape) == 1:
      return shape[0]
  return None


def _dataset_num_classes(dataset_name, dataset_dir=None):
  """The class count of a dataset (before any labels offset).

  Fixed datasets need no files; image_folder's count is read from
  `dataset_dir` (see `dataset_factory.num_classes`).
  """
  try:
    return dataset_factory.num_classes(dataset_name, dataset_dir)
  except (ValueError, IOError, OSError, tf.errors.OpError) as e:
    raise ExportError(
        'Cannot tell the number of classes of %s: %s Pass the %s made by '
        'download_and_convert_data.py, or %s.' %
        (ref('dataset_name', dataset_name), errors.marked(e),
         ref('dataset_dir'), ref('num_classes')))


def resolve_num_classes(dataset_name=None, dataset_dir=None, labels_offset=0,
                        num_classes=None, checkpoint=None):
  """Returns the number of outputs of the network's classification head.

  In order of precedence: `num_classes` when given; the dataset's class
  count (from `dataset_dir`, else the table of published datasets) minus
  `labels_offset`; the head size stored in `checkpoint`.

  Args:
    dataset_name: a dataset_factory name, or None.
    dataset_dir: the converted dataset's directory, or None.
    labels_offset: subtracted from dataset labels (1 drops ImageNet's
      background class from a 1001-class dataset).
    num_classes: the head size if known, or None / 0.
    checkpoint: a checkpoint prefix to read the head size from, or None.

  Returns:
    The head size, an int >= 1.

  Raises:
    ExportError: if no source gives a class count, or the offset leaves no
      classes.
  """
  if num_classes:
    if num_classes < 1:
      raise ExportError('%s must be positive.' %
                        ref('num_classes', num_classes))
    return num_classes
  if labels_offset < 0:
    raise ExportError('%s must be >= 0 (1 for a head without '
                      'the background class of a 1001-class dataset).' %
                      ref('labels_offset', labels_offset))
  dataset_classes = None
  if dataset_name and dataset_dir:
    dataset_classes = _dataset_num_classes(dataset_name, dataset_dir)
  elif dataset_name:
    # Published datasets have a fixed head size: no files needed.
    try:
      dataset_classes = dataset_factory.fixed_num_classes(dataset_name)
    except ValueError as e:
      raise ExportError(errors.marked(e))
  if dataset_classes is not None:
    if labels_offset >= dataset_classes:
      raise ExportError(
          '%s leaves no classes of %s, which has %d. Use %s, or 1 to drop '
          'the background class of a 1001-class dataset.' %
          (ref('labels_offset', labels_offset),
           ref('dataset_name', dataset_name), dataset_classes,
           ref('labels_offset', 0)))
    return dataset_classes - labels_offset
  if checkpoint:
    from_checkpoint = num_classes_from_checkpoint(checkpoint)
    if from_checkpoint:
      return from_checkpoint
  raise ExportError(
      'Cannot tell the number of classes: %s has no fixed '
      'class count and no %s was given%s. Pass '
      '%s (the converted dataset, with labels.txt) or %s.' %
      (ref('dataset_name', dataset_name), ref('dataset_dir'),
       ' nor a checkpoint with a classification head' if checkpoint else '',
       ref('dataset_dir'), ref('num_classes')))


def get_network_fn(model_name, num_classes, use_explicit_padding=None):
  """Returns the factory's network function in inference mode.

  `use_explicit_padding`: as for `model_inputs.get_network_fn`.

  Raises:
    ExportError: if `model_name` is unknown (the message lists valid ones).
  """
  return model_inputs.get_network_fn(
      model_name, num_classes, is_training=False,
      use_explicit_padding=use_explicit_padding)


def get_eval_preprocessing(name, use_grayscale=False):
  """Returns the evaluation preprocessing of a model or preprocessing name.

  Raises:
    ExportError: if the name is unknown (the message lists valid ones).
  """
  return model_inputs.get_preprocessing_fn(name, is_training=False,
                                           use_grayscale=use_grayscale)


def default_image_size(model_name):
  """Returns the input size a network was designed for (224 for all)."""
  return get_network_fn(model_name, 1).default_image_size


def _quantize_eval_graph():
  """Rewrites the default graph with fake-quant ops (both stacks)."""
  quantization.rewrite_for_eval()


def build_inference_graph(model_name, num_classes, image_size=None,
                          batch_size=None, use_grayscale=False,
                          quantize=False, images=None,
                          use_explicit_padding=None):
  """Builds a network in inference mode in the default graph.

  Args:
    model_name: a name from `nets_factory` (e.g. 'mobilenet_v1_025').
    num_classes: head size.
    image_size: input height and width; None: the network's default (224).
    batch_size: fixed batch size of the input placeholder; None: any.
    use_grayscale: the input has 1 channel instead of 3.
    quantize: add fake-quant ops for a quantization-aware-trained
      checkpoint (TF 1.15 only).
    images: an existing float32 input tensor `[batch, size, size, channels]`
      to build on (e.g. decoded, preprocessed image bytes); None creates the
      placeholder `input`.
    use_explicit_padding: True: symmetric padding (timm's weights); None:
      the network's own.

  Returns:
    An `InferenceGraph` (images, logits, predictions, end_points, image_size,
    output_node_name).

  Raises:
    ExportError: unknown model name, bad image size, or `quantize` on TF 2.
  """
  network_fn = get_network_fn(model_name, num_classes, use_explicit_padding)
  image_size = image_size or network_fn.default_image_size
  model_inputs.check_image_size(image_size, 'image_size')
  if images is None:
    channels = 1 if use_grayscale else 3
    images = tf.placeholder(tf.float32,
                            [batch_size, image_size, image_size, channels],
                            name=INPUT_NODE_NAME)
  logits, end_points = network_fn(images)
  if quantize:
    _quantize_eval_graph()
  predictions = end_points['Predictions']
  return InferenceGraph(images=images, logits=logits, predictions=predictions,
                        end_points=end_points, image_size=image_size,
                        output_node_name=predictions.op.name)


def weights_to_restore(checkpoint, model_name, moving_average_decay=None,
                       variables=None):
  """Maps checkpoint names to the graph's variables, checking they fit.

  With `moving_average_decay`, each variable is restored from its
  ExponentialMovingAverage shadow when the checkpoint has one (training
  averages the trainable variables, and may or may not average the batch
  norm statistics); the others from their own values.

  Args:
    checkpoint: a checkpoint prefix.
    model_name: the network's factory name (for messages).
    moving_average_decay: the training's moving-average decay, or None to use
      the raw trained weights.
    variables: variables to restore; default: all global variables.

  Returns:
    `(var_map, description)`: {checkpoint name: variable}, and a sentence
    saying which weights are used.

  Raises:
    ExportError: if the checkpoint does not fit the graph, or has no moving
      averages although `moving_average_decay` was given.
  """
  if variables is None:
    variables = tf.global_variables()
  if moving_average_decay is None:
    var_map = {v.op.name: v for v in variables}
    description = ('the raw trained weights (no moving averages) of '
                   '%d variables' % len(var_map))
  else:
    if not 0.0 < moving_average_decay < 1.0:
      raise ExportError('%s must be in (0, 1), e.g. 0.9999 as in '
                        'training.' % ref('moving_average_decay',
                                          repr(moving_average_decay)))
    names = checkpoints.checkpoint_shapes(checkpoint)
    checkpoints.require_moving_averages(checkpoint, names)
    var_map, averaged = checkpoints.moving_average_map(variables, names)
    description = ('the moving-average (ExponentialMovingAverage) weights '
                   'of %s variables' % len(averaged))
    if len(averaged) < len(var_map):
      description += ('; the other %d (e.g. %s) have no average in the '
                      'checkpoint and use their trained values' %
                      (len(var_map) - len(averaged),
                       sorted(v.op.name for v in variables
                              if v not in averaged)[0]))
  var_map = checkpoints.check_checkpoint_fits(
      var_map, checkpoint, 'checkpoint_path', model_name)
  return var_map, description


def restore_weights(sess, checkpoint_path, model_name,
                    moving_average_decay=None):
  """Restores the default graph's variables from a checkpoint.

  Args:
    sess: a session of the default graph.
    checkpoint_path: a checkpoint prefix or a directory (its latest).
    model_name: the network's factory name (for messages).
    moving_average_decay: see `weights_to_restore`.

  Returns:
    `(checkpoint, description)`: the prefix restored and which weights.

  Raises:
    ExportError: no checkpoint, or one that does not fit the graph.
  """
  checkpoint = checkpoints.resolve_checkpoint(checkpoint_path)
  var_map, description = weights_to_restore(checkpoint, model_name,
                                            moving_average_decay)
  tf.train.Saver(var_map).restore(sess, checkpoint)
  return checkpoint, description
