"""Builds the Visual Wake Words TFRecords from COCO 2014, as slim does.

Input, under `<dataset_dir>/<coco_dirname>` (fetched only where missing):

  annotations/instances_train2014.json, annotations/instances_val2014.json
  train2014/*.jpg, val2014/*.jpg

Output, in `dataset_dir`:

  labels.txt                                  0:background, 1:<class>
  instances_visualwakewords_{train,val}2014.json   the relabelled annotations
  train.record-NNNNN-of-00100, val.record-NNNNN-of-00010

Labelling rule (slim's): an image is class 1 when at least one annotation of
the foreground category has `area / (height * width)` strictly greater than
the threshold; those annotations are kept as the image's objects. Other
categories, smaller boxes and images without annotations are class 0 with
no objects. Image k of the annotation file goes to shard k % num_shards, and
each record carries slim's features: the JPEG bytes unchanged, their sha256,
the label, the kept boxes (relative xmin/xmax/ymin/ymax) and areas, the COCO
id as source id, file name, format `jpeg`, height and width.
"""

import collections
import hashlib
import io
import json
import os
import shutil
import zipfile

from absl import logging
from PIL import Image

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from core import atomic_files
from datasets import dataset_errors
from datasets import downloads
from datasets import example_codecs
from datasets import label_files
from datasets import sharded_writer

DATASET_NAME = 'visualwakewords'
SPLITS = ('train', 'val')
DEFAULT_SHARDS = {'train': 100, 'val': 10}
DEFAULT_COCO_DIRNAME = 'coco_dataset'
DEFAULT_URLS = {
    'train': 'http://images.cocodataset.org/zips/train2014.zip',
    'val': 'http://images.cocodataset.org/zips/val2014.zip',
    'annotations':
        'http://images.cocodataset.org/annotations/'
        'annotations_trainval2014.zip',
}
# Which parameter sets each URL, for messages.
_URL_PARAMS = {'train': 'coco_train_url', 'val': 'coco_validation_url',
               'annotations': 'coco_annotations_url'}
_COCO_KEYS = ('images', 'annotations', 'categories')
# What relabelling reads of a COCO annotation.
_ANNOTATION_FIELDS = ('image_id', 'category_id', 'area', 'bbox')

# One image of a split: everything its record needs besides the file.
CocoImage = collections.namedtuple(
    'CocoImage', ['file_name', 'image_id', 'height', 'width', 'label',
                  'objects'])  # objects: ((area, (x, y, w, h)), ...)


def coco_annotation_path(coco_dir, split_name):
  return os.path.join(coco_dir, 'annotations',
                      'instances_%s2014.json' % split_name)


def coco_image_dir(coco_dir, split_name):
  return os.path.join(coco_dir, '%s2014' % split_name)


def vww_annotation_path(dataset_dir, split_name):
  return os.path.join(dataset_dir,
                      'instances_visualwakewords_%s2014.json' % split_name)


def shard_name(unused_dataset_name, split_name, index, num_shards):
  """slim's Visual Wake Words shard names, e.g. `val.record-00000-of-00010`."""
  return '%s.record-%05d-of-%05d' % (split_name, index, num_shards)


def check_threshold(small_object_area_threshold):
  value = small_object_area_threshold
  if not isinstance(value, (int, float)) or not 0 <= value < 1:
    raise dataset_errors.SettingError(
        '%s must be a fraction of the image area in [0, 1) (the person '
        'detector uses 0.005); boxes covering more than it label an image '
        'as the foreground class.' %
        dataset_errors.ref('small_object_area_threshold', value))


def _missing_parts(coco_dir):
  """The archives ('annotations', 'train', 'val') whose content is absent."""
  missing = []
  if not all(os.path.isfile(coco_annotation_path(coco_dir, s))
             for s in SPLITS):
    missing.append('annotations')
  missing.extend(s for s in SPLITS
                 if not os.path.isdir(coco_image_dir(coco_dir, s)))
  return missing


def _move_into_place(source, target):
  """Moves extracted files into `target`, keeping what is already there.

  A top-level folder that does not exist yet is renamed whole (atomic), so
  an interrupted move never leaves a partial `train2014/` behind that a
  re-run would take for complete.
  """
  for name in sorted(os.listdir(source)):
    src, dst = os.path.join(source, name), os.path.join(target, name)
    if not os.path.exists(dst):
      os.replace(src, dst)
    elif os.path.isdir(src) and os.path.isdir(dst):
      _move_into_place(src, dst)


def _extract_zip(archive, coco_dir):
  """Unpacks a COCO zip beside it, through a hidden scratch folder."""
  scratch = os.path.join(coco_dir, '.unpacking-' + os.path.basename(archive))
  shutil.rmtree(scratch, ignore_errors=True)
  logging.info('Unpacking %s ...', archive)
  try:
    with zipfile.ZipFile(archive) as zf:
      zf.extractall(scratch)  # zipfile drops absolute paths and `..`.
  except (zipfile.BadZipFile, EOFError) as e:
    shutil.rmtree(scratch, ignore_errors=True)
    raise dataset_errors.DatasetError(
        '%s is not a readable zip archive (%s); it is probably an '
        'interrupted download. Delete it and run the command again.' %
        (archive, e))
  _move_into_place(scratch, coco_dir)
  shutil.rmtree(scratch, ignore_errors=True)


def ensure_coco(coco_dir, urls=None):
  """Fetches and unpacks only the COCO parts missing under `coco_dir`.

  Args:
    coco_dir: the COCO 2014 tree (see the module docstring).
    urls: {'train'|'val'|'annotations': url}; default DEFAULT_URLS.

  Returns:
    The parts that were fetched (empty when the tree was complete).
  """
  urls = dict(DEFAULT_URLS, **(urls or {}))
  missing = _missing_parts(coco_dir)
  for part in missing:
    url = urls[part]
    archive = os.path.join(coco_dir, url.rstrip('/').split('/')[-1])
    if not os.path.exists(archive):
      try:
        downloads.download(url, archive)
      except (IOError, OSError) as e:
        raise dataset_errors.DatasetNotFoundError(
            'The COCO 2014 tree in %s lacks its %s (%s), and downloading %s '
            'to %s failed (%s).%s Or put the files there yourself '
            '(unpacked, or the zip itself), or pass another address with %s.'
            % (coco_dir, part, _expected_text(part), url, archive, e,
               downloads.resume_note(archive),
               dataset_errors.ref(_URL_PARAMS[part])))
    _extract_zip(archive, coco_dir)
  return missing


def _expected_text(part):
  if part == 'annotations':
    return 'annotations/instances_train2014.json and instances_val2014.json'
  return '%s2014/ with the JPEG files' % part


def _trim_annotation(obj):
  """Keeps of an annotation only what the conversion reads.

  Called by the JSON parser on every object as soon as it is built, so the
  segmentation polygons (most of COCO's file) are freed one annotation at a
  time instead of all being held until the end.
  """
  if 'category_id' in obj and 'image_id' in obj:
    return {key: obj[key] for key in _ANNOTATION_FIELDS if key in obj}
  return obj


def load_coco(path):
  """Reads a COCO instances file; refuses anything else by name.

  Annotations keep only `_ANNOTATION_FIELDS`; images and categories are
  read whole (the intermediate file repeats them).
  """
  try:
    with open(path, 'rb') as f:
      data = json.loads(f.read().decode('utf-8'),
                        object_hook=_trim_annotation)
  except (IOError, OSError) as e:
    raise dataset_errors.DatasetNotFoundError(
        'Cannot read the COCO annotation file %s (%s).' % (path, e))
  except ValueError as e:
    raise dataset_errors.DatasetError(
        '%s is not valid JSON (%s); it is probably cut short. Delete it (and '
        'annotations_trainval2014.zip beside it) and run the command again.'
        % (path, e))
  if not isinstance(data, dict) or not all(
      isinstance(data.get(key), list) for key in _COCO_KEYS):
    raise dataset_errors.DatasetError(
        '%s is not a COCO instances file: it needs the lists %s (COCO 2014 '
        'instances_<split>2014.json from annotations_trainval2014.zip).' %
        (path, ', '.join(_COCO_KEYS)))
  return data


def foreground_category_id(categories, foreground_class_of_interest, path):
  """The id of the category named `foreground_class_of_interest`.

  slim falls back to id 1 for an unknown name; here that is an error that
  lists the names, since a typo would silently train another detector.
  """
  ids = [c.get('id') for c in categories
         if c.get('name') == foreground_class_of_interest]
  if not ids:
    names = sorted(str(c.get('name')) for c in categories)
    raise dataset_errors.SettingError(
        '%s is not a category of %s; use one of: %s.' %
        (dataset_errors.ref('foreground_class_of_interest',
                            foreground_class_of_interest), path,
         ', '.join(names)))
  return ids[-1]  # slim keeps the last match.


def relabel(coco, foreground_id, small_object_area_threshold):
  """Applies slim's rule to every image, in the annotation file's order.

  Returns:
    (list of CocoImage, {image_id: {'objects': [...], 'label': 0|1}}),
    the second in the layout of slim's instances_visualwakewords file.
  """
  by_image = collections.defaultdict(list)
  for annotation in coco['annotations']:
    by_image[annotation['image_id']].append(annotation)
  images, relabelled = [], {}
  for image in coco['images']:
    image_area = image['height'] * image['width']
    objects = [{'area': a['area'], 'bbox': a['bbox']}
               for a in by_image.get(image['id'], ())
               if int(a['category_id']) == foreground_id and
               a['area'] / image_area > small_object_area_threshold]
    label = 1 if objects else 0
    relabelled[image['id']] = {'objects': objects, 'label': label}
    images.append(CocoImage(
        image['file_name'], image['id'], image['height'], image['width'],
        label, tuple((o['area'], tuple(o['bbox'])) for o in objects)))
  return images, relabelled


def check_images_present(images, image_dir):
  """Stops when files the annotations list are not in `image_dir`."""
  missing = [i.file_name for i in images
             if not os.path.isfile(os.path.join(image_dir, i.file_name))]
  if missing:
    raise dataset_errors.DatasetNotFoundError(
        '%d of the %d images the annotations list are missing from %s (e.g. '
        '%s): the COCO tree is incomplete, e.g. an interrupted unpacking. '
        'Delete that folder and run the command again to unpack (or '
        'download) it anew.' % (len(missing), len(images), image_dir,
                                ', '.join(missing[:3])))


def encode_example(image, image_dir):
  """The serialized record of one CocoImage (slim's features)."""
  path = os.path.join(image_dir, image.file_name)
  try:
    with open(path, 'rb') as f:
      data = f.read()
    decoded = Image.open(io.BytesIO(data))
    decoded.load()  # Decodes it all, so a truncated file fails here.
    if decoded.format != 'JPEG':
      raise ValueError('a %s file, not a JPEG' % decoded.format)
  except Exception as e:  # pylint: disable=broad-except  (PIL's many types)
    raise dataset_errors.UnreadableImageError('%s: %s' % (path, e))
  width, height = float(image.width), float(image.height)
  boxes = [box for _, box in image.objects]
  feature = {
      'image/height': example_codecs.int64_feature(image.height),
      'image/width': example_codecs.int64_feature(image.width),
      'image/filename': example_codecs.bytes_feature(image.file_name),
      'image/source_id': example_codecs.bytes_feature(str(image.image_id)),
      'image/key/sha256': example_codecs.bytes_feature(
          hashlib.sha256(data).hexdigest()),
      'image/encoded': example_codecs.bytes_feature(data),
      'image/format': example_codecs.bytes_feature('jpeg'),
      'image/class/label': example_codecs.int64_feature(image.label),
      'image/object/bbox/xmin': example_codecs.float_feature(
          [x / width for x, _, _, _ in boxes]),
      'image/object/bbox/xmax': example_codecs.float_feature(
          [(x + w) / width for x, _, w, _ in boxes]),
      'image/object/bbox/ymin': example_codecs.float_feature(
          [y / height for _, y, _, _ in boxes]),
      'image/object/bbox/ymax': example_codecs.float_feature(
          [(y + h) / height for _, y, _, h in boxes]),
      'image/object/area': example_codecs.float_feature(
          [area for area, _ in image.objects]),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString(deterministic=True)


def _write_vww_annotations(path, coco, foreground_id, relabelled):
  payload = {
      'images': coco['images'],
      'annotations': relabelled,
      'categories': {c['id']: c for c in coco['categories']
                     if c['id'] == foreground_id},
  }
  with atomic_files.atomic_write(path) as f:
    f.write(json.dumps(payload).encode('utf-8'))


def _plan_info(foreground_class_of_interest, small_object_area_threshold,
               num_shards):
  return {'foreground_class_of_interest': foreground_class_of_interest,
          'small_object_area_threshold': small_object_area_threshold,
          'num_shards': num_shards}


def split_is_done(dataset_dir, split_name, plan_info):
  """Whether a finished conversion with these settings is on disk."""
  return (sharded_writer.split_is_complete(dataset_dir, DATASET_NAME,
                                           split_name, plan_info) and
          os.path.exists(vww_annotation_path(dataset_dir, split_name)))


def convert_split(dataset_dir, coco_dir, split_name,
                  foreground_class_of_interest, small_object_area_threshold,
                  num_shards, num_workers=None):
  """Relabels one COCO split and writes its records; returns the manifest."""
  annotation_file = coco_annotation_path(coco_dir, split_name)
  plan_info = _plan_info(foreground_class_of_interest,
                         small_object_area_threshold, num_shards)
  if split_is_done(dataset_dir, split_name, plan_info):
    logging.info('%s %s is already converted; nothing to do.', DATASET_NAME,
                 split_name)
    return sharded_writer.read_manifest(dataset_dir, DATASET_NAME,
                                        split_name)
  logging.info('Reading %s ...', annotation_file)
  coco = load_coco(annotation_file)
  foreground_id = foreground_category_id(
      coco['categories'], foreground_class_of_interest, annotation_file)
  images, relabelled = relabel(coco, foreground_id,
                               small_object_area_threshold)
  image_dir = coco_image_dir(coco_dir, split_name)
  check_images_present(images, image_dir)
  os.makedirs(dataset_dir, exist_ok=True)
  with dataset_errors.disk_full_explained(dataset_dir):
    _write_vww_annotations(vww_annotation_path(dataset_dir, split_name),
                           coco, foreground_id, relabelled)
  del coco, relabelled  # The records need only `images`.
  logging.info('%s %s: %d images, %d labelled %s.', DATASET_NAME, split_name,
               len(images), sum(i.label for i in images),
               foreground_class_of_interest)
  return sharded_writer.write_split(
      dataset_dir, DATASET_NAME, split_name, images,
      lambda image: encode_example(image, image_dir), num_shards, 2,
      num_workers=num_workers, plan_info=plan_info, shard_name_fn=shard_name,
      round_robin=True)


def run(dataset_dir, foreground_class_of_interest='person',
        small_object_area_threshold=0.005, coco_dirname=DEFAULT_COCO_DIRNAME,
        coco_urls=None, num_workers=None, train_shards=None, val_shards=None):
  """Creates the Visual Wake Words dataset in `dataset_dir`.

  Args:
    dataset_dir: output directory; the COCO tree is `dataset_dir/coco_dirname`.
    foreground_class_of_interest: the COCO category name of label 1.
    small_object_area_threshold: in [0, 1); see the module docstring.
    coco_dirname: folder of the COCO tree inside `dataset_dir`.
    coco_urls: {'train'|'val'|'annotations': url} overriding DEFAULT_URLS.
    num_workers: parallel shard writers.
    train_shards: default 100.
    val_shards: default 10.

  Returns:
    dict split -> manifest.
  """
  check_threshold(small_object_area_threshold)
  if not foreground_class_of_interest:
    raise dataset_errors.SettingError(
        '%s is empty; give a COCO category name such as person.' %
        dataset_errors.ref('foreground_class_of_interest'))
  coco_dir = os.path.join(dataset_dir, coco_dirname)
  shards = {'train': train_shards or DEFAULT_SHARDS['train'],
            'val': val_shards or DEFAULT_SHARDS['val']}
  # A finished conversion needs no COCO tree: it may have been deleted.
  if not all(split_is_done(dataset_dir, split_name, _plan_info(
      foreground_class_of_interest, small_object_area_threshold,
      shards[split_name])) for split_name in SPLITS):
    os.makedirs(coco_dir, exist_ok=True)
    ensure_coco(coco_dir, coco_urls)
  manifests = {}
  for split_name in SPLITS:
    manifests[split_name] = convert_split(
        dataset_dir, coco_dir, split_name, foreground_class_of_interest,
        small_object_area_threshold, shards[split_name], num_workers)
  label_files.write_label_file(
      {0: 'background', 1: foreground_class_of_interest}, dataset_dir)
  return manifests
