"""Peak resident memory of a stretch of work in this process.

Imports no framework, so that either side of a comparison can use it.
The benchmark runs each framework in a process of its own and measures only
the training there: the peak is reset just before it starts (Linux:
/proc/self/clear_refs), so whatever the imports and data loading touched
earlier does not hide or inflate the training's own peak. Without that reset
(other systems) the process-lifetime ru_maxrss is used, an upper bound.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path
from typing import Iterator

_STATUS = Path('/proc/self/status')
_CLEAR_REFS = Path('/proc/self/clear_refs')
_MIB = 2.0 ** 20


def _status_kib(field: str) -> float | None:
  try:
    for line in _STATUS.read_text().splitlines():
      if line.startswith(field + ':'):
        return float(line.split()[1])
  except OSError:
    pass
  return None


def _ru_maxrss_mib() -> float:
  maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  # Linux reports KiB, macOS bytes.
  return maxrss / _MIB if sys.platform == 'darwin' else maxrss / 1024.0


def rss_mib() -> float:
  """Current resident set size in MiB (the peak so far where unknown)."""
  kib = _status_kib('VmRSS')
  return kib / 1024.0 if kib is not None else _ru_maxrss_mib()


def reset_peak() -> bool:
  """Sets the peak RSS to the current RSS; False where the OS cannot."""
  try:
    _CLEAR_REFS.write_text('5')
  except OSError:
    return False
  return _status_kib('VmHWM') is not None


def peak_mib() -> float:
  """Peak resident set size in MiB since the last reset_peak (or the start)."""
  kib = _status_kib('VmHWM')
  return kib / 1024.0 if kib is not None else _ru_maxrss_mib()


@contextlib.contextmanager
def track() -> Iterator[dict]:
  """Yields a dict filled on exit with the enclosed work's memory, in MiB.

  Keys: 'rss_before_mib' (resident when the work began), 'peak_rss_mib' (the
  process's peak during the work), 'increase_mib' (their difference: what
  the work itself needed at its peak) and 'method'.
  """
  result: dict = {}
  before = rss_mib()
  exact = reset_peak()
  yield result
  peak = peak_mib()
  result.update(
      rss_before_mib=before, peak_rss_mib=peak,
      increase_mib=max(0.0, peak - before),
      method=('VmHWM, reset before the work' if exact else
              'ru_maxrss over the process lifetime (an upper bound)'))
