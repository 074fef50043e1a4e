"""Generates `shapes`, the embedded default dataset (no download needed).

Each image shows one filled outline shape (the class) on a textured, cluttered
background, with JPEG and sensor-like noise. Everything a classifier could use
instead of the outline is drawn independently of the class:

* foreground and background colours are one random pair, far enough apart
  (in brightness too) to be visible; the pair is symmetric, so mean colour
  carries no class information;
* the shape's size is drawn as a target *area*, and each class is scaled to
  that area, so the fraction of foreground pixels does not depend on class;
* position, rotation, background gradient, clutter lines and noise level are
  random.

Images are a pure function of (seed, split, index): generation is
deterministic and can be split across workers in any order.
"""


import io
import math

import numpy as np
from PIL import Image
from PIL import ImageDraw

from datasets import dataset_errors
from datasets import example_codecs
from datasets import label_files
from datasets import sharded_writer

DATASET_NAME = 'shapes'
CLASS_NAMES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring')
SPLITS = ('train', 'validation')

DEFAULT_IMAGE_SIZE = 64
DEFAULT_TRAIN_PER_CLASS = 1000
DEFAULT_VALIDATION_PER_CLASS = 100
DEFAULT_SEED = 0
DEFAULT_SHARDS = {'train': 8, 'validation': 2}

# Bump when rendering changes, so old outputs are regenerated, not reused.
GENERATOR_VERSION = 1

_SUPERSAMPLE = 4            # Anti-aliased shapes: draw at 4x, average down.
_AREA_FRACTION = (0.10, 0.25)   # Shape area as a fraction of the image.
_MIN_COLOUR_DISTANCE = 130  # RGB distance between shape and background.
_MIN_LUMA_DIFFERENCE = 60   # Brightness difference, so edges show in gray.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RING_INNER = 0.55          # Inner radius of a ring, relative to outer.
_STAR_INNER = 0.45          # Inner vertex radius of a star.
_CROSS_HALF_WIDTH = 0.34    # Half width of a cross arm, relative to length.
_NOISE_STDDEV = (0.0, 5.0)
_CLUTTER_LINES = (0, 4)     # [min, max) number of background lines.
_JPEG_QUALITY = (75, 95)


def _regular_polygon(num_vertices, phase=0.):
  return [(math.cos(phase + 2 * math.pi * k / num_vertices),
           math.sin(phase + 2 * math.pi * k / num_vertices))
          for k in range(num_vertices)]


def _star():
  return [(r * math.cos(math.pi * k / 5), r * math.sin(math.pi * k / 5))
          for k, r in ((k, 1. if k % 2 == 0 else _STAR_INNER)
                       for k in range(10))]


def _cross():
  h = _CROSS_HALF_WIDTH
  return [(h, h), (h, 1), (-h, 1), (-h, h), (-1, h), (-1, -h), (-h, -h),
          (-h, -1), (h, -1), (h, -h), (1, -h), (1, h)]


# Outlines with circumradius 1: polygons as vertex lists; circle and ring as
# (outer, inner) radii of discs.
_OUTLINES = {
    'circle': (1., 0.),
    'square': _regular_polygon(4, math.pi / 4),
    'triangle': _regular_polygon(3, -math.pi / 2),
    'star': _star(),
    'cross': _cross(),
    'ring': (1., _RING_INNER),
}


def _unit_area(outline):
  """Area of an outline with circumradius 1."""
  if isinstance(outline, tuple):
    outer, inner = outline
    return math.pi * (outer ** 2 - inner ** 2)
  xs, ys = zip(*outline)
  return 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i]
                       for i in range(len(xs))))


_UNIT_AREAS = {name: _unit_area(outline) for name, outline in _OUTLINES.items()}


def _colour_pair(rng):
  """Shape and background colours that differ clearly in brightness.

  The pair is symmetric (either may be the brighter), so the expected
  colour of the shape equals that of the background.
  """
  while True:
    fg, bg = rng.randint(0, 256, size=(2, 3)).astype(np.float32)
    if (np.linalg.norm(fg - bg) >= _MIN_COLOUR_DISTANCE and
        abs(_LUMA.dot(fg - bg)) >= _MIN_LUMA_DIFFERENCE):
      return fg, bg


def _shape_mask(name, size, rng):
  """Anti-aliasing mask (float in [0, 1], size x size x 1) of one shape."""
  big = size * _SUPERSAMPLE
  area = rng.uniform(*_AREA_FRACTION) * size * size
  radius = math.sqrt(area / _UNIT_AREAS[name]) * _SUPERSAMPLE
  # The whole outline stays inside the image (clipped shapes look alike).
  cx, cy = rng.uniform(radius, big - radius, size=2)
  angle = rng.uniform(0, 2 * math.pi)
  mask = Image.new('L', (big, big), 0)
  draw = ImageDraw.Draw(mask)
  outline = _OUTLINES[name]
  if isinstance(outline, tuple):
    outer, inner = outline
    for r, value in ((outer * radius, 255), (inner * radius, 0)):
      if r > 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=value)
  else:
    cos, sin = math.cos(angle), math.sin(angle)
    draw.polygon([(cx + radius * (x * cos - y * sin),
                   cy + radius * (x * sin + y * cos)) for x, y in outline],
                 fill=255)
  mask = mask.resize((size, size), Image.BOX)  # Exact 4x4 block average.
  return np.asarray(mask, np.float32)[:, :, None] / 255.


def _background(bg, size, rng):
  """Background colour with a random gradient and clutter lines."""
  # A zero-mean linear gradient keeps the mean colour at `bg`.
  direction = rng.uniform(0, 2 * math.pi)
  coords = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
  ramp = (math.cos(direction) * coords[None, :] +
          math.sin(direction) * coords[:, None])
  image = bg + ramp[:, :, None] * rng.uniform(-50, 50, size=3)
  canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(canvas)
  for _ in range(rng.randint(*_CLUTTER_LINES)):
    points = [tuple(p) for p in rng.uniform(0, size, size=(2, 2))]
    colour = tuple(int(c) for c in rng.randint(0, 256, size=3))
    draw.line(points, fill=colour, width=1)
  return np.asarray(canvas, np.float32)


def render(label, size, rng):
  """Renders one image of class `label`.

  Args:
    label: index into CLASS_NAMES.
    size: output height and width in pixels.
    rng: a numpy RandomState (the image is a pure function of its state).

  Returns:
    uint8 array [size, size, 3].
  """
  fg, bg = _colour_pair(rng)
  background = _background(bg, size, rng)
  # The shape gets a faint gradient of its own, so edges are not the only
  # colour change in the image.
  shading = rng.uniform(-20, 20, size=3) * np.linspace(
      -0.5, 0.5, size, dtype=np.float32)[:, None, None]
  alpha = _shape_mask(CLASS_NAMES[label], size, rng)
  image = background * (1 - alpha) + (fg + shading) * alpha
  image += rng.normal(0, rng.uniform(*_NOISE_STDDEV), size=image.shape)
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def image_rng(seed, split_name, index):
  """The RandomState that determines image `index` of a split."""
  return np.random.RandomState([seed, SPLITS.index(split_name), index])


def encode_jpeg(image, rng):
  out = io.BytesIO()
  Image.fromarray(image).save(out, 'JPEG',
                              quality=int(rng.randint(*_JPEG_QUALITY)))
  return out.getvalue()


def make_example(split_name, index, label, size, seed):
  """Renders image `index` of a split and returns a serialized Example."""
  rng = image_rng(seed, split_name, index)
  data = encode_jpeg(render(label, size, rng), rng)
  return example_codecs.image_to_tfexample(
      data, b'jpeg', size, size, label).SerializeToString(deterministic=True)


def split_items(num_per_class):
  """(index, label) pairs of a split; classes interleave, so shards mix."""
  return [(i, i % len(CLASS_NAMES))
          for i in range(num_per_class * len(CLASS_NAMES))]


def run(dataset_dir, image_size=DEFAULT_IMAGE_SIZE,
        train_per_class=DEFAULT_TRAIN_PER_CLASS,
        validation_per_class=DEFAULT_VALIDATION_PER_CLASS, seed=DEFAULT_SEED,
        train_shards=None, validation_shards=None, num_workers=None):
  """Generates the shapes dataset as sharded JPEG TFRecords + labels.txt.

  Args:
    dataset_dir: output directory.
    image_size: image height and width (>= 16).
    train_per_class: training images per class (>= 1).
    validation_per_class: validation images per class (>= 1).
    seed: the dataset is a pure function of this seed and the sizes.
    train_shards: number of training shards (default 8).
    validation_shards: number of validation shards (default 2).
    num_workers: parallel shard writers.

  Returns:
    dict split -> manifest.

  Raises:
    ValueError: a size or count is out of range.
  """
  if image_size < 16:
    raise dataset_errors.SettingError(
        '%s must be >= 16 pixels, got %d.' %
        (dataset_errors.ref('image_size'), image_size))
  for name, value in (('train_per_class', train_per_class),
                      ('validation_per_class', validation_per_class)):
    if value < 1:
      raise dataset_errors.SettingError(
          '%s must be >= 1, got %d.' % (dataset_errors.ref(name), value))
  shards = {'train': train_shards or DEFAULT_SHARDS['train'],
            'validation': validation_shards or DEFAULT_SHARDS['validation']}
  per_class = {'train': train_per_class, 'validation': validation_per_class}
  manifests = {}
  for split_name in SPLITS:
    def example_fn(item, split_name=split_name):
      index, label = item
      return make_example(split_name, index, label, image_size, seed)
    manifests[split_name] = sharded_writer.write_split(
        dataset_dir, DATASET_NAME, split_name, split_items(
            per_class[split_name]), example_fn, shards[split_name],
        len(CLASS_NAMES), num_workers=num_workers,
        plan_info={'image_size': image_size, 'seed': seed,
                   'version': GENERATOR_VERSION})
  label_files.write_label_file(dict(enumerate(CLASS_NAMES)), dataset_dir)
  return manifests
