r"""SIGKILL loop: kills training at random moments and checks that it resumes.

Starts `train_image_classifier.py` on a tiny shapes set (mobilenet_v1_025 at
32 px, batch 4, a checkpoint every second), kills it with SIGKILL, restarts
it, and after every kill checks that

  * every checkpoint listed in `train_dir/checkpoint` (all_model_checkpoint_
    paths) opens with `tf.train.load_checkpoint`, has every variable of the
    model and every tensor reads back (checksums included);
  * the newest saved global step never goes down;
  * the restarted run says "Resuming from <the newest listed checkpoint>"
    and its first step is the step after it;

and finally lets the run reach --max_steps (or, with `final_steps`, a few
steps past the newest checkpoint the kills left). Optionally an
`eval_image_classifier.py` in watch mode runs beside training the whole
time; it must never fail, and every checkpoint it evaluated must be a
complete one whose stored global step matches its name.

Kill modes, taken in turn (seeded):
  first_save  at the first checkpoint write after launch (for a resumed run
              this is the hook saving the restored step again, same name);
  step_save   at a checkpoint write once training steps are running;
  random      at a uniformly random moment after launch (start-up,
              restore, training or saving).
A kill aimed at a save waits for a temporary checkpoint file
(`*.tempstate*`, `*_temp*`) to appear in train_dir and kills right then; the
summary says how many kills left such a file behind (kills that landed
mid-write).

Usage (the long version; tests/test_crash_safety.py runs a short one):

  python -m reliability.kill_loop --trials=30 --seed=1 [--max_steps=600] \
      [--work_dir=/tmp/kill_loop] [--noeval]

It prints one line per trial and a summary, and exits with status 1 if any
check failed.
"""


import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)
import tensorflow.compat.v1 as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_SIZE = 32
KILL_MODES = ('first_save', 'step_save', 'random')
# Substrings of the names TensorFlow gives checkpoint files while it writes
# them (BundleWriter: `.tempstate<n>`; a sharded Saver: `<prefix>_temp...`).
_TEMP_MARKERS = ('.tempstate', '_temp')
_STEP_RE = re.compile(r'task 0 step (\d+)')
_RESUME_RE = re.compile(r'Resuming from (\S+) \(')
_EVAL_RE = re.compile(r'\(global step (\d+), (\S+)\)')


class CrashSafetyError(AssertionError):
  """A check of the kill loop failed."""


def make_dataset(data_dir):
  """Generates the tiny shapes set (12 training, 6 validation images)."""
  from datasets import generate_shapes  # pylint: disable=g-import-not-at-top
  generate_shapes.run(data_dir, image_size=IMAGE_SIZE, train_per_class=2,
                      validation_per_class=1, train_shards=1,
                      validation_shards=1, num_workers=1)


def train_command(data_dir, train_dir, max_steps, python=sys.executable):
  """The command line of one training launch."""
  return [python, os.path.join(REPO_ROOT, 'train_image_classifier.py'),
          '--train_dir=%s' % train_dir, '--dataset_name=shapes',
          '--dataset_dir=%s' % data_dir, '--model_name=mobilenet_v1_025',
          '--train_image_size=%d' % IMAGE_SIZE, '--batch_size=4',
          '--save_interval_secs=1', '--save_summaries_secs=0',
          '--max_number_of_steps=%d' % max_steps, '--log_every_n_steps=1',
          '--num_readers=1', '--num_preprocessing_threads=1',
          '--optimizer=sgd', '--learning_rate=0.01',
          '--learning_rate_decay_type=fixed']


def eval_command(data_dir, train_dir, eval_dir, timeout_secs,
                 python=sys.executable):
  """The command line of the evaluator watching train_dir."""
  return [python, os.path.join(REPO_ROOT, 'eval_image_classifier.py'),
          '--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
          '--dataset_name=shapes', '--dataset_dir=%s' % data_dir,
          '--model_name=mobilenet_v1_025', '--eval_image_size=%d' % IMAGE_SIZE, '--batch_size=6',
          '--num_readers=1', '--num_preprocessing_threads=1',
          '--eval_interval_secs=0', '--timeout=%d' % timeout_secs]


def _env():
  env = dict(os.environ)
  env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return env


def _start(command, log_path):
  """Starts `command` with stdout and stderr going to `log_path`."""
  with open(log_path, 'w') as log:
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            env=_env(), cwd=REPO_ROOT)


def _read(path):
  with open(path) as f:
    return f.read()


def _temp_files(train_dir):
  """Names in train_dir that are checkpoint files being written."""
  try:
    names = os.listdir(train_dir)
  except OSError:
    return set()
  return set(n for n in names if any(m in n for m in _TEMP_MARKERS))


def check_checkpoints(train_dir, expected_variables=None):
  """Checks every checkpoint the `checkpoint` state file lists.

  Args:
    train_dir: the training directory.
    expected_variables: dict {name: shape} every checkpoint must hold, or
      None to take the newest checkpoint's.

  Returns:
    (newest step or None, {name: shape} of the newest checkpoint, list of
    listed checkpoint paths).

  Raises:
    CrashSafetyError: a listed checkpoint is missing, unreadable, lacks a
      variable, or the newest is not the highest step.
  """
  state = tf.train.get_checkpoint_state(train_dir)
  if state is None:
    return None, expected_variables, []
  paths = list(state.all_model_checkpoint_paths)
  if state.model_checkpoint_path not in paths:
    raise CrashSafetyError('model_checkpoint_path %s is not among '
                           'all_model_checkpoint_paths %s' %
                           (state.model_checkpoint_path, paths))
  steps = {}
  for path in paths:
    try:
      reader = tf.train.load_checkpoint(path)
      shapes = reader.get_variable_to_shape_map()
      for name in shapes:
        reader.get_tensor(name)  # Reads the data; checks its checksum.
      steps[path] = int(reader.get_tensor('global_step'))
    except (tf.errors.OpError, ValueError) as e:
      raise CrashSafetyError('listed checkpoint %s is unreadable: %s' %
                             (path, str(e).split('\n')[0]))
    if expected_variables is None and path == state.model_checkpoint_path:
      expected_variables = dict((n, list(s)) for n, s in shapes.items())
    if expected_variables is not None:
      missing = sorted(set(expected_variables) - set(shapes))
      if missing:
        raise CrashSafetyError('listed checkpoint %s lacks %d variables, '
                               'e.g. %s' % (path, len(missing), missing[0]))
  newest = steps[state.model_checkpoint_path]
  if newest != max(steps.values()):
    raise CrashSafetyError('the newest listed checkpoint %s (step %d) is not '
                           'the highest step %d' %
                           (state.model_checkpoint_path, newest,
                            max(steps.values())))
  # Every checkpoint of the model must hold every variable: compare with
  # the newest one too (expected_variables may come from an earlier call).
  return newest, expected_variables, paths


def _wait_for_step(process, log_path, deadline):
  """Waits until the training log shows a step; False if it ended first."""
  while time.time() < deadline and process.poll() is None:
    if _STEP_RE.search(_read(log_path)):
      return True
    time.sleep(0.05)
  return False


def _kill_at_save(process, train_dir, deadline):
  """Kills `process` as soon as a new temporary checkpoint file appears.

  Returns:
    The temporary file name it saw, or None (killed at the deadline or the
    process ended by itself).
  """
  before = _temp_files(train_dir)
  while time.time() < deadline and process.poll() is None:
    new = _temp_files(train_dir) - before
    if new:
      process.send_signal(signal.SIGKILL)
      return sorted(new)[0]
    time.sleep(0.0005)
  if process.poll() is None:
    process.send_signal(signal.SIGKILL)
  return None


def _check_resume(log_text, resumed_from, saved_step):
  """Checks what a restarted run logged against the state before it.

  Args:
    log_text: the restarted run's log.
    resumed_from: the newest listed checkpoint when it started, or None.
    saved_step: its global step, or None.

  Raises:
    CrashSafetyError: it resumed from another checkpoint or stepped back.
  """
  match = _RESUME_RE.search(log_text)
  if resumed_from is None:
    if match:
      raise CrashSafetyError('resumed from %s although no checkpoint was '
                             'listed' % match.group(1))
  elif 'Resuming from' in log_text or _STEP_RE.search(log_text):
    # (A run killed during start-up may have logged neither yet.)
    if not match or match.group(1) != resumed_from:
      raise CrashSafetyError('expected "Resuming from %s", got %s' %
                             (resumed_from,
                              match.group(0) if match else 'no such line'))
  steps = [int(s) for s in _STEP_RE.findall(log_text)]
  first_expected = (saved_step or 0) + 1
  if steps and steps[0] != first_expected:
    raise CrashSafetyError('the first step after resuming from step %s was '
                           '%d, expected %d' %
                           (saved_step, steps[0], first_expected))


def _check_no_traceback(log_text, what):
  """Raises CrashSafetyError if a script failed (traceback or error line)."""
  # `<script>.py: error:` is how run_or_exit reports a ScriptError.
  for marker in ('Traceback', '.py: error:', 'DataLossError'):
    if marker in log_text:
      line = [l for l in log_text.splitlines() if marker in l][0]
      raise CrashSafetyError('%s logged %r: %s' % (what, marker, line))


def _check_evaluations(eval_log, eval_dir):
  """Checks the evaluator's output and metrics files.

  Returns:
    The sorted global steps it evaluated.

  Raises:
    CrashSafetyError: it failed, or evaluated a checkpoint whose stored step
      does not match its name.
  """
  _check_no_traceback(eval_log, 'the evaluator')
  steps = []
  for path in glob.glob(os.path.join(eval_dir, 'metrics-*.json')):
    with open(path) as f:
      metrics = json.load(f)
    name_step = int(re.search(r'-(\d+)$', metrics['checkpoint']).group(1))
    if metrics['global_step'] != name_step or metrics['num_examples'] != 6:
      raise CrashSafetyError('evaluated an inconsistent checkpoint: %s' %
                             metrics)
    steps.append(name_step)
  return sorted(steps)


def run_kill_loop(work_dir, trials, seed=0, max_steps=400, with_eval=True,
                  modes=None, python=sys.executable, log=print,
                  launch_timeout_secs=120, final_steps=None):
  """Runs the kill loop; raises CrashSafetyError on the first failed check.

  Args:
    work_dir: an empty directory for the data, train_dir, eval_dir and logs.
    trials: number of SIGKILLs.
    seed: seed of the random kill moments (and of the mode order).
    max_steps: --max_number_of_steps of training (see `final_steps`).
    with_eval: run the watching evaluator beside training.
    modes: kill modes in order (cycled), default KILL_MODES shuffled.
    python: interpreter that runs the scripts.
    log: function printing one line.
    launch_timeout_secs: longest wait for one launch to reach a kill point
      (or, for the last launch, to finish).
    final_steps: None: the last launch trains to `max_steps`. A number: it
      trains that many steps past the newest checkpoint left by the kills
      (a shorter, cheaper end; `max_steps` then only bounds the killed
      launches, which must not finish before their kill).

  Returns:
    A summary dict: trials, modes, kills_at_save (killed as soon as a
    checkpoint write was seen), kills_mid_write (of those, the ones that
    left the temporary file behind), steps_at_kills, resumed_from,
    evaluated_steps, final_step.
  """
  rng = random.Random(seed)
  if modes is None:
    modes = list(KILL_MODES)
    rng.shuffle(modes)
  data_dir = os.path.join(work_dir, 'data')
  train_dir = os.path.join(work_dir, 'train')
  eval_dir = os.path.join(work_dir, 'eval')
  make_dataset(data_dir)
  evaluator, eval_log_path = None, os.path.join(work_dir, 'eval.log')
  if with_eval:
    os.makedirs(train_dir)
    # Its timeout only ends it if training stalls; it is stopped below.
    evaluator = _start(eval_command(data_dir, train_dir, eval_dir, 600,
                                    python), eval_log_path)
  summary = {'trials': 0, 'kills_at_save': 0, 'kills_mid_write': 0,
             'steps_at_kills': [],
             'resumed_from': [], 'evaluated_steps': [], 'final_step': None,
             'modes': []}
  variables = None
  saved_step = None
  resumed_from = None
  try:
    for trial in range(trials + 1):
      last = trial == trials
      mode = None if last else modes[trial % len(modes)]
      log_path = os.path.join(work_dir, 'train-%03d.log' % trial)
      start = time.time()
      deadline = start + launch_timeout_secs
      launch_steps = max_steps
      if last and final_steps is not None:
        launch_steps = (saved_step or 0) + final_steps
      process = _start(train_command(data_dir, train_dir, launch_steps,
                                     python), log_path)
      temp_name = None
      if mode == 'first_save':
        temp_name = _kill_at_save(process, train_dir, deadline)
      elif mode == 'step_save':
        if _wait_for_step(process, log_path, deadline):
          # Skip a little so some kills land in later saves.
          time.sleep(rng.uniform(0.0, 1.5))
          temp_name = _kill_at_save(process, train_dir, deadline)
      elif mode == 'random':
        # Start-up takes several seconds; kill anywhere in start-up or the
        # first seconds of training.
        delay = rng.uniform(1.0, 15.0)
        while time.time() < start + delay and process.poll() is None:
          time.sleep(0.01)
      if process.poll() is None and not last:
        process.send_signal(signal.SIGKILL)
      try:
        code = process.wait(timeout=max(1, deadline - time.time()))
      except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise CrashSafetyError('launch %d did not finish in %d s; see %s' %
                               (trial, launch_timeout_secs, log_path))
      text = _read(log_path)
      _check_resume(text, resumed_from, saved_step)
      left_behind = temp_name is not None and temp_name in _temp_files(
          train_dir)
      new_step, variables, paths = check_checkpoints(train_dir, variables)
      if saved_step is not None and (new_step is None or
                                     new_step < saved_step):
        raise CrashSafetyError('the newest saved step went from %s to %s' %
                               (saved_step, new_step))
      steps = [int(s) for s in _STEP_RE.findall(text)]
      if last:
        if code != 0:
          _check_no_traceback(text, 'the last training run')
          raise CrashSafetyError('the last training run exited with %d; '
                                 'see %s' % (code, log_path))
        if new_step != launch_steps:
          raise CrashSafetyError('training ended at step %s, not %d' %
                                 (new_step, launch_steps))
        summary['final_step'] = new_step
        log('final run: resumed from %s, reached step %d (%d checkpoints '
            'listed, all complete)' % (resumed_from, new_step, len(paths)))
      else:
        if code != -signal.SIGKILL:
          _check_no_traceback(text, 'training launch %d' % trial)
          raise CrashSafetyError(
              'launch %d ended by itself (status %s) before the kill; raise '
              '--max_steps' % (trial, code))
        summary['trials'] += 1
        summary['modes'].append(mode)
        summary['kills_at_save'] += int(temp_name is not None)
        summary['kills_mid_write'] += int(left_behind)
        summary['steps_at_kills'].append(steps[-1] if steps else None)
        log('trial %d (%s): killed after %.1f s at step %s%s; newest '
            'checkpoint step %s, %d listed, all complete' %
            (trial, mode, time.time() - start,
             steps[-1] if steps else '(none yet)',
             ', mid-write of %s' % temp_name if left_behind else
             (', while %s existed' % temp_name if temp_name else ''),
             new_step, len(paths)))
      summary['resumed_from'].append(resumed_from)
      saved_step = new_step
      resumed_from = tf.train.latest_checkpoint(train_dir)
    if evaluator is not None:
      wanted = os.path.join(eval_dir,
                            'metrics-%d.json' % summary['final_step'])
      deadline = time.time() + launch_timeout_secs
      while (not os.path.exists(wanted) and time.time() < deadline and
             evaluator.poll() is None):
        time.sleep(0.2)
      if evaluator.poll() is not None:
        raise CrashSafetyError('the evaluator exited (status %s); see %s' %
                               (evaluator.returncode, eval_log_path))
      if not os.path.exists(wanted):
        raise CrashSafetyError('the evaluator did not evaluate the final '
                               'checkpoint; see %s' % eval_log_path)
      evaluator.send_signal(signal.SIGTERM)
      evaluator.wait()
      evaluator = None
      summary['evaluated_steps'] = _check_evaluations(_read(eval_log_path),
                                                      eval_dir)
      log('evaluator: evaluated %d checkpoints (steps %s), no errors' %
          (len(summary['evaluated_steps']), summary['evaluated_steps']))
  finally:
    if evaluator is not None and evaluator.poll() is None:
      evaluator.kill()
      evaluator.wait()
  return summary


FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_integer('trials', 20, 'Number of SIGKILLs.')
  flags.DEFINE_integer('seed', 0, 'Seed of the kill moments.')
  flags.DEFINE_integer('max_steps', 0, 'Training steps; 0: 40 per trial '
                       'plus 100.')
  flags.DEFINE_string('work_dir', None, 'Directory for data, checkpoints '
                      'and logs (default: a new temporary one, removed on '
                      'success).')
  flags.DEFINE_bool('eval', True, 'Run eval_image_classifier.py in watch '
                    'mode beside training.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='kill_loop_')
  if os.path.exists(work_dir) and os.listdir(work_dir):
    raise app.UsageError('--work_dir=%s is not empty.' % work_dir)
  max_steps = FLAGS.max_steps or 40 * FLAGS.trials + 100
  start = time.time()
  try:
    summary = run_kill_loop(work_dir, FLAGS.trials, seed=FLAGS.seed,
                            max_steps=max_steps, with_eval=FLAGS.eval)
  except CrashSafetyError as e:
    print('FAILED: %s\n(logs and checkpoints kept in %s)' % (e, work_dir))
    return 1
  counts = dict((m, summary['modes'].count(m)) for m in KILL_MODES)
  print('PASSED: %d kills (%s), %d of them mid-write of a checkpoint; '
        'training resumed from the newest complete checkpoint every time '
        'and reached step %d; every listed checkpoint was complete after '
        'every kill; the evaluator evaluated %d checkpoints without an '
        'error. %.0f s.' %
        (summary['trials'], ', '.join('%s %d' % kv for kv in
                                      sorted(counts.items())),
         summary['kills_mid_write'], summary['final_step'],
         len(summary['evaluated_steps']), time.time() - start))
  if not FLAGS.work_dir:
    shutil.rmtree(work_dir, ignore_errors=True)
  return 0


if __name__ == '__main__':
  _define_flags()
  app.run(lambda argv: sys.exit(main(argv)))
