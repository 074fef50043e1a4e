"""The library's configs: typed, with the scripts' defaults, usable from
Python without flags."""

import os

import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from cli import common_flags
import eval_image_classifier
import train_image_classifier
from datasets import generate_shapes
from training import evaluator
from training import model_inputs
from training import optimizers
from training import trainer

# Fields whose flag has another name, or that are built from several flags.
NOT_FLAGS = {'inputs', 'deploy', 'optimizer', 'schedule', 'image_size',
             'program'}


def _flag_defaults(script, argv):
  return common_flags.parse_flags(script.define_flags, script.PROGRAM, argv)


@pytest.mark.parametrize('config_class', [
    trainer.TrainConfig, trainer.DeployConfig, optimizers.OptimizerConfig,
    optimizers.LearningRateConfig, model_inputs.InputConfig])
def test_defaults_are_the_training_flags_defaults(config_class):
  opts = _flag_defaults(train_image_classifier, [])
  defaults = config_class._field_defaults
  for field in config_class._fields:
    if field in NOT_FLAGS or field not in defaults:
      continue
    assert defaults[field] == getattr(opts, field), field
  # Every field is a flag of the same name or listed above as not one.
  assert [f for f in config_class._fields
          if f not in NOT_FLAGS and not hasattr(opts, f)] == []


def test_eval_defaults_are_the_eval_flags_defaults():
  opts = _flag_defaults(eval_image_classifier, [])
  defaults = evaluator.EvalConfig._field_defaults
  for field in ('master', 'max_num_batches', 'eval_interval_secs', 'timeout',
                'moving_average_decay', 'quantize'):
    assert defaults[field] == getattr(opts, field), field


def test_configs_are_typed():
  hints = trainer.TrainConfig.__annotations__
  assert hints['inputs'] is model_inputs.InputConfig
  assert hints['log_every_n_steps'] is int
  assert model_inputs.InputConfig.__annotations__['batch_size'] is int


def test_train_and_evaluate_from_python_with_plain_arguments(tmp_path):
  data_dir = str(tmp_path / 'shapes')
  generate_shapes.run(data_dir, image_size=32, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)
  inputs = model_inputs.InputConfig(
      dataset_name='shapes', dataset_dir=data_dir,
      model_name='mobilenet_v1_025', preprocessing_name='cifarnet',
      image_size=32, batch_size=4, num_readers=1, num_preprocessing_threads=1)
  train_dir = str(tmp_path / 'train')
  with tf.Graph().as_default():
    trainer.train(trainer.TrainConfig(
        inputs=inputs, train_dir=train_dir, max_number_of_steps=2,
        optimizer=optimizers.OptimizerConfig(optimizer='adam',
                                             opt_epsilon=1e-8)))
  assert tf.train.latest_checkpoint(train_dir).endswith('model.ckpt-2')
  with tf.Graph().as_default():
    results = evaluator.evaluate(evaluator.EvalConfig(
        inputs=inputs._replace(dataset_split_name='validation', batch_size=6),
        checkpoint_path=train_dir, eval_dir=str(tmp_path / 'eval')))
  assert 0.0 <= results[-1]['Accuracy'] <= 1.0
  assert os.path.exists(str(tmp_path / 'eval'))
