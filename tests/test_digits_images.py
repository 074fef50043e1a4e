"""benchmarks/digits_images.py: the digits in the image_folder layout.

scikit-learn is not in the project's environments, so the loader is
replaced by a small stand-in of the same shape (8x8 ink counts 0-16).
"""

import importlib.util
import os
import sys
import types

import numpy as np
from PIL import Image
import pytest

from benchmarks import digits_images
from tests import train_dir_helpers


def _fake_sklearn(monkeypatch, images, targets):
  datasets = types.ModuleType('sklearn.datasets')
  datasets.load_digits = lambda: types.SimpleNamespace(images=images,
                                                       target=targets)
  sklearn = types.ModuleType('sklearn')
  sklearn.datasets = datasets
  monkeypatch.setitem(sys.modules, 'sklearn', sklearn)
  monkeypatch.setitem(sys.modules, 'sklearn.datasets', datasets)


def test_digits_are_written_one_folder_per_class(monkeypatch, tmp_path):
  rng = np.random.RandomState(0)
  images = rng.randint(0, 17, (5, 8, 8)).astype(np.float64)
  targets = np.array([3, 0, 3, 9, 0])
  _fake_sklearn(monkeypatch, images, targets)
  out = str(tmp_path / 'digits')
  for _ in range(2):   # A second run over the same folder gives the same.
    assert digits_images.write_digits(out) == 5
    assert sorted(os.listdir(out)) == ['0', '3', '9']
    assert sorted(os.listdir(os.path.join(out, '3'))) == [
        'digit_0000.png', 'digit_0002.png']
  with Image.open(os.path.join(out, '9', 'digit_0003.png')) as png:
    assert png.mode == 'L' and png.size == (8, 8)
    np.testing.assert_array_equal(
        np.asarray(png), np.round(images[3] * 255. / 16.).astype(np.uint8))


def test_without_scikit_learn_it_stops_with_one_line(tmp_path):
  if importlib.util.find_spec('sklearn'):
    pytest.skip('scikit-learn is installed in this environment')
  out = train_dir_helpers.relative_to_repo(tmp_path / 'digits')
  status, output = train_dir_helpers.run_python(
      ['benchmarks/digits_images.py', '--output_dir=' + out])
  assert status == 1
  assert output.strip().splitlines() == [output.strip()]
  assert 'pip install scikit-learn' in output
  assert not os.path.exists(str(tmp_path / 'digits'))


def test_it_runs_in_a_python_without_absl(monkeypatch, tmp_path, capsys):
  """The Python with scikit-learn is not the project's: no absl there."""
  import runpy  # pylint: disable=g-import-not-at-top
  for name in [n for n in sys.modules if n == 'absl' or n.startswith('absl.')]:
    monkeypatch.delitem(sys.modules, name)
  monkeypatch.setitem(sys.modules, 'absl', None)   # import absl fails
  script = runpy.run_path(digits_images.__file__, run_name='digits_script')
  _fake_sklearn(monkeypatch, np.zeros((2, 8, 8)), np.array([1, 7]))
  script['main'](['--output_dir=' + str(tmp_path / 'digits')])
  assert 'Wrote 2 digit images' in capsys.readouterr().out
  assert sorted(os.listdir(str(tmp_path / 'digits'))) == ['1', '7']
