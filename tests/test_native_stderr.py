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
