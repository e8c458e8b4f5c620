"""The default config: every field of a run (vae_jax.config_fields) at its
default.

An MLP VAE as pytorch/examples `vae/main.py` trains it: 784-400-20, batch
128, Adam 1e-3, grey MNIST in [0, 1], a Bernoulli decoder (BCE summed over
pixels) and KL to N(0, I). It lives in the package so that
`vae_jax.default_config()` works wherever vae_jax is installed;
configs/default.py (the launchers' `--config=configs/default.py`) returns it,
and the other configs change a few of its fields.
"""

import ml_collections

from vae_jax import config_fields
from vae_jax import grid
# Importing the models registers their own fields (ModelSpec.config_fields).
from vae_jax import models  # pylint: disable=unused-import


def default_config() -> ml_collections.ConfigDict:
  """A new copy of the default config: every declared field at its default
  (vae_jax.config_fields says what each means)."""
  config = ml_collections.ConfigDict()
  for field in config_fields.FIELDS.values():
    if field.optional:
      continue
    grid.set_key(config, field.key,
                 ml_collections.config_dict.placeholder(field.value_type)
                 if field.default is None else field.default, create=True)
  return config
