"""Variational autoencoders on small image data sets in JAX/Flax.

The public API (README's "Python API"; docs/guide.md has the details):

  config = vae_jax.default_config()                # then change its fields
  results = vae_jax.train_and_evaluate(config, workdir)
  results = vae_jax.run_sweep(sweep_config, workdir)  # config.sweep's members
  model = vae_jax.load_model(workdir)              # member=i in a sweep
  model.encode(images), model.decode(codes), model.sample(num, seed),
  model.reconstruct(images), model.elbo(images)

The data sets are in vae_jax.data (load_dataset, and Dataset for arrays of
your own); a sweep's members are built with vae_jax.grid.
"""

import importlib
from importlib import metadata

try:
  __version__ = metadata.version('vae_jax')
except metadata.PackageNotFoundError:
  # Imported from a checkout that was never pip-installed: no metadata.
  __version__ = '0+unknown'

# Public name -> the module that defines it, imported on first use:
# importing vae_jax (and so vae_jax.data, which promises plain NumPy) must
# not pull in JAX.
_EXPORTS = {
    'default_config': 'vae_jax.defaults',
    'train_and_evaluate': 'vae_jax.driver',
    'run_sweep': 'vae_jax.sweep',
    'load_model': 'vae_jax.trained_model',
    'TrainedModel': 'vae_jax.trained_model',
}
# Subpackages a user reaches as attributes (vae_jax.grid.product for a
# sweep's members), imported on first use as well.
_SUBMODULES = ('data', 'grid')
__all__ = ['__version__', *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str):
  if name in _SUBMODULES:
    return importlib.import_module(f'{__name__}.{name}')
  if name not in _EXPORTS:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(_EXPORTS[name]), name)
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))
