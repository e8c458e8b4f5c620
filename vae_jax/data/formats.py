"""Reading data files: IDX (MNIST and its kin) and dense LIBSVM text (USPS),
raw or compressed, with the errors a truncated or garbled file raises."""

from __future__ import annotations

import bz2
import gzip
import io
import pathlib
import zlib
from typing import Sequence

import numpy as np

from vae_jax.data.dataset import (REDOWNLOAD_HINT, DataError,
                                  DataNotFoundError, PathLike)

# The file names MNIST made the convention for IDX data sets (Fashion-MNIST
# and KMNIST reuse them): images then labels, per split.
IDX_TRAIN_STEMS = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte')
IDX_TEST_STEMS = ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')

USPS_SIDE = 16
USPS_NUM_PIXELS = USPS_SIDE * USPS_SIDE


# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}


def decompress(raw: bytes, compression: str | None, origin: str) -> bytes:
  """The decompressed bytes of a file's contents `raw`.

  Args:
    raw: the bytes as stored.
    compression: None, 'gz' or 'bz2'.
    origin: the file name, for error messages.

  Raises:
    DataError: the compressed stream is truncated or garbled.
  """
  if compression is None:
    return raw
  method = {'gz': gzip.decompress, 'bz2': bz2.decompress}[compression]
  try:
    return method(raw)
  except (EOFError, OSError, zlib.error, ValueError) as err:
    # gzip raises BadGzipFile (an OSError) or EOFError; bz2 raises OSError or
    # EOFError; zlib.error covers a corrupt deflate stream.
    raise DataError(
        f'{origin}: not a valid {compression} file, it is truncated or'
        f' corrupted ({type(err).__name__}: {err}). {REDOWNLOAD_HINT}'
    ) from err


def read_bytes(path: pathlib.Path) -> bytes:
  """The bytes of `path`; DataNotFoundError when there is no such file."""
  try:
    return path.read_bytes()
  except FileNotFoundError as err:
    raise DataNotFoundError(f'{path}: file not found.') from err


def compression_of(path: pathlib.Path) -> str | None:
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
        f' {REDOWNLOAD_HINT}'
    )
  zero0, zero1, type_code, ndim = data[:4]
  if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
    raise DataError(
        f'{origin}: not an IDX file (magic number {data[:4].hex()}; expected'
        f' 0000 followed by a type code in'
        f' {sorted(hex(c) for c in _IDX_DTYPES)} and a rank > 0).'
        f' {REDOWNLOAD_HINT}'
    )
  header_bytes = 4 + 4 * ndim
  if len(data) < header_bytes:
    raise DataError(
        f'{origin}: truncated inside the IDX header ({len(data)} bytes, header'
        f' needs {header_bytes}). {REDOWNLOAD_HINT}'
    )
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', ndim, offset=4))
  dtype = _IDX_DTYPES[type_code]
  expected_bytes = header_bytes + int(np.prod(shape)) * dtype.itemsize
  if len(data) != expected_bytes:
    raise DataError(
        f'{origin}: header says {dtype.name} {shape} ({expected_bytes} bytes)'
        f' but the file has {len(data)} bytes. {REDOWNLOAD_HINT}'
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
  return parse_idx(decompress(read_bytes(path), compression_of(path), str(path)),
                   str(path))


def parse_idx_split(contents: Sequence[bytes], origins: Sequence[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
  """One split of an IDX data set: its images file and its labels file.

  Args:
    contents: the decompressed bytes of the images file, then the labels file
      (IDX_TRAIN_STEMS or IDX_TEST_STEMS order).
    origins: their file names, for error messages.

  Returns:
    (images, labels): uint8 [N, H, W] and int32 [N].

  Raises:
    DataError: either file is not IDX, the images are not uint8 [N, H, W],
      or the labels are not [N].
  """
  (images_bytes, labels_bytes), (images_origin, labels_origin) = (contents,
                                                                  origins)
  images = parse_idx(images_bytes, images_origin)
  labels = parse_idx(labels_bytes, labels_origin)
  if (images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1
      or len(images) != len(labels)):
    raise DataError(
        f'{images_origin} and {labels_origin}: images {images.dtype}'
        f' {images.shape} and labels {labels.shape} do not match (expected'
        ' uint8 [N, H, W] and [N]). Replace them with a consistent copy.'
    )
  return images, labels.astype(np.int32)


def _first_malformed_line(table_text: bytes) -> int:
  """1-based number of the first line that is not 513 numbers (0 if none)."""
  for number, line in enumerate(table_text.splitlines(), start=1):
    fields = line.split()
    try:
      [float(f) for f in fields]
    except ValueError:
      return number
    if len(fields) != 1 + 2 * USPS_NUM_PIXELS:
      return number
  return 0


def parse_usps_libsvm(text: bytes, origin: str = '<bytes>'
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Parses USPS in dense LIBSVM text: 'LABEL 1:v1 ... 256:v256' per line.

  Args:
    text: the decompressed file.
    origin: the file name, for error messages.

  Returns:
    (images, labels): uint8 [N, 16, 16] with v in [-1, 1] mapped to
    round((v + 1) / 2 * 255), and int32 [N] digits 0..9 (LABEL - 1).

  Raises:
    DataError: a line without exactly 256 features
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
        f' text, expected "LABEL 1:v ... {USPS_NUM_PIXELS}:v" with numeric'
        f' values. {REDOWNLOAD_HINT}'
    ) from err
  num_examples = table.shape[0] if table.size else 0
  if table.shape[1] != 1 + 2 * USPS_NUM_PIXELS:
    raise DataError(
        f'{origin}: {(table.shape[1] - 1) // 2} features per line, expected'
        f' {USPS_NUM_PIXELS} ("LABEL 1:v ... 256:v"). {REDOWNLOAD_HINT}'
    )
  pairs = table[:, 1:].reshape(num_examples, USPS_NUM_PIXELS, 2)
  indices, values = pairs[..., 0], pairs[..., 1]
  bad_rows = np.any(indices != np.arange(1, USPS_NUM_PIXELS + 1), axis=1)
  if np.any(bad_rows):
    bad_line = int(np.argmax(bad_rows)) + 1
    raise DataError(
        f'{origin}, line {bad_line}: feature indices are not 1..256 in order.'
        f' {REDOWNLOAD_HINT}'
    )
  labels = table[:, 0]
  if np.any((labels < 1) | (labels > 10) | (labels != np.round(labels))):
    raise DataError(f'{origin}: labels outside 1..10. {REDOWNLOAD_HINT}')
  if np.any((values < -1) | (values > 1)):
    raise DataError(f'{origin}: pixel values outside [-1, 1]. {REDOWNLOAD_HINT}')
  labels = labels.astype(np.int32) - 1
  grey = np.round((values + 1.0) / 2.0 * 255.0).astype(np.uint8)
  return grey.reshape(-1, USPS_SIDE, USPS_SIDE), labels
