"""`datasets.dataset_utils` keeps slim's names, and the package stays split."""


import contextlib
import glob
import inspect
import os
import pathlib
import tarfile

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from datasets import dataset_utils

# slim's research/slim/datasets/dataset_utils.py: public names and their
# positional parameters (with defaults where slim has them).
SLIM_SIGNATURES = {
    'int64_feature': ['values'],
    'bytes_feature': ['values'],
    'float_feature': ['values'],
    'bytes_list_feature': ['values'],
    'float_list_feature': ['values'],
    'image_to_tfexample': ['image_data', 'image_format', 'height', 'width',
                           'class_id'],
    'download_and_uncompress_tarball': ['tarball_url', 'dataset_dir'],
    'write_label_file': ['labels_to_class_names', 'dataset_dir',
                         'filename=labels.txt'],
    'has_labels': ['dataset_dir', 'filename=labels.txt'],
    'read_label_file': ['dataset_dir', 'filename=labels.txt'],
    'open_sharded_output_tfrecords': ['exit_stack', 'base_path', 'num_shards'],
}


def _parameters(fn):
  return [name if p.default is p.empty else '%s=%s' % (name, p.default)
          for name, p in inspect.signature(fn).parameters.items()]


def test_slim_names_have_slim_signatures():
  assert dataset_utils.LABELS_FILENAME == 'labels.txt'
  for name, expected in SLIM_SIGNATURES.items():
    assert _parameters(getattr(dataset_utils, name)) == expected, name


def test_list_features_hold_every_value():
  feature = dataset_utils.bytes_list_feature([b'a', 'b'])
  assert list(feature.bytes_list.value) == [b'a', b'b']
  feature = dataset_utils.float_list_feature((0.5, 2.0))
  assert list(feature.float_list.value) == [0.5, 2.0]


def test_open_sharded_output_tfrecords_names_and_closes_shards(tmp_path):
  base = str(tmp_path / 'out')
  with contextlib.ExitStack() as stack:
    writers = dataset_utils.open_sharded_output_tfrecords(stack, base, 3)
    for index, writer in enumerate(writers):
      writer.write(b'record %d' % index)
  for index in range(3):
    path = '%s-%05d-of-00003' % (base, index)
    assert list(tf.io.tf_record_iterator(path)) == [b'record %d' % index]


def test_download_and_uncompress_tarball_unpacks_into_dataset_dir(tmp_path):
  source = tmp_path / 'src'
  source.mkdir()
  (source / 'a.txt').write_bytes(b'alpha')
  archive = tmp_path / 'pack.tar.gz'
  with tarfile.open(str(archive), 'w:gz') as tar:
    tar.add(str(source / 'a.txt'), arcname='top/a.txt')
  dataset_dir = tmp_path / 'dataset'
  names = dataset_utils.download_and_uncompress_tarball(
      pathlib.Path(str(archive)).as_uri(), str(dataset_dir))
  assert names == ['top/a.txt']
  assert (dataset_dir / 'pack.tar.gz').exists()
  assert (dataset_dir / 'top' / 'a.txt').read_bytes() == b'alpha'


def test_no_datasets_module_is_over_500_lines():
  package = os.path.dirname(dataset_utils.__file__)
  for path in glob.glob(os.path.join(package, '*.py')):
    with open(path) as f:
      assert len(f.readlines()) <= 500, path
