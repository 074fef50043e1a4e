"""Holds back known, harmless lines that native code writes to stderr.

TensorFlow Lite's C++ runtime announces `INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.` on stderr when an interpreter allocates its
tensors (TF 2.x), whatever the log level; Python logging cannot reach it.
`without_lines` captures file descriptor 2 while its body runs and writes
back everything else, in order, when the body ends.
"""

import contextlib
import os
import sys
import tempfile

# Lines that say nothing a user can act on.
TFLITE_NOTICES = ('Created TensorFlow Lite XNNPACK delegate for CPU.',)


@contextlib.contextmanager
def without_lines(fragments=TFLITE_NOTICES):
  """Runs the body with stderr's lines containing a fragment removed."""
  try:
    sys.stderr.flush()
    saved = os.dup(2)
  except (AttributeError, OSError, ValueError):
    yield  # No real file descriptor 2 (e.g. an embedding host): no filter.
    return
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      text = captured.read().decode('utf-8', 'replace')
      kept = [line for line in text.splitlines(True)
              if not any(f in line for f in fragments)]
      if kept:
        sys.stderr.write(''.join(kept))
        sys.stderr.flush()
