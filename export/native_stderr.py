"""Holds back known, harmless lines that native code writes to stderr.

TensorFlow Lite's C++ runtime announces `INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.` on stderr when an interpreter allocates its
tensors (TF 2.x), whatever the log level; Python logging cannot reach it.
Its int8 calibration prints its settings (TF 2.x, stderr) or a note per op
whose output range differs from its input's (TF 1.15, stdout).
`without_lines` captures a file descriptor (2 unless told) while its body
runs and writes back everything else, in order, when the body ends.
"""

import contextlib
import os
import sys
import tempfile

# Lines that say nothing a user can act on.
TFLITE_NOTICES = ('Created TensorFlow Lite XNNPACK delegate for CPU.',)
CALIBRATION_NOTICES = ('fully_quantize: ',
                       'This is legal but should happens rarely.')


@contextlib.contextmanager
def without_lines(fragments=TFLITE_NOTICES, fd=2):
  """Runs the body with the lines of `fd` (2: stderr, 1: stdout) that
  contain a fragment removed."""
  stream = sys.stdout if fd == 1 else sys.stderr
  try:
    stream.flush()
    saved = os.dup(fd)
  except (AttributeError, OSError, ValueError):
    yield  # No real file descriptor (e.g. an embedding host): no filter.
    return
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), fd)
    try:
      yield
    finally:
      os.dup2(saved, fd)
      os.close(saved)
      captured.seek(0)
      text = captured.read().decode('utf-8', 'replace')
      kept = [line for line in text.splitlines(True)
              if not any(f in line for f in fragments)]
      if kept:
        stream.write(''.join(kept))
        sys.stderr.flush()
