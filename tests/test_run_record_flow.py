"""The training record across scripts, and the batch-norm checks (issue 15).

A tiny mobilenet_v1_025 is trained at 32x32 on the embedded shapes set for
a few steps with the network's own batch-norm decay: a run that short is
warned about before training, and its checkpoint's stale statistics are
explained after evaluation. Evaluation and freezing then run without
repeating the training flags and must take the record's model and size. A
given flag that contradicts the record is warned about; resuming with
--batch_norm_decay=auto resolves it from the step count, without a warning.
One run from scratch serves all of these (a start-up costs more than the
steps). That a fine-tuning run is not warned is checked by the fine-tuning
test of test_train_image_classifier.py.
"""


import json
import logging as std_logging
import os

from absl import logging as absl_logging
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import common_flags
import eval_image_classifier as eic
import freeze_graph
import train_image_classifier as tic
from datasets import generate_shapes
from training import batch_norm_check
from training import run_record
from cli import script_utils
from export import freeze
from core import param_refs
from tests.train_dir_helpers import copy_train_dir
from tests.train_dir_helpers import train_in_process
from training import model_inputs
from training import train_dir_lock

IMAGE_SIZE = 32
STEPS = 8  # auto's smallest decay (0.5) converges within 8 steps.
TRAIN_FLAGS = [
    '--dataset_name=shapes', '--model_name=mobilenet_v1_025',
    '--train_image_size=%d' % IMAGE_SIZE, '--batch_size=8',
    '--save_summaries_secs=0', '--save_interval_secs=0',
    '--log_every_n_steps=1', '--num_readers=1',
    '--num_preprocessing_threads=1', '--preprocessing_name=cifarnet',
    '--max_number_of_steps=%d' % STEPS,
]


class _Captured(std_logging.Handler):
  """Collects the messages of absl warnings."""

  def __init__(self):
    super(_Captured, self).__init__(std_logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


class _Warnings(object):
  """Context manager collecting absl warnings in a list."""

  def __enter__(self):
    self.handler = _Captured()
    absl_logging.get_absl_logger().addHandler(self.handler)
    return self.handler.messages

  def __exit__(self, *unused):
    absl_logging.get_absl_logger().removeHandler(self.handler)


def _small_record(image_size=48):
  return run_record.make_record('mobilenet_v1_025', image_size, 'cifarnet',
                                'shapes', 6)


def test_merge_with_record_reads_the_record_of_a_model_path(tmp_path):
  train_dir = str(tmp_path)
  field_flags = {'image_size': 'eval_image_size'}
  defaults = {'eval_image_size': None}
  assert run_record.merge_with_record(train_dir, field_flags, {},
                                      defaults) is None
  path = run_record.write_record(train_dir, _small_record())
  merged = run_record.merge_with_record(
      os.path.join(train_dir, 'model.ckpt-5'), field_flags, {}, defaults)
  assert merged.source == path
  assert merged.values == {'eval_image_size': 48}
  with open(path, 'w') as f:
    f.write('{')
  with pytest.raises(run_record.RecordError, match='cannot read'):
    run_record.merge_with_record(train_dir, field_flags, {}, defaults)


def test_a_contradicted_record_is_not_overwritten(tmp_path):
  train_dir = str(tmp_path)
  path = run_record.record_path(train_dir)
  first = _small_record()
  assert run_record.write_unless_contradicted(train_dir, first) == []
  assert run_record.read_record(path) == first
  conflicts = run_record.write_unless_contradicted(train_dir,
                                                   _small_record(64))
  assert len(conflicts) == 1
  # A library text: plain parameter names; a script spells them as flags.
  assert ('image_size=64 but the model was trained at 48' in
          param_refs.plain(conflicts[0]))
  assert ('--image_size=64 but the model was trained at 48' in
          script_utils.as_command_line(conflicts[0]))
  assert run_record.read_record(path) == first


@pytest.fixture
def warnings_logged():
  with _Warnings() as messages:
    yield messages


@pytest.fixture(scope='module')
def shapes_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('shapes'))
  generate_shapes.run(path, image_size=IMAGE_SIZE, train_per_class=2,
                      validation_per_class=2, train_shards=1,
                      validation_shards=1, num_workers=1)
  return path


def _train(shapes_dir, train_dir, *extra):
  return train_in_process(TRAIN_FLAGS, shapes_dir, train_dir, *extra)


@pytest.fixture(scope='module')
def trained(shapes_dir, tmp_path_factory):
  """A train_dir trained from scratch with the network's own decay (0.9997).

  Its warnings are kept in TRAINING_WARNINGS.
  """
  train_dir = str(tmp_path_factory.mktemp('train'))
  with _Warnings() as messages:
    _train(shapes_dir, train_dir)
  TRAINING_WARNINGS.extend(messages)
  return train_dir


TRAINING_WARNINGS = []


def _expected_record(shapes_dir, batch_norm_decay):
  classes = model_inputs.get_dataset('shapes', 'train',
                                     shapes_dir).num_classes
  return dict(
      model_name='mobilenet_v1_025', image_size=IMAGE_SIZE,
      preprocessing_name='cifarnet', dataset_name='shapes',
      num_classes=classes,
      labels_offset=0, batch_norm_decay=batch_norm_decay,
      moving_average_decay=None, use_explicit_padding=None)


def test_training_writes_the_record(trained, shapes_dir):
  record = run_record.read_record(run_record.find_record(trained))
  # No --batch_norm_decay: the network's own, which the record leaves open.
  assert record == _expected_record(shapes_dir, None)


@pytest.mark.parametrize('value,steps,expected', [
    ('auto', 1000, 0.98), ('AUTO', 100000, 0.9997), ('0.9', 10, 0.9),
    (None, 10, None)])
def test_batch_norm_decay_flag_resolves(value, steps, expected):
  argv = ['--model_name=mobilenet_v1', '--max_number_of_steps=%d' % steps]
  if value is not None:
    argv.append('--batch_norm_decay=%s' % value)
  opts = tic.parse_flags(argv)
  assert tic.resolve_batch_norm_decay(opts) == expected
  assert tic.config_from_flags(
      opts, tic.resolve_batch_norm_decay(opts)).batch_norm_decay == expected


@pytest.mark.parametrize('value', ['fast', '1.5', '-0.1'])
def test_bad_batch_norm_decay_is_one_paragraph(value):
  opts = tic.parse_flags(['--batch_norm_decay=%s' % value])
  with pytest.raises(script_utils.ScriptError) as info:
    tic.resolve_batch_norm_decay(opts)
  message = str(info.value)
  assert '--batch_norm_decay=%s' % value in message
  assert 'auto' in message and '\n' not in message


def test_resume_with_other_settings_reports_the_conflict(
    trained, shapes_dir, tmp_path, warnings_logged):
  # `trained` recorded no decay (the network's own); auto resolves to one.
  train_dir = copy_train_dir(trained, str(tmp_path / 'resumed'))
  _train(shapes_dir, train_dir, '--batch_norm_decay=auto',
         '--max_number_of_steps=%d' % (STEPS + 1))
  expected_decay = batch_norm_check.auto_decay(
      STEPS + 1, batch_norm_check.network_decay('mobilenet_v1_025'))
  # auto for 9 steps: the floor of the formula, not the network's 0.9997.
  assert expected_decay == batch_norm_check.AUTO_MIN_DECAY
  conflicts = [m for m in warnings_logged if 'other settings' in m]
  assert len(conflicts) == 1
  assert '--batch_norm_decay=%s' % expected_decay in conflicts[0]
  # auto converges within the run: no batch-norm warning.
  assert not [m for m in warnings_logged if 'too short' in m]
  # Training succeeded with the new value: the record now says so.
  record = run_record.read_record(run_record.find_record(train_dir))
  assert record == _expected_record(shapes_dir, expected_decay)


def _eval(argv):
  opts = eic.parse_flags(argv)
  with tf.Graph().as_default():
    return eic.evaluate(opts)


def test_eval_takes_model_and_size_from_the_record(trained, shapes_dir,
                                                   tmp_path, capsys):
  results = _eval(['--checkpoint_path=%s' % trained,
                   '--eval_dir=%s' % tmp_path,
                   '--dataset_dir=%s' % shapes_dir,
                   '--dataset_split_name=validation'])
  out = capsys.readouterr().out
  assert 'from %s' % run_record.find_record(trained) in out
  assert 'model_name=mobilenet_v1_025' in out
  assert 'eval_image_size=%d' % IMAGE_SIZE in out
  assert results[-1]['model_name'] == 'mobilenet_v1_025'
  assert results[-1]['image_size'] == IMAGE_SIZE
  assert '%dx%d images' % (IMAGE_SIZE, IMAGE_SIZE) in out


def test_eval_warns_about_a_contradicting_size(trained, shapes_dir, tmp_path,
                                               warnings_logged):
  results = _eval(['--checkpoint_path=%s' % trained,
                   '--eval_dir=%s' % tmp_path,
                   '--dataset_dir=%s' % shapes_dir,
                   '--dataset_split_name=validation',
                   '--eval_image_size=48'])
  assert results[-1]['image_size'] == 48  # A given flag wins...
  assert [m for m in warnings_logged  # ...but is reported.
          if '--eval_image_size=48 but the model was trained at %d' %
          IMAGE_SIZE in m]


def test_eval_without_record_uses_the_flags(trained, shapes_dir, tmp_path,
                                            capsys):
  bare = tmp_path / 'bare'
  bare.mkdir()
  for name in os.listdir(trained):
    if name != run_record.RECORD_FILENAME and os.path.isfile(
        os.path.join(trained, name)):
      with open(os.path.join(trained, name), 'rb') as f:
        (bare / name).write_bytes(f.read())
  checkpoint = open(os.path.join(trained, 'checkpoint')).read().replace(
      trained, str(bare))
  (bare / 'checkpoint').write_text(checkpoint)
  results = _eval(['--checkpoint_path=%s' % bare,
                   '--eval_dir=%s' % (tmp_path / 'eval'),
                   '--dataset_dir=%s' % shapes_dir,
                   '--dataset_split_name=validation',
                   '--dataset_name=shapes', '--model_name=mobilenet_v1_025',
                   '--eval_image_size=%d' % IMAGE_SIZE])
  assert results[-1]['image_size'] == IMAGE_SIZE
  assert 'from ' not in capsys.readouterr().out


def test_short_run_is_warned_and_its_statistics_explained(
    trained, shapes_dir, tmp_path, warnings_logged):
  # `trained` ran with the network's own decay, 0.9997, for 8 steps.
  short = [m for m in TRAINING_WARNINGS if 'too short for batch-norm' in m]
  assert len(short) == 1 and '--max_number_of_steps=%d' % STEPS in short[0]
  _eval(['--checkpoint_path=%s' % trained, '--eval_dir=%s' % tmp_path,
         '--dataset_dir=%s' % shapes_dir, '--dataset_split_name=validation'])
  stale = [m for m in warnings_logged if 'still close to their initial' in m]
  assert len(stale) == 1 and '--batch_norm_decay=auto' in stale[0]


def test_a_trainer_refused_by_the_lock_neither_warns_nor_records(
    shapes_dir, tmp_path, warnings_logged):
  # The same short run as `trained`, which warns once it holds --train_dir.
  train_dir = str(tmp_path / 'held')
  os.makedirs(train_dir)
  holder = train_dir_lock.TrainDirLock(train_dir).acquire()
  try:
    with pytest.raises(script_utils.ScriptError, match='in use by another'):
      _train(shapes_dir, train_dir)
  finally:
    holder.release()
  assert not [m for m in warnings_logged if 'too short' in m]
  assert run_record.find_record(train_dir) is None


def _freeze(argv):
  opts = common_flags.parse_flags(freeze_graph.define_flags,
                                  freeze_graph.PROGRAM, argv)
  with tf.Graph().as_default():
    return freeze_graph.run(opts)


def test_freeze_takes_the_record_and_copies_it(trained, shapes_dir,
                                               tmp_path, capsys):
  output = str(tmp_path / 'out' / 'frozen.pb')
  os.makedirs(os.path.dirname(output))
  frozen = _freeze(['--checkpoint_path=%s' % trained,
                    '--output_file=%s' % output])
  out = capsys.readouterr().out
  assert frozen.image_size == IMAGE_SIZE
  assert 'image_size=%d' % IMAGE_SIZE in out
  graph_def = freeze.load_graph_def(output)
  assert any(n.name.startswith('MobilenetV1/') for n in graph_def.node)
  copy = run_record.find_record(output)
  assert copy and os.path.dirname(copy) == os.path.dirname(output)
  with open(copy) as f:
    assert json.load(f)['model_name'] == 'mobilenet_v1_025'


def test_freeze_warns_about_a_contradicting_model(trained, tmp_path,
                                                  warnings_logged):
  with pytest.raises(script_utils.ScriptError):
    # The V2 graph cannot load the V1 checkpoint, but the record's
    # contradiction is reported first.
    _freeze(['--checkpoint_path=%s' % trained,
             '--model_name=mobilenet_v2_035',
             '--output_file=%s' % (tmp_path / 'frozen.pb')])
  assert [m for m in warnings_logged
          if '--model_name=mobilenet_v2_035 but the model was trained as '
          'mobilenet_v1_025' in m]
