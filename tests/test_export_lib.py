"""Helpers (no tests) shared by test_export.py, test_export_v3.py and
test_classify.py.

They make a tiny learnable image-folder dataset and train small checkpoints
on it, once per test session (results are cached per directory), so the
export and classify tests check models whose predictions mean something.
"""


import collections
import os

from absl import flags
from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import numpy as np
from PIL import Image
import tensorflow.compat.v1 as tf
import tf_slim as slim

from datasets import convert_image_folder
from nets import nets_factory
from preprocessing import preprocessing_factory
from training import quantization

# Four classes told apart by the colour of a square on a noisy gray
# background, at random positions and sizes: a small MobileNet learns them in
# a hundred steps, so accuracy differences between model kinds are real.
CLASS_COLOURS = (('blue', (40, 60, 220)), ('green', (40, 200, 60)),
                 ('red', (220, 40, 40)), ('yellow', (230, 210, 40)))
FILE_SIZE = 40          # Image files are FILE_SIZE x FILE_SIZE.
IMAGE_SIZE = 32         # Network input size.
MODEL_NAME = 'mobilenet_v1_025'
NUM_CLASSES = len(CLASS_COLOURS)
EMA_DECAY = 0.9

_CACHE = {}


def _draw(label, rng, size=FILE_SIZE):
  background = rng.randint(60, 190)
  image = np.full([size, size, 3], background, np.float32)
  side = rng.randint(size // 4, size // 2)
  top, left = rng.randint(0, size - side, size=2)
  image[top:top + side, left:left + side] = CLASS_COLOURS[label][1]
  image += rng.normal(0, 12, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def make_image_folder_dataset(root, per_class=100, validation_ratio=0.5,
                              seed=0):
  """Writes class folders of PNG/JPEG files and converts them to TFRecords.

  Args:
    root: directory to create `images/` (the sources) and `data/` in.
    per_class: image files per class.
    validation_ratio: fraction of each class in the validation split.
    seed: drawing seed.

  Returns:
    The dataset directory (`image_folder` dataset, with labels.txt).
  """
  key = ('dataset', root)
  if key in _CACHE:
    return _CACHE[key]
  rng = np.random.RandomState(seed)
  source = os.path.join(root, 'images')
  for label, (name, _) in enumerate(CLASS_COLOURS):
    os.makedirs(os.path.join(source, name))
    for i in range(per_class):
      image = Image.fromarray(_draw(label, rng))
      extension = 'png' if i % 2 else 'jpg'
      image.save(os.path.join(source, name, '%03d.%s' % (i, extension)))
  dataset_dir = os.path.join(root, 'data')
  convert_image_folder.run(dataset_dir, source,
                           validation_ratio=validation_ratio, seed=seed,
                           num_workers=1)
  _CACHE[key] = dataset_dir
  return dataset_dir


def read_split(dataset_dir, split_name):
  """Returns [(encoded image bytes, label)] of a split, in file order."""
  from datasets import dataset_factory  # pylint: disable=g-import-not-at-top
  dataset = dataset_factory.get_dataset('image_folder', split_name,
                                        dataset_dir)
  examples = []
  for path in sorted(tf.gfile.Glob(dataset.data_sources)):
    for record in tf.io.tf_record_iterator(path):
      example = tf.train.Example.FromString(record)
      feature = example.features.feature
      examples.append((feature['image/encoded'].bytes_list.value[0],
                       feature['image/class/label'].int64_list.value[0]))
  return examples


def preprocess(encoded_images, image_size=IMAGE_SIZE,
               preprocessing_name=MODEL_NAME):
  """Eval-preprocesses encoded images to a float32 array [N, S, S, 3]."""
  with tf.Graph().as_default():
    data = tf.placeholder(tf.string, [])
    image = preprocessing_factory.get_preprocessing(preprocessing_name)(
        tf.image.decode_image(data, channels=3, expand_animations=False),
        image_size, image_size)
    with tf.Session() as sess:
      return np.stack([sess.run(image, {data: d}) for d in encoded_images])


def _apply_moving_averages(variables, decay):
  """`tf.train.ExponentialMovingAverage(decay).apply(variables)`, cheaper.

  The same shadow variables (`<name>/ExponentialMovingAverage`, starting
  at each variable's initial value) and the same update ops, so the same
  values; built without the class's per-variable `initialized_value()`
  conditionals, about a fifth of this fixture's graph building and
  initialization.

  Returns:
    The op that updates every shadow.
  """
  # As the class does it: 1 - decay in the variables' float32.
  complement = 1.0 - tf.convert_to_tensor(decay)
  updates = []
  for variable in variables:
    shadow = tf.Variable(variable.initial_value, trainable=False,
                         name=variable.op.name + '/ExponentialMovingAverage')
    updates.append(tf.assign_sub(shadow, (shadow - variable) * complement))
  return tf.group(*updates)


def train_checkpoint(dataset_dir, train_dir, model_name=MODEL_NAME,
                     image_size=IMAGE_SIZE, steps=100, seed=0):
  """Trains a small net (with EMA shadows) and saves a checkpoint.

  Batch norm uses a fast decay (0.9) so its moving statistics move well
  away from their initial 0 / 1 and matter for inference.

  Args:
    dataset_dir: the dataset from `make_image_folder_dataset`.
    train_dir: where to save `model.ckpt-<steps>`.
    model_name: network name.
    image_size: network input size.
    steps: training steps (batch 32, Adam).
    seed: graph seed.

  Returns:
    The checkpoint prefix.
  """
  key = ('checkpoint', train_dir)
  if key in _CACHE:
    return _CACHE[key]
  train = read_split(dataset_dir, 'train')
  images = preprocess([d for d, _ in train], image_size, model_name)
  labels = np.array([l for _, l in train], np.int64)
  rng = np.random.RandomState(seed)
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    batch_images = tf.placeholder(tf.float32, [None, image_size, image_size, 3])
    batch_labels = tf.placeholder(tf.int64, [None])
    with slim.arg_scope(nets_factory.arg_scopes_map[model_name]()):
      with slim.arg_scope([slim.batch_norm], decay=0.9):
        logits, _ = nets_factory.networks_map[model_name](
            batch_images, num_classes=NUM_CLASSES, is_training=True)
    loss = tf.losses.sparse_softmax_cross_entropy(batch_labels, logits)
    global_step = tf.train.get_or_create_global_step()
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
      train_op = tf.train.AdamOptimizer(0.01).minimize(
          loss, global_step=global_step)
    with tf.control_dependencies([train_op]):
      train_op = _apply_moving_averages(tf.trainable_variables(), EMA_DECAY)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(steps):
        batch = rng.choice(len(labels), 32)
        sess.run(train_op, {batch_images: images[batch],
                            batch_labels: labels[batch]})
      checkpoint = tf.train.Saver().save(
          sess, os.path.join(train_dir, 'model.ckpt'), global_step=steps)
  _CACHE[key] = checkpoint
  return checkpoint


def quantization_aware_checkpoint(dataset_dir, train_dir, float_checkpoint,
                                  model_name=MODEL_NAME,
                                  image_size=IMAGE_SIZE, steps=20):
  """A checkpoint as quantization-aware fine-tuning leaves it.

  The float checkpoint's weights plus the fake-quant ranges of a
  training-rewritten model: by `tf.contrib.quantize` on TF 1.15 (so the
  export path is tested on checkpoints that contrib wrote), by the
  project's rewrite on TF 2. The ranges are learnt by forward passes
  over training batches (they are moving averages updated in the forward
  pass), without gradient steps: the export path only needs a checkpoint
  of that layout, and building the gradient graph would double the time.

  Args:
    dataset_dir: the dataset from `make_image_folder_dataset`.
    train_dir: where to save `model.ckpt-<steps>`.
    float_checkpoint: the trained float checkpoint.
    model_name: network name.
    image_size: network input size.
    steps: forward passes of 32 images.

  Returns:
    The checkpoint prefix.
  """
  train = read_split(dataset_dir, 'train')
  images = preprocess([d for d, _ in train[:steps * 8]], image_size,
                      model_name)
  with tf.Graph().as_default():
    batch = tf.placeholder(tf.float32, [None, image_size, image_size, 3])
    with slim.arg_scope(nets_factory.arg_scopes_map[model_name]()):
      logits, _ = nets_factory.networks_map[model_name](
          batch, num_classes=NUM_CLASSES, is_training=True)
    if tf_compat.IS_TF2:
      quantization.rewrite_for_training(quant_delay=0)
    else:
      from tensorflow.contrib import quantize  # pylint: disable=g-import-not-at-top
      quantize.create_training_graph(quant_delay=0)
    names = tf.train.load_checkpoint(
        float_checkpoint).get_variable_to_shape_map()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver([v for v in tf.global_variables()
                      if v.op.name in names]).restore(sess, float_checkpoint)
      rng = np.random.RandomState(0)
      for _ in range(steps):
        sess.run(logits, {batch: images[rng.choice(len(images), 32)]})
      return tf.train.Saver().save(
          sess, os.path.join(train_dir, 'model.ckpt'), global_step=steps)


def moving_averages(checkpoint):
  """{variable name: its moving average} of the checkpoint's shadow
  variables (`<name>/ExponentialMovingAverage`)."""
  reader = tf.train.load_checkpoint(checkpoint)
  suffix = '/ExponentialMovingAverage'
  return {name[:-len(suffix)]: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.endswith(suffix)}


def reference_probabilities(checkpoint, images, model_name=MODEL_NAME,
                            num_classes=NUM_CLASSES, variable_values=None):
  """The checkpoint's probabilities, computed without the export code.

  Args:
    checkpoint: checkpoint prefix.
    images: preprocessed float32 images [N, S, S, C].
    model_name: network name.
    num_classes: head size.
    variable_values: optional {variable name: array} overriding the
      checkpoint's values (e.g. the moving averages).

  Returns:
    float32 probabilities [N, num_classes].
  """
  with tf.Graph().as_default():
    inputs = tf.placeholder(tf.float32, [None] + list(images.shape[1:]))
    _, end_points = nets_factory.get_network_fn(model_name, num_classes)(
        inputs)
    with tf.Session() as sess:
      tf.train.Saver(tf.global_variables()).restore(sess, checkpoint)
      for var in tf.global_variables():
        if variable_values and var.op.name in variable_values:
          var.load(variable_values[var.op.name], sess)
      return sess.run(end_points['Predictions'], {inputs: images})


TrainedModel = collections.namedtuple(
    'TrainedModel', ['root', 'dataset_dir', 'checkpoint', 'encoded', 'labels',
                     'images', 'probabilities'])


def trained_model(tmp_path_factory):
  """The session's dataset, trained checkpoint and validation references.

  Args:
    tmp_path_factory: pytest's session-scoped factory.

  Returns:
    A `TrainedModel`: `encoded` validation images, their `labels`,
    preprocessed `images` and the checkpoint's `probabilities` on them.
  """
  if 'model' not in _CACHE:
    root = str(tmp_path_factory.mktemp('export_model'))
    dataset_dir = make_image_folder_dataset(root)
    checkpoint = train_checkpoint(dataset_dir, os.path.join(root, 'train'))
    validation = read_split(dataset_dir, 'validation')
    encoded = [data for data, _ in validation]
    images = preprocess(encoded)
    _CACHE['model'] = TrainedModel(
        root=root, dataset_dir=dataset_dir, checkpoint=checkpoint,
        encoded=encoded, labels=np.array([l for _, l in validation]),
        images=images,
        probabilities=reference_probabilities(checkpoint, images))
  return _CACHE['model']


def run_script(module, argv, *args):
  """Runs a script's `run(flags)` in-process with fresh flags.

  Args:
    module: the imported script (it has `define_flags` and `run` or
      `classify`).
    argv: its command-line flags.
    *args: extra positional arguments of the run function.

  Returns:
    What the run function returns.
  """
  flag_values = flags.FlagValues()
  module.define_flags(flag_values)
  flag_values(['prog'] + list(argv))
  run = getattr(module, 'run', None) or getattr(module, 'classify')
  return run(flag_values, *args)


def run_graph_def(graph_def, images, output):
  """Runs an exported GraphDef: `output` (a node name) on the 'input' node."""
  with tf.Graph().as_default() as graph:
    tf.import_graph_def(graph_def, name='')
    with tf.Session(graph=graph) as sess:
      return sess.run(output + ':0', {'input:0': images})


def run_tflite(model_bytes, images):
  """Runs a TFLite model image by image, (de)quantizing as it declares.

  Returns:
    (float32 outputs [N, ...], the model's input dtype).
  """
  from export import tflite  # pylint: disable=g-import-not-at-top
  interpreter = tflite.make_interpreter(model_content=model_bytes)
  interpreter.allocate_tensors()
  inp = interpreter.get_input_details()[0]
  out = interpreter.get_output_details()[0]
  results = []
  for image in images:
    value = image[None]
    if inp['dtype'] != np.float32:
      scale, zero = inp['quantization']
      value = np.clip(np.round(value / scale + zero), 0, 255)
    interpreter.set_tensor(inp['index'], value.astype(inp['dtype']))
    interpreter.invoke()
    result = interpreter.get_tensor(out['index'])[0].astype(np.float32)
    if out['dtype'] != np.float32:
      scale, zero = out['quantization']
      result = (result - zero) * scale
    results.append(result)
  return np.array(results), inp['dtype']
