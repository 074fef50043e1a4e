"""The TFLite Micro person-detection guide's commands, run as it prints them.

Only paths and the step count differ from the guide: a synthetic COCO tree
(generate_coco_shapes.py), 3 training steps. Then the one-command int8
export of export_tflite.py, as a .tflite file and as C source compiled with
the system C compiler.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from export import c_array
from export import tflite as tflite_models

# The guide's training flags; --max_number_of_steps is the only change.
GUIDE_TRAIN_FLAGS = [
    '--alsologtostderr', '--dataset_name=visualwakewords',
    '--dataset_dir=person_detection_dataset', '--dataset_split_name=train',
    '--train_image_size=96', '--input_grayscale=True',
    '--preprocessing_name=mobilenet_v1', '--model_name=mobilenet_v1_025',
    '--train_dir=person_detection_train', '--save_summaries_secs=300',
    '--learning_rate=0.045', '--label_smoothing=0.1',
    '--learning_rate_decay_factor=0.98', '--num_epochs_per_decay=2.5',
    '--moving_average_decay=0.9999', '--batch_size=96',
    '--max_number_of_steps=3']
GUIDE_EVAL_FLAGS = [
    '--alsologtostderr', '--dataset_name=visualwakewords',
    '--dataset_dir=person_detection_train', '--dataset_split_name=val',
    '--eval_image_size=96', '--input_grayscale=True',
    '--preprocessing_name=mobilenet_v1', '--model_name=mobilenet_v1_025',
    '--train_dir=person_detection_train',
    '--checkpoint_path=person_detection_train/model.ckpt-3']
OUTPUT_NODE = 'MobilenetV1/Predictions/Reshape_1'

# The guide's Python conversion step, with its API calls and settings.
GUIDE_CONVERSION = r'''
import io
import numpy as np
import PIL.Image
import tensorflow.compat.v1 as tf

def representative_dataset_gen():
  records = tf.python_io.tf_record_iterator(
      path='person_detection_dataset/val.record-00000-of-00010')
  for record in records:
    example = tf.train.Example()
    example.ParseFromString(record)
    image = PIL.Image.open(io.BytesIO(
        example.features.feature['image/encoded'].bytes_list.value[0]))
    array = np.array(image.resize((96, 96)).convert('L'))[None, :, :, None]
    yield [((array / 127.5) - 1.0).astype(np.float32)]

converter = tf.lite.TFLiteConverter.from_frozen_graph(
    'person_detection_frozen_graph.pb', ['input'],
    ['MobilenetV1/Predictions/Reshape_1'])
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative_dataset_gen
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
open('person_detection_model.tflite', 'wb').write(converter.convert())
'''


def _run(args, cwd, env, expect=0):
  # The venv's bin first: TF 1.15's converter runs a binary found on PATH.
  env = dict(env, PATH=os.path.dirname(sys.executable) + os.pathsep +
             env.get('PATH', ''))
  result = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True)
  assert result.returncode == expect, (args, result.stdout, result.stderr)
  return result


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A folder with the converted dataset and a 3-step training of the guide.

  The scripts run from the repository root with relative paths; the folder
  is reached through a symlink there (removed at the end).
  """
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL='2')
  work = str(tmp_path_factory.mktemp('person_detection'))
  tools = lambda name: os.path.join(root, name)  # noqa: E731
  _run([tools('generate_coco_shapes.py'),
        '--coco_dir=person_detection_dataset/coco_dataset',
        '--train_images=24', '--val_images=12'], work, env)
  _run([tools('download_and_convert_data.py'), '--logtostderr',
        '--dataset_name=visualwakewords',
        '--dataset_dir=person_detection_dataset',
        "--foreground_class_of_interest=person",
        '--small_object_area_threshold=0.005'], work, env)
  _run([tools('train_image_classifier.py')] + GUIDE_TRAIN_FLAGS, work, env)
  return work, env, tools


@pytest.mark.slow
def test_guide_eval_command_names_the_dataset_dir_mistake(workdir):
  work, env, tools = workdir
  result = _run([tools('eval_image_classifier.py')] + GUIDE_EVAL_FLAGS, work,
                env, expect=1)
  text = ' '.join(result.stderr.split())
  assert ('--dataset_dir=person_detection_train is a training directory'
          in text), result.stderr
  assert 'person_detection_train/val.record-*' in text
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().count('\n\n') == 0


@pytest.mark.slow
def test_eval_takes_latest_checkpoint_of_train_dir(workdir):
  work, env, tools = workdir
  flags = [f for f in GUIDE_EVAL_FLAGS if not f.startswith(
      ('--checkpoint_path', '--dataset_dir'))]
  result = _run([tools('eval_image_classifier.py'),
                 '--dataset_dir=person_detection_dataset',
                 '--eval_dir=person_detection_eval'] + flags, work, env)
  assert 'over 12 examples' in result.stdout
  assert 'model.ckpt-3' in result.stdout
  # --checkpoint_path still wins over --train_dir.
  result = _run([tools('eval_image_classifier.py'),
                 '--dataset_dir=person_detection_dataset',
                 '--eval_dir=person_detection_eval',
                 '--checkpoint_path=person_detection_train/model.ckpt-0'
                 ] + flags, work, env)
  assert 'model.ckpt-0' in result.stdout


@pytest.mark.slow
def test_guide_export_freeze_and_int8_conversion(workdir):
  work, env, tools = workdir
  _run([tools('export_inference_graph.py'), '--alsologtostderr',
        '--dataset_name=visualwakewords', '--image_size=96',
        '--input_grayscale=True', '--model_name=mobilenet_v1_025',
        '--output_file=person_detection_graph.pb'], work, env)
  # TensorFlow's own freeze_graph tool, as the guide runs it.
  _run(['-m', 'tensorflow.python.tools.freeze_graph',
        '--input_graph=person_detection_graph.pb',
        '--input_checkpoint=person_detection_train/model.ckpt-3',
        '--input_binary=true', '--output_node_names=' + OUTPUT_NODE,
        '--output_graph=person_detection_frozen_graph.pb'], work, env)
  _run(['-c', GUIDE_CONVERSION], work, env)
  interpreter = tflite_models.make_interpreter(
      model_path=os.path.join(work, 'person_detection_model.tflite'))
  interpreter.allocate_tensors()
  (inp,), (out,) = (interpreter.get_input_details(),
                    interpreter.get_output_details())
  assert list(inp['shape']) == [1, 96, 96, 1] and inp['dtype'] == np.int8
  assert list(out['shape']) == [1, 2] and out['dtype'] == np.int8


def _c_array_bytes(source):
  body = source.split('{', 1)[1].split('}', 1)[0]
  return bytes(int(v, 16) for v in body.replace(',', ' ').split())


@pytest.mark.slow
def test_export_tflite_one_command_int8_and_c_array(workdir):
  work, env, tools = workdir
  common = [tools('export_tflite.py'),
            '--checkpoint_path=person_detection_train',
            '--model_name=mobilenet_v1_025', '--image_size=96',
            '--input_grayscale=True', '--quantization=full_integer',
            '--integer_io_type=int8', '--dataset_name=visualwakewords',
            '--dataset_dir=person_detection_dataset',
            '--dataset_split_name=val']
  result = _run(common + ['--output_file=micro/person_detect.tflite'], work,
                env)
  assert 'calibrated on 12 images of visualwakewords/val' in result.stdout
  model = open(os.path.join(work, 'micro/person_detect.tflite'), 'rb').read()
  interpreter = tflite_models.make_interpreter(model_content=model)
  interpreter.allocate_tensors()
  (inp,), (out,) = (interpreter.get_input_details(),
                    interpreter.get_output_details())
  assert list(inp['shape']) == [1, 96, 96, 1] and inp['dtype'] == np.int8
  assert out['dtype'] == np.int8
  assert not [f for f in os.listdir(os.path.join(work, 'micro'))
              if f.startswith('.')]   # the temporary frozen graph is gone
  for run in range(2):  # a second run overwrites its own output
    _run(common + ['--output_format=c_array',
                   '--output_file=micro/person_detect_model_data.cc'],
         work, env)
  source = open(os.path.join(work, 'micro/person_detect_model_data.cc')).read()
  assert 'person_detect_model_data_cc[]' in source
  assert _c_array_bytes(source) == model


@pytest.mark.skipif(not shutil.which('cc') or not shutil.which('c++'),
                    reason='needs a C and a C++ compiler')
@pytest.mark.parametrize('compiler, suffix', [('cc', '.c'), ('c++', '.cc')])
def test_c_array_compiles_aligned_with_its_length(tmp_path, compiler, suffix):
  # Small, and after a 3-byte array kept in place (-fno-toplevel-reorder):
  # without its alignas the array would land at an odd address (compilers
  # align arrays of 32 bytes or more on their own).
  data = bytes(bytearray(range(7, 20)))
  (tmp_path / ('model' + suffix)).write_text(
      'extern const unsigned char g_pad[3];\n'
      'const unsigned char g_pad[3] = {1, 2, 3};\n' +
      c_array.to_c_source(data, 'g_model'))
  main = ('#include <stdio.h>\n#include <stdint.h>\n'
          '%sconst unsigned char g_model[]; %sconst unsigned int g_model_len;'
          '\nint main(void) { unsigned long sum = 0; unsigned int i;\n'
          '  for (i = 0; i < g_model_len; ++i) sum = sum * 31 + g_model[i];\n'
          '  printf("%%u %%lu %%d\\n", g_model_len, sum,\n'
          '         (int)((uintptr_t)g_model %% 16));\n  return 0; }\n') % (
              ('extern ',) * 2)
  (tmp_path / ('main' + suffix)).write_text(main)
  binary = str(tmp_path / 'check')
  subprocess.run([compiler, '-Wall', '-Werror', '-fno-toplevel-reorder',
                  '-o', binary,
                  str(tmp_path / ('main' + suffix)),
                  str(tmp_path / ('model' + suffix))], check=True)
  length, checksum, misalignment = subprocess.run(
      [binary], capture_output=True, text=True, check=True).stdout.split()
  expected = 0
  for b in bytearray(data):
    expected = (expected * 31 + b) % 2 ** 64
  assert (int(length), int(checksum), int(misalignment)) == (
      len(data), expected, 0)


def test_c_array_names_like_xxd_and_refuses_bad_input():
  assert c_array.variable_name('out/person-detect.model.cc') == (
      'person_detect_model_cc')
  assert c_array.variable_name('3d.tflite') == '_3d_tflite'
  with pytest.raises(ValueError):
    c_array.to_c_source(b'x', 'not a name')
  with pytest.raises(ValueError):
    c_array.to_c_source(b'x', 'ok', alignment=12)
