"""Helpers (no tests) for the tests that train, kill and resume.

Training in this process, copying a trained --train_dir, reading its checkpoints, the environment
of a script run as a subprocess, and the probes of what this machine
allows (a tmpfs in a private mount namespace) or what a run fsyncs.
"""


import os
import shutil
import subprocess
import sys

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

from nets import nets_factory
import train_image_classifier as tic

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_in_process(base_flags, dataset_dir, train_dir, *extra_flags):
  """Runs train_image_classifier's `train` here, in a graph of its own.

  Args:
    base_flags: the test file's common flags.
    dataset_dir, train_dir: the two folders (flags after `base_flags`).
    *extra_flags: flags after those, e.g. '--max_number_of_steps=2'.

  Returns:
    What `train` returns.
  """
  opts = tic.parse_flags(list(base_flags) + [
      '--dataset_dir=%s' % dataset_dir, '--train_dir=%s' % train_dir
  ] + list(extra_flags))
  with tf.Graph().as_default():
    return tic.train(opts)


def repoint_checkpoint_state(directory):
  """Points a copied train_dir's `checkpoint` file at the copy.

  The state file names absolute paths, which still lead to the original.
  """
  state = tf.train.get_checkpoint_state(directory)
  tf.train.update_checkpoint_state(
      directory, os.path.join(directory, os.path.basename(
          state.model_checkpoint_path)),
      [os.path.join(directory, os.path.basename(p))
       for p in state.all_model_checkpoint_paths])


def copy_train_dir(train_dir, target):
  """Copies `train_dir` to the new folder `target`; returns `target`.

  The copy's checkpoints are its own: a run resumed there leaves the
  original (often a module-wide fixture) as it was.
  """
  shutil.copytree(train_dir, target)
  repoint_checkpoint_state(target)
  return target


def save_untrained_checkpoint(directory, model_name, num_classes,
                              image_size):
  """Saves `model_name` as initialized (no training, no averages).

  Returns:
    The checkpoint prefix, `<directory>/model.ckpt`.
  """
  with tf.Graph().as_default():
    network_fn = nets_factory.get_network_fn(model_name, num_classes)
    network_fn(tf.zeros([1, image_size, image_size, 3]))
    tf.train.get_or_create_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return tf.train.Saver().save(sess,
                                   os.path.join(directory, 'model.ckpt'))


def checkpoint_values(checkpoint):
  """{variable name: numpy value} of every tensor in `checkpoint`."""
  reader = tf.train.load_checkpoint(checkpoint)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def step_of(checkpoint):
  """The global step saved in `checkpoint`."""
  return int(tf.train.load_checkpoint(checkpoint).get_tensor('global_step'))


def subprocess_env():
  """The environment of a repository script run as a subprocess."""
  env = dict(os.environ)
  env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return env


def run_python(args, cwd=REPO_ROOT, timeout=600):
  """Runs `python args...` in `cwd`; returns (exit status, all output)."""
  result = subprocess.run([sys.executable] + args, cwd=cwd,
                          env=subprocess_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout)
  return result.returncode, result.stdout


def relative_to_repo(path):
  """`path` relative to the repository root, as a user would type it."""
  return os.path.relpath(str(path), REPO_ROOT)


def can_mount_tmpfs(tmp_path):
  """Whether `unshare -rm` may mount a tmpfs here (user namespaces)."""
  if not shutil.which('unshare'):
    return False
  target = str(tmp_path / 'probe')
  os.makedirs(target)
  try:
    return subprocess.call(
        ['unshare', '-rm', 'sh', '-c',
         'mount -t tmpfs -o size=1m none "$0"', target],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=30) == 0
  except (OSError, subprocess.SubprocessError):
    return False


def record_fsyncs(monkeypatch):
  """Makes `os.fsync` note each path it syncs (and still sync it).

  Returns:
    The list the paths are appended to, in order.
  """
  synced = []
  real_fsync = os.fsync

  def record(fd):
    synced.append(os.readlink('/proc/self/fd/%d' % fd))
    real_fsync(fd)

  monkeypatch.setattr(os, 'fsync', record)
  return synced
