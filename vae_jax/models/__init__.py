"""Flax linen modules (modules only; losses and training live elsewhere)."""

from vae_jax.models.mlp import MLPVAE

MODELS = {'mlp_vae': MLPVAE}


def build_model(model_config, image_shape: tuple[int, int]):
  """Builds the module named by `model_config.name` from its config fields."""
  name = model_config.name
  if name not in MODELS:
    raise ValueError(f'Unknown model {name!r} in config.model.name; choose '
                     f'one of {sorted(MODELS)}.')
  if name == 'mlp_vae':
    return MLPVAE(
        image_shape=tuple(image_shape),
        latent_size=model_config.latent_size,
        encoder_widths=tuple(model_config.encoder_widths),
        decoder_widths=(None if model_config.decoder_widths is None
                        else tuple(model_config.decoder_widths)),
        activation=model_config.activation,
        init_scheme=model_config.init_scheme,
    )
  raise AssertionError(name)
