"""Models by name: each model module registers how a config builds it.

A model is registered once, from the module that defines it, as a
`ModelSpec`: the function that builds the Flax module from `config.model`,
the config fields that function reads (declaring those only it reads),
whether a smaller latent size can train as a mask over a larger model (so
a sweep puts both in one compiled group), and the combinations of settings
it refuses. Everything that picks
a model by name (building, validation, resume compatibility, sweep groups)
reads this registry.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import ml_collections
from flax import linen as nn

from vae_jax import config_fields as config_fields_lib
from vae_jax.registry import Registry

ModelBuilder = Callable[[ml_collections.ConfigDict, tuple[int, int]],
                        nn.Module]
ConfigCheck = Callable[[ml_collections.ConfigDict, str], 'str | None']


def _accepts_every_config(config: ml_collections.ConfigDict,
                          where: str) -> None:
  return None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """How a config builds one model.

  name: the value of config.model.name that selects it.
  build: (config.model, image shape (H, W)) -> the Flax module, whose
    `encode`, `decode` and `__call__` follow vae_jax.models.mlp.MLPVAE's.
  fields: the config.model fields `build` reads; the other model fields do
    not change what it trains (a resumed run may differ in them).
  maskable_latent: whether the model at latent size n with all but the
    first m latent dimensions masked trains exactly as the model built at m
    (the first layers that touch z are dense), so sweep members differing
    only in latent size share one program.
  check: (the whole config, where) -> a one-line message naming a setting
    this model cannot train with and what to set instead, or None; `where`
    names the sweep member ('' for a run) and follows the setting's value.
  description: one line for listings.
  config_fields: the config.model fields only this model reads, declared
    with their defaults and allowed values (vae_jax.config_fields.Field);
    they join the default config when the model is registered.
  """

  name: str
  build: ModelBuilder
  fields: frozenset[str]
  maskable_latent: bool = False
  check: ConfigCheck = _accepts_every_config
  description: str = ''
  config_fields: tuple[config_fields_lib.Field, ...] = ()


MODELS: Registry[ModelSpec] = Registry('model', 'config.model.name')


def register_model(spec: ModelSpec) -> ModelSpec:
  """Makes `spec` selectable as config.model.name = spec.name, and declares
  its own config fields."""
  MODELS.add(spec.name, spec, describe=lambda s: s.description)
  config_fields_lib.declare(*spec.config_fields)
  return spec


def model_names() -> tuple[str, ...]:
  """The registered models' names, in registration order."""
  return MODELS.names()


def get_model(name: str) -> ModelSpec:
  return MODELS.lookup(name)
