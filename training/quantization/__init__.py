"""Quantization-aware training and evaluation by rewriting a graph.

The project's own replacement for `tf.contrib.quantize` (TF 1.15 only): it
works on both stacks in graph mode and writes the same variables, so QAT
checkpoints move between `tf.contrib.quantize` and this package:

  rewrite_for_training(quant_delay=N)  # before building the optimizer
  rewrite_for_eval()                   # inference/eval graph, same model

See docs/quantization.md.
"""

import re

from core import tf_compat  # noqa: F401  (must run before TensorFlow is used)
import tensorflow.compat.v1 as tf

from core import errors
from training.quantization import batch_norm_folding
from training.quantization import fake_quant
from training.quantization import layer_quantization
from training.quantization import rewiring

QuantizationError = rewiring.QuantizationError
# <scope>/<kind>_quant[_<n>]/min or max (a second quantizer in one scope
# gets a numbered scope, like any variable scope).
_RANGE_VARIABLE = re.compile(r'_quant(_\d+)?/(min|max)$')
STEP_NAME = fake_quant.STEP_NAME


def _rewrite(graph, settings):
  graph = graph or tf.get_default_graph()
  rewiring.check_no_training_ops(graph)
  with graph.as_default():
    batch_norm_folding.fold_batch_norms(graph)
    layer_quantization.quantize_layers(graph, settings)


def rewrite_for_training(graph=None, quant_delay=0):
  """Folds batch norms and inserts training fake quantization, in place.

  Args:
    graph: the graph to rewrite (default: the default graph); it must not
      have optimizer update ops yet, so that gradients see the quantization.
    quant_delay: steps (counted by the `fake_quantization_step` variable,
      created only when > 0) during which the float values pass unchanged;
      ranges are learnt from the start.

  Raises:
    QuantizationError: naming the op the rewrite cannot handle.
  """
  _rewrite(graph, fake_quant.Settings(True, quant_delay=quant_delay))


def rewrite_for_eval(graph=None):
  """Folds batch norms and inserts fake quantization for inference, in place.

  Raises:
    QuantizationError: naming the op the rewrite cannot handle.
  """
  _rewrite(graph, fake_quant.Settings(False))


def range_variable_names(names):
  """The names among `names` that quantization rewrites create."""
  return [n for n in names if _RANGE_VARIABLE.search(n) or n == STEP_NAME]


def float_checkpoint_message(missing, checkpoint_names, checkpoint,
                             setting_name):
  """Explains a quantized graph meeting a checkpoint trained in float.

  Args:
    missing: graph variable names the checkpoint lacks.
    checkpoint_names: the names the checkpoint has.
    checkpoint: its prefix.
    setting_name: the parameter that named it.

  Returns:
    The message, or None when the checkpoint has quantization ranges or the
    missing variables are not quantization ranges.
  """
  ranges = range_variable_names(missing)
  if not ranges or range_variable_names(checkpoint_names):
    return None
  return (
      '%s was not trained with quantization: it has none of the %d '
      'fake-quantization range variables (e.g. %s) that the quantized graph '
      '(%s) reads. Evaluate or export it without %s (and quantize it after '
      'training with export_tflite.py), or first fine-tune it with %s (e.g. '
      '0, quantization-aware training) and use that checkpoint.' %
      (errors.ref(setting_name, checkpoint), len(ranges), sorted(ranges)[0],
       errors.ref('quantize'), errors.ref('quantize'),
       errors.ref('quantize_delay')))
