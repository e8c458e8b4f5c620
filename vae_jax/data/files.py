"""Finding, verifying, downloading and loading the files of a registered
data set; the same for every data set (vae_jax.data.registry)."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
from typing import Sequence

from vae_jax.data import tfds as tfds_source
from vae_jax.data.cache import CACHE_DIR_ENV, DEFAULT_CACHE_DIR, cache_root
from vae_jax.data.cache import fetch_first_verified
from vae_jax.data.dataset import (REDOWNLOAD_HINT, ChecksumError, DataError,
                                  DataNotFoundError, Dataset, PathLike)
from vae_jax.data.formats import compression_of, decompress, read_bytes
from vae_jax.data.registry import SPLITS, Checksum, DatasetSpec, dataset_spec

_log = logging.getLogger(__name__)


DATA_DIR_ENV = 'VAE_JAX_DATA_DIR'


def _find_file(directory: pathlib.Path, stem: str,
               suffixes: Sequence[str]) -> pathlib.Path | None:
  for suffix in suffixes:
    candidate = directory / (stem + suffix)
    if candidate.is_file():
      return candidate
  return None


def _describe_files(spec: DatasetSpec) -> str:
  others = [s or 'uncompressed' for s in spec.local_suffixes
            if s != spec.remote_suffix]
  accepted = f'; also accepted: {", ".join(others)}' if others else ''
  return ', '.join(stem + spec.remote_suffix for stem in spec.stems) + accepted


def _missing_files(spec: DatasetSpec, directory: pathlib.Path) -> list[str]:
  """Names of the files of `spec` that are absent from `directory`."""
  return [
      ' or '.join(stem + s for s in spec.local_suffixes)
      for stem in spec.stems
      if _find_file(directory, stem, spec.local_suffixes) is None
  ]


def _dataset_dir(spec: DatasetSpec,
                 directory: pathlib.Path) -> pathlib.Path | None:
  """`directory` or `directory/name`, whichever holds all files, else None."""
  for candidate in (directory, directory / spec.name):
    if not _missing_files(spec, candidate):
      return candidate
  return None


def _require_dataset_dir(spec: DatasetSpec,
                         directory: PathLike) -> pathlib.Path:
  directory = pathlib.Path(directory).expanduser()
  found = _dataset_dir(spec, directory)
  if found is None:
    looked = []
    for candidate in (directory, directory / spec.name):
      if candidate.is_dir():
        missing = ', '.join(_missing_files(spec, candidate))
        looked.append(f'{candidate} lacks {missing}')
      else:
        looked.append(f'{candidate}: no such directory')
    raise DataNotFoundError(
        f'{spec.name}: data files not found in the directory given '
        f'(--data_dir; config.data.dir): {"; ".join(looked)}. To fix: put '
        f'the files ({_describe_files(spec)}) in {directory}, pass a '
        f'--data_dir that holds them, or leave it out to search '
        f'${DATA_DIR_ENV} and the cache and download them there.'
    )
  return found


# ------------------------------------------------------------ verification
def _matches(checksum: Checksum, content: bytes) -> bool:
  return hashlib.new(checksum.algorithm, content).hexdigest() == checksum.digest


def _mismatch(path: pathlib.Path, spec: DatasetSpec, stem: str,
              checked: Sequence[tuple[Checksum, bytes, str]],
              problem: str = '') -> ChecksumError:
  """The error for a file none of whose checksums matched.

  checked: (checksum, the bytes it was computed over, what those bytes are).
  problem: what else is wrong with the file, if anything.
  """
  lines = []
  for checksum, content, what in checked:
    got = hashlib.new(checksum.algorithm, content).hexdigest()
    origin = f' ({checksum.origin})' if checksum.origin else ''
    lines.append(f'  {checksum.algorithm} of the {what} is {got}, expected'
                 f' {checksum.digest}{origin}')
  problem = f'{problem}\n' if problem else ''
  return ChecksumError(
      f'{path}: does not verify as {spec.name}\'s {stem}:\n{problem}'
      + '\n'.join(lines) + '\nThe file is corrupted or is not the expected'
      f' file. {REDOWNLOAD_HINT}'
  )


class _File:
  """One file read for loading: its decompressed bytes and what is left to
  verify of them once the split they belong to is parsed."""

  def __init__(self, spec: DatasetSpec, stem: str, path: pathlib.Path,
               name: str, verify: bool):
    """Reads `path`, stored as `name` (stem + suffix: the compression).

    A digest of the stored bytes is checked here, so that a bad archive
    fails before anything is parsed; a digest of the decompressed bytes is
    left to `check_content`, after parsing has had its say.
    """
    self.spec, self.stem, self.path = spec, stem, path
    raw = read_bytes(path)
    stored = [c for c in spec.checksums if c.file == name and name != stem]
    self.content_checksums = [c for c in spec.checksums if c.file == stem]
    self.stored_checked = [(c, raw, 'file') for c in stored]
    verified = any(_matches(c, raw) for c in stored)
    try:
      self.content = decompress(raw, compression_of(pathlib.Path(name)),
                                str(path))
    except DataError as err:
      if verify and stored:
        raise _mismatch(path, spec, stem, self.stored_checked,
                        f'  it does not decompress either: {err}') from err
      raise
    self.unverified = verify and not verified

  def check_content(self, problem: str = '') -> None:
    """Raises ChecksumError, telling `problem` too, unless the file matched
    a checksum."""
    if not self.unverified:
      return
    if any(_matches(c, self.content) for c in self.content_checksums):
      self.unverified = False
      return
    checked = self.stored_checked + [(c, self.content, 'decompressed bytes')
                                     for c in self.content_checksums]
    raise _mismatch(self.path, self.spec, self.stem, checked, problem)


def _verify_download(spec: DatasetSpec, stem: str, name: str,
                     path: pathlib.Path) -> None:
  """Raises DataError unless `path` is a good copy of `name` (stem + suffix)."""
  _File(spec, stem, path, name, verify=True).check_content()


def load_from_dir(name: str, directory: PathLike,
                  verify: bool = True) -> Dataset:
  """Loads data set `name` from `directory` or `directory/name`.

  Args:
    name: a registered data set.
    directory: where the files are, under any of the data set's accepted
      suffixes.
    verify: check every file against the data set's checksums, and each
      split's example count, image shape and labels against its spec.

  Returns:
    Dataset with uint8 [N, H, W] images and int32 [N] labels.

  Raises:
    DataNotFoundError: a file is missing (the message lists which).
    ChecksumError: a file matches none of its checksums (the message names
      the file, the expected and the actual digests).
    DataError: a file is truncated or not in the data set's format.
  """
  spec = dataset_spec(name)
  found = _require_dataset_dir(spec, directory)
  files = {}
  for stem in spec.stems:
    path = _find_file(found, stem, spec.local_suffixes)
    files[stem] = _File(spec, stem, path, path.name, verify)
  arrays = {}
  for split in SPLITS:
    split_files = [files[stem] for stem in spec.split_stems(split)]
    images, labels = spec.parse_split([f.content for f in split_files],
                                      [str(f.path) for f in split_files])
    expected = spec.split_size(split)
    problem = ''
    if verify and len(images) != expected:
      problem = (f'  it holds {len(images)} examples, expected {expected}'
                 f' ({spec.name} {split}): it is truncated or is another'
                 ' data set')
    for file in split_files:
      file.check_content(problem)
    if problem:  # every file matched a checksum: the registration is wrong
      raise DataError(f'{found}: the {spec.name} files verify, but {split}'
                      f' holds {len(images)} examples where its registration'
                      f' says {expected}: correct num_{split}.')
    if verify and images.shape[1:] != spec.image_shape:
      raise DataError(
          f'{found}: {split} images are {images.shape[1:]}, but {spec.name}\'s'
          f' are {spec.image_shape}. Replace the files with {spec.name}\'s.')
    if verify and len(labels) and not (
        0 <= labels.min() <= labels.max() < spec.num_classes):
      raise DataError(
          f'{found}: {split} labels span {labels.min()}..{labels.max()}, but'
          f' {spec.name} has classes 0..{spec.num_classes - 1}. Replace the'
          f' files with {spec.name}\'s.')
    arrays[split] = images, labels
  (train_images, train_labels), (test_images, test_labels) = (
      arrays['train'], arrays['test'])
  return Dataset(spec.name, train_images, train_labels, test_images,
                 test_labels, source=str(found))


# ---------------------------------------------------------------- download
def _existing_valid_file(spec: DatasetSpec, stem: str,
                         directory: pathlib.Path) -> pathlib.Path | None:
  """A file for `stem` already in `directory` that verifies, else None."""
  for suffix in spec.local_suffixes:
    path = directory / (stem + suffix)
    if not path.is_file():
      continue
    try:
      _verify_download(spec, stem, path.name, path)
      return path
    except DataError as err:
      _log.warning('Ignoring invalid cached file, will download again: %s', err)
  return None


def _download_file(spec: DatasetSpec, stem: str, directory: pathlib.Path,
                   mirrors: Sequence[str], timeout: float) -> pathlib.Path:
  """Fetches one file from the first mirror whose copy verifies."""
  remote_name = stem + spec.remote_suffix
  urls = [mirror.rstrip('/') + '/' + remote_name for mirror in mirrors]
  path, failures = fetch_first_verified(
      urls, directory / remote_name,
      lambda tmp_path: _verify_download(spec, stem, remote_name, tmp_path),
      timeout)
  if path is not None:
    return path
  raise DataError(
      f'Could not download {remote_name} into {directory}; every mirror'
      ' failed:\n' + '\n'.join(failures or ['  (no mirrors given)']) +
      '\nIf this machine is offline, copy the files there by hand or point'
      f' --data_dir (or ${DATA_DIR_ENV}) at a directory that has them.'
  )


def download(name: str, cache_dir: PathLike,
             mirrors: Sequence[str] | None = None,
             timeout: float = 30.0) -> pathlib.Path:
  """Downloads and verifies the files of `name` into `cache_dir/name`.

  Files already there and valid are not fetched again. Each file is written to
  a temporary file and renamed only once it has passed verification.

  Args:
    name: a registered data set.
    cache_dir: the cache root; files go to `cache_dir/name/`.
    mirrors: base URLs tried in order for each file (default: the data
      set's).
    timeout: seconds per network operation.

  Returns:
    The directory `cache_dir/name`, holding all files of `name`.

  Raises:
    DataError: some file could not be fetched from any mirror; the message
      lists every URL tried and why it failed.
  """
  spec = dataset_spec(name)
  if mirrors is None:
    mirrors = spec.mirrors
  directory = pathlib.Path(cache_dir).expanduser() / name
  try:
    directory.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    raise DataError(
        f'Cannot create the download directory {directory} ({err}). Set'
        f' ${CACHE_DIR_ENV} (--config.data.cache_dir) to a writable directory.'
    ) from err
  for stem in spec.stems:
    existing = _existing_valid_file(spec, stem, directory)
    if existing is not None:
      _log.info('Already downloaded and valid: %s', existing)
      continue
    _download_file(spec, stem, directory, tuple(mirrors), timeout)
  return directory


# ------------------------------------------------------------------ lookup
def _search(spec: DatasetSpec, cache_dir: PathLike | None
            ) -> tuple[pathlib.Path | None, list[str]]:
  """Looks in $VAE_JAX_DATA_DIR, the cache, then the system directories.

  Returns:
    (the directory holding all files, or None; each place looked).
  """
  places = []
  candidates = [
      ('--data_dir', None),
      (f'${DATA_DIR_ENV}', os.environ.get(DATA_DIR_ENV) or None),
      (f'cache (cache_dir argument, ${CACHE_DIR_ENV}, or {DEFAULT_CACHE_DIR})',
       cache_root(cache_dir)),
  ] + [('system package directory', d) for d in spec.system_dirs]
  for origin, directory in candidates:
    if directory is None:
      places.append(f'{origin}: not set')
      continue
    directory = pathlib.Path(directory).expanduser()
    found = _dataset_dir(spec, directory)
    places.append(f'{origin}: {directory} and {directory / spec.name}')
    if found is not None:
      return found, places
  return None, places


def find_data_dir(name: str, data_dir: PathLike | None = None,
                  cache_dir: PathLike | None = None) -> pathlib.Path | None:
  """Finds the directory holding all files of `name`.

  Looks, in order, in `data_dir`, then $VAE_JAX_DATA_DIR, then the cache
  (`cache_dir`, else $VAE_JAX_CACHE_DIR, else ~/.cache/vae_jax), then where
  a system package installs the data set (its spec's system_dirs); in each
  place both the directory itself and its `name/` subdirectory. Only checks
  that the files exist; loading verifies them.

  Returns:
    The first directory that holds all files, or None.

  Raises:
    ValueError: `name` is not a registered data set.
    DataNotFoundError: `data_dir` was given but lacks the files. An explicit
      directory is never silently replaced by another copy.
  """
  spec = dataset_spec(name)
  if data_dir is not None:
    return _require_dataset_dir(spec, data_dir)
  found, _ = _search(spec, cache_dir)
  return found


def load_dataset(name: str = 'mnist', data_dir: PathLike | None = None,
                 cache_dir: PathLike | None = None,
                 download_if_missing: bool = True,
                 mirrors: Sequence[str] | None = None,
                 source: str = 'files') -> Dataset:
  """Loads a registered data set, downloading it into the cache if needed.

  Args:
    name: a registered data set (vae_jax.data.dataset_names()).
    data_dir: explicit directory (a launcher's --data_dir, config.data.dir);
      must hold the files.
    cache_dir: download cache root (default $VAE_JAX_CACHE_DIR or
      ~/.cache/vae_jax).
    download_if_missing: download into the cache when no copy is found.
    mirrors: base URLs for the download (default: the data set's).
    source: 'files' (the data set's files, see find_data_dir) or 'tfds'
      (tensorflow_datasets' data source of the same name; `data_dir` is then
      the TFDS data dir).

  Returns:
    Dataset: uint8 [N, H, W] images, int32 [N] labels.

  Raises:
    ValueError: `name` is not a registered data set, or `source` unknown.
    DataNotFoundError: no copy found and download disabled or failed; the
      message (one paragraph) lists the files, every place looked, and how
      to provide them; a failed download is its __cause__, naming each
      mirror's error.
    ChecksumError, DataError: a copy was found but fails verification.
  """
  if source == 'tfds':
    return tfds_source.load_tfds(name, data_dir, download=download_if_missing)
  if source != 'files':
    raise ValueError(f"Unknown source {source!r}; expected 'files' or 'tfds'.")
  spec = dataset_spec(name)
  if data_dir is not None:
    return load_from_dir(name, data_dir)
  found, places = _search(spec, cache_dir)
  if found is not None:
    return load_from_dir(name, found)

  found_nowhere = (f'{name}: data files not found ({_describe_files(spec)}).'
                   f' Looked in: {"; ".join(places)}.')
  to_fix = (f'To fix: pass --data_dir=DIR (config.data.dir; data_dir= in '
            f'Python), a directory holding them, or set ${DATA_DIR_ENV}=DIR')
  if not (mirrors or spec.mirrors):
    raise DataNotFoundError(
        f'{found_nowhere} {name} has no download mirrors. {to_fix}.')
  if not download_if_missing:
    raise DataNotFoundError(
        f'{found_nowhere} Downloading is disabled '
        f'(--config.data.download=False; download_if_missing=False). '
        f'{to_fix}, or allow downloading.')
  try:
    directory = download(name, cache_root(cache_dir), mirrors=mirrors)
  except DataError as err:
    raise DataNotFoundError(
        f'{found_nowhere} A download was attempted and failed (offline? the '
        f'log above names each mirror\'s error). {to_fix}, or run where '
        'the mirrors can be reached.') from err
  return load_from_dir(name, directory)
