"""A fake-quantized graph's run as 8-bit codes, compared with a reference run.

Two runs of one quantized graph on two stacks (TF 1.15 and TF 2, oneDNN on
or off) compute each layer's float output with different kernels (FMA,
summation order), a few 1e-5 to 1e-4 steps apart. A value that lies that
close to the middle between two 8-bit steps (a tie) is rounded down on one
stack and up on the other: one step, which every later layer carries on.
Anything else that differs is a different computation. So a run is compared
with the reference as codes: an activation or weight may differ from the
reference only by one step and only where it lies at a tie.
"""

import collections

from core import tf_compat  # noqa: F401  (must run before TensorFlow is used)
import numpy as np
import tensorflow.compat.v1 as tf

from training.quantization import fake_quant

# How close (in steps) to a tie a value may be and still be rounded the
# other way by another stack; measured differences are below 1e-4 steps.
TIE_STEPS = 2e-3

Run = collections.namedtuple('Run', ['probabilities', 'activations',
                                     'weights'])


def _is_weight(op):
  return '/weights_quant/' in op.name


def quant_ops(graph):
  """The graph's fake-quant ops, by name."""
  return sorted((op for op in graph.get_operations()
                 if op.type in fake_quant.FAKE_QUANT_TYPES),
                key=lambda op: op.name)


def quantization_grid(low, high, num_bits, narrow_range):
  """(lowest value, step, steps) of a fake-quant op's grid, in float64.

  The op moves its range so that 0.0 falls on a grid point; this is that
  rule, so that values can be turned into their integer codes.
  """
  first = 1 if narrow_range else 0
  steps = 2 ** num_bits - 1 - first
  step = (float(high) - float(low)) / steps
  zero = np.clip(np.floor(first - float(low) / step + 0.5), first,
                 first + steps)
  return (first - zero) * step, step, steps


class QuantizedLayer(object):
  """One fake-quant op of a run: its grid, input and output as codes."""

  def __init__(self, grid, inputs, outputs):
    self.low, self.step, steps = grid
    self.positions = np.clip((inputs - self.low) / self.step, 0, steps)
    # The output is a grid value up to float rounding: its nearest code.
    self.output_codes = np.floor((outputs - self.low) / self.step + 0.5)
    self.input_codes = np.floor(self.positions + 0.5)

  def values(self, codes):
    return (self.low + codes * self.step).astype(np.float32)

  def at_tie(self):
    fraction = self.positions - np.floor(self.positions)
    return np.abs(fraction - 0.5) <= TIE_STEPS


def _weight_codes(layer, ties):
  """The layer's codes, with the reference's where it had a tie."""
  codes = layer.input_codes.copy()
  codes.flat[ties[:, 0]] = ties[:, 1]
  return codes


def run_layers(graph, sess, feed, logits, reference=None):
  """Probabilities and every fake-quant op's codes: a `Run`.

  With `reference` (`codes_of` a reference run), every fake-quant op's
  output is replaced by the reference's codes (weights: this run's, except
  at the reference's ties), so that each op's input is computed from the
  reference's quantized tensors: a layer-by-layer comparison that no
  earlier difference can disturb.
  """
  ops = quant_ops(graph)
  bounds = sess.run([op.inputs[1:3] for op in ops])
  grids = [quantization_grid(low, high, op.get_attr('num_bits'),
                             op.get_attr('narrow_range'))
           for op, (low, high) in zip(ops, bounds)]
  feed = dict(feed)
  if reference is not None:
    weights = [(op, grid) for op, grid in zip(ops, grids) if _is_weight(op)]
    pairs = sess.run([(op.inputs[0], op.outputs[0]) for op, _ in weights])
    for (op, grid), pair in zip(weights, pairs):
      layer = QuantizedLayer(grid, *pair)
      feed[op.outputs[0]] = layer.values(
          _weight_codes(layer, reference[op.name + ':ties']))
    for op, grid in zip(ops, grids):
      if not _is_weight(op):
        low, step, _ = grid
        feed[op.outputs[0]] = (low + reference[op.name] * step).astype(
            np.float32)
  probabilities, pairs = sess.run(
      [tf.nn.softmax(logits), [(op.inputs[0], op.outputs[0]) for op in ops]],
      feed)
  run = Run(probabilities, {}, {})
  for op, grid, pair in zip(ops, grids, pairs):
    (run.weights if _is_weight(op) else run.activations)[op.name] = (
        QuantizedLayer(grid, *pair))
  return run


def codes_of(run):
  """What a reference file stores of `run` (see quantization_reference)."""
  codes = {name: layer.output_codes.astype(np.uint8)
           for name, layer in run.activations.items()}
  for name, layer in run.weights.items():
    ties = np.flatnonzero(layer.at_tie())
    codes[name + ':ties'] = np.stack(
        [ties, layer.output_codes.flat[ties]], 1).astype(np.int64)
  return codes


def one_step_flips(layer, codes, reference):
  """(differing elements, of them one-step flips at a tie)."""
  differ = codes != reference
  flips = differ & (np.abs(codes - reference) == 1) & layer.at_tie()
  return int(differ.sum()), int(flips.sum())


def _upstream_quants(op):
  """Names of the fake-quant ops nearest above `op`'s input."""
  found, seen, pending = set(), set(), [op.inputs[0].op]
  while pending:
    current = pending.pop()
    if current.name in seen:
      continue
    seen.add(current.name)
    if current.type in fake_quant.FAKE_QUANT_TYPES:
      found.add(current.name)
    else:
      pending.extend(t.op for t in current.inputs)
  return found


def departures(run, reference):
  """{fake-quant op: whether its codes differ from the reference's} (for
  weights: at the reference's ties, the only places they can differ
  without the layer-by-layer comparison failing)."""
  differs = {name: bool((layer.output_codes != reference[name]).any())
             for name, layer in run.activations.items()}
  for name, layer in run.weights.items():
    ties = reference[name + ':ties']
    differs[name] = bool((layer.output_codes.flat[ties[:, 0]] !=
                          ties[:, 1]).any())
  return differs


def first_differences(graph, run, reference):
  """{activation op: one_step_flips} of the ops that depart from the
  reference while every fake-quant op above them agrees with it."""
  differs = departures(run, reference)
  upstream = {op.name: _upstream_quants(op) for op in quant_ops(graph)
              if not _is_weight(op)}
  tainted = {}

  def is_tainted(name):  # some op above differs
    if name not in tainted:
      tainted[name] = any(differs[above] or is_tainted(above)
                          for above in upstream.get(name, ()))
    return tainted[name]

  return {name: one_step_flips(layer, layer.output_codes, reference[name])
          for name, layer in run.activations.items()
          if differs[name] and not is_tainted(name)}
