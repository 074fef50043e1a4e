"""Real handwritten digits, offline, in the `image_folder` layout.

scikit-learn bundles the UCI optical digits test set (1,797 greyscale 8x8
images of 0-9, written by 43 people) inside its package, so no download is
needed. This writes them as PNG files, one folder per digit, which
`download_and_convert_data.py --dataset_name=image_folder` turns into a
dataset with a fixed train/validation split (its `--seed`). The recipe
comparison that uses them is in docs/training.md.

    python benchmarks/digits_images.py --output_dir=/tmp/digits_png

It needs scikit-learn, numpy and Pillow in the Python that runs it (the
project's environments do not need scikit-learn: any other Python with
`pip install scikit-learn pillow` does).
"""

import argparse
import os
import sys


def write_digits(output_dir):
  """Writes <output_dir>/<digit>/digit_<index>.png; returns the count."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  # The pixel values are ink counts 0-16; stretch them over 0-255.
  pixels = np.round(digits.images * (255. / 16.)).astype(np.uint8)
  for index, (image, label) in enumerate(zip(pixels, digits.target)):
    folder = os.path.join(output_dir, str(label))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'digit_%04d.png' % index)
    tmp = path + '.tmp'   # A second run, or an interrupted one, rewrites it.
    Image.fromarray(image, mode='L').save(tmp, format='PNG')
    os.replace(tmp, path)
  return len(pixels)


def main(argv=None):
  # argparse, not absl: the Python that runs this is not the project's, and
  # scikit-learn with Pillow should be all it needs.
  parser = argparse.ArgumentParser(
      description='Writes scikit-learn\'s handwritten digits as PNG files, '
      'one folder per digit.')
  parser.add_argument('--output_dir', required=True,
                      help='Folder that receives one subfolder per digit.')
  args = parser.parse_args(argv)
  try:
    import sklearn  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import PIL  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    sys.exit('benchmarks/digits_images.py needs scikit-learn and Pillow (%s): '
             'run it with a Python that has them (pip install scikit-learn '
             'pillow), not the project environment.' % e)
  count = write_digits(args.output_dir)
  print('Wrote %d digit images (8x8 grey PNG) under %s.' %
        (count, args.output_dir))


if __name__ == '__main__':
  main()
