"""Tests of the int8 agreement check's options (benchmarks/options.py, e2e.py).

The agreement can be measured on another `shapes` dataset (the main job's)
with the preprocessing its networks were trained with, and on its own
(no timed measurement).
"""


import os

from absl import flags
import numpy as np
import pytest

from benchmarks import e2e
from benchmarks import options
from benchmarks import workloads


def test_validation_images_take_the_named_preprocessing(tmp_path):
  dataset_dir = str(tmp_path / 'shapes')
  workloads.make_dataset({'dataset_dir': dataset_dir,
                          'tfrecord_image_size': 40, 'tfrecord_images': 6,
                          'validation_images': 6})
  spec = {'dataset_dir': dataset_dir, 'image_size': 32,
          'calibration_images': 2}
  default, labels, num_classes = e2e._validation_images(spec, 'validation')
  inception, _, _ = e2e._validation_images(dict(spec, preprocessing='inception'),
                                           'validation')
  cifarnet, cifar_labels, _ = e2e._validation_images(
      dict(spec, preprocessing='cifarnet'), 'validation')
  assert num_classes == 6 and len(cifarnet) == len(labels) == 6
  np.testing.assert_array_equal(labels, cifar_labels)
  assert all(np.array_equal(a, b) for a, b in zip(default, inception))
  # cifarnet resizes the whole image; inception crops its centre first.
  assert cifarnet[0].shape == inception[0].shape == (1, 32, 32, 3)
  assert not any(np.allclose(a, b) for a, b in zip(cifarnet, inception))
  calibration, _, _ = e2e._validation_images(
      dict(spec, preprocessing='cifarnet'), 'train')
  assert len(calibration) == 2


def _parsed(*args):
  """A fresh FlagValues with the benchmark's flags, parsed from `args`."""
  flag_values = flags.FlagValues()
  options.define_flags(flag_values)
  flag_values(['benchmark.py'] + list(args))
  return flag_values


def _resolve(*args):
  try:
    opts = options.resolve_options(_parsed(*args))
  except options.UsageError as e:
    return 'UsageError: %s' % e
  return '%s %s %s' % (opts['measurements'], opts['agreement_dataset_dir'],
                       opts['agreement_preprocessing'])


def test_agreement_flags_are_checked(tmp_path):
  dataset_dir = str(tmp_path)
  # No measurement: only the agreement check, on the given dataset.
  assert _resolve('--measurements=', '--agreement_dataset_dir=' + dataset_dir,
                  '--agreement_preprocessing=cifarnet') == (
                      "[] %s cifarnet" % dataset_dir)
  assert _resolve().endswith('None inception')
  said = _resolve('--measurements=', '--noint8_agreement')
  assert said.startswith('UsageError: --measurements')
  said = _resolve('--agreement_dataset_dir=' +
                  os.path.join(dataset_dir, 'missing'))
  assert said.startswith('UsageError: --agreement_dataset_dir')


@pytest.mark.parametrize('value', ['vgg', ''])
def test_unknown_preprocessing_is_refused(value):
  # Refused while parsing (benchmark.py's app.run prints it and exits 1).
  with pytest.raises(flags.IllegalFlagValueError,
                     match='agreement_preprocessing'):
    _parsed('--agreement_preprocessing=' + value)
