"""The `export` task: the models the inference measurements load.

A random-weight checkpoint of one network, its frozen graph, and float and
full-integer (int8) TFLite models at batch 1 and batch N. Ours goes through
the project's `export` package; Keras through the same TensorFlow freezing
and converter.
"""


import os

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from benchmarks import workloads
from export import freeze
from export import inference_graph
from export import onnx_model
from export import tflite

INPUT_NAME = inference_graph.INPUT_NODE_NAME
# Random images calibrate the int8 models that are only timed (their weights
# are random too; the ranges do not change which kernels run).
TIMING_CALIBRATION_IMAGES = 8


def _convert_tflite(frozen_path, output_name, batch_size, int8=False):
  """Converts a frozen graph to a TFLite model with a fixed batch.

  Batch 1 is the project's exporter (`export.tflite.convert`), which fixes
  the batch at 1; the batch-N model needs the same converter settings with
  another input shape. `int8`: full-integer quantization (uint8 input and
  output) as `export_tflite.py --quantization=full_integer` does,
  calibrated on random images.
  """
  graph_def = freeze.load_graph_def(frozen_path)
  shape = tflite.input_shape(graph_def)
  rng = np.random.RandomState(workloads.SEED)
  calibration = [rng.uniform(-1, 1, [1] + shape[1:]).astype(np.float32)
                 for _ in range(TIMING_CALIBRATION_IMAGES)]
  if batch_size == 1:
    return tflite.convert(frozen_path, output_name=output_name,
                          quantization='full_integer' if int8 else 'none',
                          representative_data=calibration)
  shape[0] = batch_size
  converter = tf.lite.TFLiteConverter.from_frozen_graph(
      frozen_path, [INPUT_NAME], [output_name], {INPUT_NAME: shape})
  if int8:
    batches = [np.concatenate([calibration[(i + j) % len(calibration)]
                               for j in range(batch_size)])
               for i in range(len(calibration))]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([b] for b in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
  return converter.convert()


def export_model(spec):
  """Writes a checkpoint, frozen graph and TFLite models of one network.

  Ours goes through the project's exporter (`export.freeze`,
  `export.tflite`); Keras through the same TensorFlow freezing
  (convert_variables_to_constants) and converter.

  Args:
    spec: dict with `impl`, `model_name`, `image_size`, `infer_batch_size`,
      `export_dir`, and optionally `fold_batch_norms` (ours only; default
      True, as freeze_graph.py).

  Returns:
    dict with paths `checkpoint`, `frozen`, `tflite_b1`, `tflite_bN`
    (float), `tflite_int8_b1`, `tflite_int8_bN` (full-integer; unless the
    spec has `int8` False), the `output_name` and the trainable `params` of
    the network; with `onnx` True in the spec, the path `onnx` of the
    frozen graph converted by `export.onnx_model` (any batch size).
  """
  impl, model_name = spec['impl'], spec['model_name']
  image_size, export_dir = spec['image_size'], spec['export_dir']
  if not os.path.isdir(export_dir):
    os.makedirs(export_dir)
  checkpoint = os.path.join(export_dir, 'model.ckpt')
  frozen_path = os.path.join(export_dir, 'frozen.pb')
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(workloads.SEED)
    if impl == 'ours':
      net = inference_graph.build_inference_graph(
          model_name, workloads.NUM_CLASSES, image_size=image_size)
      output_name = net.output_node_name
    else:
      images = tf.placeholder(tf.float32, [None, image_size, image_size, 3],
                              name=INPUT_NAME)
      _, probabilities, _ = workloads.build_network(impl, model_name,
                                                    images, False)
      output_name = probabilities.op.name
    params = int(sum(np.prod(v.get_shape().as_list())
                     for v in tf.trainable_variables()))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver().save(sess, checkpoint, write_meta_graph=False)
      if impl == 'keras':
        graph_def = tf.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), [output_name])
  if impl == 'ours':
    graph_def = freeze.freeze(
        model_name, checkpoint, workloads.NUM_CLASSES,
        image_size=image_size,
        fold_batch_norms=spec.get('fold_batch_norms', True)).graph_def
  freeze.write_graph_def(graph_def, frozen_path)
  result = {'checkpoint': checkpoint, 'frozen': frozen_path,
            'output_name': output_name, 'params': params}
  conversions = [('tflite_b1', 1, False),
                 ('tflite_bN', spec['infer_batch_size'], False)]
  if spec.get('int8', True):
    conversions += [('tflite_int8_b1', 1, True),
                    ('tflite_int8_bN', spec['infer_batch_size'], True)]
  for key, batch_size, int8 in conversions:
    path = os.path.join(export_dir, 'model_%sb%d.tflite' % (
        'int8_' if int8 else '', batch_size))
    with open(path, 'wb') as f:
      f.write(_convert_tflite(frozen_path, output_name, batch_size, int8))
    result[key] = path
  if spec.get('onnx'):
    result['onnx'] = os.path.join(export_dir, 'model.onnx')
    with open(result['onnx'], 'wb') as f:
      f.write(onnx_model.convert_graph_def(graph_def, output_name))
  return result
