"""Visual Wake Words: records checked against slim's rules, bad COCO trees.

The expected records are computed here, independently of the converter,
from the fixture's COCO JSON by slim's rules: label 1 iff a box of the
foreground category covers strictly more than the threshold of the image;
those boxes (and only those) as relative xmin/xmax/ymin/ymax with their
areas; the file's bytes unchanged with their sha256; image k in shard
k % num_shards, in order.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import convert_visualwakewords as vww
from datasets import dataset_errors
from datasets import dataset_factory
from datasets import downloads
from tests import dataset_fixtures as fx

THRESHOLD = 0.005
WIDTH, HEIGHT = 100, 100      # image area 10,000: area 50 is the threshold
CATEGORIES = [{'id': 1, 'name': 'person', 'supercategory': 'person'},
              {'id': 18, 'name': 'dog', 'supercategory': 'animal'},
              {'id': 62, 'name': 'chair', 'supercategory': 'furniture'}]
# image index -> [(category id, bbox, area)]; areas around 50 = threshold.
BOXES = {
    0: [(1, [10., 20., 5., 10.], 49.9)],                  # just below: 0
    1: [(1, [10., 20., 5., 10.], 50.)],                   # at: 0
    2: [(1, [10., 20., 5., 10.2], 50.1)],                 # just above: 1
    3: [],                                                # no annotation: 0
    4: [(18, [0., 0., 90., 90.], 8100.)],                 # other class: 0
    5: [(1, [1., 2., 3., 4.], 12.), (1, [30.5, 40., 60., 50.], 2500.),
        (62, [0., 0., 50., 50.], 2500.), (1, [5., 5., 20., 30.], 600.)],
    6: [(62, [3., 4., 10., 10.], 100.), (1, [50., 50., 50., 50.], 2000.)],
}
# slim writes exactly these features, with these types.
SLIM_FEATURES = {
    'image/height': 'int64_list', 'image/width': 'int64_list',
    'image/filename': 'bytes_list', 'image/source_id': 'bytes_list',
    'image/key/sha256': 'bytes_list', 'image/encoded': 'bytes_list',
    'image/format': 'bytes_list', 'image/class/label': 'int64_list',
    'image/object/bbox/xmin': 'float_list',
    'image/object/bbox/xmax': 'float_list',
    'image/object/bbox/ymin': 'float_list',
    'image/object/bbox/ymax': 'float_list',
    'image/object/area': 'float_list',
}


def _jpeg(seed, width=WIDTH, height=HEIGHT):
  rng = np.random.RandomState(seed)
  out = io.BytesIO()
  Image.fromarray(rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
                  ).save(out, 'JPEG', quality=85)
  return out.getvalue()


def write_coco(coco_dir, split_name, boxes=None, categories=None):
  """A COCO 2014 split under `coco_dir`; returns its JSON dict."""
  boxes = BOXES if boxes is None else boxes
  image_dir = os.path.join(coco_dir, '%s2014' % split_name)
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(os.path.join(coco_dir, 'annotations'), exist_ok=True)
  images, annotations = [], []
  for index in sorted(boxes):
    image_id = 500 + 3 * index
    name = 'COCO_%s2014_%012d.jpg' % (split_name, image_id)
    with open(os.path.join(image_dir, name), 'wb') as f:
      f.write(_jpeg(index + (0 if split_name == 'train' else 100)))
    images.append({'id': image_id, 'file_name': name, 'height': HEIGHT,
                   'width': WIDTH, 'license': 3, 'coco_url': 'x'})
    for category_id, bbox, area in boxes[index]:
      x, y, w, h = bbox   # COCO's polygons: the bulk of the real file.
      annotations.append({'id': len(annotations) + 1, 'image_id': image_id,
                          'category_id': category_id, 'bbox': bbox,
                          'area': area, 'iscrowd': 0, 'segmentation': [
                              [x, y, x + w, y, x + w, y + h, x, y + h]]})
  coco = {'images': images, 'annotations': annotations,
          'categories': categories or CATEGORIES}
  with open(vww.coco_annotation_path(coco_dir, split_name), 'w') as f:
    json.dump(coco, f)
  return coco


def write_coco_tree(dataset_dir):
  coco_dir = os.path.join(dataset_dir, vww.DEFAULT_COCO_DIRNAME)
  return {s: write_coco(coco_dir, s) for s in vww.SPLITS}, coco_dir


def expected_records(coco, coco_dir, split_name, foreground_id=1):
  """slim's record of each image of `coco`, as {feature: list of values}."""
  records = []
  for image in coco['images']:
    kept = [a for a in coco['annotations']
            if a['image_id'] == image['id'] and
            a['category_id'] == foreground_id and
            a['area'] / float(image['height'] * image['width']) > THRESHOLD]
    with open(os.path.join(coco_dir, '%s2014' % split_name,
                           image['file_name']), 'rb') as f:
      data = f.read()
    w, h = float(image['width']), float(image['height'])
    records.append({
        'image/height': [image['height']], 'image/width': [image['width']],
        'image/filename': [image['file_name'].encode()],
        'image/source_id': [str(image['id']).encode()],
        'image/key/sha256': [hashlib.sha256(data).hexdigest().encode()],
        'image/encoded': [data], 'image/format': [b'jpeg'],
        'image/class/label': [1 if kept else 0],
        'image/object/bbox/xmin': [a['bbox'][0] / w for a in kept],
        'image/object/bbox/xmax': [(a['bbox'][0] + a['bbox'][2]) / w
                                   for a in kept],
        'image/object/bbox/ymin': [a['bbox'][1] / h for a in kept],
        'image/object/bbox/ymax': [(a['bbox'][1] + a['bbox'][3]) / h
                                   for a in kept],
        'image/object/area': [a['area'] for a in kept],
    })
  return records


def read_shard(path):
  """{feature: (kind, values)} of each record of a TFRecord file."""
  out = []
  for serialized in tf.io.tf_record_iterator(path):
    example = tf.train.Example.FromString(serialized)
    record = {}
    for key, feature in example.features.feature.items():
      kind = feature.WhichOneof('kind')
      record[key] = (kind, list(getattr(feature, kind).value))
    out.append(record)
  return out


def assert_records_equal(actual, expected):
  assert set(actual) == set(SLIM_FEATURES)
  for key, kind in SLIM_FEATURES.items():
    assert actual[key][0] == kind, key
    if kind == 'float_list':  # TFRecords store float32
      np.testing.assert_array_equal(
          np.float32(actual[key][1]), np.float32(expected[key]), err_msg=key)
    else:
      assert actual[key][1] == expected[key], key


def test_records_equal_slims_rules_record_by_record(tmp_path):
  out = str(tmp_path)
  cocos, coco_dir = write_coco_tree(out)
  manifests = vww.run(out, 'person', THRESHOLD, train_shards=3, val_shards=2)
  for split_name, num_shards in (('train', 3), ('val', 2)):
    expected = expected_records(cocos[split_name], coco_dir, split_name)
    assert [r['image/class/label'][0] for r in expected] == [
        0, 0, 1, 0, 0, 1, 1]
    for shard in range(num_shards):
      path = os.path.join(out, '%s.record-%05d-of-%05d' % (
          split_name, shard, num_shards))
      actual = read_shard(path)
      wanted = expected[shard::num_shards]
      assert len(actual) == len(wanted)
      for got, want in zip(actual, wanted):
        assert_records_equal(got, want)
    assert manifests[split_name]['num_examples'] == len(expected)
  with open(os.path.join(out, 'labels.txt')) as f:
    assert f.read() == '0:background\n1:person\n'


def test_intermediate_annotations_have_slims_layout(tmp_path):
  out = str(tmp_path)
  cocos, _ = write_coco_tree(out)
  vww.run(out, 'person', THRESHOLD, train_shards=1, val_shards=1)
  with open(vww.vww_annotation_path(out, 'val')) as f:
    written = json.load(f)
  assert written['images'] == cocos['val']['images']
  assert written['categories'] == {'1': CATEGORIES[0]}
  image_5 = str(cocos['val']['images'][5]['id'])
  assert written['annotations'][image_5] == {
      'label': 1, 'objects': [{'area': 2500., 'bbox': [30.5, 40., 60., 50.]},
                              {'area': 600., 'bbox': [5., 5., 20., 30.]}]}
  image_1 = str(cocos['val']['images'][1]['id'])
  assert written['annotations'][image_1] == {'label': 0, 'objects': []}


def test_annotations_are_read_without_their_segmentation(tmp_path):
  coco = write_coco(str(tmp_path), 'val')
  path = vww.coco_annotation_path(str(tmp_path), 'val')
  read = vww.load_coco(path)
  assert read['images'] == coco['images']
  assert read['categories'] == coco['categories']
  assert read['annotations'] == [
      {key: a[key] for key in ('image_id', 'category_id', 'area', 'bbox')}
      for a in coco['annotations']]
  assert all('segmentation' in a for a in coco['annotations'])


def test_another_foreground_class_and_reading_through_the_factory(tmp_path):
  out = str(tmp_path)
  write_coco_tree(out)
  vww.run(out, 'dog', 0.5, train_shards=1, val_shards=1)
  labels = [r['image/class/label'][1][0]
            for r in read_shard(os.path.join(out, 'val.record-00000-of-00001'))]
  assert labels == [0, 0, 0, 0, 1, 0, 0]   # only the 81 % dog box counts
  dataset = dataset_factory.get_dataset('visualwakewords', 'val', out)
  assert dataset.num_samples == 7 and dataset.num_classes == 2
  assert dataset.labels_to_names == {0: 'background', 1: 'dog'}
  decoded = fx.read_records(dataset, ('image', 'label', 'object/bbox'))
  assert [int(r['label']) for r in decoded] == labels
  assert decoded[4]['image'].shape == (HEIGHT, WIDTH, 3)
  np.testing.assert_allclose(decoded[4]['object/bbox'], [[0., 0., .9, .9]])
  assert decoded[0]['object/bbox'].shape == (0, 4)


def test_present_tree_downloads_nothing_and_rerun_keeps_shards(
    tmp_path, monkeypatch):
  out = str(tmp_path)
  write_coco_tree(out)

  def no_download(url, dest_path, **unused):
    raise AssertionError('downloaded %s' % url)
  monkeypatch.setattr(downloads, 'download', no_download)
  vww.run(out, 'person', THRESHOLD, train_shards=2, val_shards=2)
  shard = os.path.join(out, 'train.record-00000-of-00002')
  mtime = os.stat(shard).st_mtime_ns
  vww.run(out, 'person', THRESHOLD, train_shards=2, val_shards=2)
  assert os.stat(shard).st_mtime_ns == mtime
  # Done once, the COCO tree is no longer needed (nor fetched again).
  shutil.rmtree(os.path.join(out, vww.DEFAULT_COCO_DIRNAME))
  vww.run(out, 'person', THRESHOLD, train_shards=2, val_shards=2)
  assert os.stat(shard).st_mtime_ns == mtime


def _zip_dir(source_dir, top, archive):
  with zipfile.ZipFile(archive, 'w') as zf:
    for root, _, files in os.walk(os.path.join(source_dir, top)):
      for name in files:
        path = os.path.join(root, name)
        zf.write(path, os.path.relpath(path, source_dir))


def test_only_missing_parts_are_fetched_and_unpacked(tmp_path):
  source = str(tmp_path / 'source')
  write_coco(source, 'train')
  write_coco(source, 'val')
  archives = {}
  for part, top in (('annotations', 'annotations'), ('val', 'val2014'),
                    ('train', 'train2014')):
    archives[part] = str(tmp_path / ('%s.zip' % part))
    _zip_dir(source, top, archives[part])
  out = str(tmp_path / 'out')
  coco_dir = os.path.join(out, vww.DEFAULT_COCO_DIRNAME)
  write_coco(coco_dir, 'train')   # train2014/ and its annotations are there
  urls = {part: 'file://' + path for part, path in archives.items()}
  urls['train'] = 'file:///nonexistent/train2014.zip'  # must not be fetched
  vww.run(out, 'person', THRESHOLD, coco_urls=urls, train_shards=1,
          val_shards=1)
  assert sorted(f for f in os.listdir(coco_dir) if f.endswith('.zip')) == [
      'annotations.zip', 'val.zip']
  assert not [f for f in os.listdir(coco_dir) if f.startswith('.')]
  assert len(os.listdir(os.path.join(coco_dir, 'val2014'))) == len(BOXES)


def test_failed_download_names_the_part_and_the_url_flag(tmp_path):
  out = str(tmp_path)
  urls = {'annotations': 'file:///nonexistent/annotations.zip'}
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    vww.run(out, coco_urls=urls)
  text = str(info.value)
  assert 'annotations/instances_train2014.json' in text
  assert 'coco_annotations_url' in text
  assert 'archive_path' not in text   # not a flag of this converter
  assert not [f for f in os.listdir(os.path.join(out, 'coco_dataset'))
              if f.endswith('.zip')]


def test_truncated_zip_is_reported_by_name(tmp_path):
  out = str(tmp_path)
  coco_dir = os.path.join(out, vww.DEFAULT_COCO_DIRNAME)
  write_coco(coco_dir, 'train')
  write_coco(coco_dir, 'val')
  for name in os.listdir(os.path.join(coco_dir, 'annotations')):
    os.remove(os.path.join(coco_dir, 'annotations', name))
  with open(os.path.join(coco_dir, 'annotations_trainval2014.zip'), 'wb') as f:
    f.write(b'PK\x03\x04 cut short')
  with pytest.raises(dataset_errors.DatasetError) as info:
    vww.run(out)
  assert 'annotations_trainval2014.zip is not a readable zip' in str(
      info.value)


def test_half_unpacked_image_folder_names_missing_files(tmp_path):
  out = str(tmp_path)
  cocos, coco_dir = write_coco_tree(out)
  missing = cocos['train']['images'][4]['file_name']
  os.remove(os.path.join(coco_dir, 'train2014', missing))
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    vww.run(out)
  assert missing in str(info.value) and '1 of the 7 images' in str(info.value)
  assert not [f for f in os.listdir(out) if f.startswith('train.record')]


def test_corrupt_image_is_skipped_and_named(tmp_path):
  out = str(tmp_path)
  cocos, coco_dir = write_coco_tree(out)
  bad = cocos['val']['images'][2]['file_name']
  path = os.path.join(coco_dir, 'val2014', bad)
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])
  manifests = vww.run(out, train_shards=1, val_shards=1)
  assert manifests['val']['num_examples'] == 6
  assert manifests['val']['num_skipped'] == 1
  assert bad in manifests['val']['shards']['val.record-00000-of-00001'][
      'skipped'][0]


@pytest.mark.parametrize('content, expected', [
    ('{"images": []', 'is not valid JSON'),
    ('{"info": {}, "images": []}', 'is not a COCO instances file'),
    ('[1, 2]', 'is not a COCO instances file'),
])
def test_annotation_file_that_is_not_coco(tmp_path, content, expected):
  out = str(tmp_path)
  _, coco_dir = write_coco_tree(out)
  with open(vww.coco_annotation_path(coco_dir, 'train'), 'w') as f:
    f.write(content)
  with pytest.raises(dataset_errors.DatasetError) as info:
    vww.run(out)
  assert expected in str(info.value)
  assert 'instances_train2014.json' in str(info.value)


def test_unknown_foreground_class_lists_the_categories(tmp_path):
  out = str(tmp_path)
  write_coco_tree(out)
  with pytest.raises(dataset_errors.SettingError) as info:
    vww.run(out, 'persn')
  assert 'foreground_class_of_interest=persn' in str(info.value)
  assert 'chair, dog, person' in str(info.value)
  assert not os.path.exists(vww.vww_annotation_path(out, 'train'))


@pytest.mark.parametrize('threshold', [-0.1, 1.0, 1.5])
def test_threshold_outside_unit_interval(tmp_path, threshold):
  with pytest.raises(dataset_errors.SettingError) as info:
    vww.run(str(tmp_path), small_object_area_threshold=threshold)
  assert 'small_object_area_threshold=%s' % threshold in str(info.value)
  assert not os.listdir(str(tmp_path))


def test_interrupted_conversion_resumes_to_the_same_records(
    tmp_path, monkeypatch):
  out = str(tmp_path / 'a')
  write_coco_tree(out)
  original = vww.encode_example
  calls = []

  def interrupted(image, image_dir):
    calls.append(image.file_name)
    if len(calls) == 5:
      raise KeyboardInterrupt()
    return original(image, image_dir)
  monkeypatch.setattr(vww, 'encode_example', interrupted)
  with pytest.raises(KeyboardInterrupt):
    vww.run(out, train_shards=3, val_shards=2, num_workers=1)
  listed = sorted(os.listdir(out))
  assert not [f for f in listed if f.startswith('.')]
  with pytest.raises(dataset_errors.DatasetNotFoundError):
    dataset_factory.get_dataset('visualwakewords', 'train', out)
  monkeypatch.setattr(vww, 'encode_example', original)
  vww.run(out, train_shards=3, val_shards=2, num_workers=1)
  clean = str(tmp_path / 'b')
  write_coco_tree(clean)
  vww.run(clean, train_shards=3, val_shards=2, num_workers=1)
  for name in sorted(os.listdir(clean)):
    if '.record-' in name:
      with open(os.path.join(out, name), 'rb') as f1, \
          open(os.path.join(clean, name), 'rb') as f2:
        assert f1.read() == f2.read(), name


def _convert_command(dataset_dir, *extra):
  return [sys.executable, 'download_and_convert_data.py',
          '--logtostderr', '--dataset_name=visualwakewords',
          '--dataset_dir=%s' % dataset_dir,
          "--foreground_class_of_interest=person",
          '--small_object_area_threshold=0.005'] + list(extra)


def test_guide_command_runs_twice_from_the_repository_root(
    tmp_path, repo_root, script_env):
  out = os.path.relpath(str(tmp_path / 'person_detection_dataset'), repo_root)
  write_coco_tree(out if os.path.isabs(out) else
                  os.path.join(repo_root, out))
  for run in range(2):
    result = subprocess.run(_convert_command(out), cwd=repo_root,
                            env=script_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # 10 shards asked, at most one per image: 7.
    assert 'visualwakewords val: 7 examples, 2 classes, 7 shards' in (
        result.stdout), (run, result.stdout)


def test_script_errors_are_one_paragraph_naming_the_flag(
    tmp_path, repo_root, script_env):
  out = str(tmp_path)
  write_coco_tree(out)
  for extra, text in ((['--small_object_area_threshold=1'],
                       '--small_object_area_threshold=1.0 must be'),
                      (['--foreground_class_of_interest=persn'],
                       '--foreground_class_of_interest=persn is not')):
    result = subprocess.run(_convert_command(out) + extra, cwd=repo_root,
                            env=script_env, capture_output=True, text=True)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert text in ' '.join(result.stderr.split()), result.stderr


def test_generated_coco_shapes_tree_converts(tmp_path, repo_root, script_env):
  coco_dir = str(tmp_path / 'coco_dataset')
  result = subprocess.run(
      [sys.executable, 'generate_coco_shapes.py', '--coco_dir=' + coco_dir,
       '--train_images=30', '--val_images=12'], cwd=repo_root, env=script_env,
      capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  manifests = vww.run(str(tmp_path), train_shards=2, val_shards=10)
  assert manifests['val']['num_examples'] == 12
  coco = json.load(open(vww.coco_annotation_path(coco_dir, 'train')))
  areas = [a['area'] / (i['width'] * i['height'])
           for i in coco['images'] for a in coco['annotations']
           if a['image_id'] == i['id'] and a['category_id'] == 1]
  # Persons both well above and below the 0.5 % threshold.
  assert max(areas) > 0.05 and min(areas) < THRESHOLD
  labels = [r['image/class/label'][1][0] for shard in range(2)
            for r in read_shard(os.path.join(
                str(tmp_path), 'train.record-%05d-of-00002' % shard))]
  assert 0 < sum(labels) < len(labels) == 30


@pytest.mark.parametrize('marker', ['checkpoint', 'training_record.json'])
def test_training_directory_as_dataset_dir_is_named(tmp_path, marker):
  (tmp_path / marker).write_text('x')
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    dataset_factory.get_dataset('visualwakewords', 'val', str(tmp_path))
  text = str(info.value)
  assert 'dataset_dir=%s is a training directory' % tmp_path in text
  assert os.path.join(str(tmp_path), 'val.record-*') in text
  # Without checkpoints, the usual "create them with" advice.
  os.remove(str(tmp_path / marker))
  with pytest.raises(dataset_errors.DatasetNotFoundError) as info:
    dataset_factory.get_dataset('visualwakewords', 'val', str(tmp_path))
  assert 'training directory' not in str(info.value)
