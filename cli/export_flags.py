"""absl flags shared by the export scripts and classify_image.py.

The dataset and model flags come from `common_flags` (as in training and
evaluation); this module adds the export-only ones, through the same
`common_flags.define` (a conflicting second definition raises). Every
function takes the `flags.FlagValues` to register with (tests pass a fresh
one). Like `common_flags`, only entry scripts import it.
"""


from absl import flags

from cli import common_flags
from export import inference_graph


# The one flag-definition helper (it raises on conflicting definitions).
define = common_flags.define
define_alias = common_flags.define_alias


def define_model_input_flags(flag_values):
  """Model, dataset (for the class count) and input shape flags.

  --model_name --preprocessing_name --use_grayscale --dataset_name
  --dataset_dir --dataset_split_name --labels_offset --num_classes
  --image_size --batch_size (default None: any batch size).

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  common_flags.define_model_flags(flag_values)
  common_flags.define_dataset_flags(flag_values=flag_values)
  common_flags.define_batch_size_flag(None, flag_values)
  define(flags.DEFINE_integer, 'num_classes', None,
         'Number of outputs of the classification head. Default: the class '
         'count of --dataset_name (read from --dataset_dir for image_folder) '
         'minus --labels_offset, or, with a checkpoint, its head size.',
         flag_values)
  define(flags.DEFINE_integer, 'image_size', None,
         'Input height and width. Default: the network\'s default_image_size '
         '(224).', flag_values)


def define_checkpoint_flags(flag_values):
  """--checkpoint_path --moving_average_decay --quantize.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  define(flags.DEFINE_string, 'checkpoint_path', None,
         'Checkpoint to export: a prefix (train_dir/model.ckpt-1000) or a '
         'directory (its latest checkpoint).', flag_values)
  common_flags.define_moving_average_flag(flag_values)
  common_flags.define_quantize_flag(flag_values)


def define_labels_flags(flag_values):
  """--labels_file --top_k.

  Args:
    flag_values: the `flags.FlagValues` to register with.
  """
  define(flags.DEFINE_string, 'labels_file', None,
         'labels.txt with `id:name` lines giving class names (default: the '
         'one in --dataset_dir, if any).', flag_values)
  define(flags.DEFINE_integer, 'top_k', 5, 'Number of top classes given.',
         flag_values)


def num_classes(flag_values, checkpoint=None):
  """Resolves the head size from --num_classes / dataset flags / checkpoint.

  Args:
    flag_values: the parsed flags.
    checkpoint: optional checkpoint prefix to read the head size from.

  Returns:
    The head size.

  Raises:
    ScriptError: if it cannot be told.
  """
  return inference_graph.resolve_num_classes(
      dataset_name=flag_values.dataset_name,
      dataset_dir=flag_values.dataset_dir,
      labels_offset=flag_values.labels_offset,
      num_classes=flag_values.num_classes,
      checkpoint=checkpoint)
