"""Grids of sweep members: lists of {dotted config key: value} dicts.

No JAX, so config files can build their sweeps with it:

  config.sweep = grid.concat(
      grid.product(model__latent_size=[1, 2, 64], beta=[1.0]),
      grid.product(model__latent_size=[64], beta=[0.1, 0.5, 2.0, 10.0]))
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Sequence

import ml_collections


def product(**axes: Sequence[Any]) -> list[dict]:
  """Every combination of the axes; keys are dotted config keys ('model__latent_size'
  may be written for 'model.latent_size')."""
  keys = [k.replace('__', '.') for k in axes]
  return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def zipped(**axes: Sequence[Any]) -> list[dict]:
  """Members taking the i-th value of every axis (axes of equal length)."""
  lengths = {len(v) for v in axes.values()}
  if len(lengths) != 1:
    raise ValueError(f'zipped axes need equal lengths, got '
                     f'{ {k: len(v) for k, v in axes.items()} }.')
  keys = [k.replace('__', '.') for k in axes]
  return [dict(zip(keys, values)) for values in zip(*axes.values())]


def concat(*grids: list[dict]) -> list[dict]:
  """The grids' members one after another."""
  return [member for grid in grids for member in grid]


def get_key(config, key: str) -> Any:
  """The value at a dotted key ('model.latent_size') of a ConfigDict or a
  nested dict. Raises KeyError naming the key when it is absent."""
  node = config
  for part in key.split('.'):
    try:
      node = node[part]
    except (KeyError, TypeError, AttributeError):
      raise KeyError(key) from None
  return node


def set_key(config, key: str, value: Any, create: bool = False) -> None:
  """Sets the value at a dotted key of a ConfigDict or a nested dict.

  An absent key is a KeyError naming it (a misspelt key must not add a
  field), unless `create`, which adds it and any missing parents as dicts.
  """
  *parents, leaf = key.split('.')
  node = config
  for parent in parents:
    if create and parent not in node:
      node[parent] = {}
    try:
      node = node[parent]
    except (KeyError, TypeError, AttributeError):
      raise KeyError(key) from None
  if not create:
    try:
      get_key(node, leaf)
    except KeyError:
      raise KeyError(key) from None
  node[leaf] = value


def member_config(base: ml_collections.ConfigDict,
                  overrides: dict) -> ml_collections.ConfigDict:
  """The base config with one member's overrides (unknown keys are errors)."""
  config = copy.deepcopy(base)
  with config.unlocked():
    for key in ('sweep', 'reported'):
      if key in config:
        del config[key]
  for key, value in overrides.items():
    try:
      set_key(config, key, value)
    except KeyError:
      raise KeyError(f'Sweep member key {key!r} is not a config key.') from None
  return config


def member_label(overrides: dict) -> str:
  return ', '.join(f'{k.split(".")[-1]}={v}' for k, v in overrides.items())
