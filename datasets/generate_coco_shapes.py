r"""Writes a small COCO-2014-shaped tree of synthetic photos, offline.

For trying the Visual Wake Words pipeline without the 19 GB COCO download:

  python generate_coco_shapes.py --coco_dir=/tmp/vww/coco_dataset
  python download_and_convert_data.py --dataset_name=visualwakewords \
      --dataset_dir=/tmp/vww --foreground_class_of_interest=person \
      --small_object_area_threshold=0.005

The tree has COCO's layout and JSON fields (annotations/instances_train2014
.json and instances_val2014.json with `images`, `annotations`, `categories`;
train2014/ and val2014/ with COCO_<split>2014_<id>.jpg). Each image is a
`shapes` picture (a circle, square, ... with clutter, annotated with its
category); about half also show a "person", a stick figure (head, body, legs)
whose box and pixel area are annotated under category 1 `person`; some
background images hold a person too small to count (below 0.5 % of the image).
"""

import json
import os

import numpy as np
from PIL import Image
from PIL import ImageDraw

from core import atomic_files
from datasets import generate_shapes

PERSON_ID = 1
# The shapes' categories follow the person, as COCO's do.
CATEGORIES = [{'id': PERSON_ID, 'name': 'person', 'supercategory': 'person'}] + [
    {'id': i + 2, 'name': name, 'supercategory': 'shape'}
    for i, name in enumerate(generate_shapes.CLASS_NAMES)]
DEFAULT_SIZES = {'train': 600, 'val': 200}
DEFAULT_WIDTH, DEFAULT_HEIGHT = 128, 96
_PERSON_SHARE = 0.5
_TINY_PERSON_SHARE = 0.2   # of the other images: a person below threshold


def _person_mask(width, height, box):
  """Mask (bool [height, width]) of a stick figure filling `box`."""
  x, y, w, h = box
  mask = Image.new('L', (width, height), 0)
  draw = ImageDraw.Draw(mask)
  head = 0.22 * h
  cx = x + w / 2.
  draw.ellipse([cx - head / 2, y, cx + head / 2, y + head], fill=255)
  draw.rectangle([x + 0.2 * w, y + head, x + 0.8 * w - 1, y + 0.65 * h],
                 fill=255)
  draw.rectangle([x + 0.25 * w, y + 0.65 * h, x + 0.45 * w, y + h - 1],
                 fill=255)
  draw.rectangle([x + 0.55 * w, y + 0.65 * h, x + 0.75 * w, y + h - 1],
                 fill=255)
  return np.asarray(mask) > 127


def _person_box(rng, width, height, tiny):
  """(x, y, w, h) in whole pixels, inside the image."""
  if tiny:
    h = rng.randint(3, 6)
    w = max(2, h // 2)
  else:
    h = rng.randint(int(0.45 * height), int(0.9 * height))
    w = max(4, int(h * rng.uniform(0.35, 0.5)))
  return (int(rng.randint(0, width - w + 1)),
          int(rng.randint(0, height - h + 1)), int(w), int(h))


def render_image(rng, width, height, with_person, tiny_person):
  """(uint8 RGB image, list of (category id, bbox, area)) of one photo."""
  label = int(rng.randint(len(generate_shapes.CLASS_NAMES)))
  square = generate_shapes.render(label, max(width, height), rng)
  image = np.array(Image.fromarray(square).resize((width, height),
                                                  Image.BILINEAR))
  # The resized shape's box is not tracked; a whole-image box with the
  # shapes' least area stands for it (only its category and area matter).
  objects = [(label + 2, [0., 0., float(width), float(height)],
              0.1 * width * height)]
  if with_person or tiny_person:
    box = _person_box(rng, width, height, tiny=not with_person)
    mask = _person_mask(width, height, box)
    colour = rng.randint(0, 256, size=3)
    image[mask] = (0.2 * image[mask] + 0.8 * colour).astype(np.uint8)
    objects.append((PERSON_ID, [float(v) for v in box], float(mask.sum())))
  return image, objects


def write_split(coco_dir, split_name, num_images, seed=0,
                width=DEFAULT_WIDTH, height=DEFAULT_HEIGHT):
  """Writes `<split>2014/*.jpg` and `annotations/instances_<split>2014.json`."""
  image_dir = os.path.join(coco_dir, '%s2014' % split_name)
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(os.path.join(coco_dir, 'annotations'), exist_ok=True)
  rng = np.random.RandomState([seed, 0 if split_name == 'train' else 1])
  images, annotations = [], []
  for index in range(num_images):
    image_id = 1000 * (index + 1) + (7 if split_name == 'train' else 3)
    file_name = 'COCO_%s2014_%012d.jpg' % (split_name, image_id)
    with_person = rng.uniform() < _PERSON_SHARE
    tiny = not with_person and rng.uniform() < _TINY_PERSON_SHARE
    pixels, objects = render_image(rng, width, height, with_person, tiny)
    with atomic_files.atomic_write(os.path.join(image_dir, file_name)) as f:
      Image.fromarray(pixels).save(f, 'JPEG', quality=90)
    images.append({'id': image_id, 'file_name': file_name, 'width': width,
                   'height': height, 'license': 1, 'coco_url': '',
                   'flickr_url': '', 'date_captured': '2013-11-14 16:28:13'})
    for category_id, bbox, area in objects:
      annotations.append({'id': len(annotations) + 1, 'image_id': image_id,
                          'category_id': category_id, 'bbox': bbox,
                          'area': area, 'iscrowd': 0, 'segmentation': []})
  payload = {'info': {'description': 'synthetic COCO-shaped set'},
             'licenses': [], 'images': images, 'annotations': annotations,
             'categories': CATEGORIES}
  path = os.path.join(coco_dir, 'annotations',
                      'instances_%s2014.json' % split_name)
  with atomic_files.atomic_write(path) as f:
    f.write(json.dumps(payload).encode('utf-8'))
  return path
