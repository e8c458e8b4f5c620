"""Flax linen modules (modules only; losses and training live elsewhere)."""

from vae_jax.models.conv_vae import ConvVAE, DenseBottleneckConvVAE
from vae_jax.models.mlp import MLPVAE
from vae_jax.models.two_layer import TwoStochasticLayerVAE

# mlp_vae: the MLP VAE / CVAE of Studies B, C, D (optionally a CNN encoder);
# conv_vae: Study E's; conv_fc_vae: Study A's; two_layer_vae: Burda et
# al.'s two stochastic layers.
MODELS = ('mlp_vae', 'conv_vae', 'conv_fc_vae', 'two_layer_vae')
# The config.model fields each model is built from (build_model); the others
# do not change what it trains.
MODEL_FIELDS = {
    'mlp_vae': frozenset({'name', 'latent_size', 'encoder_widths',
                          'decoder_widths', 'activation', 'init_scheme',
                          'num_classes', 'encoder_conv_channels', 'conv_impl',
                          'variational', 'posterior_scale', 'output_bias'}),
    'conv_vae': frozenset({'name', 'latent_size', 'init_scheme', 'conv_impl',
                           'variational', 'num_classes'}),
    'conv_fc_vae': frozenset({'name', 'latent_size', 'hidden_size',
                              'init_scheme', 'conv_impl', 'variational',
                              'num_classes'}),
    'two_layer_vae': frozenset({'name', 'latent_size', 'first_latent_size',
                                'encoder_widths', 'inner_widths',
                                'activation', 'init_scheme',
                                'posterior_scale', 'output_bias',
                                'variational', 'num_classes'}),
}


def build_model(model_config, image_shape: tuple[int, int]):
  """Builds the module named by `model_config.name` from its config fields."""
  name = model_config.name
  image_shape = tuple(image_shape)
  if name == 'mlp_vae':
    return MLPVAE(
        image_shape=image_shape,
        latent_size=model_config.latent_size,
        encoder_widths=tuple(model_config.encoder_widths),
        decoder_widths=(None if model_config.decoder_widths is None
                        else tuple(model_config.decoder_widths)),
        activation=model_config.activation,
        init_scheme=model_config.init_scheme,
        num_classes=model_config.num_classes,
        encoder_conv_channels=tuple(model_config.encoder_conv_channels),
        conv_impl=model_config.conv_impl,
        variational=model_config.variational,
        posterior_scale=model_config.posterior_scale,
    )
  if name not in MODELS:
    raise ValueError(f'Unknown model {name!r} in config.model.name; choose '
                     f'one of {MODELS}.')
  if name == 'two_layer_vae':
    return TwoStochasticLayerVAE(
        image_shape=image_shape, latent_size=model_config.latent_size,
        first_latent_size=model_config.first_latent_size,
        encoder_widths=tuple(model_config.encoder_widths),
        inner_widths=tuple(model_config.inner_widths),
        activation=model_config.activation,
        init_scheme=model_config.init_scheme,
        posterior_scale=model_config.posterior_scale)
  if model_config.num_classes:
    raise ValueError(f'{name} has no conditional form; set '
                     'config.model.num_classes=0 or use mlp_vae.')
  if name == 'conv_vae':
    return ConvVAE(image_shape=image_shape,
                   latent_size=model_config.latent_size,
                   init_scheme=model_config.init_scheme,
                   conv_impl=model_config.conv_impl,
                   variational=model_config.variational)
  return DenseBottleneckConvVAE(image_shape=image_shape,
                                latent_size=model_config.latent_size,
                                hidden_size=model_config.hidden_size,
                                init_scheme=model_config.init_scheme,
                                conv_impl=model_config.conv_impl,
                                variational=model_config.variational)
