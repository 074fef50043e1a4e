r"""Creates a dataset's TFRecords (downloading only what is not on disk).

Usage:
  # The embedded default dataset, generated locally (no download):
  python download_and_convert_data.py --dataset_name=shapes \
      --dataset_dir=/tmp/shapes

  # Official archives (used from --archive_path / --dataset_dir when present):
  python download_and_convert_data.py --dataset_name=cifar10 \
      --dataset_dir=/tmp/cifar10 --archive_path=~/cifar-10-binary.tar.gz
  python download_and_convert_data.py --dataset_name=flowers \
      --dataset_dir=/tmp/flowers
  python download_and_convert_data.py --dataset_name=mnist \
      --dataset_dir=/tmp/mnist --source_dir=~/mnist_gz

  # Your own images, one subfolder per class:
  python download_and_convert_data.py --dataset_name=image_folder \
      --source_dir=~/my_images --dataset_dir=/tmp/my_images \
      --validation_ratio=0.1 --seed=0

  # ImageNet from the raw layout (train/<synset>/*.JPEG, validation/, ...):
  python download_and_convert_data.py --dataset_name=imagenet \
      --source_dir=~/ILSVRC2012 --dataset_dir=/tmp/imagenet

  # Visual Wake Words from COCO 2014 (in DIR/coco_dataset, fetched if absent):
  python download_and_convert_data.py --dataset_name=visualwakewords \
      --dataset_dir=DIR --foreground_class_of_interest=person \
      --small_object_area_threshold=0.005

Conversion is idempotent and crash-safe: run it again after an interruption
and it completes the missing shards only.
"""


from absl import app
from absl import flags
from absl import logging

from cli import logs  # first: sets TensorFlow's C++ log level
from cli import common_flags
from cli import script_utils
from core import atomic_files
from core import errors
from datasets import convert_image_folder
from datasets import convert_imagenet
from datasets import convert_visualwakewords
from datasets import dataset_errors
from datasets import download_and_convert_cifar10
from datasets import download_and_convert_flowers
from datasets import download_and_convert_mnist
from datasets import downloads
from datasets import generate_shapes

PROGRAM = 'download_and_convert_data.py'
FLAGS = flags.FLAGS

# The flags whose names differ from the converter parameters they set.
FLAG_NAMES = {
    'checksum': 'archive_checksum',
    'image_size': 'shapes_image_size',
    'train_per_class': 'shapes_train_per_class',
    'validation_per_class': 'shapes_validation_per_class',
    'validation_labels_file': 'imagenet_validation_labels_file',
    'val_shards': 'validation_shards',
}

flags.DEFINE_string(
    'dataset_name', None,
    'The dataset to create: shapes, cifar10, flowers, mnist, image_folder, '
    'imagenet or visualwakewords.')
flags.DEFINE_string('dataset_dir', None,
                    'Directory where the TFRecords and labels.txt are written.')
flags.DEFINE_string(
    'archive_path', None,
    'cifar10/flowers: the archive on disk (default: looked for in '
    '--dataset_dir, downloaded if missing).')
flags.DEFINE_string(
    'archive_checksum', None,
    'Checksum of the archive as md5:<hex> or sha256:<hex>; default: the '
    'published checksum of the official archive; `none` skips the check.')
flags.DEFINE_string(
    'source_dir', None,
    'image_folder: folder with one subfolder per class. imagenet: the raw '
    'layout. mnist: folder with the four .gz files (default --dataset_dir).')
flags.DEFINE_float('validation_ratio', 0.1,
                   'image_folder: fraction of each class for validation.')
flags.DEFINE_integer('num_validation', 350,
                     'flowers: number of validation images.')
flags.DEFINE_integer('seed', 0,
                     'Seed of train/validation splits and of shapes.')
flags.DEFINE_integer('num_workers', None,
                     'Parallel shard writers (default: number of CPUs).')
flags.DEFINE_integer('train_shards', None,
                     'Shards of the training split (default per dataset).')
flags.DEFINE_integer(
    'validation_shards', None,
    'Shards of the validation (cifar10/mnist: test) split (default per '
    'dataset).')
flags.DEFINE_integer('shapes_image_size', generate_shapes.DEFAULT_IMAGE_SIZE,
                     'shapes: image height and width.')
flags.DEFINE_integer('shapes_train_per_class',
                     generate_shapes.DEFAULT_TRAIN_PER_CLASS,
                     'shapes: training images per class.')
flags.DEFINE_integer('shapes_validation_per_class',
                     generate_shapes.DEFAULT_VALIDATION_PER_CLASS,
                     'shapes: validation images per class.')
flags.DEFINE_string('imagenet_synsets_file', None,
                    'imagenet: synset list (default: in --source_dir).')
flags.DEFINE_string('imagenet_metadata_file', None,
                    'imagenet: synset-to-name file (default: in --source_dir).')
flags.DEFINE_string(
    'imagenet_validation_labels_file', None,
    'imagenet: validation ground truth (default: in --source_dir).')
flags.DEFINE_string(
    'imagenet_bounding_box_file', None,
    'imagenet: bounding-box CSV (default: in --source_dir if present).')
flags.DEFINE_string(
    'foreground_class_of_interest', 'person',
    'visualwakewords: the COCO category of label 1 (label 0: background).')
flags.DEFINE_float(
    'small_object_area_threshold', 0.005,
    'visualwakewords: an image is the foreground class when one of its boxes '
    'of that category covers more than this fraction of the image.')
flags.DEFINE_string(
    'coco_dirname', convert_visualwakewords.DEFAULT_COCO_DIRNAME,
    'visualwakewords: folder inside --dataset_dir holding (or receiving) the '
    'COCO 2014 tree.')
flags.DEFINE_string('coco_train_url',
                    convert_visualwakewords.DEFAULT_URLS['train'],
                    'visualwakewords: zip of the COCO 2014 training images.')
flags.DEFINE_string('coco_validation_url',
                    convert_visualwakewords.DEFAULT_URLS['val'],
                    'visualwakewords: zip of the COCO 2014 validation images.')
flags.DEFINE_string('coco_annotations_url',
                    convert_visualwakewords.DEFAULT_URLS['annotations'],
                    'visualwakewords: zip of the COCO 2014 annotations.')


def _checksum(official):
  value = FLAGS.archive_checksum
  if value is None:
    return official
  if value.lower() == 'none':
    return None
  downloads.parse_checksum(value)  # Fails early on a malformed value.
  return value


def _require(flag_name):
  if not getattr(FLAGS, flag_name):
    raise ValueError('--%s is required for --dataset_name=%s.' %
                     (flag_name, FLAGS.dataset_name))
  return getattr(FLAGS, flag_name)


def _shapes():
  return generate_shapes.run(
      FLAGS.dataset_dir, image_size=FLAGS.shapes_image_size,
      train_per_class=FLAGS.shapes_train_per_class,
      validation_per_class=FLAGS.shapes_validation_per_class, seed=FLAGS.seed,
      train_shards=FLAGS.train_shards,
      validation_shards=FLAGS.validation_shards, num_workers=FLAGS.num_workers)


def _cifar10():
  return download_and_convert_cifar10.run(
      FLAGS.dataset_dir, archive_path=FLAGS.archive_path,
      checksum=_checksum(download_and_convert_cifar10.OFFICIAL),
      num_workers=FLAGS.num_workers, train_shards=FLAGS.train_shards,
      test_shards=FLAGS.validation_shards)


def _flowers():
  return download_and_convert_flowers.run(
      FLAGS.dataset_dir, archive_path=FLAGS.archive_path,
      checksum=_checksum(download_and_convert_flowers.OFFICIAL),
      num_validation=FLAGS.num_validation, seed=FLAGS.seed,
      num_workers=FLAGS.num_workers,
      num_shards=FLAGS.train_shards or download_and_convert_flowers.
      DEFAULT_SHARDS)


def _mnist():
  return download_and_convert_mnist.run(
      FLAGS.dataset_dir, source_dir=FLAGS.source_dir,
      checksum=_checksum(download_and_convert_mnist.OFFICIAL),
      num_workers=FLAGS.num_workers, train_shards=FLAGS.train_shards,
      test_shards=FLAGS.validation_shards)


def _image_folder():
  return convert_image_folder.run(
      FLAGS.dataset_dir, _require('source_dir'),
      validation_ratio=FLAGS.validation_ratio, seed=FLAGS.seed,
      num_workers=FLAGS.num_workers, train_shards=FLAGS.train_shards,
      validation_shards=FLAGS.validation_shards)


def _imagenet():
  return convert_imagenet.run(
      FLAGS.dataset_dir, _require('source_dir'),
      synsets_file=FLAGS.imagenet_synsets_file,
      metadata_file=FLAGS.imagenet_metadata_file,
      validation_labels_file=FLAGS.imagenet_validation_labels_file,
      bounding_box_file=FLAGS.imagenet_bounding_box_file,
      num_workers=FLAGS.num_workers, train_shards=FLAGS.train_shards,
      validation_shards=FLAGS.validation_shards)


def _visualwakewords():
  return convert_visualwakewords.run(
      FLAGS.dataset_dir,
      foreground_class_of_interest=FLAGS.foreground_class_of_interest,
      small_object_area_threshold=FLAGS.small_object_area_threshold,
      coco_dirname=FLAGS.coco_dirname,
      coco_urls={'train': FLAGS.coco_train_url,
                 'val': FLAGS.coco_validation_url,
                 'annotations': FLAGS.coco_annotations_url},
      num_workers=FLAGS.num_workers, train_shards=FLAGS.train_shards,
      val_shards=FLAGS.validation_shards)


# The one place converter names map to code.
CONVERTERS = {
    'cifar10': _cifar10,
    'flowers': _flowers,
    'image_folder': _image_folder,
    'imagenet': _imagenet,
    'mnist': _mnist,
    'shapes': _shapes,
    'visualwakewords': _visualwakewords,
}


def run(opts):
  """Converts the dataset the parsed flags `opts` name; prints its splits.

  Raises:
    ScriptError: bad flags or data, or a full disk; the converter's error
      is its `__cause__`.
  """
  logging.set_verbosity(logging.INFO)
  if opts.dataset_name not in CONVERTERS:
    raise script_utils.ScriptError(
        '--dataset_name=%s is not a dataset; use one of %s.' %
        (opts.dataset_name, ', '.join(sorted(CONVERTERS))))
  if not opts.dataset_dir:
    raise script_utils.ScriptError(
        '--dataset_dir is required: the directory where the TFRecords of '
        '%s are written.' % opts.dataset_name)
  try:
    manifests = CONVERTERS[opts.dataset_name]()
  except Exception as e:  # pylint: disable=broad-except
    # Writes outside write_split (downloads, extraction) can fill the disk
    # too; they get the same advice.
    if atomic_files.is_disk_full(e):
      e = dataset_errors.DiskFullError(opts.dataset_dir, e)
    elif not isinstance(e, (ValueError, IOError, OSError)):
      raise
    raise script_utils.ScriptError(errors.marked(e), FLAG_NAMES) from e
  for split_name, manifest in sorted(manifests.items()):
    print('%s %s: %d examples, %d classes, %d shards%s' % (
        opts.dataset_name, split_name, manifest['num_examples'],
        manifest['num_classes'], manifest['num_shards'],
        ', %d unreadable files skipped' % manifest['num_skipped']
        if manifest['num_skipped'] else ''))
  print('Finished creating %s in %s.' % (opts.dataset_name, opts.dataset_dir))


main = common_flags.script_main(PROGRAM, run, FLAG_NAMES)


if __name__ == '__main__':
  app.run(main)
