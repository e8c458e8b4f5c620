"""The built-in data sets, one module each; every module here is imported
(and so registers its data set) when vae_jax.data is, so a new data set is
one new file in this directory."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
  importlib.import_module(f'{__name__}.{_module.name}')
