"""Shared pytest fixtures: every test builds its graph in a fresh tf.Graph."""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

from nets import tf_compat  # noqa: E402,F401  (before tf_slim)
import pytest  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_graph():
  """Runs each test with its own default graph, so names never collide."""
  graph = tf.Graph()
  with graph.as_default():
    yield graph


@pytest.fixture
def repo_root():
  return REPO_ROOT


@pytest.fixture
def script_env():
  """Environment for running the repo's scripts in a subprocess."""
  env = dict(os.environ)
  env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return env
