"""Reference results of `tf.contrib.quantize` for the rewrite's tests.

`tests/data/quantization/<model>.json` holds what contrib's
`create_eval_graph` / `create_training_graph(quant_delay=QUANT_DELAY)` give
on TF 1.15 for a small network: the variables (name, shape, in creation
order), the fake-quant ops, and the eval graph's probabilities for
`IMAGES` with every variable set to `seeded_values`;
`<model>_activations.npz` holds the 8-bit codes of that run: every
activation fake-quant op's, and the weights that lie a hair from a rounding
tie (tests/fake_quant_layers.py). The TF 2 tests compare the project's
rewrite with them, layer by layer; the TF 1.15 tests also check the files
still match contrib. Regenerate on TF 1.15 with

  .venv/tf1/bin/python -m tests.quantization_reference
"""

import json
import os
import re
import zlib

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
import tensorflow.compat.v1 as tf

from nets import nets_factory
from tests import fake_quant_layers
from training import quantization

MODELS = ('mobilenet_v1_025', 'mobilenet_v2_035', 'mobilenet_v3_large_075',
          'mobilenet_v3_small_075', 'mobilenet_edgetpu_075')
SIZE = 32
NUM_CLASSES = 5
BATCH = 2
QUANT_DELAY = 3
DATA_DIR = os.path.join(os.path.dirname(__file__), 'data', 'quantization')
def images():
  return np.random.RandomState(0).uniform(
      -1, 1, [BATCH, SIZE, SIZE, 3]).astype(np.float32)


# A range variable: <scope>/<kind>_quant[_<n>]/min or max.
_RANGE_BOUND = re.compile(r'_quant(?:_\d+)?/(min|max)$')


def _value(name, shape):
  """A plausible value for variable `name`, the same on every stack."""
  rng = np.random.RandomState(zlib.crc32(name.encode()))
  if name.endswith(('moving_variance', 'gamma')):
    return rng.uniform(0.5, 1.5, shape)
  # Weight ranges as wide as the weights, so that few round to zero.
  bound = _RANGE_BOUND.search(name)
  if bound and 'weights_quant' in name:
    return rng.uniform(*((-0.6, -0.2) if bound.group(1) == 'min' else
                         (0.2, 0.6)), size=shape)
  if bound:
    return rng.uniform(*((-4.0, -0.5) if bound.group(1) == 'min' else
                         (2.0, 8.0)), size=shape)
  if name.endswith('beta'):
    return rng.uniform(0.0, 0.5, shape)  # keeps ReLU layers alive
  if name.endswith(('moving_mean', 'biases')):
    return rng.uniform(-0.2, 0.2, shape)
  # A depthwise filter [h, w, channels, 1] sums h * w inputs per output.
  summed = shape[:2] if name.endswith('depthwise_weights') else shape[:-1]
  fan_in = max(1, int(np.prod(summed)))
  return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)


def is_range_variable(name):
  return bool(_RANGE_BOUND.search(name))


def seeded_values(variables):
  """{variable: value} for the float variables of `variables`."""
  return {v: _value(v.op.name, v.shape.as_list()).astype(np.float32)
          for v in variables if v.dtype.base_dtype == tf.float32}


def contrib_rewrite(training):
  from tensorflow.contrib import quantize  # pylint: disable=g-import-not-at-top
  if training:
    return lambda: quantize.create_training_graph(quant_delay=QUANT_DELAY)
  return quantize.create_eval_graph


def project_rewrite(training):
  if training:
    return lambda: quantization.rewrite_for_training(quant_delay=QUANT_DELAY)
  return quantization.rewrite_for_eval


def build(model, training, rewrite):
  """A graph of `model` rewritten by `rewrite()`: (graph, input, logits)."""
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3], name='input')
    network_fn = nets_factory.get_network_fn(model, NUM_CLASSES,
                                             is_training=training)
    logits, _ = network_fn(inputs)
    rewrite()
  return graph, inputs, logits


def variables_of(graph):
  return [[v.op.name, v.shape.as_list()]
          for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)]


def fake_quant_ops(graph):
  """[name, num_bits, narrow_range] of each fake-quant op, sorted."""
  return sorted([op.name, op.get_attr('num_bits'),
                 op.get_attr('narrow_range')]
                for op in graph.get_operations()
                if op.type.startswith('FakeQuant'))


def _seeded_session(graph):
  """A session of `graph` with every variable set to `seeded_values`."""
  sess = tf.Session(graph=graph)
  with graph.as_default():
    sess.run(tf.global_variables_initializer())
    for variable, value in seeded_values(tf.global_variables()).items():
      variable.load(value, sess)
  return sess


def eval_probabilities(graph, inputs, logits):
  with graph.as_default(), _seeded_session(graph) as sess:
    return sess.run(tf.nn.softmax(logits), {inputs: images()})


def eval_runs(model, reference):
  """The project's eval graph of `model` on `images()`, layer by layer:
  (graph, its own run, its run fed `reference`'s codes), runs as
  fake_quant_layers.run_layers gives them."""
  graph, inputs, logits = build(model, False, project_rewrite(False))
  feed = {inputs: images()}
  with graph.as_default(), _seeded_session(graph) as sess:
    return (graph,
            fake_quant_layers.run_layers(graph, sess, feed, logits),
            fake_quant_layers.run_layers(graph, sess, feed, logits,
                                         reference))


def describe(model, rewrite_of):
  """The reference record of `model` under `rewrite_of(training)`."""
  record = {}
  for training in (False, True):
    graph, inputs, logits = build(model, training, rewrite_of(training))
    kind = 'train' if training else 'eval'
    record[kind + '_variables'] = variables_of(graph)
    record[kind + '_fake_quant'] = fake_quant_ops(graph)
    if not training:
      record['probabilities'] = eval_probabilities(
          graph, inputs, logits).tolist()
  return record


def reference_codes(model, rewrite_of):
  """What `<model>_activations.npz` holds, for `rewrite_of`'s eval graph:
  {activation fake-quant op: uint8 codes, weight fake-quant op + ':ties':
  [[flat index, code]] of the weights within TIE_STEPS of a tie}."""
  graph, inputs, logits = build(model, False, rewrite_of(False))
  with graph.as_default(), _seeded_session(graph) as sess:
    return fake_quant_layers.codes_of(fake_quant_layers.run_layers(
        graph, sess, {inputs: images()}, logits))


def load(model):
  with open(os.path.join(DATA_DIR, model + '.json')) as f:
    return json.load(f)


def load_reference_codes(model):
  with np.load(os.path.join(DATA_DIR, model + '_activations.npz')) as data:
    return {name: data[name] for name in data.files}


def main():
  for model in MODELS:
    record = describe(model, contrib_rewrite)
    with open(os.path.join(DATA_DIR, model + '.json'), 'w') as f:
      json.dump(record, f, indent=0, sort_keys=True)
      f.write('\n')
    np.savez_compressed(os.path.join(DATA_DIR, model + '_activations.npz'),
                        **reference_codes(model, contrib_rewrite))
    print('wrote', model, len(record['train_variables']), 'variables')


if __name__ == '__main__':
  main()
