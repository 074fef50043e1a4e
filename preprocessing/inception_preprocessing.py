"""Inception-style preprocessing, used by the MobileNets.

Training: a random crop that covers part of the object boxes (or of the
whole image), resized to the output size with a random method, randomly
mirrored and colour-distorted. Evaluation: the central 87.5 % of the image,
a bilinear resize to the output size. Both end with scaling to [-1, 1].

The evaluation recipe must be exact: the published accuracy of the released
checkpoints was measured with it.
"""


import functools

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from preprocessing import image_ops

# Fraction of each side kept by the evaluation crop.
EVAL_CENTRAL_FRACTION = 0.875

# Random crop: the sampled box must cover this much of some object box, have
# an aspect ratio and an area (fraction of the image) in these ranges.
CROP_MIN_OBJECT_COVERED = 0.1
CROP_ASPECT_RATIO_RANGE = (0.75, 1.33)
CROP_AREA_RANGE = (0.05, 1.0)
CROP_MAX_ATTEMPTS = 100

# Colour distortions: name -> function of a [0, 1] RGB image.
_COLOR_DISTORTIONS = {
    'brightness': lambda x: tf.image.random_brightness(x, max_delta=32. / 255.),
    'saturation': lambda x: tf.image.random_saturation(x, lower=0.5,
                                                       upper=1.5),
    'hue': lambda x: tf.image.random_hue(x, max_delta=0.2),
    'contrast': lambda x: tf.image.random_contrast(x, lower=0.5, upper=1.5),
}

# The orders in which the distortions are applied; one is picked at random
# per image. Fast mode skips hue and contrast, the costliest two.
_COLOR_ORDERINGS = (
    ('brightness', 'saturation', 'hue', 'contrast'),
    ('saturation', 'brightness', 'contrast', 'hue'),
    ('contrast', 'hue', 'brightness', 'saturation'),
    ('hue', 'saturation', 'contrast', 'brightness'),
)
_COLOR_ORDERINGS_FAST = (
    ('brightness', 'saturation'),
    ('saturation', 'brightness'),
)

# Resize methods drawn from during training (fast mode: bilinear only).
_RESIZE_METHODS = (
    tf.image.ResizeMethod.BILINEAR,
    tf.image.ResizeMethod.NEAREST_NEIGHBOR,
    tf.image.ResizeMethod.BICUBIC,
    tf.image.ResizeMethod.AREA,
)


def distort_color(image, fast_mode=True, scope=None):
  """Jitters the colours of an RGB image, in an order drawn per image.

  The distortions do not commute, so each image gets one of the
  `_COLOR_ORDERINGS` (or `_COLOR_ORDERINGS_FAST`) at random.

  Args:
    image: 3-D float RGB image in [0, 1].
    fast_mode: use only brightness and saturation.
    scope: optional name scope.

  Returns:
    The distorted image, clipped to [0, 1].
  """
  orderings = _COLOR_ORDERINGS_FAST if fast_mode else _COLOR_ORDERINGS

  def make_branch(ordering):
    def apply(x):
      for name in ordering:
        x = _COLOR_DISTORTIONS[name](x)
      return tf.clip_by_value(x, 0.0, 1.0)
    return apply

  with tf.name_scope(scope, 'distort_color', [image]):
    return image_ops.random_branch(image, [make_branch(o) for o in orderings])


def _normalize_bbox(bbox):
  """Returns boxes as a float32 `[1, num_boxes, 4]` tensor.

  Args:
    bbox: None (the whole image), or boxes `[ymin, xmin, ymax, xmax]` in
      relative coordinates shaped `[4]`, `[num_boxes, 4]` or
      `[1, num_boxes, 4]`.

  Returns:
    The boxes, shaped as `tf.image.sample_distorted_bounding_box` wants.
  """
  if bbox is None:
    return tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
  return tf.reshape(tf.cast(bbox, tf.float32), [1, -1, 4])


def distorted_bounding_box_crop(image, bbox,
                                min_object_covered=CROP_MIN_OBJECT_COVERED,
                                aspect_ratio_range=CROP_ASPECT_RATIO_RANGE,
                                area_range=CROP_AREA_RANGE,
                                max_attempts=CROP_MAX_ATTEMPTS,
                                scope=None):
  """Crops a random box of the image that overlaps the object boxes.

  When no sampled box satisfies the constraints (or there are no boxes), the
  whole image is kept.

  Args:
    image: 3-D image.
    bbox: boxes as accepted by `_normalize_bbox` (None: the whole image).
    min_object_covered: minimum fraction of some box the crop must contain.
    aspect_ratio_range: allowed width / height of the crop.
    area_range: allowed crop area as a fraction of the image.
    max_attempts: samples tried before falling back to the whole image.
    scope: optional name scope.

  Returns:
    A tuple `(cropped_image, crop_box)`, `crop_box` being `[1, 1, 4]`.
  """
  with tf.name_scope(scope, 'distorted_bounding_box_crop', [image, bbox]):
    # TF 1.15's op ignores the graph-level seed when given no seeds; pass the
    # derived pair so `tf.set_random_seed` makes crops reproducible there too.
    seed, seed2 = tf.get_seed(None)
    begin, size, crop_box = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=_normalize_bbox(bbox),
        seed=seed,
        seed2=seed2,
        min_object_covered=min_object_covered,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True)
    cropped = tf.slice(image, begin, size)
    # The slice size is dynamic; the channel count is not.
    shape = image.get_shape()
    channels = shape.as_list()[-1] if shape.ndims else None
    cropped.set_shape([None, None, channels])
    return cropped, crop_box


def _crop_around_boxes(image, bbox, add_image_summaries):
  """The random crop of the training recipe, with its optional summary.

  The summary outlines the crop on the uncropped image: `crop_box` is in
  that image's relative coordinates.
  """
  cropped, crop_box = distorted_bounding_box_crop(image, bbox)
  if add_image_summaries:
    tf.summary.image('image_with_crop_box', tf.image.draw_bounding_boxes(
        tf.expand_dims(image, 0), crop_box))
  return cropped


def _resize_with_random_method(image, height, width, fast_mode):
  """Resizes to `[height, width]` with a method drawn from `_RESIZE_METHODS`.

  The aspect ratio is not kept: the crop is stretched to the output size.
  """
  methods = _RESIZE_METHODS[:1] if fast_mode else _RESIZE_METHODS
  resizers = [functools.partial(image_ops.resize, height=height, width=width,
                                method=method) for method in methods]
  return image_ops.random_branch(image, resizers)


def preprocess_for_train(image, height, width, bbox=None, fast_mode=True,
                         add_image_summaries=False, random_crop=True,
                         use_grayscale=False, scope=None):
  """Crops, resizes, mirrors and colour-jitters one image for training.

  Args:
    image: 3-D image, uint8 or float in [0, 1], 1 or 3 channels.
    height: output height.
    width: output width.
    bbox: optional object boxes `[ymin, xmin, ymax, xmax]` (relative),
      shaped `[4]`, `[N, 4]` or `[1, N, 4]`; None uses the whole image.
    fast_mode: bilinear resizing only and two colour distortions (instead of
      four resize methods and four distortions).
    add_image_summaries: add image summaries of the crop.
    random_crop: if False, skip the random crop (resize the whole image).
    use_grayscale: output a single luminance channel.
    scope: optional name scope.

  Returns:
    A float32 image `[height, width, 3]` (1 channel with `use_grayscale`)
    in [-1, 1].
  """
  with tf.name_scope(scope, 'distort_image', [image, height, width, bbox]):
    rgb = image_ops.prepare_channels(image_ops.to_float(image))
    if random_crop:
      rgb = _crop_around_boxes(rgb, bbox, add_image_summaries)
    rgb = _resize_with_random_method(rgb, height, width, fast_mode)
    rgb = distort_color(image_ops.random_flip_left_right(rgb),
                        fast_mode=fast_mode)
    distorted = image_ops.prepare_channels(rgb, use_grayscale=use_grayscale)
    if add_image_summaries:
      tf.summary.image('distorted_image', tf.expand_dims(distorted, 0))
    return image_ops.scale_to_minus_one_one(distorted)


def preprocess_for_eval(image, height, width,
                        central_fraction=EVAL_CENTRAL_FRACTION,
                        central_crop=True, use_grayscale=False, scope=None):
  """Centre-crops, resizes and rescales one image for evaluation.

  Args:
    image: 3-D image, uint8 or float in [0, 1], 1 or 3 channels.
    height: output height (None keeps the cropped size).
    width: output width (None keeps the cropped size).
    central_fraction: fraction of each side kept by the central crop.
    central_crop: if False, skip the crop (resize the whole image).
    use_grayscale: output a single luminance channel.
    scope: optional name scope.

  Returns:
    A float32 image `[height, width, 3]` (1 channel with `use_grayscale`)
    in [-1, 1].
  """
  with tf.name_scope(scope, 'eval_image', [image, height, width]):
    image = image_ops.prepare_channels(image_ops.to_float(image),
                                       use_grayscale=use_grayscale)
    if central_crop and central_fraction:
      image = image_ops.central_crop(image, central_fraction)
    if height and width:
      image = image_ops.resize(image, height, width)
    return image_ops.scale_to_minus_one_one(image)


def preprocess_image(image, height, width, is_training=False, bbox=None,
                     fast_mode=True, add_image_summaries=False,
                     crop_image=True, use_grayscale=False,
                     central_fraction=EVAL_CENTRAL_FRACTION):
  """Runs the training or the evaluation recipe on one image.

  Args:
    image: 3-D image, uint8 or float in [0, 1], 1 or 3 channels.
    height: output height.
    width: output width.
    is_training: distort for training rather than prepare for evaluation.
    bbox: training only: object boxes to crop around (see
      `preprocess_for_train`); ignored in evaluation.
    fast_mode: training only: see `preprocess_for_train`.
    add_image_summaries: training only: add image summaries.
    crop_image: random crop (training) or central crop (evaluation).
    use_grayscale: output a single luminance channel.
    central_fraction: evaluation only: fraction kept by the central crop.

  Returns:
    A float32 image `[height, width, channels]` in [-1, 1].
  """
  if is_training:
    return preprocess_for_train(image, height, width, bbox=bbox,
                                fast_mode=fast_mode,
                                add_image_summaries=add_image_summaries,
                                random_crop=crop_image,
                                use_grayscale=use_grayscale)
  return preprocess_for_eval(image, height, width,
                             central_fraction=central_fraction,
                             central_crop=crop_image,
                             use_grayscale=use_grayscale)
