"""The project's quantization rewrite against tf.contrib.quantize.

On TF 1.15 both rewrites run side by side on V1, V2, V3 Large/Small and
EdgeTPU: same variables (names, shapes, creation order), same fake-quant
ops, same outputs and gradients for the same variable values. On both
stacks the rewrite must reproduce contrib's stored results
(tests/quantization_reference.py), which is what lets QAT checkpoints move
between TF 1.15 and TF 2.
"""

from core import tf_compat
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import tf_slim as slim

from tests import fake_quant_layers as layers
from tests import quantization_reference as ref
from training import quantization

needs_contrib = pytest.mark.skipif(
    tf_compat.IS_TF2, reason='tf.contrib.quantize exists only on TF 1.15')
# V1 in the quick tier; the other families' full graphs take minutes on TF 1.15.
MODELS = [model if model == 'mobilenet_v1_025' else
          pytest.param(model, marks=pytest.mark.slow) for model in ref.MODELS]


@pytest.mark.parametrize('model', MODELS)
def test_eval_rewrite_reproduces_contrib_reference(model):
  expected = ref.load(model)
  codes = ref.load_reference_codes(model)
  graph, run, fed = ref.eval_runs(model, codes)
  assert ref.variables_of(graph) == expected['eval_variables']
  assert ref.fake_quant_ops(graph) == expected['eval_fake_quant']
  assert sorted(run.activations) == sorted(
      name for name in codes if not name.endswith(':ties'))
  # Where the run first departs from contrib's, it may only be by one-step
  # flips of values at a rounding tie (tests/fake_quant_layers.py).
  first = layers.first_differences(graph, run, codes)
  for name, (differing, flips) in first.items():
    assert differing == flips, '%s: %d of %d elements differ otherwise' % (
        name, differing - flips, differing)
  if not any(layers.departures(run, codes).values()):  # all contrib's codes
    difference = np.abs(run.probabilities - expected['probabilities']).max()
    assert difference <= 1e-5
  # Layer by layer: each op fed contrib's quantized tensors, so that no
  # earlier flip hides what a later layer computes.
  for name, layer in fed.activations.items():
    differing, flips = layers.one_step_flips(layer, layer.input_codes,
                                             codes[name])
    assert differing == flips, '%s: %d of %d elements differ otherwise' % (
        name, differing - flips, differing)


@pytest.mark.parametrize('model', MODELS)
def test_training_rewrite_writes_contrib_variables(model):
  expected = ref.load(model)
  graph, _, _ = ref.build(model, True, ref.project_rewrite(True))
  assert ref.variables_of(graph) == expected['train_variables']
  assert ref.fake_quant_ops(graph) == expected['train_fake_quant']
  names = [name for name, _ in expected['train_variables']]
  assert quantization.STEP_NAME in names  # created by the delay


@needs_contrib
@pytest.mark.slow
@pytest.mark.parametrize('model', ref.MODELS)
def test_stored_reference_is_what_contrib_gives(model):
  assert ref.describe(model, ref.contrib_rewrite) == pytest.approx(
      ref.load(model))
  stored = ref.load_reference_codes(model)
  contrib_codes = ref.reference_codes(model, ref.contrib_rewrite)
  assert sorted(contrib_codes) == sorted(stored)
  for name, codes in contrib_codes.items():
    np.testing.assert_array_equal(codes, stored[name], err_msg=name)


def _small_separable_net(images):
  """Conv, depthwise and pointwise layers with fused batch norms, a head."""
  with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                      normalizer_fn=slim.batch_norm,
                      normalizer_params={'is_training': True},
                      activation_fn=tf.nn.relu6):
    net = slim.conv2d(images, 8, [3, 3], stride=2, scope='Conv')
    net = slim.separable_conv2d(net, None, [3, 3], scope='Depthwise')
    net = slim.conv2d(net, 16, [1, 1], scope='Pointwise')
  net = tf.reduce_mean(net, [1, 2], keepdims=True)
  logits = slim.conv2d(net, ref.NUM_CLASSES, [1, 1], activation_fn=None,
                       scope='Logits')
  return tf.squeeze(logits, [1, 2])


def _training_step_results(rewrite):
  """Logits, weight gradients and updated ranges after one forward pass."""
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(0)
    inputs = tf.placeholder(tf.float32, [ref.BATCH, ref.SIZE, ref.SIZE, 3])
    logits = _small_separable_net(inputs)
    rewrite()
    loss = tf.reduce_sum(logits * np.arange(ref.NUM_CLASSES,
                                            dtype=np.float32))
    weights = tf.trainable_variables()
    gradients = tf.gradients(loss, weights)
    ranges = [v for v in tf.global_variables()
              if ref.is_range_variable(v.op.name)]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for variable, value in ref.seeded_values(tf.global_variables()).items():
        variable.load(value, sess)
      # Past the delay, so that quantization is active in this step.
      step, = [v for v in tf.global_variables()
               if v.op.name == quantization.STEP_NAME]
      step.load(ref.QUANT_DELAY, sess)
      outputs = sess.run([logits] + gradients, {inputs: ref.images()})
      return outputs, sess.run(ranges), [v.op.name for v in ranges]


@needs_contrib
def test_training_step_matches_contrib():
  ours, our_ranges, our_names = _training_step_results(
      ref.project_rewrite(True))
  theirs, their_ranges, their_names = _training_step_results(
      ref.contrib_rewrite(True))
  assert our_names == their_names and len(our_names) > 10
  assert len(ours) == len(theirs) > 8
  for mine, expected in zip(ours, theirs):
    np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)
  # The ranges moved from their seeded values towards the batch's.
  np.testing.assert_allclose(our_ranges, their_ranges, rtol=1e-6)


def _small_conv_net(fused):
  images = tf.placeholder(tf.float32, [1, 8, 8, 3])
  return slim.conv2d(images, 4, [3, 3], normalizer_fn=slim.batch_norm,
                     normalizer_params={'fused': fused}, scope='Tiny')


def test_unfused_batch_norm_is_refused_naming_the_op():
  with tf.Graph().as_default():
    _small_conv_net(fused=False)
    with pytest.raises(quantization.QuantizationError) as error:
      quantization.rewrite_for_eval()
  assert 'Tiny/BatchNorm/batchnorm' in str(error.value)
  assert 'fused' in str(error.value)


def test_rewrite_after_the_optimizer_is_refused():
  with tf.Graph().as_default():
    net = _small_conv_net(fused=True)
    tf.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(net))
    with pytest.raises(quantization.QuantizationError,
                       match='before the optimizer'):
      quantization.rewrite_for_training()


def test_small_conv_net_gets_weight_and_activation_ranges():
  with tf.Graph().as_default() as graph:
    _small_conv_net(fused=True)
    quantization.rewrite_for_eval()
    names = [v.op.name for v in tf.global_variables()]
  assert 'Tiny/weights_quant/min' in names and 'Tiny/act_quant/max' in names
  assert not [op for op in graph.get_operations()
              if op.type == 'FusedBatchNormV3' and op.outputs[0].consumers()]
