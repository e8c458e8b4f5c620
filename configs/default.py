"""MLP VAE of pytorch/examples `vae/main.py`: 784-400-20, batch 128, Adam 1e-3.

Grey MNIST in [0, 1], Bernoulli decoder (BCE summed over pixels), KL to
N(0, I). Other configs import this one and change fields. The fields and
what they mean and allow are declared in vae_jax/config_fields.py
(installed with the package, so that `vae_jax.default_config()` needs no
checkout; a model's own fields are declared by its module).

  python -m launch.train --config=configs/default.py --workdir=/tmp/vae
  python -m launch.train --config=configs/default.py --config.num_epochs=3 ...
"""

import ml_collections

from vae_jax import defaults


def get_config() -> ml_collections.ConfigDict:
  return defaults.default_config()
