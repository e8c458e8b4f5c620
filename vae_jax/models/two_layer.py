"""A VAE with two stochastic layers (Burda et al., 2016, section 5).

q(h1, h2 | x) = q(h1 | x) q(h2 | h1) and p(x, h1, h2) = p(h2) p(h1 | h2)
p(x | h1): each conditional Gaussian is an MLP of tanh layers with a mean
head and a scale head; p(x | h1) is Bernoulli. The paper's MNIST model:
x -> 200 -> 200 -> h1 (100) -> 100 -> 100 -> h2 (50), and back.

Its bounds need every layer's density, so the model computes its own log
importance weights (`log_importance_weights`), which the k-sample objectives
and the IWAE evaluation use. `encode` and `decode` are the one-latent view
the figures and prior samples need: the code h2 of x through the mean of
q(h1 | x), and the image of h2 through the mean of p(h1 | h2).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from vae_jax import config_fields
from vae_jax import objectives
from vae_jax.models.initializers import dense
from vae_jax.models.mlp import activation_fn, POSTERIOR_SCALES
from vae_jax.models.registry import ModelSpec, register_model
from vae_jax.objectives import GaussianPosterior


class GaussianLayer(nn.Module):
  """h -> hidden layers -> N(mean, variance): one stochastic layer."""

  in_features: int
  widths: Sequence[int]
  features: int
  activation: str
  init_scheme: str
  posterior_scale: str

  def setup(self):
    fan_in, layers = self.in_features, []
    for i, width in enumerate(self.widths):
      layers.append(dense(width, fan_in, self.init_scheme, name=f'hidden_{i}'))
      fan_in = width
    self.hidden = layers
    self.mean_head = dense(self.features, fan_in, self.init_scheme,
                           name='mean')
    self.scale_head = dense(self.features, fan_in, self.init_scheme,
                            name='scale')

  def __call__(self, h: jax.Array) -> GaussianPosterior:
    act = activation_fn(self.activation)
    for layer in self.hidden:
      h = act(layer(h))
    scale = self.scale_head(h)
    if self.posterior_scale == 'log_std':
      scale = 2.0 * scale
    return GaussianPosterior(self.mean_head(h), scale)


def _sample(key: jax.Array, gaussian: GaussianPosterior) -> jax.Array:
  mean, log_variance = gaussian
  return mean + jnp.exp(0.5 * log_variance) * jax.random.normal(
      key, mean.shape, mean.dtype)


class TwoStochasticLayerVAE(nn.Module):
  """Attributes:
    image_shape: (H, W); inputs are [B, H, W] in [0, 1].
    latent_size: units of the top layer h2.
    first_latent_size: units of h1.
    encoder_widths: hidden widths between x and h1 (p(x | h1) mirrors them).
    inner_widths: hidden widths between h1 and h2, both ways.
    activation, init_scheme, posterior_scale: as for MLPVAE.
  """

  image_shape: tuple[int, int]
  latent_size: int = 50
  first_latent_size: int = 100
  encoder_widths: Sequence[int] = (200, 200)
  inner_widths: Sequence[int] = (100, 100)
  activation: str = 'tanh'
  init_scheme: str = 'glorot_uniform'
  posterior_scale: str = 'log_std'
  # What the training loop and the evaluators ask of a model.
  variational: bool = True
  num_classes: int = 0

  def setup(self):
    if self.posterior_scale not in POSTERIOR_SCALES:
      raise ValueError(f'Unknown posterior_scale {self.posterior_scale!r}; '
                       f'choose one of {POSTERIOR_SCALES}.')
    pixels = self.image_shape[0] * self.image_shape[1]
    gaussian = dict(activation=self.activation, init_scheme=self.init_scheme,
                    posterior_scale=self.posterior_scale)
    self.q_h1 = GaussianLayer(pixels, tuple(self.encoder_widths),
                              self.first_latent_size, **gaussian)
    self.q_h2 = GaussianLayer(self.first_latent_size,
                              tuple(self.inner_widths), self.latent_size,
                              **gaussian)
    self.p_h1 = GaussianLayer(self.latent_size,
                              tuple(reversed(self.inner_widths)),
                              self.first_latent_size, **gaussian)
    # p(x | h1) at the top level, named as MLPVAE's decoder, so that
    # config.model.output_bias sets its output bias the same way.
    fan_in, layers = self.first_latent_size, []
    for i, width in enumerate(reversed(tuple(self.encoder_widths))):
      layers.append(dense(width, fan_in, self.init_scheme, name=f'dec_{i}'))
      fan_in = width
    self.decoder_layers = layers
    self.logits_head = dense(pixels, fan_in, self.init_scheme,
                             name='dec_logits')

  def _logits(self, h1: jax.Array) -> jax.Array:
    act = activation_fn(self.activation)
    for layer in self.decoder_layers:
      h1 = act(layer(h1))
    return self.logits_head(h1)

  def encode(self, images: jax.Array,
             labels: jax.Array | None = None) -> GaussianPosterior:
    """q(h2 | mean of q(h1 | x)), [B, latent_size]: the code of x."""
    del labels
    h1 = self.q_h1(images.reshape(images.shape[0], -1)).mean
    return self.q_h2(h1)

  def decode(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Logits [B, H, W] of p(x | h1) at h1 = the mean of p(h1 | h2 = z)."""
    del labels
    return self._logits(self.p_h1(z).mean).reshape(z.shape[0],
                                                    *self.image_shape)

  def __call__(self, images: jax.Array, labels: jax.Array | None = None):
    posterior = self.encode(images, labels)
    return self.decode(posterior.mean, labels), posterior

  def log_importance_weights(self, images: jax.Array, sample_keys: jax.Array,
                             prior_mean: jax.Array | float = 0.0,
                             prior_std: jax.Array | float = 1.0,
                             beta: jax.Array | float = 1.0):
    """One (h1, h2) ~ q(h1, h2 | x) per key and image, and its weight.

    log w = log p(x | h1) - beta * [log q(h1 | x) + log q(h2 | h1)
                                    - log p(h1 | h2) - log p(h2)],
    p(h2) = N(prior_mean, prior_std^2).

    Args:
      images: model input [B, H, W] in [0, 1] (binary for a likelihood).
      sample_keys: PRNG keys [S]; key s draws sample s for every image.

    Returns:
      (log w [S, B], -log p(x | h1) [S, B], the sampled KL [S, B]), as
      train.importance_sampled_terms returns them.
    """
    batch = images.shape[0]
    x = images.reshape(batch, -1)
    keys = jax.vmap(jax.random.split)(sample_keys)  # [S, 2]
    q_h1 = self.q_h1(x)
    h1 = jax.vmap(lambda key: _sample(key, q_h1))(keys[:, 0])  # [S, B, .]
    q_h2 = self.q_h2(h1)
    h2 = jax.vmap(_sample)(keys[:, 1], q_h2)
    p_h1 = self.p_h1(h2)
    logits = self._logits(h1)
    targets = jnp.broadcast_to(x, logits.shape)
    num_samples = sample_keys.shape[0]
    reconstruction = objectives.bernoulli_nll_from_logits(
        logits.reshape(num_samples * batch, -1),
        targets.reshape(num_samples * batch, -1)).reshape(num_samples, batch)
    prior_std = jnp.asarray(prior_std, h2.dtype)
    sampled_kl = (
        objectives.gaussian_log_density(h1, q_h1.mean, q_h1.log_variance)
        + objectives.gaussian_log_density(h2, q_h2.mean, q_h2.log_variance)
        - objectives.gaussian_log_density(h1, p_h1.mean, p_h1.log_variance)
        - objectives.gaussian_log_density(h2, prior_mean,
                                          2.0 * jnp.log(prior_std)))
    return -reconstruction - beta * sampled_kl, reconstruction, sampled_kl


def _check(config, where: str) -> str | None:
  if config.get('objective', 'elbo') == 'elbo':
    return (f"config.model.name = 'two_layer_vae'{where} trains a k-sample "
            "bound (its KL has no closed form): set --config.objective=vae "
            'or iwae.')
  if config.model.num_classes or not config.model.variational:
    return (f"config.model.name = 'two_layer_vae'{where} is neither "
            'conditional nor a plain autoencoder: set '
            '--config.model.num_classes=0 and --config.model.variational=True.')
  return None


register_model(ModelSpec(
    name='two_layer_vae',
    build=lambda model_config, image_shape: TwoStochasticLayerVAE(
        image_shape=image_shape, latent_size=model_config.latent_size,
        first_latent_size=model_config.first_latent_size,
        encoder_widths=tuple(model_config.encoder_widths),
        inner_widths=tuple(model_config.inner_widths),
        activation=model_config.activation,
        init_scheme=model_config.init_scheme,
        posterior_scale=model_config.posterior_scale),
    fields=frozenset({'name', 'latent_size', 'first_latent_size',
                      'encoder_widths', 'inner_widths', 'activation',
                      'init_scheme', 'posterior_scale', 'output_bias',
                      'variational', 'num_classes'}),
    # The latent size is the top layer's, behind a second stochastic layer.
    maskable_latent=False, check=_check,
    description="Burda et al.'s two stochastic layers (trains a k-sample "
                'bound)',
    config_fields=(
        config_fields.Field(
            'model.first_latent_size', 100,
            'Units of the first stochastic layer h1 (latent_size is the top '
            "layer's).", config_fields.is_positive_integer, 'an integer >= 1'),
        config_fields.Field(
            'model.inner_widths', (100, 100),
            'Hidden widths between h1 and h2 (encoder_widths lie between x '
            'and h1).', config_fields.is_widths,
            'a tuple of integers >= 1'))))
