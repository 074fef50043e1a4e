"""The ground every other test stands on: both stacks import and train slim."""


import importlib
import subprocess
import sys

import numpy as np

from core import tf_compat
import tensorflow.compat.v1 as tf
import tf_slim as slim


def test_tf_and_slim_import_and_version_flag_matches():
  import tensorflow
  major = int(tensorflow.__version__.split('.')[0])
  assert tf_compat.IS_TF2 == (major >= 2)
  assert tf_compat.TF_VERSION[0] == major
  assert callable(slim.batch_norm) and callable(slim.arg_scope)


def test_graph_mode_is_active():
  # Slim networks, savers and queues are graph-mode APIs on both stacks.
  assert not tf.executing_eagerly()


def test_legacy_layers_alias_installed_exactly_when_needed():
  if not tf_compat.IS_TF2:
    assert not tf_compat.LEGACY_LAYERS_ALIASED
    return
  module = importlib.import_module('tf_keras.legacy_tf_layers.normalization')
  assert hasattr(module, 'BatchNormalization')
  native = importlib.util.find_spec('tf_keras.legacy_tf_layers') is not None
  assert tf_compat.LEGACY_LAYERS_ALIASED or native


def _batch_norm_graph():
  images = tf.placeholder(tf.float32, [8, 6, 6, 3])
  with slim.arg_scope([slim.batch_norm], decay=0.5, center=True, scale=True):
    net = slim.conv2d(images, 4, [3, 3], normalizer_fn=slim.batch_norm,
                      normalizer_params={'is_training': True}, scope='conv')
  loss = tf.reduce_mean(tf.square(net - 1.0))
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  train_op = slim.learning.create_train_op(
      loss, tf.train.GradientDescentOptimizer(0.1), update_ops=update_ops)
  return images, train_op, update_ops


def test_slim_batch_norm_training_updates_moving_statistics():
  images, train_op, update_ops = _batch_norm_graph()
  assert len(update_ops) == 2, 'batch_norm must register its moving-stat updates'
  moving_mean = slim.get_variables_by_name('moving_mean')[0]
  moving_variance = slim.get_variables_by_name('moving_variance')[0]
  data = np.random.RandomState(0).normal(3.0, 2.0, [8, 6, 6, 3]).astype(np.float32)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    mean0, var0 = sess.run([moving_mean, moving_variance])
    for _ in range(3):
      sess.run(train_op, {images: data})
    mean1, var1 = sess.run([moving_mean, moving_variance])
  np.testing.assert_array_equal(mean0, np.zeros(4))
  np.testing.assert_array_equal(var0, np.ones(4))
  assert np.all(np.abs(mean1 - mean0) > 1e-3), 'moving_mean did not move'
  assert np.all(np.abs(var1 - var0) > 1e-3), 'moving_variance did not move'


def test_batch_norm_in_a_fresh_interpreter_needs_only_the_compat_import():
  # The shim must work as the first import of a user script (no conftest help).
  code = ('from core import tf_compat\n'
          'import tensorflow.compat.v1 as tf\n'
          'import tf_slim as slim\n'
          'x = tf.zeros([2, 4, 4, 3])\n'
          'slim.batch_norm(x, is_training=True)\n'
          'print(len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)))\n')
  out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().splitlines()[-1] == '2'


def test_slim_tfexample_decoder_image_decodes_jpeg():
  # tf-slim's own Image handler calls control_flow_ops.case/cond, which
  # TF 2.21 removed; tf_compat restores them for code that uses slim's decoder.
  import io
  from PIL import Image
  pixels = np.random.RandomState(1).randint(0, 255, [5, 7, 3]).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format='PNG')
  example = tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[buf.getvalue()])),
      'image/format': tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b'png'])),
  }))
  decoder = slim.tfexample_decoder.TFExampleDecoder(
      {'image/encoded': tf.FixedLenFeature((), tf.string, default_value=''),
       'image/format': tf.FixedLenFeature((), tf.string, default_value='png')},
      {'image': slim.tfexample_decoder.Image(shape=[5, 7, 3])})
  [image] = decoder.decode(tf.constant(example.SerializeToString()), ['image'])
  with tf.Session() as sess:
    np.testing.assert_array_equal(sess.run(image), pixels)
