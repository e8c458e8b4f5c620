"""MNIST and USPS: where their files are looked for, their checksums and
mirrors, loading and downloading them."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
from typing import Callable, Mapping, Sequence

import numpy as np

from vae_jax.data import tfds as tfds_source
from vae_jax.data.cache import CACHE_DIR_ENV, DEFAULT_CACHE_DIR, cache_root
from vae_jax.data.cache import fetch_first_verified
from vae_jax.data.dataset import (REDOWNLOAD_HINT, ChecksumError, DataError,
                                  DataNotFoundError, Dataset, PathLike)
from vae_jax.data.formats import (check_digest, compression_of, parse_idx,
                                  parse_usps_libsvm, read_maybe_compressed)

_log = logging.getLogger(__name__)


DATA_DIR_ENV = 'VAE_JAX_DATA_DIR'


DATASET_NAMES = ('mnist', 'usps')


# MD5 of the *decompressed* IDX files: the canonical MNIST checksums. Mirrors
# re-compress the .gz files differently, so only the decompressed bytes have a
# checksum that every copy of MNIST shares.
MNIST_MD5 = {
    'train-images-idx3-ubyte': '6bbc9ace898e44ae57da46a324031adb',
    'train-labels-idx1-ubyte': 'a25bea736e30d166cdddb491f175f624',
    't10k-images-idx3-ubyte': '2646ac647ad5339dbf082846283269ea',
    't10k-labels-idx1-ubyte': '27ae3e4e09519cfbb04c329615203637',
}


MNIST_MIRRORS = (
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'http://yann.lecun.com/exdb/mnist/',
)


# SHA-256 of the reference .bz2 files in the project's shared data directory.
# Those are `bzip2 -9` re-compressions of the LIBSVM text, so they are not
# byte-identical to the files the LIBSVM page serves; a genuine download is
# recognised by USPS_PUBLIC_MD5 instead (see _verify_usps_archive).
USPS_SHA256 = {
    'usps.bz2': '2abd1c59b2a6081769270393641fea427879d5e8163542eaaac8699f7460c17f',
    'usps.t.bz2': '6eacd7c0251c2460aad93c45b86414936ae0b1f40577fa2de76ee9879f7bf8ae',
}


# MD5 of the .bz2 files as served by the LIBSVM multiclass page, as registered
# by torchvision.datasets.USPS. No SHA-256 of those bytes is published.
USPS_PUBLIC_MD5 = {
    'usps.bz2': 'ec16c51db3855ca6c91edd34d0e9b197',
    'usps.t.bz2': '8ea070ee2aca1ac39742fdd1ef5ed118',
}


USPS_MIRRORS = (
    'https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/',
)


_USPS_NUM_EXAMPLES = {'usps': 7291, 'usps.t': 2007}


# SHA-256 of the decompressed LIBSVM text (of the reference archives above),
# for a directory holding 'usps' / 'usps.t' rather than the archives.
USPS_TEXT_SHA256 = {
    'usps': 'ae1ecd751e55e42c05af14e2d087c24701fb9a172fa067b4fc768c1ef18985c7',
    'usps.t': '3c1e051267475d03ffc82313e0fbc43585d036eb5a0f42e04f91cb4726b41ed7',
}


def _find_file(directory: pathlib.Path, stem: str,
               suffixes: Sequence[str]) -> pathlib.Path | None:
  for suffix in suffixes:
    candidate = directory / (stem + suffix)
    if candidate.is_file():
      return candidate
  return None


# Per data set: the canonical (uncompressed) file stems and the suffixes under
# which each may be found, in order of preference.
_STEMS = {
    'mnist': tuple(MNIST_MD5),
    'usps': tuple(_USPS_NUM_EXAMPLES),
}


_SUFFIXES = {'mnist': ('', '.gz'), 'usps': ('.bz2', '')}


_REMOTE_SUFFIX = {'mnist': '.gz', 'usps': '.bz2'}


def _check_name(name: str) -> None:
  if name not in DATASET_NAMES:
    raise ValueError(
        f'Unknown data set {name!r}; expected one of {DATASET_NAMES}.'
    )


def _describe_files(name: str) -> str:
  return ', '.join(stem + _REMOTE_SUFFIX[name] for stem in _STEMS[name]) + (
      '; uncompressed also accepted')


def _missing_files(name: str, directory: pathlib.Path) -> list[str]:
  """Names of the files of `name` that are absent from `directory`."""
  return [
      ' or '.join(stem + s for s in _SUFFIXES[name])
      for stem in _STEMS[name]
      if _find_file(directory, stem, _SUFFIXES[name]) is None
  ]


def _dataset_dir(name: str, directory: pathlib.Path) -> pathlib.Path | None:
  """`directory` or `directory/name`, whichever holds all files, else None."""
  for candidate in (directory, directory / name):
    if not _missing_files(name, candidate):
      return candidate
  return None


def _require_dataset_dir(name: str, directory: PathLike) -> pathlib.Path:
  directory = pathlib.Path(directory).expanduser()
  found = _dataset_dir(name, directory)
  if found is None:
    looked = []
    for candidate in (directory, directory / name):
      if candidate.is_dir():
        missing = ', '.join(_missing_files(name, candidate))
        looked.append(f'  {candidate}: missing {missing}')
      else:
        looked.append(f'  {candidate}: no such directory')
    raise DataNotFoundError(
        f'{name}: data files not found. Looked in:\n' + '\n'.join(looked) +
        f'\nPut the files ({_describe_files(name)}) in {directory}, or leave'
        f' the directory unset (--config.data.dir / ${DATA_DIR_ENV}) so that'
        ' load_dataset searches the cache and downloads them.'
    )
  return found


def _load_mnist_file(path: pathlib.Path, stem: str, verify: bool = True,
                     compression: str | None = None) -> np.ndarray:
  """Reads (and MD5-verifies) one MNIST file; compression defaults to suffix."""
  data = read_maybe_compressed(path, compression or compression_of(path))
  if verify:
    check_digest(path, 'md5', data, MNIST_MD5[stem], 'decompressed bytes')
  return parse_idx(data, str(path))


def load_mnist_dir(directory: PathLike, verify: bool = True) -> Dataset:
  """Loads MNIST from the four IDX files in `directory` or `directory/mnist`.

  Each file may be raw ('train-images-idx3-ubyte') or gzip-compressed
  ('train-images-idx3-ubyte.gz').

  Args:
    directory: where the files are.
    verify: check the MD5 of the decompressed bytes against MNIST_MD5.

  Returns:
    Dataset with uint8 [60000, 28, 28] / [10000, 28, 28] images and int32
    labels.

  Raises:
    DataNotFoundError: a file is missing (the message lists which).
    ChecksumError: a file's MD5 is wrong (the message names file, expected
      and actual digest).
    DataError: a file is truncated or not a valid gzip/IDX file.
  """
  found = _require_dataset_dir('mnist', pathlib.Path(directory))
  arrays = {}
  for stem in MNIST_MD5:
    path = _find_file(found, stem, _SUFFIXES['mnist'])
    arrays[stem] = _load_mnist_file(path, stem, verify)
  for split in ('train', 't10k'):
    images = arrays[f'{split}-images-idx3-ubyte']
    labels = arrays[f'{split}-labels-idx1-ubyte']
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
      raise DataError(
          f'{found}: {split} images {images.shape} and labels {labels.shape}'
          ' do not match (expected [N, H, W] and [N]). Replace the files with'
          ' a consistent MNIST copy.'
      )
  return Dataset(
      name='mnist',
      train_images=arrays['train-images-idx3-ubyte'].astype(np.uint8, copy=False),
      train_labels=arrays['train-labels-idx1-ubyte'].astype(np.int32),
      test_images=arrays['t10k-images-idx3-ubyte'].astype(np.uint8, copy=False),
      test_labels=arrays['t10k-labels-idx1-ubyte'].astype(np.int32),
      source=str(found),
  )


def _verify_usps_archive(path: pathlib.Path, archive_name: str) -> None:
  """Accepts the reference re-compression (SHA-256) or the public file (MD5)."""
  data = path.read_bytes()
  got_sha256 = hashlib.sha256(data).hexdigest()
  if got_sha256 == USPS_SHA256[archive_name]:
    return
  got_md5 = hashlib.md5(data).hexdigest()
  if got_md5 == USPS_PUBLIC_MD5[archive_name]:
    return
  raise ChecksumError(
      f'{path}: sha256 {got_sha256} (md5 {got_md5}); expected sha256'
      f' {USPS_SHA256[archive_name]} (reference copy) or md5'
      f' {USPS_PUBLIC_MD5[archive_name]} (LIBSVM download). The file is'
      f' corrupted or is not {archive_name}. {REDOWNLOAD_HINT}'
  )


def _parse_usps_file(path: pathlib.Path, stem: str, verify: bool):
  """Parses one split; verify checks its example count and, for a
  decompressed file (an archive is hashed before), its SHA-256."""
  compression = compression_of(path)
  text = read_maybe_compressed(path, compression)
  expected = _USPS_NUM_EXAMPLES[stem] if verify else None
  parsed = parse_usps_libsvm(text, str(path), expected_examples=expected)
  if verify and compression is None:
    check_digest(path, 'sha256', text, USPS_TEXT_SHA256[stem],
                  'decompressed text')
  return parsed


def _verify_usps_file(path: pathlib.Path, stem: str) -> None:
  """An archive's hash, or a decompressed file's count and hash."""
  if compression_of(path) == 'bz2':
    _verify_usps_archive(path, path.name)
  else:
    _parse_usps_file(path, stem, verify=True)


def load_usps_dir(directory: PathLike, verify: bool = True) -> Dataset:
  """Loads USPS from `directory` or `directory/usps`.

  Files: 'usps.bz2' and 'usps.t.bz2' (LIBSVM multiclass distribution), or their
  decompressed forms 'usps' and 'usps.t'.

  Args:
    directory: where the files are.
    verify: .bz2 files must match USPS_SHA256 (reference copy) or
      USPS_PUBLIC_MD5 (LIBSVM download); decompressed files must have 7291 /
      2007 well-formed lines and match USPS_TEXT_SHA256.

  Returns:
    Dataset with uint8 [7291, 16, 16] / [2007, 16, 16] images (values in
    [-1, 1] mapped to round((v + 1) / 2 * 255)) and int32 labels 0..9.

  Raises:
    DataNotFoundError, ChecksumError, DataError: as for load_mnist_dir.
  """
  found = _require_dataset_dir('usps', pathlib.Path(directory))
  paths = {stem: _find_file(found, stem, _SUFFIXES['usps'])
           for stem in _STEMS['usps']}
  if verify:
    # Hash both archives before the slow parse so that a bad file fails fast.
    for path in paths.values():
      if compression_of(path) == 'bz2':
        _verify_usps_archive(path, path.name)
  splits = {stem: _parse_usps_file(path, stem, verify)
            for stem, path in paths.items()}
  (train_images, train_labels), (test_images, test_labels) = (
      splits['usps'], splits['usps.t'])
  return Dataset('usps', train_images, train_labels, test_images, test_labels,
                 source=str(found))


_LOADERS: Mapping[str, Callable[..., Dataset]] = {
    'mnist': load_mnist_dir,
    'usps': load_usps_dir,
}


def _verify_remote_file(name: str, stem: str, path: pathlib.Path) -> None:
  """Raises DataError unless `path` holds a valid download of `stem`."""
  if name == 'mnist':
    _load_mnist_file(path, stem, verify=True, compression='gz')
  else:
    _verify_usps_archive(path, stem + '.bz2')


def _existing_valid_file(name: str, stem: str,
                         directory: pathlib.Path) -> pathlib.Path | None:
  """A file for `stem` already in `directory` that verifies, else None."""
  for suffix in _SUFFIXES[name]:
    path = directory / (stem + suffix)
    if not path.is_file():
      continue
    try:
      if name == 'mnist':
        _load_mnist_file(path, stem, verify=True)
      else:
        _verify_usps_file(path, stem)
      return path
    except DataError as err:
      _log.warning('Ignoring invalid cached file, will download again: %s', err)
  return None


def _download_file(name: str, stem: str, directory: pathlib.Path,
                   mirrors: Sequence[str], timeout: float) -> pathlib.Path:
  """Fetches one file from the first mirror whose copy verifies."""
  remote_name = stem + _REMOTE_SUFFIX[name]
  urls = [mirror.rstrip('/') + '/' + remote_name for mirror in mirrors]
  path, failures = fetch_first_verified(
      urls, directory / remote_name,
      lambda tmp_path: _verify_remote_file(name, stem, tmp_path), timeout)
  if path is not None:
    return path
  raise DataError(
      f'Could not download {remote_name} into {directory}; every mirror'
      ' failed:\n' + '\n'.join(failures or ['  (no mirrors given)']) +
      '\nIf this machine is offline, copy the files there by hand or point'
      f' ${DATA_DIR_ENV} (--config.data.dir) at a directory that has them.'
  )


def download(name: str, cache_dir: PathLike,
             mirrors: Sequence[str] | None = None,
             timeout: float = 30.0) -> pathlib.Path:
  """Downloads and verifies the files of `name` into `cache_dir/name`.

  Files already there and valid are not fetched again. Each file is written to
  a temporary file and renamed only once it has passed verification.

  Args:
    name: 'mnist' or 'usps'.
    cache_dir: the cache root; files go to `cache_dir/name/`.
    mirrors: base URLs tried in order for each file (default MNIST_MIRRORS or
      USPS_MIRRORS).
    timeout: seconds per network operation.

  Returns:
    The directory `cache_dir/name`, holding all files of `name`.

  Raises:
    DataError: some file could not be fetched from any mirror; the message
      lists every URL tried and why it failed.
  """
  _check_name(name)
  if mirrors is None:
    mirrors = MNIST_MIRRORS if name == 'mnist' else USPS_MIRRORS
  directory = pathlib.Path(cache_dir).expanduser() / name
  try:
    directory.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    raise DataError(
        f'Cannot create the download directory {directory} ({err}). Set'
        f' ${CACHE_DIR_ENV} (--config.data.cache_dir) to a writable directory.'
    ) from err
  for stem in _STEMS[name]:
    existing = _existing_valid_file(name, stem, directory)
    if existing is not None:
      _log.info('Already downloaded and valid: %s', existing)
      continue
    _download_file(name, stem, directory, tuple(mirrors), timeout)
  return directory


def _search(name: str, cache_dir: PathLike | None
            ) -> tuple[pathlib.Path | None, list[str]]:
  """Looks in $VAE_JAX_DATA_DIR, then the cache.

  Returns:
    (the directory holding all files, or None; one line per place looked).
  """
  places = []
  candidates = [
      ('data_dir argument', None),
      (f'${DATA_DIR_ENV}', os.environ.get(DATA_DIR_ENV) or None),
      (f'cache (cache_dir argument, ${CACHE_DIR_ENV}, or {DEFAULT_CACHE_DIR})',
       cache_root(cache_dir)),
  ]
  for origin, directory in candidates:
    if directory is None:
      places.append(f'  {origin}: not set')
      continue
    directory = pathlib.Path(directory).expanduser()
    found = _dataset_dir(name, directory)
    places.append(f'  {origin}: {directory} and {directory / name}')
    if found is not None:
      return found, places
  return None, places


def find_data_dir(name: str, data_dir: PathLike | None = None,
                  cache_dir: PathLike | None = None) -> pathlib.Path | None:
  """Finds the directory holding all files of `name`.

  Looks, in order, in `data_dir`, then $VAE_JAX_DATA_DIR, then the cache
  (`cache_dir`, else $VAE_JAX_CACHE_DIR, else ~/.cache/vae_jax); in each place
  both the directory itself and its `name/` subdirectory. Only checks that the
  files exist; the loaders verify them.

  Returns:
    The first directory that holds all files, or None.

  Raises:
    DataNotFoundError: `data_dir` was given but lacks the files. An explicit
      directory is never silently replaced by another copy.
  """
  _check_name(name)
  if data_dir is not None:
    return _require_dataset_dir(name, data_dir)
  found, _ = _search(name, cache_dir)
  return found


def load_dataset(name: str = 'mnist', data_dir: PathLike | None = None,
                 cache_dir: PathLike | None = None,
                 download_if_missing: bool = True,
                 mirrors: Sequence[str] | None = None,
                 source: str = 'files') -> Dataset:
  """Loads a digit data set, downloading it into the cache if needed.

  Args:
    name: 'mnist' or 'usps'.
    data_dir: explicit directory (--config.data.dir); must hold the files.
    cache_dir: download cache root (default $VAE_JAX_CACHE_DIR or
      ~/.cache/vae_jax).
    download_if_missing: download into the cache when no copy is found.
    mirrors: base URLs for the download (default MNIST_MIRRORS/USPS_MIRRORS).
    source: 'files' (IDX / LIBSVM files, see find_data_dir) or 'tfds'
      (tensorflow_datasets' data source; `data_dir` is then the TFDS data dir).

  Returns:
    Dataset: uint8 [N, H, W] images, int32 [N] labels.

  Raises:
    DataNotFoundError: no copy found and download disabled or failed; the
      message lists the files, every place looked, and how to provide them.
    ChecksumError, DataError: a copy was found but fails verification.
  """
  if source == 'tfds':
    return tfds_source.load_tfds(name, data_dir, download=download_if_missing)
  if source != 'files':
    raise ValueError(f"Unknown source {source!r}; expected 'files' or 'tfds'.")
  _check_name(name)
  if data_dir is not None:
    return _LOADERS[name](_require_dataset_dir(name, data_dir))
  found, places = _search(name, cache_dir)
  if found is not None:
    return _LOADERS[name](found)

  message = (
      f'{name}: data files not found ({_describe_files(name)}).'
      ' Looked in:\n' + '\n'.join(places) + '\n'
      f'To fix: set --config.data.dir or ${DATA_DIR_ENV} to a directory holding'
      ' them, or allow downloading (download_if_missing=True) on a machine'
      ' with network access.'
  )
  if not download_if_missing:
    raise DataNotFoundError(
        message + ' Downloading is disabled (--config.data.download=False).')
  try:
    directory = download(name, cache_root(cache_dir), mirrors=mirrors)
  except DataError as err:
    raise DataNotFoundError(
        f'{message}\nA download was attempted and failed (offline?):\n{err}'
    ) from err
  return _LOADERS[name](directory)
