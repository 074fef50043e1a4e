"""Long conversions report images done, rate and time left, at a bounded rate."""


import re

from core import tf_compat  # noqa: F401  (must run before tf_slim is used)

from datasets import conversion_progress
from datasets import example_codecs
from datasets import sharded_writer

_LINE = re.compile(r'^toy train: (\d+)/(\d+) images \((\d+)%\), '
                   r'([\d.]+) images/s, ETA (.+)$')


class _FakeClock(object):
  """Advances `step` seconds every time it is read."""

  def __init__(self, step):
    self.now = 0.
    self.step = step

  def __call__(self):
    self.now += self.step
    return self.now


def test_progress_lines_are_bounded_and_give_rate_and_eta():
  lines = []
  clock = _FakeClock(step=1.)
  progress = conversion_progress.ConversionProgress(
      'toy train', 100, interval_secs=10., clock=clock,
      log_fn=lambda fmt, *args: lines.append(fmt % args))
  for _ in range(100):
    progress.advance()
  # One clock read per image: a line every ten images, not one per image.
  assert 5 <= len(lines) <= 10, lines
  assert progress.lines == len(lines)
  done, total, percent, rate, eta = _LINE.match(lines[0]).groups()
  assert int(total) == 100 and int(percent) == int(done)
  # The fake clock makes every image take one second.
  assert float(rate) == 1.0
  assert eta == conversion_progress.format_duration(100 - int(done))


def test_durations_read_naturally():
  assert conversion_progress.format_duration(42) == '42 s'
  assert conversion_progress.format_duration(425) == '7 min 5 s'
  assert conversion_progress.format_duration(3 * 3600 + 720) == '3 h 12 min'


def _example(item):
  return example_codecs.image_to_tfexample(
      b'%d' % item, b'png', 1, 1, 0).SerializeToString()


def _progress_lines(monkeypatch):
  lines = []
  monkeypatch.setattr(conversion_progress.logging, 'info',
                      lambda fmt, *args: lines.append(fmt % args))
  return lines


def test_write_split_reports_progress(tmp_path, monkeypatch):
  lines = _progress_lines(monkeypatch)
  sharded_writer.write_split(str(tmp_path), 'toy', 'train', list(range(30)),
                             _example, 3, 1, num_workers=2,
                             progress_interval_secs=0.)
  progress = [m.groups() for m in map(_LINE.match, lines) if m]
  assert progress, lines
  assert all(total == '30' for _, total, _, _, _ in progress)
  counts = [int(done) for done, _, _, _, _ in progress]
  assert counts == sorted(counts) and max(counts) < 30


def test_write_split_is_quiet_between_intervals(tmp_path, monkeypatch):
  lines = _progress_lines(monkeypatch)
  sharded_writer.write_split(str(tmp_path), 'toy', 'train', list(range(30)),
                             _example, 3, 1, num_workers=2)
  assert not [line for line in lines if _LINE.match(line)], lines
