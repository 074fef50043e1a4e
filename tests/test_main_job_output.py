"""What `make run` (scripts/main_job.sh) prints: each line once, and at
most about 60 lines for the default run (issue 15)."""


import collections
import os
import re
import subprocess
import sys

import pytest

from core import tf_compat  # noqa: F401  (before tensorflow)
import tensorflow.compat.v1 as tf

from training import batch_norm_check as bn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# What `make run` may print for its default run (issue 15).
MAIN_JOB_LINE_LIMIT = 60
# The default run converts 6,600 images and logs a progress line every
# 10 s: 4 lines on a loaded 2-core machine; 8 leaves room for one half as
# fast. The short run below converts too few images for any.
CONVERSION_PROGRESS_ALLOWANCE = 8
_ANSI = re.compile(r'\x1b\[[0-9;]*m')
# absl's prefix (I1201 22:50:06.204598 1406 trainer.py:366] ) and that of
# TensorFlow's own handler (INFO:tensorflow:), which once printed each
# record a second time.
_LOG_PREFIX = re.compile(r'^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] |'
                         r'(?:INFO|WARNING|ERROR):(?:tensorflow|absl):)')
_PROGRESS_LINE = re.compile(r'task 0 step \d+/\d+, loss = ')
_PER_SHARD_OR_BATCH = re.compile(
    r'shapes \w+: \d+/\d+ shards|Evaluat(ed|ing) ')


def _message_lines(output):
  """The non-blank lines of `output`, without colours and log prefixes."""
  lines = [_LOG_PREFIX.sub('', _ANSI.sub('', line)).strip()
           for line in output.splitlines()]
  return [line for line in lines if line]


def _repeated(output):
  counts = collections.Counter(_message_lines(output))
  return sorted(line for line, count in counts.items() if count > 1)


def _main_job_default(name):
  """A default of scripts/main_job.sh, e.g. MAX_STEPS."""
  with open(os.path.join(REPO, 'scripts', 'main_job.sh')) as f:
    match = re.search(r'^%s=\$\{%s:-(\d+)\}$' % (name, name), f.read(),
                      re.M)
  assert match, name
  return int(match.group(1))


def _default_progress_lines():
  """Training progress lines of the default run (one per n steps + last)."""
  steps = _main_job_default('MAX_STEPS')
  every = _main_job_default('LOG_EVERY_N_STEPS')
  return steps // every + (1 if steps % every else 0)


def test_repeated_lines_are_found_whatever_the_log_format():
  once = ('\n\x1b[1m>>> 2/5 Training\x1b[0m\n'
          'I1201 22:53:34.597545 1402 hooks.py:164] '
          'task 0 step 5/5, loss = 1\n'
          'Wrote x.pb.\n')
  assert _repeated(once) == []
  assert _message_lines(once)[1] == 'task 0 step 5/5, loss = 1'
  twice = once + 'INFO:tensorflow:task 0 step 5/5, loss = 1\n'
  assert _repeated(twice) == ['task 0 step 5/5, loss = 1']


@pytest.mark.slow
def test_main_job_prints_each_line_once_and_fits_the_limit(tmp_path):
  """A short real run of scripts/main_job.sh, projected to the default.

  The short run differs from the default (1500 steps, 6,600 images) only in
  how many progress lines it prints; those are counted separately.
  """
  out = tmp_path / 'out'
  env = {k: v for k, v in os.environ.items()
         if k not in ('TF_CPP_MIN_LOG_LEVEL', 'VERBOSITY', 'FRESH')}
  env.update(PYTHON=sys.executable, OUT=str(out), MAX_STEPS='8',
             BATCH_SIZE='8', IMAGE_SIZE='32', SHAPES_TRAIN_PER_CLASS='8',
             SHAPES_VALIDATION_PER_CLASS='4', MAKE_RUN='make run')
  result = subprocess.run(['bash', 'scripts/main_job.sh'], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=1800)
  output = result.stdout
  assert result.returncode == 0, output[-5000:]
  assert _repeated(output) == [], output
  # The banner names the TensorFlow that runs (read from package metadata).
  assert 'Main job on TensorFlow %s;' % tf.__version__ in output, output[:500]
  for noise in ('INFO:tensorflow', 'deprecated', 'cpu_feature_guard',
                'oneDNN custom operations', 'SKIPPED'):
    assert noise not in output, (noise, output)
  progress = [l for l in _message_lines(output) if _PROGRESS_LINE.match(l)]
  assert progress and progress[-1].startswith('task 0 step 8/8, '), output
  # --batch_norm_decay=auto, resolved for 8 steps and named.
  assert ', batch-norm decay %g.' % bn.auto_decay(
      8, bn.network_decay('mobilenet_v1_025')) in output
  assert 'Accuracy = ' in output
  # Neither a line per shard nor, for a few seconds' evaluation, per batch.
  assert not [l for l in _message_lines(output)
              if _PER_SHARD_OR_BATCH.match(l)], output
  for artifact in ('train/model.ckpt-8', 'eval', 'export/inference_graph.pb',
                   'export/frozen.pb', 'export/model.tflite'):
    assert '%s/%s' % (out, artifact) in output, (artifact, output)
  lines = len(output.splitlines())
  projected = (lines - len(progress) + _default_progress_lines() +
               CONVERSION_PROGRESS_ALLOWANCE)
  assert projected <= MAIN_JOB_LINE_LIMIT, (lines, projected, output)
