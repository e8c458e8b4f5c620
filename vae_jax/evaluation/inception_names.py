"""pytorch-fid's state-dict names and shapes, mapped onto the Flax port.

pytorch-fid's FID Inception-v3 (`pytorch_fid.inception.fid_inception_v3`)
names its tensors as torchvision's Inception3 does, e.g.
`Mixed_6b.branch7x7_2.conv.weight`; `vae_jax.models.inception` keeps the
module names, so that tensor is params['Mixed_6b']['branch7x7_2']['kernel'].
This module checks a state dict against the port's parameter shapes
(`check_state_dict`), converts one into the Flax parameter tree
(`state_dict_to_params`: convolution and dense kernels transposed from
torch's layouts) and draws random weights under the same names
(`random_state_dict`) for tests and benchmarks without the real file.
"""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from vae_jax.data import DataError

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


def _split_torch_name(name: str
                      ) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
  """(the Flax path, the transpose from torch's layout or None) of a name."""
  # The longer suffixes come first in _LEAF_NAMES: 'conv.weight' before
  # the dense layer's 'weight'.
  for suffix, (leaf, transpose) in _LEAF_NAMES.items():
    if name.endswith('.' + suffix):
      path = tuple(name[:-len(suffix) - 1].split('.'))
      return path + (leaf,), transpose
  raise KeyError(name)


@functools.lru_cache(maxsize=None)
def expected_shapes() -> dict[str, tuple[int, ...]]:
  """torch name -> shape of every tensor the state dict must hold.

  Read only: cached, as tracing the network's init takes seconds.
  """
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
  expected = expected_shapes()
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
        f'{origin}: not the state dict of pytorch-fid\'s FID Inception-v3: '
        + '; '.join(p for p in problems if p) + '.')
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
  for name, shape in sorted(expected_shapes().items()):
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
    path, transpose = _split_torch_name(name)
    node = params
    for part in path[:-1]:
      node = node.setdefault(part, {})
    array = np.asarray(array, np.float32)
    node[path[-1]] = np.ascontiguousarray(
        array.transpose(transpose) if transpose else array)
  return params
