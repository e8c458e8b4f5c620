"""Digit data sets for the VAE experiments: MNIST and USPS.

Everything here is plain numpy, so importing this module never pulls in JAX or
TensorFlow. The training code only needs :func:`load_dataset`, which returns a
:class:`Dataset` of uint8 grey images and int32 labels:

  >>> ds = load_dataset('mnist')                     # doctest: +SKIP
  >>> ds.train_images.shape, ds.train_images.dtype   # doctest: +SKIP
  ((60000, 28, 28), dtype('uint8'))

Where the files come from, in order (see :func:`find_data_dir`):

1. an explicit ``data_dir`` (``--config.data.dir``),
2. ``$VAE_JAX_DATA_DIR``,
3. the download cache (``$VAE_JAX_CACHE_DIR``, default ``~/.cache/vae_jax``),
4. a download into that cache from the public mirrors, when allowed.

Every file is verified against hard-coded checksums before it is used, and a
download only ever lands in the cache after it has been verified.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import http.client
import io
import logging
import os
import pathlib
import tempfile
import urllib.request
import zlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

_log = logging.getLogger(__name__)

PathLike = str | os.PathLike

DATA_DIR_ENV = 'VAE_JAX_DATA_DIR'
CACHE_DIR_ENV = 'VAE_JAX_CACHE_DIR'
DEFAULT_CACHE_DIR = pathlib.Path('~/.cache/vae_jax')
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
_USPS_SIDE = 16
_USPS_NUM_PIXELS = _USPS_SIDE * _USPS_SIDE

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}

_REDOWNLOAD_HINT = (
    'Delete it and download it again (or remove it from the cache and let '
    'load_dataset re-download it).'
)
_DOWNLOAD_CHUNK_BYTES = 1 << 20


class DataError(Exception):
  """Base: a data file is missing, truncated, corrupted or fails verification."""


class DataNotFoundError(DataError, FileNotFoundError):
  """The files of a data set are not where they were looked for."""


class ChecksumError(DataError, ValueError):
  """A data file's digest differs from the hard-coded one."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A digit data set held in memory.

  Attributes:
    name: 'mnist' or 'usps'.
    train_images: uint8 [N_train, H, W], grey levels 0..255 (0 = background).
    train_labels: int32 [N_train], digits 0..9.
    test_images: uint8 [N_test, H, W].
    test_labels: int32 [N_test].
    source: where the data came from: a directory, or 'tfds:<name>'.
  """

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str

  def __post_init__(self):
    # Fail here, at construction, rather than deep inside a jitted train step.
    for split in ('train', 'test'):
      images = getattr(self, f'{split}_images')
      labels = getattr(self, f'{split}_labels')
      if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f'Dataset {self.name!r} from {self.source}: {split}_images must be'
            f' uint8 [N, H, W], got {images.dtype} {images.shape}.'
        )
      if labels.dtype != np.int32 or labels.shape != images.shape[:1]:
        raise ValueError(
            f'Dataset {self.name!r} from {self.source}: {split}_labels must be'
            f' int32 [{images.shape[0]}], got {labels.dtype} {labels.shape}.'
        )
    if self.train_images.shape[1:] != self.test_images.shape[1:]:
      raise ValueError(
          f'Dataset {self.name!r} from {self.source}: train images are'
          f' {self.train_images.shape[1:]} but test images are'
          f' {self.test_images.shape[1:]}.'
      )

  @property
  def image_shape(self) -> tuple[int, int]:
    """(H, W) of every image."""
    return tuple(self.train_images.shape[1:])


# --------------------------------------------------------------------------
# Reading and verifying files.
# --------------------------------------------------------------------------


def _read_maybe_compressed(path: pathlib.Path, compression: str | None) -> bytes:
  """Returns the decompressed bytes of `path`.

  Args:
    path: the file to read.
    compression: None, 'gz' or 'bz2'. Passed explicitly (not taken from the
      suffix) so that a download's temporary file can be read before it is
      renamed.

  Raises:
    DataNotFoundError: `path` does not exist.
    DataError: the compressed stream is truncated or garbled.
  """
  try:
    raw = path.read_bytes()
  except FileNotFoundError as err:
    raise DataNotFoundError(f'{path}: file not found.') from err
  if compression is None:
    return raw
  decompress = {'gz': gzip.decompress, 'bz2': bz2.decompress}[compression]
  try:
    return decompress(raw)
  except (EOFError, OSError, zlib.error, ValueError) as err:
    # gzip raises BadGzipFile (an OSError) or EOFError; bz2 raises OSError or
    # EOFError; zlib.error covers a corrupt deflate stream.
    raise DataError(
        f'{path}: not a valid {compression} file, it is truncated or'
        f' corrupted ({type(err).__name__}: {err}). {_REDOWNLOAD_HINT}'
    ) from err


def _compression_of(path: pathlib.Path) -> str | None:
  return {'.gz': 'gz', '.bz2': 'bz2'}.get(path.suffix)


def parse_idx(data: bytes, origin: str = '<bytes>') -> np.ndarray:
  """Parses the bytes of an (uncompressed) IDX file.

  Args:
    data: the whole file, header included.
    origin: the file name, for error messages.

  Returns:
    A writable array in native byte order, shape given by the header (e.g.
    uint8 [60000, 28, 28] for MNIST training images).

  Raises:
    DataError: bad magic number, unknown type code, or a byte length that does
      not match the header.
  """
  if len(data) < 4:
    raise DataError(
        f'{origin}: {len(data)} bytes is too short for an IDX file.'
        f' {_REDOWNLOAD_HINT}'
    )
  zero0, zero1, type_code, ndim = data[:4]
  if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
    raise DataError(
        f'{origin}: not an IDX file (magic number {data[:4].hex()}; expected'
        f' 0000 followed by a type code in'
        f' {sorted(hex(c) for c in _IDX_DTYPES)} and a rank > 0).'
        f' {_REDOWNLOAD_HINT}'
    )
  header_bytes = 4 + 4 * ndim
  if len(data) < header_bytes:
    raise DataError(
        f'{origin}: truncated inside the IDX header ({len(data)} bytes, header'
        f' needs {header_bytes}). {_REDOWNLOAD_HINT}'
    )
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', ndim, offset=4))
  dtype = _IDX_DTYPES[type_code]
  expected_bytes = header_bytes + int(np.prod(shape)) * dtype.itemsize
  if len(data) != expected_bytes:
    raise DataError(
        f'{origin}: header says {dtype.name} {shape} ({expected_bytes} bytes)'
        f' but the file has {len(data)} bytes. {_REDOWNLOAD_HINT}'
    )
  array = np.frombuffer(data, dtype, offset=header_bytes).reshape(shape)
  return array.astype(dtype.newbyteorder('='))  # copy: writable, native order


def read_idx(path: PathLike) -> np.ndarray:
  """Reads an IDX file (raw, or gzip-compressed if the name ends in .gz).

  Args:
    path: e.g. 'train-images-idx3-ubyte.gz'.

  Returns:
    Array with the header's shape and dtype, native byte order, e.g. uint8
    [60000, 28, 28] or uint8 [60000] for MNIST.

  Raises:
    DataNotFoundError: no such file.
    DataError: truncated or garbled gzip, bad header, wrong byte length. The
      message names the file and suggests deleting and re-downloading it.
  """
  path = pathlib.Path(path)
  return parse_idx(_read_maybe_compressed(path, _compression_of(path)), str(path))


def _check_digest(path, algorithm: str, data: bytes, expected: str, what: str):
  got = hashlib.new(algorithm, data).hexdigest()
  if got != expected:
    raise ChecksumError(
        f'{path}: {algorithm} of the {what} is {got}, expected {expected}. The'
        f' file is corrupted or is not the expected file. {_REDOWNLOAD_HINT}'
    )


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
  data = _read_maybe_compressed(path, compression or _compression_of(path))
  if verify:
    _check_digest(path, 'md5', data, MNIST_MD5[stem], 'decompressed bytes')
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
      f' corrupted or is not {archive_name}. {_REDOWNLOAD_HINT}'
  )


def _first_malformed_line(table_text: bytes) -> int:
  """1-based number of the first line that is not 513 numbers (0 if none)."""
  for number, line in enumerate(table_text.splitlines(), start=1):
    fields = line.split()
    try:
      [float(f) for f in fields]
    except ValueError:
      return number
    if len(fields) != 1 + 2 * _USPS_NUM_PIXELS:
      return number
  return 0


def parse_usps_libsvm(text: bytes, origin: str = '<bytes>',
                      expected_examples: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Parses USPS in dense LIBSVM text: 'LABEL 1:v1 ... 256:v256' per line.

  Args:
    text: the decompressed file.
    origin: the file name, for error messages.
    expected_examples: if given, the number of lines the file must have.

  Returns:
    (images, labels): uint8 [N, 16, 16] with v in [-1, 1] mapped to
    round((v + 1) / 2 * 255), and int32 [N] digits 0..9 (LABEL - 1).

  Raises:
    DataError: wrong number of lines, a line without exactly 256 features
      numbered 1..256, or a label or value out of range.
  """
  # 'L 1:a 2:b' -> 'L 1 a 2 b': a numeric table, label then (index, value)
  # pairs, which numpy parses much faster than a Python loop.
  table_text = text.replace(b':', b' ')
  try:
    table = np.loadtxt(io.BytesIO(table_text), dtype=np.float64, ndmin=2)
  except ValueError as err:  # ragged rows or non-numbers
    raise DataError(
        f'{origin}, line {_first_malformed_line(table_text)}: not dense LIBSVM'
        f' text, expected "LABEL 1:v ... {_USPS_NUM_PIXELS}:v" with numeric'
        f' values. {_REDOWNLOAD_HINT}'
    ) from err
  num_examples = table.shape[0] if table.size else 0
  if expected_examples is not None and num_examples != expected_examples:
    raise DataError(
        f'{origin}: {num_examples} examples (lines), expected'
        f' {expected_examples}. The file is truncated or is not USPS.'
        f' {_REDOWNLOAD_HINT}'
    )
  if table.shape[1] != 1 + 2 * _USPS_NUM_PIXELS:
    raise DataError(
        f'{origin}: {(table.shape[1] - 1) // 2} features per line, expected'
        f' {_USPS_NUM_PIXELS} ("LABEL 1:v ... 256:v"). {_REDOWNLOAD_HINT}'
    )
  pairs = table[:, 1:].reshape(num_examples, _USPS_NUM_PIXELS, 2)
  indices, values = pairs[..., 0], pairs[..., 1]
  bad_rows = np.any(indices != np.arange(1, _USPS_NUM_PIXELS + 1), axis=1)
  if np.any(bad_rows):
    bad_line = int(np.argmax(bad_rows)) + 1
    raise DataError(
        f'{origin}, line {bad_line}: feature indices are not 1..256 in order.'
        f' {_REDOWNLOAD_HINT}'
    )
  labels = table[:, 0]
  if np.any((labels < 1) | (labels > 10) | (labels != np.round(labels))):
    raise DataError(f'{origin}: labels outside 1..10. {_REDOWNLOAD_HINT}')
  if np.any((values < -1) | (values > 1)):
    raise DataError(f'{origin}: pixel values outside [-1, 1]. {_REDOWNLOAD_HINT}')
  labels = labels.astype(np.int32) - 1
  grey = np.round((values + 1.0) / 2.0 * 255.0).astype(np.uint8)
  return grey.reshape(-1, _USPS_SIDE, _USPS_SIDE), labels


def _parse_usps_file(path: pathlib.Path, stem: str, verify: bool):
  """Parses one split; verify checks its example count and, for a
  decompressed file (an archive is hashed before), its SHA-256."""
  compression = _compression_of(path)
  text = _read_maybe_compressed(path, compression)
  expected = _USPS_NUM_EXAMPLES[stem] if verify else None
  parsed = parse_usps_libsvm(text, str(path), expected_examples=expected)
  if verify and compression is None:
    _check_digest(path, 'sha256', text, USPS_TEXT_SHA256[stem],
                  'decompressed text')
  return parsed


def _verify_usps_file(path: pathlib.Path, stem: str) -> None:
  """An archive's hash, or a decompressed file's count and hash."""
  if _compression_of(path) == 'bz2':
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
      if _compression_of(path) == 'bz2':
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


# --------------------------------------------------------------------------
# Downloading.
# --------------------------------------------------------------------------


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


def _fetch(url: str, destination: pathlib.Path, timeout: float) -> None:
  """Streams `url` into `destination`; raises if fewer bytes than announced."""
  with urllib.request.urlopen(url, timeout=timeout) as response:
    announced = response.headers.get('Content-Length')
    received = 0
    with open(destination, 'wb') as out:
      while chunk := response.read(_DOWNLOAD_CHUNK_BYTES):
        out.write(chunk)
        received += len(chunk)
  if announced is not None and received != int(announced):
    raise DataError(f'received {received} of {announced} bytes (truncated)')


def fetch_first_verified(urls: Sequence[str], final_path: pathlib.Path,
                         verify: Callable[[pathlib.Path], Any],
                         timeout: float) -> tuple[pathlib.Path | None, list[str]]:
  """Downloads from each URL in turn until a copy passes `verify`.

  Returns (final_path, []) on success, else (None, one line per failure).
  A failed or interrupted download never shows up under the real name.
  """
  failures = []
  for url in urls:
    # A temp file in the same directory, so the final rename is atomic.
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{final_path.name}.',
                                    suffix='.part', dir=final_path.parent)
    os.close(fd)
    tmp_path = pathlib.Path(tmp_name)
    try:
      _log.info('Downloading %s', url)
      _fetch(url, tmp_path, timeout)
      verify(tmp_path)
      os.replace(tmp_path, final_path)
      _log.info('Verified and saved %s', final_path)
      return final_path, []
    except (OSError, http.client.HTTPException, ValueError, DataError) as err:
      # OSError covers URLError, HTTPError and timeouts; HTTPException a
      # connection cut mid-body; ValueError a malformed URL; DataError a
      # download that arrived but failed verification.
      reason = str(err).replace(str(tmp_path), 'downloaded file')
      failures.append(f'  {url}: {type(err).__name__}: {reason}')
      _log.warning('Download failed: %s: %s', url, reason)
    finally:
      tmp_path.unlink(missing_ok=True)
  return None, failures


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


# --------------------------------------------------------------------------
# Finding and loading.
# --------------------------------------------------------------------------


def cache_root(cache_dir: PathLike | None) -> pathlib.Path:
  """The download cache: cache_dir, else $VAE_JAX_CACHE_DIR, else
  ~/.cache/vae_jax (datasets, Inception weights, FID statistics)."""
  if cache_dir is None:
    cache_dir = os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
  return pathlib.Path(cache_dir).expanduser()


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
    return _load_tfds(name, data_dir, download=download_if_missing)
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


def _load_tfds(name: str, data_dir: PathLike | None, download: bool) -> Dataset:
  """Loads `name` through tfds.data_source, which does not need TensorFlow."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise DataError(
        "source='tfds' needs tensorflow_datasets: pip install"
        " tensorflow-datasets, or use source='files'."
    ) from err
  try:
    train, test = tfds.data_source(
        name, split=['train', 'test'],
        data_dir=None if data_dir is None else os.fspath(data_dir),
        download=download)
  except Exception as err:  # pylint: disable=broad-except
    # TFDS raises many unrelated types (AssertionError, DatasetNotFoundError,
    # ImportError for a missing TF when preparing); surface them uniformly.
    raise DataNotFoundError(
        f'tfds:{name}: tfds.data_source failed with data_dir={data_dir}'
        f' ({type(err).__name__}: {err}). Prepare the data set with TFDS in'
        " array_record format first, or use source='files'."
    ) from err

  def to_arrays(split_source) -> tuple[np.ndarray, np.ndarray]:
    # Item by item: ArrayRecord sources support __getitem__ everywhere, while
    # __getitems__ is not implemented by tfds.testing.mock_data.
    examples = [split_source[i] for i in range(len(split_source))]
    images = np.stack([np.asarray(ex['image']) for ex in examples])
    labels = np.asarray([ex['label'] for ex in examples], np.int32)
    if images.ndim == 4 and images.shape[-1] == 1:
      images = images[..., 0]  # TFDS stores grey images as [H, W, 1]
    return images.astype(np.uint8), labels

  train_images, train_labels = to_arrays(train)
  test_images, test_labels = to_arrays(test)
  return Dataset(name, train_images, train_labels, test_images, test_labels,
                 source=f'tfds:{name}')


# --------------------------------------------------------------------------
# Transforms.
# --------------------------------------------------------------------------


def binarize_static(images: np.ndarray, seed: int) -> np.ndarray:
  """Draws one fixed binarisation of grey images ('static binarisation').

  Each pixel is on with probability grey / 255, sampled once with
  numpy.random.default_rng(seed), so every epoch sees the same binary images.
  Grey 0 is always off and 255 always on.

  Args:
    images: uint8 [..., H, W], grey levels 0..255.
    seed: seed of the numpy Generator.

  Returns:
    uint8 array of the same shape with values in {0, 255}.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise TypeError(
        f'binarize_static expects uint8 grey images (0..255), got {images.dtype}.'
    )
  rng = np.random.default_rng(seed)
  # float32 halves the memory of MNIST's 47M draws; uniform in [0, 1) keeps
  # 255 -> always on (u < 1.0) and 0 -> always off (u < 0.0 is never true).
  uniform = rng.random(images.shape, dtype=np.float32)
  on = uniform < images.astype(np.float32) / np.float32(255.0)
  return on.astype(np.uint8) * np.uint8(255)
