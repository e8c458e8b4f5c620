"""What a vae_jax workdir holds, and the rules for writing into one.

A workdir is a run (`launch.train`), a sweep (`launch.sweep`), a study
(`launch.reproduce`: one sweep per subdirectory) or a classifier. vae_jax
marks every workdir it creates with MARKER_FILE, and from then on:

- it writes only the names in OWNED_NAMES / OWNED_PATTERNS there, each
  file whole (written to a temporary name, then renamed);
- `--overwrite` deletes only those names, never a file vae_jax did not
  write, even in its own workdir;
- a non-empty directory without the marker is refused, naming what is in
  it, unless everything in it is a file vae_jax writes and its config.json
  is a vae_jax config (a run saved before workdirs were marked);
- one process at a time holds a workdir, through an OS lock on LOCK_FILE
  that the kernel releases when the holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger('vae_jax.workdir')

MARKER_FILE = '.vae_jax'
LOCK_FILE = '.vae_jax.lock'
CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.jsonl'
RESULTS_FILE = 'results.json'
RESULTS_CSV = 'results.csv'
RESULTS_MD = 'results.md'
NOTES_FILE = 'NOTES.md'
REPORT_FILE = 'report.html'
CHECKPOINTS_DIR = 'checkpoints'
RECONSTRUCTIONS_BY_EPOCH = 'reconstructions_by_epoch.npz'
CONFUSION_FILE = 'confusion.json'
RECONSTRUCTION_CONFUSION_FILE = 'reconstruction_confusion.json'
CLASSIFIER_DIR = 'classifier'
DATA_FILE = 'data.json'

KINDS = ('run', 'sweep', 'study', 'classifier')

# The figures vae_jax draws (vae_jax.plots).
FIGURES = (
    'loss_curves.png', 'reconstructions.png', 'samples.png',
    'latent_scatter.png', 'latent_grid.png', 'latent_traversal.png',
    'interpolations.png', 'reconstructions_by_epoch.png',
    'confusion_matrix.png', 'class_histogram.png',
    'reconstruction_confusion.png', 'dataset.png', 'latent_by_class.png',
)
OWNED_NAMES = frozenset({
    MARKER_FILE, LOCK_FILE, CONFIG_FILE, METRICS_FILE, RESULTS_FILE,
    RESULTS_CSV, RESULTS_MD, NOTES_FILE, REPORT_FILE, CHECKPOINTS_DIR,
    RECONSTRUCTIONS_BY_EPOCH, CONFUSION_FILE, RECONSTRUCTION_CONFUSION_FILE,
    CLASSIFIER_DIR, DATA_FILE, *FIGURES,
})
OWNED_PATTERNS = ('group_[0-9]*', 'member_[0-9][0-9][0-9]',
                  'metrics_vs_*.png', 'curves_by_*.png', '*.vae_jax-tmp',
                  'events.out.tfevents.*', 'classifier.json')
# What a config.json written by vae_jax always has at its top level.
_CONFIG_KEYS = frozenset({'data', 'model', 'optimizer', 'seed', 'num_epochs'})


class WorkdirError(RuntimeError):
  """The workdir holds something this run must not resume or overwrite."""


# -------------------------------------------------------------- atomic files
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
  """Writes `data` to path whole: a reader or a crash sees the old file or
  the new one, never a part."""
  path = Path(path)
  tmp = path.with_name(path.name + '.vae_jax-tmp')
  with open(tmp, 'wb') as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


def atomic_write_text(path: str | Path, text: str) -> Path:
  return atomic_write_bytes(path, text.encode('utf-8'))


def atomic_write_json(path: str | Path, value: Any) -> Path:
  """JSON that strict parsers accept: a NaN or infinity is an error here,
  not 'NaN' in the file."""
  return atomic_write_text(path, json.dumps(value, indent=2, allow_nan=False)
                           + '\n')


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
  """A temporary path to write with any library (np.savez, savefig); renamed
  to `path` when the block ends without an error."""
  path = Path(path)
  tmp = path.with_name(path.name + '.vae_jax-tmp')
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if tmp.exists():
      tmp.unlink()


# ------------------------------------------------------------------ ownership
def record_data_source(directory: str | Path, name: str, source: str) -> None:
  """Writes data.json: the data set a run trained on and the directory it
  was read from, so that launch.evaluate finds the same files later without
  the flags or environment the run was started with."""
  atomic_write_json(Path(directory) / DATA_FILE,
                    {'name': name, 'source': source})


def recorded_data_dir(directory: str | Path) -> str | None:
  """The data directory data.json records, if it is still there."""
  path = Path(directory) / DATA_FILE
  if not path.exists():
    return None
  source = json.loads(path.read_text()).get('source', '')
  return source if source and Path(source).is_dir() else None


def is_owned_name(name: str) -> bool:
  """Whether vae_jax writes a file or directory of this name in a workdir."""
  return name in OWNED_NAMES or any(fnmatch.fnmatchcase(name, pattern)
                                    for pattern in OWNED_PATTERNS)


def _is_vae_jax_config(path: Path) -> bool:
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError):
    return False
  return isinstance(saved, dict) and _CONFIG_KEYS <= set(saved)


def marked_kind(directory: Path) -> str | None:
  """The kind of vae_jax workdir `directory` is, or None if it is none.

  Marked ones say so in MARKER_FILE. An unmarked directory is recognised
  only when everything in it is a name vae_jax writes and it holds a
  vae_jax config.json (a run or sweep) or a vae_jax subdirectory (a study).
  """
  directory = Path(directory)
  marker = directory / MARKER_FILE
  if marker.is_file():
    try:
      return json.loads(marker.read_text())['kind']
    except (OSError, ValueError, KeyError, TypeError):
      return None
  if not directory.is_dir():
    return None
  entries = list(directory.iterdir())
  if _is_vae_jax_config(directory / CONFIG_FILE):
    if all(is_owned_name(e.name) for e in entries):
      with open(directory / CONFIG_FILE) as f:
        return 'sweep' if 'sweep' in json.load(f) else 'run'
    return None
  subdirs = [e for e in entries if e.is_dir() and not is_owned_name(e.name)]
  if subdirs and all(marked_kind(d) in ('run', 'sweep') for d in subdirs) and all(
      is_owned_name(e.name) for e in entries if e not in subdirs):
    return 'study'
  return None


def foreign_entries(directory: Path) -> list[str]:
  """Names in a directory that vae_jax did not write (sorted)."""
  return sorted(e.name for e in Path(directory).iterdir()
                if not is_owned_name(e.name)
                and not (e.is_dir() and marked_kind(e) is not None))


def _describe(names: list[str], limit: int = 8) -> str:
  shown = ', '.join(names[:limit])
  return shown + (f' and {len(names) - limit} more' if len(names) > limit
                  else '')


def check_writable(directory: str | Path, kind: str) -> bool:
  """Whether `directory` may become or is a vae_jax workdir of `kind`;
  returns True when it already is one. Reads only.

  Raises:
    WorkdirError: it holds something else (naming it), or another kind.
  """
  directory = Path(directory)
  if directory.exists() and not directory.is_dir():
    raise WorkdirError(f'{directory} is a file, not a directory; choose a '
                       'new or empty --workdir.')
  if not directory.exists() or all(
      e.name == LOCK_FILE or e.name.endswith('.vae_jax-tmp')
      for e in directory.iterdir()):
    return False  # new, empty, or left by a process killed as it started
  found = marked_kind(directory)
  if found is None:
    raise WorkdirError(
        f'{directory} is not a vae_jax workdir and is not empty (it holds '
        f'{_describe(foreign_entries(directory) or sorted(p.name for p in directory.iterdir()))}); '
        'vae_jax writes only into new or empty directories and its own '
        'workdirs. Choose a new or empty --workdir.')
  if found != kind:
    raise WorkdirError(f'{directory} holds a vae_jax {found}, not a {kind}; '
                       'choose a new or empty --workdir.')
  return True


def mark(directory: Path, kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f'Unknown workdir kind {kind!r}; one of {KINDS}.')
  atomic_write_json(directory / MARKER_FILE, {'kind': kind})


def delete_owned(directory: Path, keep: frozenset[str] = frozenset(
    {MARKER_FILE, LOCK_FILE})) -> list[str]:
  """Deletes what vae_jax wrote in `directory` (not `keep`); returns the
  foreign names it left alone."""
  left = []
  for entry in Path(directory).iterdir():
    if entry.name in keep:
      continue
    owned = is_owned_name(entry.name) or (
        entry.is_dir() and marked_kind(entry) is not None)
    if not owned:
      left.append(entry.name)
      continue
    if entry.is_dir() and not entry.is_symlink():
      shutil.rmtree(entry)
    else:
      entry.unlink()
  if left:
    log.warning('Left alone in %s (not written by vae_jax): %s', directory,
                _describe(sorted(left)))
  return sorted(left)


def remove_stale_temporaries(directory: Path) -> None:
  """Deletes temporary files and orbax's unfinished checkpoint directories
  that a killed process left behind (under `directory`, recursively)."""
  for path in list(Path(directory).rglob('*.vae_jax-tmp')):
    path.unlink(missing_ok=True)
  checkpoints = Path(directory) / CHECKPOINTS_DIR
  if checkpoints.is_dir():
    for path in list(checkpoints.rglob('*.orbax-checkpoint-tmp*')):
      if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        log.info('Removed an unfinished checkpoint: %s', path)


# ---------------------------------------------------------------------- lock
class WorkdirLock:
  """An exclusive OS lock on a workdir, held until release() or the
  process's end (the kernel drops it even after kill -9)."""

  def __init__(self, directory: str | Path):
    self.path = Path(directory) / LOCK_FILE
    self._file = open(self.path, 'a+')
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      holder = self._file.read().strip() or 'another process'
      self._file.close()
      raise WorkdirError(
          f'{self.path.parent} is in use by {holder}; one vae_jax process '
          'per workdir. Wait for it to finish, or choose another '
          '--workdir.') from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f'process {os.getpid()} on {os.uname().nodename}\n')
    self._file.flush()

  def release(self) -> None:
    if not self._file.closed:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()

  def __enter__(self) -> 'WorkdirLock':
    return self

  def __exit__(self, *exc) -> None:
    self.release()


def claim(directory: str | Path, kind: str,
          config: dict | None = None, overwrite: bool = False,
          differences_fn=None) -> tuple[WorkdirLock, bool]:
  """Takes `directory` for a vae_jax `kind`; returns (its lock, resuming).

  A new or empty directory is marked and, with `config`, given its
  config.json. One of the same kind resumes when differences_fn(saved,
  config) lists nothing (or always, without a config). With differences
  it is refused unless `overwrite`, which deletes vae_jax's files there
  (and only those) first. Anything else is refused before a byte is
  written.

  Raises:
    WorkdirError: what is wrong and what to do.
  """
  directory = Path(directory)
  existing = check_writable(directory, kind)
  config_path = directory / CONFIG_FILE
  differences = []
  if existing and config is not None and config_path.exists():
    saved = json.loads(config_path.read_text())
    differences = differences_fn(saved, config) if differences_fn else []
    if differences and not overwrite:
      raise WorkdirError(
          f'Workdir {directory} holds a {kind} with a different config:\n  '
          + '\n  '.join(differences)
          + f'\nUse a new --workdir, or pass --overwrite to delete that '
          f'{kind} (only the files vae_jax wrote) and start this one.')
  directory.mkdir(parents=True, exist_ok=True)
  lock = WorkdirLock(directory)
  try:
    if differences:
      delete_owned(directory)
    remove_stale_temporaries(directory)
    mark(directory, kind)
    if config is not None:
      atomic_write_text(config_path,
                        json.dumps(config, indent=2, sort_keys=True))
  except BaseException:
    lock.release()
    raise
  return lock, existing and not differences
