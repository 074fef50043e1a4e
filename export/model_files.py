"""Tells which kind of model file a path holds, and reads image files.

`detect_kind` recognizes the model kinds `export.predictors` runs by their
content: a checkpoint (prefix or training directory), a frozen GraphDef
(`.pb`), a SavedModel directory, a TFLite flatbuffer and an ONNX model.
`read_image_file` reads an encoded image after checking, by its first
bytes, that it is one TensorFlow decodes. `export.predictors` re-exports
the public names.
"""


import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import errors
from export import onnx_model


class ModelError(errors.InputError):
  """A model or image file that cannot be found, recognized or loaded."""


# Marks a parameter name in a message; the scripts spell it as a flag.
ref = errors.ref

CHECKPOINT = 'checkpoint'
FROZEN_GRAPH = 'frozen_graph'
SAVED_MODEL = 'saved_model'
TFLITE = 'tflite'
ONNX = 'onnx'
KINDS = (CHECKPOINT, FROZEN_GRAPH, SAVED_MODEL, TFLITE, ONNX)

_KINDS_HELP = ('a checkpoint (prefix or training directory), a frozen graph '
               '(.pb from freeze_graph.py), a SavedModel directory '
               '(export_saved_model.py), a .tflite file (export_tflite.py) '
               'or a .onnx file (export_onnx.py)')

# Leading bytes of the image formats TensorFlow decodes.
_IMAGE_SIGNATURES = (
    (b'\xff\xd8\xff', 'JPEG'),
    (b'\x89PNG\r\n\x1a\n', 'PNG'),
    (b'GIF87a', 'GIF'),
    (b'GIF89a', 'GIF'),
    (b'BM', 'BMP'),
)
_TFLITE_IDENTIFIER = b'TFL3'  # FlatBuffer file identifier, at bytes 4..8.

def image_format(data):
  """Returns 'JPEG', 'PNG', 'GIF' or 'BMP' for encoded image bytes, or None."""
  for signature, name in _IMAGE_SIGNATURES:
    if data.startswith(signature):
      return name
  return None


def read_image_file(path):
  """Reads an image file's bytes, checking it is an image TF can decode.

  Args:
    path: the file.

  Returns:
    The encoded bytes.

  Raises:
    ModelError: missing file or not a JPEG/PNG/GIF/BMP image.
  """
  if not os.path.isfile(path):
    raise ModelError('Image file %s does not exist.' % path)
  with open(path, 'rb') as f:
    data = f.read()
  if image_format(data) is None:
    raise ModelError('%s is not an image: it is not JPEG, PNG, GIF or BMP '
                     '(by its first bytes). Pass image files to classify.' %
                     path)
  return data


def detect_kind(path):
  """Tells which kind of model `path` is.

  Args:
    path: the model_path value.

  Returns:
    `(kind, resolved_path)`: one of `KINDS`, and the path to load (the
    checkpoint prefix, the SavedModel directory, or the file).

  Raises:
    ModelError: if `path` is missing or is not a model of a known kind.
  """
  if not path:
    raise ModelError('%s is required: %s.' % (ref('model_path'), _KINDS_HELP))
  if os.path.isdir(path):
    if any(os.path.exists(os.path.join(path, name))
           for name in ('saved_model.pb', 'saved_model.pbtxt')):
      return SAVED_MODEL, path
    checkpoint = tf.train.latest_checkpoint(path)
    if checkpoint:
      return CHECKPOINT, checkpoint
    raise ModelError('%s is a directory with neither a '
                     'SavedModel (saved_model.pb) nor a checkpoint. Pass %s.'
                     % (ref('model_path', path), _KINDS_HELP))
  if os.path.exists(path + '.index'):
    return CHECKPOINT, path
  if not os.path.isfile(path):
    raise ModelError('%s does not exist. Pass %s.' %
                     (ref('model_path', path), _KINDS_HELP))
  base = os.path.basename(path)
  if base in ('saved_model.pb', 'saved_model.pbtxt'):
    return SAVED_MODEL, os.path.dirname(path) or '.'
  for suffix in ('.index', '.meta'):
    if base.endswith(suffix) and os.path.exists(path[:-len(suffix)] +
                                                '.index'):
      return CHECKPOINT, path[:-len(suffix)]
  if '.data-' in base and os.path.exists(path.split('.data-')[0] + '.index'):
    return CHECKPOINT, path.split('.data-')[0]
  with open(path, 'rb') as f:
    head = f.read(16)
  if head[4:8] == _TFLITE_IDENTIFIER:
    return TFLITE, path
  if image_format(head):
    raise ModelError('%s is a %s image, not a model. Pass %s, '
                     'and the images to classify as arguments.' %
                     (ref('model_path', path), image_format(head),
                      _KINDS_HELP))
  if path.endswith('.onnx') or onnx_model.is_onnx_model(head):
    return ONNX, path
  if path.endswith('.tflite'):
    raise ModelError('%s is named .tflite but is not a TFLite '
                     'model (no TFL3 identifier); it may be truncated. '
                     'Re-create it with export_tflite.py.' %
                     ref('model_path', path))
  return FROZEN_GRAPH, path
