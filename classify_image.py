r"""Labels image files with a trained classifier of any exported kind.

    python classify_image.py --model_path=MODEL [flags] IMAGE [IMAGE ...]

MODEL is detected by its content: a checkpoint (prefix or training
directory; needs --model_name, and --image_size if not 224), a frozen graph
(.pb from freeze_graph.py), a SavedModel directory (export_saved_model.py)
or a .tflite model (export_tflite.py). Images are JPEG, PNG, GIF or BMP of
any size; each gets the model's evaluation preprocessing (central crop,
bilinear resize to the model's input size, scaling to [-1, 1]) and the top
--top_k classes are printed with names from --labels_file, or the
labels.txt of --dataset_dir, or a labels.txt next to the model.

    python classify_image.py --model_path=/tmp/export/model.tflite \
      --dataset_dir=/tmp/shapes /tmp/photo.jpg
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import sys

from absl import app
from absl import flags

from nets import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np

from deployment import script_utils
from export import export_flags
from export import labels
from export import predictors



def define_flags(flag_values=flags.FLAGS):
  """Registers this script's flags with `flag_values`."""
  export_flags.define_model_input_flags(flag_values)
  export_flags.define_checkpoint_flags(flag_values)
  export_flags.define_labels_flags(flag_values)
  export_flags.define(
      flags.DEFINE_string, 'model_path', None,
      'The model: a checkpoint (prefix or directory), a frozen graph .pb, a '
      'SavedModel directory or a .tflite file.', flag_values)


FLAGS = flags.FLAGS


def classify(flag_values, image_paths, out=sys.stdout):
  """Classifies the images and prints the top classes.

  Args:
    flag_values: the parsed flags.
    image_paths: image files.
    out: where to print.

  Returns:
    A list with, per image, the top-k `(probability, label_id, name)`.

  Raises:
    ScriptError: on any bad input.
  """
  if not image_paths:
    raise script_utils.ScriptError(
        'No images given: pass image files after the flags, e.g. '
        '`python classify_image.py --model_path=model.tflite photo.jpg`.')
  if flag_values.top_k < 1:
    raise script_utils.ScriptError('--top_k=%d must be at least 1.' %
                                   flag_values.top_k)
  images = [(path, predictors.read_image_file(path)) for path in image_paths]
  labels_path = labels.find_labels_file(flag_values.labels_file,
                                        flag_values.dataset_dir,
                                        flag_values.model_path)
  names = labels.read_labels(labels_path) if labels_path else None

  kind, path = predictors.detect_kind(flag_values.model_path)
  num_classes = None
  if kind == predictors.CHECKPOINT:
    num_classes = export_flags.num_classes(flag_values, path)
  predictor = predictors.load(
      flag_values.model_path,
      model_name=flag_values.model_name,
      num_classes=num_classes,
      image_size=flag_values.image_size,
      use_grayscale=flag_values.use_grayscale,
      quantize=flag_values.quantize,
      moving_average_decay=flag_values.moving_average_decay,
      preprocessing_name=(flag_values.preprocessing_name or
                          flag_values.model_name))
  try:
    label_map = labels.LabelMap(names, predictor.num_classes,
                                flag_values.labels_offset, labels_path)
    print('Model: %s (%s), input %dx%dx%d, %d classes, preprocessing %s%s.' %
          (flag_values.model_path, predictor.kind, predictor.image_size,
           predictor.image_size, predictor.channels, predictor.num_classes,
           predictor.preprocessing_name,
           '; %s' % getattr(predictor, 'weights', '') if
           getattr(predictor, 'weights', None) else ''), file=out)
    if label_map.note:
      print(label_map.note, file=out)
    if not names:
      print('No labels file found (--labels_file, --dataset_dir): printing '
            'class ids only.', file=out)
    results = []
    for path, data in images:
      try:
        probabilities = predictor.predict_encoded(data)
      except script_utils.ScriptError as e:
        raise script_utils.ScriptError('%s: %s' % (path, e))
      top = np.argsort(-probabilities, kind='stable')[:flag_values.top_k]
      result = []
      print('%s' % path, file=out)
      for rank, index in enumerate(top, 1):
        label_id, name = label_map.label(index)
        result.append((float(probabilities[index]), label_id, name))
        print('  %d. %-8.4f %4d  %s' % (rank, probabilities[index], label_id,
                                        name if name is not None else ''),
              file=out)
      results.append(result)
    return results
  finally:
    predictor.close()


def main(argv):
  script_utils.run_or_exit(lambda: classify(FLAGS, argv[1:]),
                           'classify_image')


if __name__ == '__main__':
  define_flags()
  app.run(main)
