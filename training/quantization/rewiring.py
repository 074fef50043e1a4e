"""Graph editing helpers shared by the folding and quantization passes."""

import collections
import re

from core import errors

# Ops under these prefixes are not part of the model's forward pass.
_IGNORED_PREFIXES = ('gradients/', 'RMSProp/', 'Adagrad/', 'Const_',
                     'HistogramSummary', 'ScalarSummary')
_UNFUSED_BATCH_NORM = re.compile(r'BatchNorm/batchnorm(_1)?/Rsqrt$')


class QuantizationError(errors.InputError):
  """A graph the quantization rewrite cannot handle, with the op at fault."""


def reroute(new, old, only=None):
  """Makes consumers of tensor `old` (those in `only`, if given) read `new`.

  Returns:
    The number of inputs changed.
  """
  changed = 0
  for consumer in list(old.consumers()):
    if only is not None and consumer not in only:
      continue
    for index, tensor in enumerate(list(consumer.inputs)):
      if tensor is old:
        consumer._update_input(index, new)  # pylint: disable=protected-access
        changed += 1
  return changed


def consumer_map(graph):
  """A snapshot {tensor: set of ops reading it} of the forward graph."""
  readers = collections.defaultdict(set)
  for op in graph.get_operations():
    if op.name.startswith(_IGNORED_PREFIXES):
      continue
    for tensor in op.inputs:
      readers[tensor].add(op)
  return readers


def consumers_of(readers, op):
  """Ops reading any output of `op`, per the snapshot `readers`."""
  found = set()
  for tensor in op.outputs:
    found.update(readers[tensor])
  return found


def refuse_unfused_batch_norms(graph):
  """Raises on a batch norm built from separate ops (only fused ones fold)."""
  for op in graph.get_operations():
    if _UNFUSED_BATCH_NORM.search(op.name) and not op.name.startswith(
        _IGNORED_PREFIXES):
      raise QuantizationError(
          'Cannot fold %s into its layer for quantization: it is an unfused '
          'batch norm (separate moments/rsqrt ops), and the quantization '
          'rewrite folds only fused batch norms. Build the network with '
          'slim.batch_norm(fused=True) or fused=None on 4-D inputs.' % op.name)


def check_no_training_ops(graph):
  """The rewrite must come before the optimizer builds its update ops."""
  for op in graph.get_operations():
    if re.match(r'^(Resource)?(Sparse)?Apply[A-Z]', op.type):
      raise QuantizationError(
          'The quantization rewrite must run before the optimizer creates '
          'its update ops, but the graph already has %s (%s). Rewrite the '
          'forward graph first, then build the train op.' % (op.name, op.type))
