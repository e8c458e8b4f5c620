"""Flax linen modules (modules only; losses and training live elsewhere).

Each VAE module registers itself by name (vae_jax.models.registry);
`build_model` builds the one a config names.
"""

from vae_jax.models.registry import ModelSpec, get_model, model_names
from vae_jax.models.registry import register_model
# Importing the modules registers their models, in the order listings show
# them.
from vae_jax.models.mlp import MLPVAE
from vae_jax.models.conv_vae import ConvVAE, DenseBottleneckConvVAE
from vae_jax.models.two_layer import TwoStochasticLayerVAE
from vae_jax.models.cnn_bn import BatchNormCNNVAE


def build_model(model_config, image_shape: tuple[int, int]):
  """Builds the module named by `model_config.name` from its config fields."""
  return get_model(model_config.name).build(model_config, tuple(image_shape))
