"""Exports a checkpoint as a SavedModel for serving.

The SavedModel has the tag `serve` and two signatures sharing one network:

* `serving_default`: `image_bytes`, a batch of encoded images (JPEG, PNG,
  GIF, BMP; any size) that the graph decodes and prepares with the model's
  evaluation preprocessing;
* `predict_images`: `images`, a float32 batch already preprocessed to the
  network input (`[N, size, size, channels]` in [-1, 1]); the same tensor as
  the `input` node of a frozen graph.

Both output `probabilities` `[N, num_classes]`, the `top_k` best `classes`
(dataset label ids: network index + labels offset) with their `scores`, and
`class_names` when label names are given.
"""


import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import atomic_files
from core import errors
from export import inference_graph

# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

ExportError = inference_graph.ExportError

SERVING_SIGNATURE = 'serving_default'
IMAGES_SIGNATURE = 'predict_images'
IMAGE_BYTES_INPUT = 'image_bytes'
IMAGES_INPUT = 'images'


def _decode_and_preprocess(image_bytes, preprocessing_fn, image_size):
  """Decodes a batch of encoded images and applies the eval preprocessing.

  Args:
    image_bytes: string tensor `[N]`.
    preprocessing_fn: `fn(image, height, width)` from the factory.
    image_size: output height and width.

  Returns:
    float32 tensor `[N, image_size, image_size, channels]`.
  """
  def prepare(data):
    image = tf.image.decode_image(data, channels=3, expand_animations=False)
    return preprocessing_fn(image, image_size, image_size)

  return tf.map_fn(prepare, image_bytes, dtype=tf.float32, back_prop=False)


def export_saved_model(export_dir, model_name, checkpoint_path, num_classes,
                       image_size=None, preprocessing_name=None,
                       use_grayscale=False, moving_average_decay=None,
                       labels_offset=0, top_k=5, labels_to_names=None,
                       use_explicit_padding=None):
  """Writes a SavedModel of a checkpoint (see the module docstring).

  The directory is written under a temporary name and renamed when
  complete, so an interrupted export leaves nothing that looks valid.

  Args:
    export_dir: directory to create; it must not exist.
    model_name: a name from `nets_factory`.
    checkpoint_path: a checkpoint prefix or a directory (its latest).
    num_classes: head size.
    image_size: input height and width; None: the network's default.
    preprocessing_name: preprocessing of the bytes signature; None: the one
      of `model_name`.
    use_grayscale: the network takes 1-channel images.
    moving_average_decay: use the checkpoint's moving-average weights.
    labels_offset: added to network indices to give dataset label ids.
    top_k: number of top classes returned.
    labels_to_names: optional {label id: name}, adds `class_names`.
    use_explicit_padding: the network's padding (None: its own).

  Returns:
    `(checkpoint, weights)`: the checkpoint used and which weights.

  Raises:
    ExportError: existing export_dir, bad model, flags or checkpoint.
  """
  if os.path.exists(export_dir):
    raise ExportError('%s already exists. SavedModels are not '
                      'overwritten: pass a new directory (e.g. with a version '
                      'number, as TF Serving expects) or delete the old one.' %
                      ref('export_dir', export_dir))
  if top_k < 1:
    raise ExportError('%s must be at least 1.' % ref('top_k', top_k))
  preprocessing_fn = inference_graph.get_eval_preprocessing(
      preprocessing_name or model_name, use_grayscale)
  with tf.Graph().as_default():
    image_size = image_size or inference_graph.default_image_size(model_name)
    image_bytes = tf.placeholder(tf.string, [None], name=IMAGE_BYTES_INPUT)
    decoded = _decode_and_preprocess(image_bytes, preprocessing_fn,
                                     image_size)
    channels = 1 if use_grayscale else 3
    # The float signature feeds this tensor directly; the bytes signature
    # leaves it at its default, the decoded images.
    images = tf.placeholder_with_default(
        decoded, [None, image_size, image_size, channels],
        name=inference_graph.INPUT_NODE_NAME)
    net = inference_graph.build_inference_graph(
        model_name, num_classes, image_size=image_size,
        use_grayscale=use_grayscale, images=images,
        use_explicit_padding=use_explicit_padding)
    outputs = _outputs(net.predictions, num_classes, labels_offset, top_k,
                       labels_to_names)
    signatures = {
        SERVING_SIGNATURE: tf.saved_model.signature_def_utils
                           .predict_signature_def(
                               {IMAGE_BYTES_INPUT: image_bytes}, outputs),
        IMAGES_SIGNATURE: tf.saved_model.signature_def_utils
                          .predict_signature_def({IMAGES_INPUT: images},
                                                 outputs),
    }
    with tf.Session() as sess:
      checkpoint, weights = inference_graph.restore_weights(
          sess, checkpoint_path, model_name, moving_average_decay)
      _save(sess, export_dir, signatures)
  return checkpoint, weights


def _outputs(predictions, num_classes, labels_offset, top_k,
             labels_to_names):
  """The output tensors of both signatures."""
  top = tf.nn.top_k(predictions, k=min(top_k, num_classes), name='top_k')
  classes = tf.add(tf.cast(top.indices, tf.int64), labels_offset,
                   name='classes')
  outputs = {'probabilities': predictions, 'classes': classes,
             'scores': tf.identity(top.values, name='scores')}
  if labels_to_names:
    names = [labels_to_names.get(i + labels_offset, str(i + labels_offset))
             for i in range(num_classes)]
    outputs['class_names'] = tf.gather(tf.constant(names), top.indices,
                                       name='class_names')
  return outputs


def _save(sess, export_dir, signatures):
  """Saves the SavedModel under a temporary name, then renames it."""
  with atomic_files.atomic_directory(export_dir) as tmp_dir:
    builder = tf.saved_model.builder.SavedModelBuilder(tmp_dir)
    builder.add_meta_graph_and_variables(
        sess, [tf.saved_model.tag_constants.SERVING],
        signature_def_map=signatures, strip_default_attrs=True)
    builder.save()
