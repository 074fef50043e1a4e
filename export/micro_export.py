"""Pieces of export_tflite.py's one-command microcontroller export.

A checkpoint is frozen to a temporary GraphDef beside the output (the TFLite
converter reads a file), converted, and the temporary file removed; the
result is written as a .tflite file or as C source (`export.c_array`).
"""

import contextlib
import os

from core import atomic_files
from export import c_array
from export import freeze

OUTPUT_FORMATS = ('tflite', 'c_array')


@contextlib.contextmanager
def frozen_checkpoint_file(output_file, model_name, checkpoint, num_classes,
                           image_size=None, use_grayscale=False,
                           moving_average_decay=None,
                           use_explicit_padding=None):
  """Yields (path of a frozen GraphDef of `checkpoint`, the FrozenGraph).

  The file is hidden beside `output_file` and removed on exit, also when the
  conversion fails.
  """
  frozen = freeze.freeze(model_name, checkpoint, num_classes,
                         image_size=image_size, use_grayscale=use_grayscale,
                         moving_average_decay=moving_average_decay,
                         use_explicit_padding=use_explicit_padding)
  directory = os.path.dirname(os.path.abspath(output_file))
  os.makedirs(directory, exist_ok=True)
  path = atomic_files.temporary_name(
      os.path.join(directory, 'frozen_graph.pb'))
  try:
    with open(path, 'wb') as f:
      f.write(frozen.graph_def.SerializeToString())
    yield path, frozen
  finally:
    atomic_files.remove_quietly(path)


def model_file_bytes(model, output_format, output_file, array_name=None):
  """The bytes to write: the model itself, or its C source."""
  if output_format == 'c_array':
    name = array_name or c_array.variable_name(output_file)
    return c_array.to_c_source(model, name, source='a TFLite model').encode(
        'ascii')
  return model
