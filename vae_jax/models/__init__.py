"""Flax linen modules (modules only; losses and training live elsewhere).

Each VAE module registers itself by name (vae_jax.models.registry);
`build_model` builds the one a config names.
"""

from vae_jax.models.registry import ModelSpec, get_model, model_names
from vae_jax.models.registry import register_model
# Imported for their registrations, in the order listings show them.
from vae_jax.models import mlp  # pylint: disable=unused-import
from vae_jax.models import conv_vae  # pylint: disable=unused-import
from vae_jax.models import two_layer  # pylint: disable=unused-import


def build_model(model_config, image_shape: tuple[int, int]):
  """Builds the module named by `model_config.name` from its config fields."""
  return get_model(model_config.name).build(model_config, tuple(image_shape))
