"""What a vae_jax workdir holds, and the rules for writing into one.

A workdir is a run (`launch.train`), a sweep (`launch.sweep`), a study
(`launch.reproduce`: one sweep per subdirectory) or a classifier. vae_jax
marks every workdir it creates with MARKER_FILE, and from then on:

- it writes only what LAYOUTS gives for its kind, each file whole (written
  to a temporary name, then renamed);
- `--overwrite` deletes what vae_jax wrote there, and only when everything
  there is accounted for by the layout, down to the files inside its
  directories; anything else (a user's notes, another tool's files, a run
  nested inside) makes it refuse, listing what it found, before it deletes
  anything. A nested vae_jax workdir (a study's sweeps and classifier) is
  deleted only while no process holds its lock;
- a non-empty directory without the marker is refused, naming what is in
  it, unless its config.json is a vae_jax config and its layout accounts
  for every entry (a run saved before workdirs were marked);
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
# What each metric launch.evaluate added is and how tables show its numbers.
EVALUATION_FILE = 'evaluation.json'

KINDS = ('run', 'sweep', 'study', 'classifier')

# The figures vae_jax draws (vae_jax.plots).
FIGURES = (
    'loss_curves.png', 'reconstructions.png', 'samples.png',
    'latent_scatter.png', 'latent_grid.png', 'latent_traversal.png',
    'interpolations.png', 'reconstructions_by_epoch.png',
    'confusion_matrix.png', 'class_histogram.png',
    'reconstruction_confusion.png', 'dataset.png', 'latent_by_class.png',
)
CLASSIFIER_INFO_FILE = 'classifier.json'
CLASSIFIER_WEIGHTS_DIR = 'weights'

# Each kind's layout: what vae_jax writes in such a workdir. A key is a name
# or an fnmatch pattern; its value says what the entry must be: FILE (a
# plain file), ORBAX (a directory orbax wrote: a checkpoint step or saved
# weights), NESTED (a vae_jax workdir of its own, checked with its own
# layout and lock) or a dict (a directory holding only that layout).
FILE, ORBAX, NESTED = 'file', 'orbax', 'nested'
TEMPORARY_PATTERN = '*.vae_jax-tmp'
_COMMON = {MARKER_FILE: FILE, LOCK_FILE: FILE, REPORT_FILE: FILE,
           TEMPORARY_PATTERN: FILE}
_CHECKPOINTS = {'[0-9]*': ORBAX, '*.orbax-checkpoint-tmp*': ORBAX,
                'checksums': {'[0-9]*.json': FILE, TEMPORARY_PATTERN: FILE},
                TEMPORARY_PATTERN: FILE}
# What one trained model's directory holds (a run's, a sweep member's).
_MODEL_FILES = {**{name: FILE for name in FIGURES},
                RECONSTRUCTIONS_BY_EPOCH: FILE, CONFUSION_FILE: FILE,
                RECONSTRUCTION_CONFUSION_FILE: FILE,
                'events.out.tfevents.*': FILE, TEMPORARY_PATTERN: FILE}
_TRAINED = {**_COMMON, CONFIG_FILE: FILE, METRICS_FILE: FILE,
            RESULTS_FILE: FILE, DATA_FILE: FILE, EVALUATION_FILE: FILE}
LAYOUTS = {
    'run': {**_TRAINED, **_MODEL_FILES, CHECKPOINTS_DIR: _CHECKPOINTS},
    'sweep': {**_TRAINED, **_MODEL_FILES, RESULTS_CSV: FILE, RESULTS_MD: FILE,
              'metrics_vs_*.png': FILE, 'curves_by_*.png': FILE,
              'group_[0-9]*': {CHECKPOINTS_DIR: _CHECKPOINTS,
                               TEMPORARY_PATTERN: FILE},
              'member_[0-9][0-9][0-9]': _MODEL_FILES},
    # A study's experiments and its classifier are workdirs of their own.
    'study': {**_COMMON, NOTES_FILE: FILE, '*': NESTED},
    'classifier': {**_COMMON, CLASSIFIER_INFO_FILE: FILE,
                   CLASSIFIER_WEIGHTS_DIR: ORBAX,
                   CLASSIFIER_WEIGHTS_DIR + '.orbax-checkpoint-tmp*': ORBAX},
}
# Files every orbax checkpoint directory holds one of, once started.
_ORBAX_FILES = ('_CHECKPOINT_METADATA', '_METADATA', 'commit_success.txt',
                'manifest.ocdbt')


class WorkdirError(RuntimeError):
  """The workdir holds something this run must not resume or overwrite."""


# ------------------------------------------------------------- sweep layout
def group_dir(workdir: str | Path, group: int) -> Path:
  """Where a sweep keeps the checkpoints of its group `group` (0, 1, ...)."""
  return Path(workdir) / f'group_{group}'


def member_dir(workdir: str | Path, member: int) -> Path:
  """Where a sweep keeps member `member`'s figures and evaluation files."""
  return Path(workdir) / f'member_{member:03d}'


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
def record_data_source(directory: str | Path, name: str, source: str,
                       image_shape: tuple[int, int]) -> None:
  """Writes data.json: the data set a run trained on, the directory it was
  read from and its images' (H, W), so that launch.evaluate finds the same
  files later without the flags or environment the run was started with,
  and a model can be rebuilt without them (vae_jax.load_model)."""
  atomic_write_json(Path(directory) / DATA_FILE,
                    {'name': name, 'source': source,
                     'image_shape': list(image_shape)})


def recorded_image_shape(directory: str | Path) -> tuple[int, int] | None:
  """The (H, W) data.json records (None: no file, or one written before
  it recorded the shape)."""
  path = Path(directory) / DATA_FILE
  if not path.exists():
    return None
  shape = json.loads(path.read_text()).get('image_shape')
  return tuple(shape) if shape else None


def recorded_data_dir(directory: str | Path) -> str | None:
  """The data directory data.json records, if it is still there."""
  path = Path(directory) / DATA_FILE
  if not path.exists():
    return None
  source = json.loads(path.read_text()).get('source', '')
  return source if source and Path(source).is_dir() else None


def _layout_entry(name: str, layout: dict):
  """What `layout` says an entry called `name` must be (None: nothing)."""
  if name in layout:
    return layout[name]
  for pattern, spec in layout.items():
    if fnmatch.fnmatchcase(name, pattern):
      return spec
  return None


def _is_orbax_directory(path: Path) -> bool:
  if '.orbax-checkpoint-tmp' in path.name:
    return True  # a save a killed process left; claim clears it
  return any((path / name).exists() for name in _ORBAX_FILES)


def unaccounted_entries(directory: str | Path, kind: str) -> list[str]:
  """Paths under `directory` (relative, sorted) that a `kind` workdir's
  layout does not account for: what vae_jax did not write."""
  return _unaccounted(Path(directory), LAYOUTS[kind], '')


def _unaccounted(directory: Path, layout: dict, prefix: str) -> list[str]:
  found = []
  for entry in sorted(directory.iterdir()):
    path = prefix + entry.name
    spec = _layout_entry(entry.name, layout)
    if spec is None or entry.is_symlink():  # vae_jax makes no links
      found.append(path)
    elif spec == FILE:
      if not entry.is_file():
        found.append(path)
    elif spec == ORBAX:
      if not (entry.is_dir() and _is_orbax_directory(entry)):
        found.append(path)
    elif spec == NESTED:
      kind = marked_kind(entry) if entry.is_dir() else None
      if kind is None:
        found.append(path)
      else:
        found.extend(_unaccounted(entry, LAYOUTS[kind], path + '/'))
    elif not entry.is_dir():
      found.append(path)
    else:
      found.extend(_unaccounted(entry, spec, path + '/'))
  return found


def _saved_config(path: Path) -> dict | None:
  """config.json when vae_jax wrote it (its shape, not just its keys)."""
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  if not isinstance(saved, dict):
    return None
  data, model = saved.get('data'), saved.get('model')
  if not (isinstance(data, dict) and isinstance(data.get('name'), str)
          and isinstance(model, dict) and isinstance(model.get('name'), str)
          and isinstance(saved.get('optimizer'), str)
          and isinstance(saved.get('seed'), int)
          and isinstance(saved.get('num_epochs'), int)):
    return None
  return saved


def _is_classifier_info(path: Path) -> bool:
  try:
    info = json.loads(path.read_text())
  except (OSError, ValueError):
    return False
  return isinstance(info, dict) and isinstance(info.get('sha256'), str)


def marked_kind(directory: Path) -> str | None:
  """The kind of vae_jax workdir `directory` is, or None if it is none.

  Marked ones say so in MARKER_FILE. An unmarked directory (from before
  workdirs were marked) is recognised only when it holds a vae_jax
  config.json (a run or sweep) or vae_jax subdirectories (a study), and its
  layout accounts for every entry in it.
  """
  directory = Path(directory)
  marker = directory / MARKER_FILE
  if marker.is_file():
    try:
      return json.loads(marker.read_text())['kind']
    except (OSError, ValueError, KeyError, TypeError):
      return None
  if not directory.is_dir() or directory.is_symlink():
    return None
  saved = _saved_config(directory / CONFIG_FILE)
  if saved is not None:
    kind = 'sweep' if 'sweep' in saved else 'run'
  elif _is_classifier_info(directory / CLASSIFIER_INFO_FILE):
    kind = 'classifier'
  elif any(e.is_dir() for e in directory.iterdir()):
    kind = 'study'
  else:
    return None
  return None if _unaccounted(directory, LAYOUTS[kind], '') else kind


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
    saved = _saved_config(directory / CONFIG_FILE)
    listed = (unaccounted_entries(directory,
                                  'sweep' if 'sweep' in saved else 'run')
              if saved is not None
              else sorted(p.name for p in directory.iterdir()))
    raise WorkdirError(
        f'{directory} is not a vae_jax workdir and is not empty (it holds '
        f'{_describe(listed)}); vae_jax writes only into new or empty '
        'directories and its own workdirs. Choose a new or empty --workdir.')
  if found != kind:
    raise WorkdirError(f'{directory} holds a vae_jax {found}, not a {kind}; '
                       'choose a new or empty --workdir.')
  return True


def mark(directory: Path, kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f'Unknown workdir kind {kind!r}; one of {KINDS}.')
  atomic_write_json(directory / MARKER_FILE, {'kind': kind})


def delete_owned(directory: Path, kind: str) -> None:
  """Deletes what vae_jax wrote in the `kind` workdir `directory` (all but
  its marker and lock, which the caller holds), config.json last, so that
  a deletion killed part way is still refused or finished by the next
  --overwrite, never resumed from.

  Raises:
    WorkdirError, before anything is deleted: the layout does not account
      for some entry (they are listed), or a nested workdir is in use.
  """
  directory = Path(directory)
  foreign = unaccounted_entries(directory, kind)
  if foreign:
    raise WorkdirError(
        f'--overwrite refused: {directory} holds what vae_jax did not write '
        f'there: {_describe(foreign)}. vae_jax deletes only its own files; '
        'move those elsewhere, or choose a new --workdir.')
  nested_locks = []
  try:
    for entry in directory.iterdir():
      if _layout_entry(entry.name, LAYOUTS[kind]) == NESTED:
        nested_locks.append(WorkdirLock(entry))  # refuses one in use
    entries = sorted(
        (e for e in directory.iterdir()
         if e.name not in (MARKER_FILE, LOCK_FILE)),
        key=lambda e: e.name == CONFIG_FILE)
    for entry in entries:
      if entry.is_dir():
        shutil.rmtree(entry)
      else:
        entry.unlink()
  finally:
    for lock in nested_locks:
      lock.release()


def remove_stale_temporaries(directory: Path) -> None:
  """Deletes temporary files and orbax's unfinished checkpoint directories
  that a killed process left in the workdir `directory` (the caller holds
  its lock). Nested workdirs are not entered: each has its own holder."""
  for path in _own_paths(Path(directory)):
    if path.name.endswith('.vae_jax-tmp'):
      if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
      else:
        path.unlink(missing_ok=True)
    elif '.orbax-checkpoint-tmp' in path.name and path.is_dir():
      shutil.rmtree(path, ignore_errors=True)
      log.info('Removed an unfinished checkpoint: %s', path)


def _own_paths(directory: Path) -> list[Path]:
  """Every path under `directory`, not entering nested workdirs or links."""
  paths = []
  for entry in directory.iterdir():
    paths.append(entry)
    if (entry.is_dir() and not entry.is_symlink()
        and not (entry / MARKER_FILE).exists()):
      paths.extend(_own_paths(entry))
  return paths


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
      delete_owned(directory, kind)
    remove_stale_temporaries(directory)
    mark(directory, kind)
    if config is not None:
      atomic_write_text(config_path,
                        json.dumps(config, indent=2, sort_keys=True))
  except BaseException:
    lock.release()
    raise
  return lock, existing and not differences
