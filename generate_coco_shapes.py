r"""Writes a small synthetic COCO-2014-shaped tree (see datasets/generate_coco_shapes.py).

  python generate_coco_shapes.py --coco_dir=/tmp/vww/coco_dataset \
      --train_images=600 --val_images=200
"""

from absl import app
from absl import flags

from cli import logs  # first: sets TensorFlow's C++ log level
from cli import common_flags
from cli import script_utils
from datasets import generate_coco_shapes

flags.DEFINE_string('coco_dir', None, 'Where to write the COCO-shaped tree.')
flags.DEFINE_integer('train_images', generate_coco_shapes.DEFAULT_SIZES['train'],
                     'Images of train2014.')
flags.DEFINE_integer('val_images', generate_coco_shapes.DEFAULT_SIZES['val'],
                     'Images of val2014.')
flags.DEFINE_integer('seed', 0, 'Seed of the images.')
FLAGS = flags.FLAGS


def run(opts):
  """Writes the splits the parsed flags `opts` ask for."""
  if not opts.coco_dir:
    raise script_utils.ScriptError(
        '--coco_dir is required: where to write the tree.')
  for split_name, count in (('train', opts.train_images),
                            ('val', opts.val_images)):
    if count < 1:
      raise script_utils.ScriptError('--%s_images must be at least 1.' %
                                     split_name)
  for split_name, count in (('train', opts.train_images),
                            ('val', opts.val_images)):
    print('Wrote %s (%d images).' % (generate_coco_shapes.write_split(
        opts.coco_dir, split_name, count, opts.seed), count))


main = common_flags.script_main('generate_coco_shapes.py', run)


if __name__ == '__main__':
  app.run(main)
