"""A small structural matcher for subgraphs of a `tf.Graph`.

A pattern describes an op by its type and, optionally, by patterns for its
inputs; a match walks from an op towards its inputs and records, under each
pattern's role name, the op and tensor that took that role.
"""

import itertools


class Op(object):
  """An op of one of `types` ('A|B', or '*' for any type).

  `inputs`: None accepts any inputs; a list demands exactly that many inputs,
  each matching its pattern (in any order when `any_order`).
  """

  def __init__(self, types='*', inputs=None, any_order=False, role=None):
    self.types = None if types == '*' else frozenset(types.split('|'))
    self.inputs = None if inputs is None else [_as_pattern(p) for p in inputs]
    self.any_order = any_order
    self.role = role

  def match_into(self, op, tensor, found):
    if self.types is not None and op.type not in self.types:
      return False
    if self.role:
      found[self.role] = (op, tensor)
    if self.inputs is None:
      return True
    if len(op.inputs) != len(self.inputs):
      return False
    orders = (itertools.permutations(self.inputs) if self.any_order
              else [self.inputs])
    for order in orders:
      trial = dict(found)
      if all(pattern.match_into(t.op, t, trial)
             for pattern, t in zip(order, op.inputs)):
        found.update(trial)
        return True
    return False


class AnyOf(object):
  """The first of `alternatives` that matches."""

  def __init__(self, *alternatives):
    self.alternatives = alternatives

  def match_into(self, op, tensor, found):
    for alternative in self.alternatives:
      trial = dict(found)
      if alternative.match_into(op, tensor, trial):
        found.update(trial)
        return True
    return False


def _as_pattern(pattern):
  return Op(pattern) if isinstance(pattern, str) else pattern


class Match(object):
  """The ops and tensors a match found, by role (None when absent)."""

  def __init__(self, found):
    self._found = found

  def op(self, role):
    entry = self._found.get(role)
    return entry[0] if entry else None

  def tensor(self, role):
    entry = self._found.get(role)
    return entry[1] if entry else None


def matches(pattern, ops):
  """Yields a `Match` for each op of `ops` (in order) rooted at `pattern`."""
  for op in ops:
    found = {}
    if pattern.match_into(op, None, found):
      yield Match(found)
