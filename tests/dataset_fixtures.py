"""Builders of small datasets in the real on-disk formats, for tests.

Every fixture is made by the test itself in a temporary directory: nothing is
downloaded.
"""


import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np
from PIL import Image

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf


def add_bytes(tar, name, data):
  """Adds a regular file member with `data` to an open tarfile."""
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def random_images(rng, count, height, width, channels=3):
  return rng.randint(0, 256, size=(count, height, width, channels)).astype(
      np.uint8)


def jpeg_bytes(image, mode='RGB', quality=90):
  out = io.BytesIO()
  Image.fromarray(image).convert(mode).save(out, 'JPEG', quality=quality)
  return out.getvalue()


def png_bytes(image):
  out = io.BytesIO()
  Image.fromarray(image).save(out, 'PNG')
  return out.getvalue()


def write_cifar10_binary(path, splits):
  """Writes a cifar-10-binary.tar.gz.

  Args:
    path: archive path.
    splits: {'train': (images [N,32,32,3], labels), 'test': (...)}; train is
      spread over the five data_batch files.
  """
  def records(images, labels):
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels.astype(np.uint8)[:, None], planes],
                          axis=1).tobytes()
  with tarfile.open(path, 'w:gz') as tar:
    images, labels = splits['train']
    parts = np.array_split(np.arange(len(labels)), 5)
    for i, part in enumerate(parts):
      add_bytes(tar, 'cifar-10-batches-bin/data_batch_%d.bin' % (i + 1),
                records(images[part], labels[part]))
    images, labels = splits['test']
    add_bytes(tar, 'cifar-10-batches-bin/test_batch.bin',
              records(images, labels))
    add_bytes(tar, 'cifar-10-batches-bin/batches.meta.txt',
              b'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\n'
              b'ship\ntruck\n')


def cifar10_python_batch(images, labels):
  """A CIFAR-10 python batch pickle (protocol 2, bytes keys)."""
  planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
  return pickle.dumps({b'batch_label': b'batch', b'data': planes,
                       b'labels': [int(l) for l in labels],
                       b'filenames': [b'x.png'] * len(labels)}, protocol=2)


def write_cifar10_python(path, splits, replace=None):
  """Writes a cifar-10-python.tar.gz; `replace` maps member -> raw bytes."""
  replace = replace or {}
  members = {}
  images, labels = splits['train']
  for i, part in enumerate(np.array_split(np.arange(len(labels)), 5)):
    members['cifar-10-batches-py/data_batch_%d' % (i + 1)] = (
        cifar10_python_batch(images[part], labels[part]))
  members['cifar-10-batches-py/test_batch'] = cifar10_python_batch(
      *splits['test'])
  members.update(replace)
  with tarfile.open(path, 'w:gz') as tar:
    for name, data in sorted(members.items()):
      add_bytes(tar, name, data)


def write_mnist(directory, splits):
  """Writes the four MNIST idx .gz files of {split: (images, labels)}."""
  names = {
      'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
      'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}
  os.makedirs(directory, exist_ok=True)
  for split, (images, labels) in splits.items():
    image_file, label_file = names[split]
    with gzip.open(os.path.join(directory, image_file), 'wb') as f:
      f.write(struct.pack('>IIII', 2051, len(images), 28, 28))
      f.write(images.astype(np.uint8).tobytes())
    with gzip.open(os.path.join(directory, label_file), 'wb') as f:
      f.write(struct.pack('>II', 2049, len(labels)))
      f.write(labels.astype(np.uint8).tobytes())


def write_image_tree(root, classes, rng, per_class=4):
  """Writes root/<class>/img_<i>.jpg with varying sizes.

  Returns:
    {relative path: (class index, height, width)}.
  """
  info = {}
  for label, name in enumerate(classes):
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(per_class):
      height, width = 20 + 3 * i, 24 + 2 * label
      image = random_images(rng, 1, height, width)[0]
      relative = '%s/img_%d.jpg' % (name, i)
      with open(os.path.join(root, relative), 'wb') as f:
        f.write(jpeg_bytes(image))
      info[relative] = (label, height, width)
  return info


def read_records(dataset, items=('image', 'label')):
  """Decodes every record of a slim dataset with its own decoder.

  Reads the files in sorted order with a plain record iterator (independent
  of the input pipeline under test).

  Returns:
    list of dicts item -> numpy value.
  """
  files = sorted(tf.io.gfile.glob(dataset.data_sources))
  with tf.Graph().as_default():
    serialized = tf.placeholder(tf.string, [])
    tensors = dataset.decoder.decode(serialized, list(items))
    results = []
    with tf.Session() as sess:
      for path in files:
        for record in tf.io.tf_record_iterator(path):
          values = sess.run(tensors, {serialized: record})
          results.append(dict(zip(items, values)))
  return results
