"""How the entry scripts define and read flags, and the flag groups they share.

Only entry scripts import this module; the flags of training and
evaluation alone are in `cli/train_flags.py`. Each `define_*` function
registers one group of absl flags with the `flags.FlagValues` it is given (tests pass
a fresh one). Flag names and defaults are slim's, so launch scripts written
for slim run unchanged; the help texts say what each flag does here.

`define` is the one flag-definition helper. Defining a flag that already
exists is allowed only when it is the same flag (same type and default);
anything else raises `FlagConflictError` instead of keeping either silently.
Entry scripts register with the global `flags.FLAGS` through
`register_script_flags`, which lets scripts whose defaults differ (train's
--batch_size is 32, eval's 100) be imported into one process: each gets its
own defaults back with `use_script_defaults` when its `main` runs.
"""


import sys

from absl import flags

from cli import logs
from cli import script_utils

DEFAULT_DATASET_NAME = 'imagenet'
DEFAULT_MODEL_NAME = 'mobilenet_v1'

# {program: {flag name: that program's default}}, from register_script_flags.
_SCRIPT_DEFAULTS = {}


class FlagConflictError(ValueError):
  """A flag defined twice with another type or default."""


def _same_flag(old, new):
  same_choices = (getattr(old.parser, 'enum_values', None) ==
                  getattr(new.parser, 'enum_values', None))
  return (old.flag_type() == new.flag_type() and old.default == new.default
          and same_choices)


def define(define_fn, name, default, help_text, flag_values, **kwargs):
  """Defines a flag; a second, identical definition is a no-op.

  Args:
    define_fn: an absl `flags.DEFINE_*` function.
    name: the flag's name.
    default: its default.
    help_text: its help.
    flag_values: the `flags.FlagValues` to register with.
    **kwargs: more arguments of `define_fn`, e.g. `enum_values`.

  Raises:
    FlagConflictError: `name` exists with another type, default or choices.
  """
  if name not in flag_values:
    define_fn(name=name, default=default, help=help_text,
              flag_values=flag_values, **kwargs)
    return
  probe = flags.FlagValues()
  define_fn(name=name, default=default, help=help_text, flag_values=probe,
            **kwargs)
  old, new = flag_values[name], probe[name]
  if not _same_flag(old, new):
    raise FlagConflictError(
        'Flag --%s is defined twice differently: %s with default %r, then '
        '%s with default %r.' % (name, old.flag_type(), old.default,
                                 new.flag_type(), new.default))


def define_alias(name, original, flag_values):
  """Makes --name another spelling of --original (once)."""
  if name not in flag_values:
    flags.DEFINE_alias(name, original, flag_values=flag_values)


def parse_flags(define_fn, program, argv):
  """A fresh `FlagValues` holding `define_fn`'s flags, parsed from `argv`.

  Args:
    define_fn: `fn(flag_values)` registering a script's flags.
    program: the script's name (argv[0]).
    argv: the flag strings.
  """
  flag_values = flags.FlagValues()
  define_fn(flag_values)
  flag_values([program] + list(argv))
  return flag_values


def register_script_flags(define_fn, program, module_name,
                          flag_values=flags.FLAGS):
  """Registers an entry script's flags with the global flags at import.

  A flag another script registered already is shared when it has the same
  type; its default may differ and is remembered for `use_script_defaults`.

  Args:
    define_fn: `fn(flag_values)` registering the script's flags.
    program: the script's name, the key of its defaults.
    module_name: the script module's `__name__` (its flags are its key
      flags in --help).
    flag_values: where to register; the global flags by default.

  Raises:
    FlagConflictError: a flag of the same name has another type.
  """
  own = flags.FlagValues()
  define_fn(own)
  if module_name == '__main__':
    module_name = sys.argv[0]
  defaults = {}
  for name in own:
    flag = own[name]
    if name != flag.name:
      continue  # An alias: registered with the flag it stands for.
    defaults[name] = flag.default
    if name not in flag_values:
      flag_values[name] = flag
      for alias in own:
        if alias != name and own[alias].name == name:
          flag_values[alias] = own[alias]
    elif flag_values[name].flag_type() != flag.flag_type():
      raise FlagConflictError(
          '%s defines --%s as %s, but another module already defined it as '
          '%s.' % (program, name, flag.flag_type(),
                   flag_values[name].flag_type()))
    flag_values.register_key_flag_for_module(module_name, flag_values[name])
  _SCRIPT_DEFAULTS[program] = defaults


def use_script_defaults(program, flag_values=flags.FLAGS):
  """Gives flags not set on the command line `program`'s own defaults."""
  for name, default in _SCRIPT_DEFAULTS.get(program, {}).items():
    if flag_values[name].default != default:
      flag_values.set_default(name, default)


def pick(config_class, flag_values, **values):
  """A namedtuple `config_class` filled from the flags of its field names.

  Args:
    config_class: a namedtuple class.
    flag_values: parsed flags.
    **values: fields to set otherwise (e.g. nested configs).
  """
  for field in config_class._fields:
    if field not in values:
      values[field] = getattr(flag_values, field)
  return config_class(**values)


def define_dataset_flags(default_split_name='train', flag_values=flags.FLAGS):
  """--dataset_name --dataset_split_name --dataset_dir --labels_offset.

  Args:
    default_split_name: 'train' for training, 'validation' for evaluation.
    flag_values: the `flags.FlagValues` to register with.
  """
  define(flags.DEFINE_string, 'dataset_name', DEFAULT_DATASET_NAME,
         'Which dataset module reads --dataset_dir (datasets/'
         'dataset_factory.py): imagenet (1001 classes with background), '
         'flowers, cifar10, mnist, shapes (the small generated set) or '
         'image_folder.', flag_values)
  define(flags.DEFINE_string, 'dataset_split_name', default_split_name,
         'Which split\'s TFRecord files to read: train, validation (test '
         'for mnist and cifar10).', flag_values)
  define(flags.DEFINE_string, 'dataset_dir', None,
         'Folder with the TFRecord shards (and labels.txt) that '
         'download_and_convert_data.py wrote. Required to train and '
         'evaluate.', flag_values)
  define(flags.DEFINE_integer, 'labels_offset', 0,
         'Subtracted from each stored label before it reaches the head. 1 '
         'drops the background label 0 of 1001-class ImageNet-style data '
         'for a 1000-output head; 0 keeps labels as stored.', flag_values)


def define_model_flags(flag_values=flags.FLAGS):
  """--model_name --preprocessing_name --use_grayscale --use_explicit_padding."""
  define(flags.DEFINE_string, 'model_name', DEFAULT_MODEL_NAME,
         'Network to build, a name from nets/nets_factory.py, e.g. '
         'mobilenet_v1_025 (V1 at width 0.25) or mobilenet_v2_140.',
         flag_values)
  define(flags.DEFINE_string, 'preprocessing_name', None,
         'Image preparation from preprocessing/preprocessing_factory.py; '
         'unset: the one registered for --model_name.', flag_values)
  define(flags.DEFINE_boolean, 'use_grayscale', False,
         'Feed single-channel gray images to the network instead of RGB.',
         flag_values)
  # The TFLite Micro person-detection guide's spelling (slim has none).
  define_alias('input_grayscale', 'use_grayscale', flag_values)
  define(flags.DEFINE_boolean, 'use_explicit_padding', None,
         'Pad every convolution symmetrically, as PyTorch does (timm\'s '
         'non-tf_ MobileNet weights need it), instead of TensorFlow\'s SAME '
         'padding. Unset: the training record\'s setting, else the '
         'network\'s own (SAME; V4: symmetric).', flag_values)


def define_batch_size_flag(default=32, flag_values=flags.FLAGS):
  """--batch_size (slim's default: 32 to train, 100 to evaluate)."""
  define(flags.DEFINE_integer, 'batch_size', default,
         'Images per step (per clone when training with several clones).',
         flag_values)


def define_image_size_flag(name='train_image_size', flag_values=flags.FLAGS):
  """An image-size flag such as --train_image_size or --eval_image_size."""
  define(flags.DEFINE_integer, name, None,
         'Side in pixels of the square images fed to the network (at '
         'least 32); unset: the size the network was designed for (224).',
         flag_values)


def define_input_flags(flag_values=flags.FLAGS):
  """--num_readers --num_preprocessing_threads."""
  define(flags.DEFINE_integer, 'num_readers', 4,
         'TFRecord shards read at the same time by the input pipeline.',
         flag_values)
  define(flags.DEFINE_integer, 'num_preprocessing_threads', 4,
         'Images prepared (decoded, cropped, resized) in parallel.',
         flag_values)


def define_moving_average_flag(flag_values=flags.FLAGS):
  """--moving_average_decay."""
  define(flags.DEFINE_float, 'moving_average_decay', None,
         'Training: keep exponential moving averages of the weights with '
         'this decay (e.g. 0.9999). Eval and export: use the averages saved '
         'in the checkpoint instead of the raw weights. Unset: no averages.',
         flag_values)


def define_quantize_flag(flag_values=flags.FLAGS):
  """--quantize."""
  define(flags.DEFINE_bool, 'quantize', False,
         'Build the graph with fake-quantization ops, for a checkpoint '
         'trained with --quantize_delay.', flag_values)


def script_main(program, run, flag_names=None, takes_arguments=False,
                stop_handling=None):
  """The `main(argv)` of an entry script: the one skeleton all share.

  Every script does the same around its library call: keep the log to what
  matters, give the flags the script's own defaults, run, and print a
  bad-input error as one paragraph naming the flag (exit status 1).

  Args:
    program: the script's name, which starts its messages.
    run: the script's library call, `run(flag_values)`; with
      takes_arguments `run(flag_values, arguments)`; with stop_handling it
      also gets `stop_signals=` the entered `preemption.StopSignals`.
    flag_names: {parameter name: flag name} where the two differ.
    takes_arguments: whether positional command-line arguments go to `run`;
      otherwise any is a usage error.
    stop_handling: a `script_utils.StopHandling` for scripts that save their work and
      exit on SIGINT, SIGTERM or SIGHUP; its handlers are installed before
      `run` starts.
  """

  def main(argv=None):
    # slim's own tests call main(None) after setting FLAGS by hand.
    arguments = list(argv or [])[1:]
    if arguments and not takes_arguments:
      from absl import app  # pylint: disable=g-import-not-at-top
      raise app.UsageError('Unexpected arguments: %s (flags need the --name='
                           'value form).' % ' '.join(arguments))
    logs.quiet_logging(flags.FLAGS.verbosity)
    use_script_defaults(program)
    run_arguments = [flags.FLAGS] + ([arguments] if takes_arguments else [])
    if stop_handling is None:
      # Nothing is returned: app.run exits with main's return value, so a
      # result object would turn a success into exit status 1 (or its
      # number).
      script_utils.run_or_exit(lambda: run(*run_arguments), program,
                               flag_names)
    else:
      script_utils.run_stoppable(program, lambda **kwargs: run(
          *run_arguments, **kwargs), flag_names, stop_handling)

  return main
