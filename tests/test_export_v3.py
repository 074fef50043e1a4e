"""MobileNet V3 / EdgeTPU through the export paths, on 32x32 inputs.

A V3 Small checkpoint with random weights and random (non-trivial) batch
norm statistics stands in for a trained one: these tests check that the
exported graphs compute what the checkpoint computes, not accuracy.
"""


import struct

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import export_inference_graph
from export import freeze
from export import inference_graph
from export import tflite
from nets import nets_factory
from tests import test_export_lib as lib
from training import quantization

SIZE = 32
NUM_CLASSES = 5
MODEL = 'mobilenet_v3_small'
OUTPUT = 'MobilenetV3/Predictions/Reshape_1'
TFLITE_HARD_SWISH = 117  # BuiltinOperator.HARD_SWISH in the TFLite schema


def _random_images(count=4, seed=0):
  return np.random.RandomState(seed).uniform(
      -1, 1, [count, SIZE, SIZE, 3]).astype(np.float32)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """A V3 Small checkpoint whose batch norms are far from the identity."""
  prefix = str(tmp_path_factory.mktemp('v3_ckpt') / 'model.ckpt')
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    network_fn = nets_factory.get_network_fn(MODEL, NUM_CLASSES)
    network_fn(tf.placeholder(tf.float32, [1, SIZE, SIZE, 3]))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for variable in tf.global_variables():
        shape = variable.get_shape().as_list()
        name = variable.op.name
        if name.endswith(('moving_variance', 'gamma')):
          variable.load(rng.uniform(0.5, 1.5, shape), sess)
        elif name.endswith(('moving_mean', 'beta', 'biases')):
          variable.load(rng.uniform(-0.3, 0.3, shape), sess)
      tf.train.Saver().save(sess, prefix)
  return prefix


def _run(graph_def, images, output=OUTPUT):
  return lib.run_graph_def(graph_def, images, output)


def _builtin_operators(model_bytes):
  """The builtin operator codes a TFLite flatbuffer uses.

  Reads Model.operator_codes (field 1) and each OperatorCode's
  deprecated_builtin_code (int8, field 0) / builtin_code (int32, field 3)
  straight from the flatbuffer, so it works with any TensorFlow version.
  """
  def table_field(table, field):
    vtable = table - struct.unpack_from('<i', model_bytes, table)[0]
    vtable_size = struct.unpack_from('<H', model_bytes, vtable)[0]
    entry = 4 + 2 * field
    if entry >= vtable_size:
      return None
    offset = struct.unpack_from('<H', model_bytes, vtable + entry)[0]
    return table + offset if offset else None

  root = struct.unpack_from('<I', model_bytes, 0)[0]
  codes_field = table_field(root, 1)
  vector = codes_field + struct.unpack_from('<I', model_bytes, codes_field)[0]
  codes = set()
  for i in range(struct.unpack_from('<I', model_bytes, vector)[0]):
    slot = vector + 4 + 4 * i
    code_table = slot + struct.unpack_from('<I', model_bytes, slot)[0]
    small = table_field(code_table, 0)
    large = table_field(code_table, 3)
    values = [0]
    if small is not None:
      values.append(struct.unpack_from('<b', model_bytes, small)[0])
    if large is not None:
      values.append(struct.unpack_from('<i', model_bytes, large)[0])
    codes.add(max(values))
  return codes


@pytest.fixture(scope='module')
def frozen(checkpoint, tmp_path_factory):
  """(folded GraphDef, unfolded GraphDef, path of the folded .pb)."""
  folded = freeze.freeze(MODEL, checkpoint, NUM_CLASSES, image_size=SIZE)
  plain = freeze.freeze(MODEL, checkpoint, NUM_CLASSES, image_size=SIZE,
                        fold_batch_norms=False)
  path = str(tmp_path_factory.mktemp('v3_frozen') / 'frozen.pb')
  freeze.write_graph_def(folded.graph_def, path)
  return folded, plain, path


@pytest.mark.parametrize('model_name,output', [
    ('mobilenet_v3_small', OUTPUT),
    ('mobilenet_edgetpu', 'MobilenetEdgeTPU/Predictions/Reshape_1')])
def test_export_inference_graph_output_node(tmp_path, model_name, output):
  path = str(tmp_path / 'graph.pb')
  returned = lib.run_script(export_inference_graph, [
      '--model_name=%s' % model_name, '--image_size=%d' % SIZE,
      '--dataset_name=flowers', '--output_file=%s' % path])
  assert returned == output
  nodes = {n.name: n for n in freeze.load_graph_def(path).node}
  assert nodes[output].op == 'Reshape'


def test_freeze_folds_every_batch_norm_with_the_same_outputs(frozen):
  folded, plain, _ = frozen
  unfolded_norms = [n for n in plain.graph_def.node
                    if n.op.startswith('FusedBatchNorm')]
  assert unfolded_norms and folded.folded_batch_norms == len(unfolded_norms)
  assert not [n for n in folded.graph_def.node
              if n.op.startswith('FusedBatchNorm')]
  images = _random_images()
  expected = _run(plain.graph_def, images)
  # Random weights: the outputs must still differ between images and
  # classes, or the comparison would mean little.
  assert expected.std(axis=1).min() > 1e-3
  np.testing.assert_allclose(_run(folded.graph_def, images), expected,
                             atol=1e-5)


def test_tflite_float_uses_hard_swish_and_matches(frozen):
  folded, _, path = frozen
  model = tflite.convert(path, 'none')
  assert TFLITE_HARD_SWISH in _builtin_operators(model)
  images = _random_images()
  probabilities, dtype = lib.run_tflite(model, images)
  assert dtype == np.float32
  np.testing.assert_allclose(probabilities, _run(folded.graph_def, images),
                             atol=1e-4)


def test_tflite_dynamic_range(frozen):
  folded, _, path = frozen
  model = tflite.convert(path, 'dynamic')
  images = _random_images()
  probabilities, dtype = lib.run_tflite(model, images)
  assert dtype == np.float32
  np.testing.assert_allclose(probabilities, _run(folded.graph_def, images),
                             atol=0.05)


def test_tflite_full_integer(frozen):
  _, _, path = frozen
  calibration = [image[None] for image in _random_images(8, seed=1)]
  model = tflite.convert(path, 'full_integer',
                         representative_data=calibration)
  probabilities, dtype = lib.run_tflite(model, _random_images())
  assert dtype == np.uint8
  assert probabilities.shape == (4, NUM_CLASSES)


@pytest.mark.slow
def test_quantization_aware_training_graph_builds():
  network_fn = nets_factory.get_network_fn(MODEL, NUM_CLASSES,
                                           is_training=True)
  logits, _ = network_fn(tf.placeholder(tf.float32, [2, SIZE, SIZE, 3]))
  tf.losses.softmax_cross_entropy(tf.one_hot([0, 1], NUM_CLASSES), logits)
  quantization.rewrite_for_training(quant_delay=0)
  fake_quant = [op for op in tf.get_default_graph().get_operations()
                if op.type.startswith('FakeQuant')]
  # Weights and activations of the convolutions, squeeze-excite included.
  assert len(fake_quant) > 50
  assert [op for op in fake_quant if 'squeeze_excite' in op.name]


def test_quantized_inference_graph_builds():
  net = inference_graph.build_inference_graph(MODEL, NUM_CLASSES,
                                              image_size=SIZE, quantize=True)
  assert net.output_node_name == OUTPUT
  assert tflite.has_fake_quant(tf.get_default_graph().as_graph_def())
