"""Peak memory of the Visual Wake Words converter's annotation step.

Writes a synthetic `instances_train2014.json` shaped like COCO 2014's train
file (82,783 images, 604,907 annotations with segmentation polygons, about
the real file's size), then, in a fresh process, runs what the converter
does with it before writing records (read, relabel, write the intermediate
`instances_visualwakewords_train2014.json`) and prints the process's peak
resident memory.

  python benchmarks/vww_annotation_memory.py --work_dir=/tmp/vww_memory

The synthetic file is written once and reused; it takes about 330 MB.
"""

import json
import os
import random
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# COCO 2014 train: image and annotation counts, 80 categories.
NUM_IMAGES = 82783
NUM_ANNOTATIONS = 604907
NUM_CATEGORIES = 80


def _image(rng, image_id):
  width, height = rng.choice([(640, 480), (480, 640), (640, 427), (500, 375)])
  name = 'COCO_train2014_%012d.jpg' % image_id
  return {'license': rng.randint(1, 8), 'file_name': name,
          'coco_url': 'http://images.cocodataset.org/train2014/' + name,
          'height': height, 'width': width,
          'date_captured': '2013-11-14 11:18:45',
          'flickr_url': 'http://farm4.staticflickr.com/3153/%d_a1b2c3d4e5_z.jpg'
                        % (9000000000 + image_id),
          'id': image_id}


def _annotation(rng, annotation_id, image_id):
  x, y = round(rng.uniform(0, 500), 2), round(rng.uniform(0, 350), 2)
  w, h = round(rng.uniform(2, 140), 2), round(rng.uniform(2, 130), 2)
  if rng.random() < 0.01:   # Crowd regions carry run-length counts.
    segmentation = {'counts': [rng.randint(0, 600) for _ in range(300)],
                    'size': [480, 640]}
  else:                     # Polygons of 6 to 50 vertices: about COCO's size.
    segmentation = [[round(rng.uniform(0, 640), 2)
                     for _ in range(2 * rng.randint(6, 50))]]
  return {'segmentation': segmentation, 'area': round(w * h * 0.6, 5),
          'iscrowd': int(isinstance(segmentation, dict)),
          'image_id': image_id, 'bbox': [x, y, w, h],
          'category_id': rng.randint(1, NUM_CATEGORIES),
          'id': annotation_id}


def write_synthetic_coco(path, seed=0):
  """Writes the COCO-shaped file item by item (the generator stays small)."""
  rng = random.Random(seed)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write('{"info":{"description":"synthetic COCO 2014 train shape"},')
    f.write('"images":[')
    for i in range(NUM_IMAGES):
      f.write((',' if i else '') + json.dumps(_image(rng, i + 1),
                                              separators=(',', ':')))
    f.write('],"licenses":[],"annotations":[')
    for i in range(NUM_ANNOTATIONS):
      f.write((',' if i else '') + json.dumps(
          _annotation(rng, i + 1, rng.randint(1, NUM_IMAGES)),
          separators=(',', ':')))
    f.write('],"categories":[')
    f.write(','.join(json.dumps(
        {'supercategory': 'thing', 'id': c + 1,
         'name': 'person' if c == 0 else 'class%d' % (c + 1)})
        for c in range(NUM_CATEGORIES)))
    f.write(']}')
  os.replace(tmp, path)


def _peak_rss_mb():
  # ru_maxrss is in kilobytes on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.


def measure(annotation_path, work_dir):
  """Runs in the child: the converter's annotation step, then peak RSS."""
  sys.path.insert(0, REPO)
  from datasets import convert_visualwakewords as vww  # pylint: disable=g-import-not-at-top
  before = _peak_rss_mb()
  start = time.time()
  coco = vww.load_coco(annotation_path)
  foreground_id = vww.foreground_category_id(coco['categories'], 'person',
                                             annotation_path)
  images, relabelled = vww.relabel(coco, foreground_id, 0.005)
  vww._write_vww_annotations(  # pylint: disable=protected-access
      os.path.join(work_dir, 'instances_visualwakewords_train2014.json'),
      coco, foreground_id, relabelled)
  print('%d images (%d labelled person) in %.0f s; peak RSS %.0f MB, of it '
        '%.0f MB after the imports (TensorFlow)' %
        (len(images), sum(i.label for i in images), time.time() - start,
         _peak_rss_mb(), before))


flags.DEFINE_string('work_dir', None, 'Where the synthetic annotation file '
                    'is written (outside the repository; about 330 MB).')
flags.DEFINE_boolean('measure', False, 'Measure in this process instead of '
                     'a fresh one (what the fresh one runs).')


def main(unused_argv):
  work_dir = flags.FLAGS.work_dir
  path = os.path.join(work_dir, 'instances_train2014.json')
  if flags.FLAGS.measure:
    measure(path, work_dir)
    return
  os.makedirs(work_dir, exist_ok=True)
  if not os.path.exists(path):
    print('Writing %s ...' % path)
    write_synthetic_coco(path)
  print('%s: %.0f MB' % (path, os.path.getsize(path) / 1e6))
  subprocess.check_call([sys.executable, os.path.abspath(__file__),
                         '--work_dir=' + work_dir, '--measure'])


if __name__ == '__main__':
  flags.mark_flag_as_required('work_dir')
  app.run(main)
