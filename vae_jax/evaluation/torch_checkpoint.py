"""Reading PyTorch checkpoint files into numpy, with or without torch.

`read_torch_checkpoint` parses both file formats torch.save writes: the zip
archive of torch>=1.6 (<root>/data.pkl and one file per storage) and the
legacy sequence of pickles that torch<1.6 and
torch.save(..., _use_new_zipfile_serialization=False) write. No code from
the file runs:

* the legacy format's header (magic number, protocol version, system info)
  and its list of storage keys are read by an unpickler that refuses every
  global, so they can only be numbers, strings and containers;
* the pickled object itself is read by an unpickler that allows only what a
  state dict of tensors names (OrderedDict, torch's tensor and parameter
  rebuild functions, the storage classes) and refuses every other global
  before it is looked up.

A file is accepted only as a mapping of names to tensors (or such a mapping
under a 'state_dict' key). Where torch is installed, `load_torch_state_dict`
can use torch.load(weights_only=True) instead.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pathlib
import pickle
import tarfile
import zipfile
from typing import Any, Mapping

import numpy as np

from vae_jax.data import DataError, DataNotFoundError

PathLike = str | os.PathLike

# torch.<Name>Storage -> numpy dtype (the classes torch pickles for tensors).
_STORAGE_DTYPES = {
    'DoubleStorage': np.float64,
    'FloatStorage': np.float32,
    'HalfStorage': np.float16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}
_LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL_VERSION = 1001


def _storage_dtype(name: str) -> np.dtype:
  if name == 'BFloat16Storage':
    import ml_dtypes  # a JAX dependency; only needed for bf16 checkpoints
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(_STORAGE_DTYPES[name])


@dataclasses.dataclass
class _StorageType:
  dtype: np.dtype


@dataclasses.dataclass
class _StorageRef:
  """A storage named in the pickle; its bytes are attached afterwards."""
  key: str
  dtype: np.dtype
  numel: int
  array: np.ndarray | None = None


@dataclasses.dataclass
class _TensorRef:
  storage: _StorageRef
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
                       backward_hooks, metadata=None):
  del requires_grad, backward_hooks, metadata
  return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(tensor, requires_grad, backward_hooks, *args):
  del requires_grad, backward_hooks, args
  return tensor


class _PlainValueUnpickler(pickle.Unpickler):
  """Numbers, strings, tuples, lists and dicts only: every global (and so
  every callable a malicious pickle could name) is refused before it is
  looked up. The legacy format's header and storage-key list are such
  values."""

  def __init__(self, file, origin: str):
    super().__init__(file)
    self.origin = origin

  def find_class(self, module: str, name: str) -> Any:
    raise pickle.UnpicklingError(
        f'{self.origin}: refusing to load global {module}.{name} where a '
        'torch checkpoint holds only plain values.')

  def persistent_load(self, saved_id) -> Any:
    raise pickle.UnpicklingError(
        f'{self.origin}: unexpected persistent id {saved_id!r}.')


class _CheckpointUnpickler(pickle.Unpickler):
  """Rebuilds a state dict of tensors and refuses every other global."""

  def __init__(self, file, origin: str):
    super().__init__(file)
    self.origin = origin
    self.storages: dict[str, _StorageRef] = {}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor_v2
    if (module, name) == ('torch._utils', '_rebuild_parameter'):
      return _rebuild_parameter
    if module == 'torch' and (name in _STORAGE_DTYPES
                              or name == 'BFloat16Storage'):
      return _StorageType(_storage_dtype(name))
    raise pickle.UnpicklingError(
        f'{self.origin}: refusing to load global {module}.{name}: a plain'
        ' state dict of tensors holds none. Load it with torch instead if you'
        ' trust the file.')

  def persistent_load(self, saved_id) -> _StorageRef:
    # ('storage', storage_type, key, location, numel[, view_metadata])
    if not (isinstance(saved_id, tuple) and saved_id
            and saved_id[0] == 'storage'):
      raise pickle.UnpicklingError(
          f'{self.origin}: unsupported persistent id {saved_id!r}.')
    storage_type, key, _, numel = saved_id[1:5]
    view_metadata = saved_id[5] if len(saved_id) > 5 else None
    if view_metadata is not None:
      raise pickle.UnpicklingError(
          f'{self.origin}: storage views are not supported.')
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(
          f'{self.origin}: unknown storage type {storage_type!r}.')
    key = str(key)
    if key not in self.storages:
      self.storages[key] = _StorageRef(key, storage_type.dtype, int(numel))
    return self.storages[key]


def _materialise(tensor: _TensorRef, origin: str) -> np.ndarray:
  storage = tensor.storage.array
  if any(s < 0 for s in tensor.stride) or tensor.offset < 0:
    raise DataError(f'{origin}: negative stride or offset in a tensor.')
  if 0 in tensor.size:
    return np.zeros(tensor.size, storage.dtype)
  last = tensor.offset + sum((n - 1) * s
                             for n, s in zip(tensor.size, tensor.stride))
  if last >= storage.size:
    raise DataError(f'{origin}: a tensor reaches element {last} of a storage'
                    f' of {storage.size}; the file is corrupted.')
  view = np.lib.stride_tricks.as_strided(
      storage[tensor.offset:], tensor.size,
      tuple(s * storage.itemsize for s in tensor.stride), writeable=False)
  return np.array(view)  # a contiguous copy


def _to_arrays(obj, origin: str) -> dict[str, np.ndarray]:
  if not isinstance(obj, Mapping):
    raise DataError(f'{origin}: expected a state dict (a mapping of names to'
                    f' tensors), found {type(obj).__name__}.')
  if 'state_dict' in obj and isinstance(obj['state_dict'], Mapping):
    obj = obj['state_dict']  # a training checkpoint wrapping the state dict
  arrays = {}
  for name, value in obj.items():
    if not isinstance(value, _TensorRef):
      raise DataError(f'{origin}: entry {name!r} is a {type(value).__name__},'
                      ' not a tensor.')
    arrays[str(name)] = _materialise(value, origin)
  return arrays


def _read_zip_checkpoint(path: pathlib.Path) -> dict[str, np.ndarray]:
  """torch>=1.6 format: <root>/data.pkl + <root>/data/<key> (+ byteorder)."""
  origin = str(path)
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith('data.pkl')
               and n.count('/') == 1]
    if len(pickles) != 1:
      raise DataError(f'{origin}: a zip file but not a torch checkpoint (no'
                      ' single <root>/data.pkl).')
    root = pickles[0][:-len('data.pkl')]
    byteorder = 'little'
    if root + 'byteorder' in names:
      byteorder = archive.read(root + 'byteorder').decode().strip()
    unpickler = _CheckpointUnpickler(io.BytesIO(archive.read(pickles[0])),
                                     origin)
    obj = unpickler.load()
    for key, storage in unpickler.storages.items():
      raw = archive.read(f'{root}data/{key}')
      dtype = storage.dtype.newbyteorder('<' if byteorder == 'little' else '>')
      _attach(storage, raw, dtype, origin)
  return _to_arrays(obj, origin)


def _attach(storage: _StorageRef, raw: bytes, dtype: np.dtype,
            origin: str) -> None:
  expected = storage.numel * dtype.itemsize
  if len(raw) < expected:
    raise DataError(f'{origin}: storage {storage.key} has {len(raw)} bytes,'
                    f' expected {expected}; the file is truncated.')
  storage.array = np.frombuffer(raw, dtype, storage.numel).astype(
      dtype.newbyteorder('='))


def _read_legacy_checkpoint(path: pathlib.Path) -> dict[str, np.ndarray]:
  """Pre-1.6 format: pickles of magic, version, sys_info, the object, the
  storage keys; then per key an int64 element count and the raw bytes."""
  origin = str(path)
  with open(path, 'rb') as f:
    try:
      magic = _PlainValueUnpickler(f, origin).load()
      protocol = _PlainValueUnpickler(f, origin).load()
      sys_info = _PlainValueUnpickler(f, origin).load()
    except Exception as err:  # any garbage: not this format
      raise DataError(f'{origin}: not a torch checkpoint ({err}).') from err
    if magic != _LEGACY_MAGIC_NUMBER or protocol != _LEGACY_PROTOCOL_VERSION:
      raise DataError(f'{origin}: not a torch checkpoint (magic {magic!r},'
                      f' protocol {protocol!r}).')
    little_endian = not isinstance(sys_info, dict) or sys_info.get(
        'little_endian', True)
    unpickler = _CheckpointUnpickler(f, origin)
    obj = unpickler.load()
    keys = _PlainValueUnpickler(f, origin).load()
    for key in keys:
      storage = unpickler.storages.get(str(key))
      if storage is None:
        raise DataError(f'{origin}: storage {key!r} listed but never used.')
      header = f.read(8)
      if len(header) != 8:
        raise DataError(f'{origin}: truncated before storage {key}.')
      numel = int(np.frombuffer(header, '<i8')[0])
      if numel != storage.numel:
        raise DataError(f'{origin}: storage {key} has {numel} elements, the'
                        f' pickle says {storage.numel}.')
      dtype = storage.dtype.newbyteorder('<' if little_endian else '>')
      _attach(storage, f.read(numel * dtype.itemsize), dtype, origin)
  return _to_arrays(obj, origin)


def read_torch_checkpoint(path: PathLike) -> dict[str, np.ndarray]:
  """Reads a state dict saved by torch.save, without torch.

  Both formats: the zip archive (torch>=1.6 default) and the legacy pickle
  sequence (_use_new_zipfile_serialization=False, torch<1.6). Only tensors in
  (nested in at most a 'state_dict' entry of) a mapping are accepted; every
  other pickled global is refused.

  Returns:
    {name: array} in the tensors' shapes and dtypes (C-contiguous copies).

  Raises:
    DataNotFoundError: no such file.
    DataError: not a torch checkpoint, a tar-format (torch<0.4) file, or a
      truncated or corrupted one.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise DataNotFoundError(f'{path}: file not found.')
  if zipfile.is_zipfile(path):
    try:
      return _read_zip_checkpoint(path)
    except (zipfile.BadZipFile, KeyError, EOFError,
            pickle.UnpicklingError) as err:
      raise DataError(f'{path}: corrupted torch zip checkpoint'
                      f' ({type(err).__name__}: {err}).') from err
  if tarfile.is_tarfile(path):
    raise DataError(f'{path}: torch\'s oldest (tar) format; read it with'
                    ' torch (pip install torch) or re-save it with a newer'
                    ' torch.')
  try:
    return _read_legacy_checkpoint(path)
  except (EOFError, pickle.UnpicklingError, ValueError) as err:
    raise DataError(f'{path}: corrupted legacy torch checkpoint'
                    f' ({type(err).__name__}: {err}).') from err


def _read_with_torch(path: pathlib.Path) -> dict[str, np.ndarray]:
  import torch
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception:  # pylint: disable=broad-except
    # torch's errors for a file it cannot read advise weights_only=False
    # (running the file's code); the torch-free reader says what is wrong.
    return read_torch_checkpoint(path)
  if not isinstance(state, Mapping):
    raise DataError(f'{path}: holds a {type(state).__name__}, not a state'
                    ' dict.')
  if 'state_dict' in state and isinstance(state['state_dict'], Mapping):
    state = state['state_dict']
  if not all(isinstance(tensor, torch.Tensor) for tensor in state.values()):
    raise DataError(f'{path}: not a state dict of tensors.')
  return {str(name): tensor.detach().cpu().numpy().copy()
          for name, tensor in state.items()}


def load_torch_state_dict(path: PathLike, reader: str = 'auto'
                          ) -> dict[str, np.ndarray]:
  """A torch state dict as numpy arrays, with or without torch.

  Args:
    path: a file written by torch.save (either format).
    reader: 'torch' (torch.load(weights_only=True)), 'numpy' (this module's
      torch-free reader) or 'auto' (torch if importable, else numpy).
  """
  path = pathlib.Path(path).expanduser()
  if reader not in ('auto', 'torch', 'numpy'):
    raise ValueError(f"reader must be 'auto', 'torch' or 'numpy', got"
                     f' {reader!r}.')
  if reader == 'auto':
    try:
      import torch  # noqa: F401
      reader = 'torch'
    except ImportError:
      reader = 'numpy'
  if reader == 'numpy':
    return read_torch_checkpoint(path)
  if not path.is_file():
    raise DataNotFoundError(f'{path}: file not found.')
  return _read_with_torch(path)
