"""Tests for preprocessing/: factory, inception-style and cifarnet-style."""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from preprocessing import cifarnet_preprocessing
from preprocessing import inception_preprocessing
from preprocessing import preprocessing_factory


def _random_image(height, width, channels=3, seed=0):
  rng = np.random.RandomState(seed)
  return rng.randint(0, 256, size=(height, width, channels)).astype(np.uint8)


def _run(tensor, feed_dict=None):
  with tf.Session() as sess:
    return sess.run(tensor, feed_dict=feed_dict)


def _numpy_central_crop(image, fraction):
  """The documented crop: offset floor((side - fraction * side) / 2)."""
  height, width = image.shape[:2]
  top = int((height - height * fraction) / 2)
  left = int((width - width * fraction) / 2)
  return image[top:height - top, left:width - left]


def _numpy_bilinear(image, out_height, out_width):
  """Legacy TF bilinear resize (align_corners=False, no half-pixel shift)."""
  in_height, in_width = image.shape[:2]
  image = image.astype(np.float64)

  def coords(out_size, in_size):
    src = np.arange(out_size) * (in_size / out_size)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, src - low

  y0, y1, fy = coords(out_height, in_height)
  x0, x1, fx = coords(out_width, in_width)
  fy = fy[:, None, None]
  fx = fx[None, :, None]
  top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
  bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
  return top * (1 - fy) + bottom * fy


def _eval_reference(image, out_height, out_width, fraction=0.875):
  crop = _numpy_central_crop(image.astype(np.float64) / 255.0, fraction)
  return (_numpy_bilinear(crop, out_height, out_width) - 0.5) * 2.0


# ----------------------------------------------------------------- factory


# Value ranges other than [-1, 1]: ImageNet's mean/std maps [0, 1] to
# (0 - 0.485) / 0.229 .. (1 - 0.406) / 0.225.
_VALUE_RANGES = {'inception_mean_std': (-2.118, 2.641)}


@pytest.mark.parametrize('name', preprocessing_factory.preprocessing_names())
@pytest.mark.parametrize('is_training', [False, True])
def test_every_name_gives_float_image_in_range(name, is_training):
  fn = preprocessing_factory.get_preprocessing(name, is_training=is_training)
  out = fn(tf.constant(_random_image(40, 52)), 24, 24)
  assert out.dtype == tf.float32
  value = _run(out)
  assert value.shape == (24, 24, 3)
  low, high = _VALUE_RANGES.get(name, (-1.0, 1.0))
  assert value.min() >= low and value.max() <= high
  # A random image spans most of the range; a constant output would mean
  # the scaling (or the whole preprocessing) was skipped.
  assert value.max() - value.min() > 1.0


def test_mobilenet_names_use_inception_eval_preprocessing():
  image = _random_image(30, 30)
  expected = _eval_reference(image, 16, 16)
  for name in ['mobilenet_v1', 'mobilenet_v1_025', 'mobilenet_v2',
               'mobilenet_v2_140', 'mobilenet_v2_035', 'mobilenet_v2_050']:
    fn = preprocessing_factory.get_preprocessing(name)
    np.testing.assert_allclose(_run(fn(tf.constant(image), 16, 16)),
                               expected, atol=1e-5, err_msg=name)


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError) as info:
    preprocessing_factory.get_preprocessing('resnet_v9')
  message = str(info.value)
  assert 'resnet_v9' in message
  for name in ['mobilenet_v1', 'mobilenet_v2_140', 'inception', 'cifarnet']:
    assert name in message


def test_factory_passes_kwargs_through():
  fn = preprocessing_factory.get_preprocessing('inception')
  image = _random_image(32, 32)
  out = _run(fn(tf.constant(image), 32, 32, central_fraction=0.5))
  np.testing.assert_allclose(out, _eval_reference(image, 32, 32, 0.5),
                             atol=1e-5)
  with pytest.raises(TypeError):
    fn(tf.constant(image), 32, 32, no_such_option=1)


def test_batch_input_is_rejected_with_clear_error():
  fn = preprocessing_factory.get_preprocessing('mobilenet_v1')
  with pytest.raises(ValueError, match='single image'):
    fn(tf.zeros([2, 32, 32, 3], tf.uint8), 16, 16)


# ------------------------------------------------------ inception eval path


@pytest.mark.parametrize('height,width', [(37, 50), (64, 64), (9, 23)])
def test_eval_central_crop_box_is_exact(height, width):
  image = _random_image(height, width, seed=height)
  out = inception_preprocessing.preprocess_for_eval(
      tf.constant(image), None, None)
  expected = (_numpy_central_crop(image / 255.0, 0.875) - 0.5) * 2.0
  value = _run(out)
  assert value.shape == expected.shape
  np.testing.assert_allclose(value, expected, atol=1e-6)


@pytest.mark.parametrize('height,width,out_h,out_w',
                         [(37, 50, 16, 16), (64, 64, 64, 64),
                          (20, 31, 40, 24), (100, 80, 32, 48)])
def test_eval_matches_hand_computed_crop_and_bilinear(height, width, out_h,
                                                      out_w):
  image = _random_image(height, width, seed=out_h)
  fn = preprocessing_factory.get_preprocessing('mobilenet_v1')
  value = _run(fn(tf.constant(image), out_h, out_w))
  assert value.shape == (out_h, out_w, 3)
  np.testing.assert_allclose(value, _eval_reference(image, out_h, out_w),
                             atol=1e-5)


def test_eval_with_unknown_input_shape():
  image = _random_image(45, 33)
  placeholder = tf.placeholder(tf.uint8, [None, None, 3])
  out = preprocessing_factory.get_preprocessing('mobilenet_v2')(
      placeholder, 20, 20)
  assert out.get_shape().as_list() == [20, 20, 3]
  value = _run(out, {placeholder: image})
  np.testing.assert_allclose(value, _eval_reference(image, 20, 20),
                             atol=1e-5)


def test_float_input_is_taken_as_zero_one_range():
  image = _random_image(30, 40)
  fn = preprocessing_factory.get_preprocessing('mobilenet_v1')
  from_uint8 = _run(fn(tf.constant(image), 16, 16))
  from_float = _run(fn(tf.constant(image.astype(np.float32) / 255.0), 16, 16))
  np.testing.assert_allclose(from_float, from_uint8, atol=1e-6)


def test_invalid_central_fraction_is_rejected():
  with pytest.raises(ValueError, match='central_fraction'):
    inception_preprocessing.preprocess_for_eval(
        tf.constant(_random_image(10, 10)), 8, 8, central_fraction=1.5)


# ---------------------------------------------------------------- grayscale


@pytest.mark.parametrize('name', ['mobilenet_v1', 'cifarnet'])
@pytest.mark.parametrize('is_training', [False, True])
def test_grayscale_outputs_one_channel(name, is_training):
  fn = preprocessing_factory.get_preprocessing(
      name, is_training=is_training, use_grayscale=True)
  value = _run(fn(tf.constant(_random_image(36, 36)), 24, 24))
  assert value.shape == (24, 24, 1)
  assert value.min() >= -1.0 and value.max() <= 1.0


def test_grayscale_eval_is_luminance_of_colour_eval():
  image = _random_image(40, 40)
  colour = _run(preprocessing_factory.get_preprocessing('mobilenet_v1')(
      tf.constant(image), 20, 20))
  gray = _run(preprocessing_factory.get_preprocessing(
      'mobilenet_v1', use_grayscale=True)(tf.constant(image), 20, 20))
  luminance = colour.dot([0.2989, 0.5870, 0.1140])[..., None]
  np.testing.assert_allclose(gray, luminance, atol=2e-3)


@pytest.mark.parametrize('name', ['mobilenet_v1', 'cifarnet'])
def test_single_channel_input_becomes_rgb(name):
  image = _random_image(28, 28, channels=1)
  fn = preprocessing_factory.get_preprocessing(name)
  value = _run(fn(tf.constant(image), 28, 28))
  assert value.shape == (28, 28, 3)
  np.testing.assert_array_equal(value[..., 0], value[..., 1])
  np.testing.assert_array_equal(value[..., 0], value[..., 2])


# ----------------------------------------------------- inception train path


def _train_outputs(graph_seed, runs=3, image=None):
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(graph_seed)
    if image is None:
      image = _random_image(48, 48)
    out = preprocessing_factory.get_preprocessing(
        'mobilenet_v1', is_training=True)(tf.constant(image), 32, 32)
    with tf.Session() as sess:
      return [sess.run(out) for _ in range(runs)]


def test_training_is_random_but_reproducible_with_a_seed():
  first = _train_outputs(graph_seed=7)
  again = _train_outputs(graph_seed=7)
  other = _train_outputs(graph_seed=8)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  # Successive images differ, and another seed gives other distortions.
  assert not np.allclose(first[0], first[1])
  assert not np.allclose(first[0], other[0])
  for value in first + other:
    assert value.shape == (32, 32, 3)
    assert value.min() >= -1.0 and value.max() <= 1.0


def test_training_full_mode_shapes_and_range():
  image = tf.constant(_random_image(50, 40))
  out = inception_preprocessing.preprocess_image(
      image, 24, 24, is_training=True, fast_mode=False,
      add_image_summaries=True)
  assert out.get_shape().as_list() == [24, 24, 3]
  with tf.Session() as sess:
    for _ in range(8):  # Covers several of the random branches.
      value = sess.run(out)
      assert value.min() >= -1.0 and value.max() <= 1.0
  assert tf.get_collection(tf.GraphKeys.SUMMARIES)


def test_crop_summary_outlines_the_crop_on_the_uncropped_image():
  tf.set_random_seed(5)
  out = inception_preprocessing.preprocess_for_train(
      tf.constant(_random_image(40, 52)), 16, 16,
      bbox=[0.5, 0.5, 0.6, 0.6], add_image_summaries=True)
  summaries = [s for s in tf.get_collection(tf.GraphKeys.SUMMARIES)
               if 'image_with_crop_box' in s.name]
  assert len(summaries) == 1
  with tf.Session() as sess:
    for _ in range(5):
      _, serialized = sess.run([out, summaries[0]])
      image = tf.Summary.FromString(serialized).value[0].image
      # The crops of a small box are smaller than the image.
      assert (image.height, image.width) == (40, 52)


def _sampled_crop_boxes(bbox, samples=30):
  image = tf.constant(_random_image(64, 64))
  _, crop_box = inception_preprocessing.distorted_bounding_box_crop(
      image, bbox)
  with tf.Session() as sess:
    return np.array([sess.run(crop_box).reshape(4) for _ in range(samples)])


def test_training_crop_is_drawn_around_the_given_box():
  tf.set_random_seed(3)
  # A box in the top-left corner: every crop must cover 10 % of it, so
  # every crop starts inside that corner.
  corner = _sampled_crop_boxes(tf.constant([[0.0, 0.0, 0.1, 0.1]]))
  assert (corner[:, 0] < 0.1).all() and (corner[:, 1] < 0.1).all()
  # Without a box, crops are drawn from the whole image.
  whole = _sampled_crop_boxes(None)
  assert (whole[:, 0] >= 0.1).any() or (whole[:, 1] >= 0.1).any()


def test_training_accepts_bbox_kwarg_in_every_layout():
  fn = preprocessing_factory.get_preprocessing('mobilenet_v2',
                                               is_training=True)
  image = tf.constant(_random_image(40, 40))
  for bbox in ([0.1, 0.1, 0.9, 0.9], [[0.1, 0.1, 0.9, 0.9]],
               [[[0.1, 0.1, 0.9, 0.9], [0.0, 0.0, 0.5, 0.5]]],
               np.zeros([0, 4], np.float32)):
    out = fn(image, 16, 16, bbox=tf.constant(bbox, tf.float32))
    assert _run(out).shape == (16, 16, 3)


# ------------------------------------------------------------- cifarnet


def test_cifarnet_eval_is_plain_scaling_at_native_size():
  image = _random_image(32, 32)
  out = _run(cifarnet_preprocessing.preprocess_image(tf.constant(image), 32,
                                                     32))
  np.testing.assert_allclose(out, image / 127.5 - 1.0, atol=1e-6)


def test_cifarnet_eval_resizes_other_sizes_bilinearly():
  image = _random_image(28, 28)
  out = _run(cifarnet_preprocessing.preprocess_image(tf.constant(image), 32,
                                                     32))
  expected = _numpy_bilinear(image / 255.0, 32, 32) * 2.0 - 1.0
  np.testing.assert_allclose(out, expected, atol=1e-5)


def test_cifarnet_training_pads_crops_and_flips():
  tf.set_random_seed(11)
  # A white image with a mid-gray first column: crops show the black
  # padding, and flips move the gray column to the right half.
  image = np.full([32, 32, 3], 255, np.uint8)
  image[:, 0] = 128
  gray = 128 / 127.5 - 1.0
  out = cifarnet_preprocessing.preprocess_image(tf.constant(image), 32, 32,
                                                is_training=True)
  padded = flipped = False
  with tf.Session() as sess:
    for _ in range(30):
      value = sess.run(out)
      assert value.shape == (32, 32, 3)
      allowed = np.isclose(value[..., None], [-1.0, gray, 1.0], atol=1e-5)
      assert allowed.any(-1).all()
      gray_columns = np.where(np.isclose(value[16, :, 0], gray, atol=1e-5))[0]
      dark_rows = np.where((value == -1.0).all(axis=(1, 2)))[0]
      padded |= len(dark_rows) > 0
      flipped |= (gray_columns >= 16).any()
  assert padded and flipped
