"""Known native stderr notices are held back; everything else gets through."""

import os

from export import native_stderr


def test_only_the_named_lines_are_held_back(capfd):
  with native_stderr.without_lines(('noise',)):
    os.write(2, b'first\nsome noise here\nlast\n')
  assert capfd.readouterr().err == 'first\nlast\n'


def test_the_tflite_notice_is_held_back_and_errors_still_show(capfd):
  with native_stderr.without_lines():
    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n'
                b'ERROR: a real problem\n')
  assert capfd.readouterr().err == 'ERROR: a real problem\n'


def test_output_written_before_an_exception_still_shows(capfd):
  try:
    with native_stderr.without_lines(('noise',)):
      os.write(2, b'why it failed\n')
      raise RuntimeError('x')
  except RuntimeError:
    pass
  assert capfd.readouterr().err == 'why it failed\n'


def test_stdout_lines_are_held_back_when_asked(capfd):
  with native_stderr.without_lines(('noise',), fd=1):
    os.write(1, b'kept\nnoise\n')
    os.write(2, b'noise on stderr stays\n')
  out, err = capfd.readouterr()
  assert out == 'kept\n'
  assert err == 'noise on stderr stays\n'


def test_int8_calibration_notes_are_held_back(capfd, tmp_path):
  # pylint: disable=g-import-not-at-top
  from core import tf_compat  # noqa: F401
  import numpy as np
  import tensorflow.compat.v1 as tf
  from export import tflite
  # An average pool whose output range differs from its input's: TF 1.15's
  # calibration prints a note on stdout for it, TF 2's its settings on
  # stderr.
  path = str(tmp_path / 'pool.pb')
  with tf.Graph().as_default() as graph:
    images = tf.placeholder(tf.float32, [1, 8, 8, 3], name='input')
    kernel = tf.constant(np.random.RandomState(0).randn(3, 3, 3, 4),
                         tf.float32)
    net = tf.nn.relu(tf.nn.conv2d(images, kernel, [1, 1, 1, 1], 'SAME'))
    net = tf.nn.avg_pool(net, [1, 8, 8, 1], [1, 1, 1, 1], 'VALID')
    tf.nn.softmax(tf.reshape(net, [1, 4]), name='Predictions/Reshape_1')
    with open(path, 'wb') as f:
      f.write(graph.as_graph_def().SerializeToString())
  calibration = [np.random.RandomState(i).uniform(-1, 1, (1, 8, 8, 3))
                 .astype(np.float32) for i in range(4)]
  capfd.readouterr()
  model = tflite.convert(path, 'full_integer', calibration,
                         output_name='Predictions/Reshape_1')
  out, err = capfd.readouterr()
  assert model
  for fragment in native_stderr.CALIBRATION_NOTICES:
    assert fragment not in out + err
