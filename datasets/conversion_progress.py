"""Progress lines for long conversions: images done, rate and time left.

Shard writers run in parallel threads and each reports every item it
finishes; a line is logged at most once per interval, so a million-image
conversion logs a few hundred lines, not a million.
"""


import threading
import time

from absl import logging

DEFAULT_INTERVAL_SECS = 10.0


def format_duration(seconds):
  """`42 s`, `7 min 5 s` or `3 h 12 min`."""
  seconds = int(round(seconds))
  if seconds < 60:
    return '%d s' % seconds
  if seconds < 3600:
    return '%d min %d s' % (seconds // 60, seconds % 60)
  return '%d h %d min' % (seconds // 3600, seconds % 3600 // 60)


class ConversionProgress(object):
  """Counts converted items and logs progress at a bounded rate.

  Thread-safe: `advance` may be called from any shard writer.

  Args:
    label: what is converted, e.g. `shapes train`.
    total: items this run will convert (resumed shards excluded).
    interval_secs: least time between two lines.
    clock: monotonic time source (tests pass a fake one).
    log_fn: printf-style logger (default: absl's logging.info).
  """

  def __init__(self, label, total, interval_secs=DEFAULT_INTERVAL_SECS,
               clock=time.monotonic, log_fn=None):
    self.label = label
    self.total = total
    self.done = 0
    self.lines = 0
    self._interval = interval_secs
    self._clock = clock
    self._log = log_fn or logging.info
    self._lock = threading.Lock()
    self._start = self._last = clock()

  def advance(self, count=1):
    """Adds `count` finished items; logs a line if the interval has passed."""
    with self._lock:
      self.done += count
      now = self._clock()
      if now - self._last >= self._interval and self.done < self.total:
        self._last = now
        self._report(now)

  def _report(self, now):
    elapsed = max(now - self._start, 1e-6)
    rate = self.done / elapsed
    left = (self.total - self.done) / rate if rate > 0 else float('inf')
    self.lines += 1
    self._log('%s: %d/%d images (%.0f%%), %.1f images/s, ETA %s',
              self.label, self.done, self.total,
              100. * self.done / max(self.total, 1), rate,
              format_duration(left) if left != float('inf') else 'unknown')
