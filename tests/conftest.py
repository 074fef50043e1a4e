"""Shared pytest fixtures: every test builds its graph in a fresh tf.Graph."""


import contextlib
import io
import os
import re
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

from core import tf_compat  # noqa: E402,F401  (before tf_slim)
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


@pytest.fixture(scope='session')
def model(tmp_path_factory):
  """The image-folder dataset and checkpoint trained once per session.

  Shared by test_export.py and test_classify.py (one training run for both:
  their tests form one xdist group through this fixture), as is its frozen
  graph below.
  """
  from tests import test_export_lib  # pylint: disable=g-import-not-at-top
  return test_export_lib.trained_model(tmp_path_factory)


@pytest.fixture(scope='session')
def frozen_model(model, tmp_path_factory):
  """`model` frozen once by freeze_graph.py with its defaults.

  Returns:
    (path of the frozen .pb, what freeze_graph printed).
  """
  # pylint: disable=g-import-not-at-top
  import freeze_graph
  from tests import test_export_lib as lib
  path = str(tmp_path_factory.mktemp('frozen_model') / 'frozen.pb')
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    lib.run_script(freeze_graph, [
        '--model_name=' + lib.MODEL_NAME, '--image_size=%d' % lib.IMAGE_SIZE,
        '--dataset_name=image_folder', '--dataset_dir=' + model.dataset_dir,
        '--checkpoint_path=' + model.checkpoint, '--output_file=' + path])
  return path, printed.getvalue()


@pytest.fixture(scope='session')
def saved_model(model, tmp_path_factory):
  """`model` exported once by export_saved_model.py (--top_k=3).

  Read by test_export.py's SavedModel tests and test_classify.py's
  predictors (which use the full `probabilities` output, not the top k).
  """
  # pylint: disable=g-import-not-at-top
  import export_saved_model
  from tests import test_export_lib as lib
  export_dir = str(tmp_path_factory.mktemp('saved_model') / 'saved_model')
  lib.run_script(export_saved_model, [
      '--model_name=' + lib.MODEL_NAME, '--image_size=%d' % lib.IMAGE_SIZE,
      '--dataset_name=image_folder', '--dataset_dir=' + model.dataset_dir,
      '--checkpoint_path=' + os.path.dirname(model.checkpoint),
      '--export_dir=' + export_dir, '--top_k=3'])
  return export_dir


@pytest.fixture(scope='session')
def keras_v1_050(tmp_path_factory):
  """Keras's MobileNet at width 0.5, seeded, saved as .h5 and converted
  into a slim checkpoint once (`test_weights_keras.ConvertedCase`).

  Read by the Keras weight tests and the Keras export test.
  """
  from tests import test_weights_keras  # pylint: disable=g-import-not-at-top
  return test_weights_keras.converted_keras_case(
      'v1_050', str(tmp_path_factory.mktemp('keras_v1_050')))


# ------------------------------------------------------ xdist distribution
#
# `make test` runs the suite on every core (pytest-xdist, --dist loadgroup
# in pytest.ini). A module- or session-scoped fixture is built once per
# worker that runs a test using it, and several of ours train a model or
# start whole clusters. So every test using such a fixture gets an
# xdist_group: tests that share one (directly or through a chain of shared
# fixtures) run on one worker, and each fixture is built once per session.
# Tests that share none are still spread one by one.

_SHARED_SCOPES = ('session', 'package', 'module', 'class')


def _shared_fixture_keys(item):
  """Names of the test-suite fixtures wider than a function `item` uses.

  A parametrized fixture gives one key per parameter, so its instances can
  go to different workers. pytest's and plugins' own fixtures (tmp dirs,
  worker ids) are cheap and left out.
  """
  info = getattr(item, '_fixtureinfo', None)
  if info is None:
    return []
  params = getattr(getattr(item, 'callspec', None), 'params', {})
  keys = []
  for name in info.names_closure:
    definitions = info.name2fixturedefs.get(name)
    if not definitions:
      continue
    definition = definitions[-1]
    if definition.scope not in _SHARED_SCOPES or not definition.baseid:
      continue
    key = '%s::%s' % (definition.baseid, name)
    if name in params:
      key += '(%s)' % (params[name],)
    # xdist reads the group after the last '@' of a test id, and only if
    # no ']' follows it.
    keys.append(re.sub(r'[@\[\]]', '_', key))
  return keys


def _group_by_shared_fixtures(items):
  """{item: group name}: connected components of shared-fixture use."""
  parent = {}

  def root(key):
    while parent[key] != key:
      parent[key] = parent[parent[key]]
      key = parent[key]
    return key

  item_keys = []
  for item in items:
    keys = _shared_fixture_keys(item)
    for key in keys:
      parent.setdefault(key, key)
    for key in keys[1:]:
      first, other = root(keys[0]), root(key)
      if first != other:
        # The smaller name wins, so every worker names the group alike.
        parent[max(first, other)] = min(first, other)
    item_keys.append((item, keys))
  return {item: root(keys[0]) for item, keys in item_keys if keys}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
  groups = _group_by_shared_fixtures(items)
  for item, group in groups.items():
    if item.get_closest_marker('xdist_group') is None:
      item.add_marker(pytest.mark.xdist_group(group))
  if hasattr(config, 'workerinput'):
    # In an xdist worker: loadgroup hands out the groups first (largest
    # first), then single tests in collection order. Slow single tests
    # (whole training runs, clusters) go to the front of those, so the
    # run ends on quick tests instead of waiting for one long one.
    def slow_single(item):
      return item not in groups and item.get_closest_marker('slow')
    items[:] = ([i for i in items if slow_single(i)] +
                [i for i in items if not slow_single(i)])


class _GroupSuffix(object):
  """Puts the xdist group at the end of each grouped test's id.

  xdist's worker does this by assigning `item._nodeid`, which pytest 9
  no longer reads (it keeps the id in `item._id`), so on the TF 2 stack the
  groups would silently be ignored. Runs after xdist's own hook and only
  fills in what is missing.
  """

  @pytest.hookimpl(trylast=True)
  def pytest_collection_modifyitems(self, config, items):
    if not getattr(config.option, 'loadgroup', False):
      return
    for item in items:
      names = sorted(set(
          str(mark.args[0] if mark.args else mark.kwargs.get('name',
                                                             'default'))
          for mark in item.iter_markers('xdist_group')))
      if not names:
        continue
      suffix = '@' + '_'.join(names)
      if item.nodeid.endswith(suffix):
        continue  # pytest < 9: xdist's hook did it.
      node_id = item.nodeid + suffix
      if hasattr(item, '_id'):
        from _pytest import nodeid  # pylint: disable=g-import-not-at-top
        item._id = nodeid.coerce_node_id(node_id)
      else:
        item._nodeid = node_id


def pytest_configure(config):
  if hasattr(config, 'workerinput'):
    config.pluginmanager.register(_GroupSuffix(), 'xdist_group_suffix')
