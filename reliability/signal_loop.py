r"""Signal loop: stops training with SIGTERM/SIGINT/SIGHUP and checks resume.

The companion of `kill_loop` (SIGKILL) for the signals a scheduler or a
user sends. Each trial starts `train_image_classifier.py` on the tiny
shapes set, sends a stop signal at a random moment and checks that

  * the process exits with status 128 + the signal (143, 130, 129);
  * it printed no traceback; after a signal during training it printed
    "interrupted by SIG... at step N; checkpoint <train_dir>/model.ckpt-N
    saved", and N is the newest listed checkpoint's step;
  * every listed checkpoint reads back in full and the lock file is gone;
  * the next launch resumes from that checkpoint and its first step is
    N + 1.

Modes, taken in turn (seeded):
  startup        a signal 0-3 s after the lock is taken (graph building,
                 restore, or the first steps when start-up is quick): before
                 the first step the run stops at once, nothing to save;
  training       a signal once steps are running;
  second_signal  a signal once steps are running, and a second one as soon
                 as the save of the stop is seen writing (a temporary
                 checkpoint file): the process exits at once and the
                 listed checkpoints stay readable.

Usage (the long version; tests/test_preemption.py runs a short one):

  python -m reliability.signal_loop --trials=12 --seed=1
"""

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

from reliability import kill_loop
from reliability.kill_loop import CrashSafetyError

MODES = ('startup', 'training', 'second_signal')
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STOPPED_RE = re.compile(r'interrupted by (SIG[A-Z]+) at step (\d+); '
                         r'checkpoint (\S+) saved; run the same command')
_LOCK = '.trainer.lock'


def _wait_for_temp_file(process, train_dir, deadline, before):
  """Waits for a checkpoint file being written; its name, or None.

  Args:
    before: `kill_loop._temp_files(train_dir)` taken before the signal that
      starts the save; taken after it, a loaded machine could let the save
      begin first and its temporary would count as old.
  """
  while time.time() < deadline and process.poll() is None:
    new = kill_loop._temp_files(train_dir) - before  # pylint: disable=protected-access
    if new:
      return sorted(new)[0]
    time.sleep(0.0005)
  return None


def _signal_at(process, mode, rng, log_path, train_dir, deadline):
  """Sends this trial's signal(s); returns (signal, second one landed
  during a save)."""
  signum = rng.choice(SIGNALS)
  if mode == 'startup':
    # The lock is taken once the handlers are installed; then the graph is
    # built and the checkpoint restored. (A signal while Python imports
    # acts as the default action does: test_preemption checks Ctrl-C.)
    lock = os.path.join(train_dir, _LOCK)
    while (not os.path.exists(lock) and time.time() < deadline and
           process.poll() is None):
      time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 3.0))
  else:
    if not kill_loop._wait_for_step(process, log_path, deadline):  # pylint: disable=protected-access
      raise CrashSafetyError('training ended or stalled before its first '
                             'step; see %s' % log_path)
    time.sleep(rng.uniform(0.0, 1.0))
  if process.poll() is not None:
    raise CrashSafetyError('training ended by itself before the signal; '
                           'see %s' % log_path)
  before = kill_loop._temp_files(train_dir)  # pylint: disable=protected-access
  process.send_signal(signum)
  mid_save = False
  if mode == 'second_signal':
    if _wait_for_temp_file(process, train_dir, deadline, before):
      process.send_signal(signal.SIGTERM)
      mid_save = True
  return signum, mid_save


def _check_stop(code, signum, text, mode, mid_save, train_dir, newest_step):
  """Checks how one stopped launch ended; returns the step it reported."""
  kill_loop._check_no_traceback(text, 'the stopped run')  # pylint: disable=protected-access
  if os.path.exists(os.path.join(train_dir, _LOCK)):
    raise CrashSafetyError('the lock file is still there after the stop')
  match = _STOPPED_RE.search(text)
  # A second signal that came after the stop was saved and the handlers
  # were gone ends the process as signals do.
  late_second = mid_save and code == -signal.SIGTERM and match is not None
  if code != 128 + signum and not late_second:
    raise CrashSafetyError('exit status %s after %s, expected %d' %
                           (code, signal.Signals(signum).name, 128 + signum))
  if mode == 'startup' or mid_save:
    if match is None and signal.Signals(signum).name not in text:
      raise CrashSafetyError('no line names the stop: %s' %
                             text.strip().splitlines()[-1:])
  if match is None:
    if mode == 'training':
      raise CrashSafetyError('no "interrupted by ... checkpoint ... saved" '
                             'line after a signal during training')
    return None
  step = int(match.group(2))
  if match.group(1) != signal.Signals(signum).name:
    raise CrashSafetyError('the line names %s, the signal was %s' %
                           (match.group(1), signal.Signals(signum).name))
  if step != newest_step or not match.group(3).endswith('-%d' % step):
    raise CrashSafetyError('the run said it saved step %d (%s) but the '
                           'newest listed checkpoint is step %s' %
                           (step, match.group(3), newest_step))
  return step


def _launch(command, log_path, mode, rng, train_dir, timeout_secs):
  """Runs one launch, signalled as `mode` says (None: not at all).

  Returns:
    (exit status, signal sent or None, second signal landed mid-save,
    time of the signal or None).
  """
  process = kill_loop._start(command, log_path)  # pylint: disable=protected-access
  deadline = time.time() + timeout_secs
  signum, mid_save, sent = None, False, None
  try:
    if mode is not None:
      signum, mid_save = _signal_at(process, mode, rng, log_path, train_dir,
                                    deadline)
      sent = time.time()
    return (process.wait(timeout=max(1, deadline - time.time())), signum,
            mid_save, sent)
  except subprocess.TimeoutExpired:
    raise CrashSafetyError('a launch did not end in %d s; see %s' %
                           (timeout_secs, log_path))
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()


def run_signal_loop(work_dir, trials, seed=0, modes=None, max_steps=100000,
                    final_steps=3, python=sys.executable, log=print,
                    launch_timeout_secs=180):
  """Runs the loop; raises CrashSafetyError on the first failed check.

  Args:
    work_dir: an empty directory for the data, train_dir and logs.
    trials: number of stopped launches.
    seed: seed of the moments, signals and (unless `modes`) mode order.
    modes: modes in order (cycled); default MODES shuffled.
    max_steps: --max_number_of_steps of the stopped launches (they must
      not reach it before their signal).
    final_steps: steps the last launch trains past the newest checkpoint.
    python: interpreter that runs the script.
    log: function printing one line.
    launch_timeout_secs: longest wait for one launch.

  Returns:
    A summary dict: modes, signals, stopped_steps (the step each launch
    reported saving, None where it stopped before training), seconds_to_exit,
    second_signals_mid_save, final_step.
  """
  rng = random.Random(seed)
  if modes is None:
    modes = list(MODES)
    rng.shuffle(modes)
  data_dir = os.path.join(work_dir, 'data')
  train_dir = os.path.join(work_dir, 'train')
  kill_loop.make_dataset(data_dir)
  summary = {'modes': [], 'signals': [], 'stopped_steps': [],
             'seconds_to_exit': [], 'second_signals_mid_save': 0,
             'final_step': None}
  saved_step = resumed_from = variables = None
  for trial in range(trials + 1):
    last = trial == trials
    log_path = os.path.join(work_dir, 'train-%03d.log' % trial)
    steps = (saved_step or 0) + final_steps if last else max_steps
    mode = None if last else modes[trial % len(modes)]
    code, signum, mid_save, sent = _launch(
        kill_loop.train_command(data_dir, train_dir, steps, python),
        log_path, mode, rng, train_dir, launch_timeout_secs)
    text = kill_loop._read(log_path)  # pylint: disable=protected-access
    kill_loop._check_resume(text, resumed_from, saved_step)  # pylint: disable=protected-access
    new_step, variables, paths = kill_loop.check_checkpoints(train_dir,
                                                             variables)
    if last:
      if code != 0 or new_step != steps:
        raise CrashSafetyError('the last run exited with %s at step %s, '
                               'expected 0 at %d; see %s' %
                               (code, new_step, steps, log_path))
      summary['final_step'] = new_step
      log('final run: resumed from %s, reached step %d' %
          (resumed_from, new_step))
      break
    step = _check_stop(code, signum, text, mode, mid_save, train_dir,
                       new_step)
    summary['modes'].append(mode)
    summary['signals'].append(signal.Signals(signum).name)
    summary['stopped_steps'].append(step)
    summary['seconds_to_exit'].append(round(time.time() - sent, 2))
    summary['second_signals_mid_save'] += int(mid_save)
    log('trial %d (%s, %s%s): exit %s after %.1f s, %s; newest checkpoint '
        'step %s, %d listed, all readable' %
        (trial, mode, signal.Signals(signum).name,
         ' + SIGTERM mid-save' if mid_save else '', code,
         time.time() - sent,
         'saved step %d' % step if step is not None else
         ('stopped during the save' if mid_save else 'nothing to save'),
         new_step, len(paths)))
    saved_step = new_step
    resumed_from = tf.train.latest_checkpoint(train_dir)
  return summary


FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_integer('trials', 9, 'Number of stopped launches.')
  flags.DEFINE_integer('seed', 0, 'Seed of the moments and signals.')
  flags.DEFINE_string('work_dir', None, 'Directory for data, checkpoints '
                      'and logs (default: a new temporary one, removed on '
                      'success).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='signal_loop_')
  if os.path.exists(work_dir) and os.listdir(work_dir):
    raise app.UsageError('--work_dir=%s is not empty.' % work_dir)
  start = time.time()
  try:
    summary = run_signal_loop(work_dir, FLAGS.trials, seed=FLAGS.seed)
  except CrashSafetyError as e:
    print('FAILED: %s\n(logs and checkpoints kept in %s)' % (e, work_dir))
    return 1
  print('PASSED: %d stops (%s); %d second signals landed mid-save; every '
        'run exited with 128 + its signal, resumed at the step it saved '
        'and left every listed checkpoint readable; %.0f s.' %
        (len(summary['modes']), ', '.join(
            '%s %s' % (m, s) for m, s in zip(summary['modes'],
                                              summary['signals'])),
         summary['second_signals_mid_save'], time.time() - start))
  if not FLAGS.work_dir:
    shutil.rmtree(work_dir, ignore_errors=True)
  return 0


if __name__ == '__main__':
  _define_flags()
  app.run(lambda argv: sys.exit(main(argv)))
