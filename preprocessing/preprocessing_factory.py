"""The one place that maps a model or preprocessing name to its preprocessing.

Used by training, evaluation, export and classification alike, so an image
is always prepared the same way for a given model.
"""


from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from nets import nets_factory
from core import errors
from core import param_refs
from preprocessing import cifarnet_preprocessing
from preprocessing import inception_preprocessing
from preprocessing import mean_std_preprocessing

# Name -> module with `preprocess_image(image, height, width, is_training,
# use_grayscale, **kwargs)`: each preprocessing name, and each model name
# with the preprocessing its nets_factory record names.
_MODULES_BY_NAME = {'cifarnet': cifarnet_preprocessing,
                    'inception': inception_preprocessing,
                    'inception_mean_std': mean_std_preprocessing}
_PREPROCESSING_MODULES = dict(
    {name: _MODULES_BY_NAME[record.preprocessing]
     for name, record in nets_factory.NETWORKS.items()},
    **_MODULES_BY_NAME)


class UnknownPreprocessingError(errors.LibraryError):
  """No preprocessing has the name asked for."""


def preprocessing_names():
  """Returns the sorted list of valid preprocessing names."""
  return sorted(_PREPROCESSING_MODULES)


def get_preprocessing(name, is_training=False, use_grayscale=False):
  """Returns the preprocessing function for a model or preprocessing name.

  Args:
    name: a model name (e.g. 'mobilenet_v1_025') or a preprocessing name
      ('inception', 'cifarnet').
    is_training: whether the function distorts images for training.
    use_grayscale: whether the function outputs 1-channel images.

  Returns:
    `preprocessing_fn(image, output_height, output_width, **kwargs)` taking a
    3-D uint8 (or [0, 1] float) image and returning a float32 image of the
    given size in [-1, 1] (inception_mean_std: normalized with ImageNet's
    mean and std, for PyTorch-trained weights); kwargs go to the module's
    `preprocess_image`
    (e.g. `bbox=` for training crops around object boxes).

  Raises:
    ValueError: if `name` is not a known name.
  """
  module = _PREPROCESSING_MODULES.get(name)
  if module is None:
    raise UnknownPreprocessingError(
        'Unknown preprocessing name %r (from %s, or %s when no '
        'preprocessing name is given). Valid names: %s. Pass one of them as '
        '%s.' % (name, param_refs.ref('preprocessing_name'),
                 param_refs.ref('model_name'),
                 ', '.join(preprocessing_names()),
                 param_refs.ref('preprocessing_name')))
  mode = dict(is_training=is_training, use_grayscale=use_grayscale)

  def preprocessing_fn(image, output_height, output_width, **kwargs):
    return module.preprocess_image(image, output_height, output_width,
                                   **mode, **kwargs)

  return preprocessing_fn
