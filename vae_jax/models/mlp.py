"""Multi-layer-perceptron VAE (encoder and decoder are MLPs)."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from vae_jax.models.conv import Conv
from vae_jax.models.initializers import dense
from vae_jax.models.registry import ModelSpec, register_model
from vae_jax.objectives import GaussianPosterior

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'relu': nn.relu,
    'leaky_relu': nn.leaky_relu,
    'tanh': jnp.tanh,
    'elu': nn.elu,
    'gelu': nn.gelu,
    'softplus': nn.softplus,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  try:
    return ACTIVATIONS[name]
  except KeyError:
    raise ValueError(f'Unknown activation {name!r}; choose one of '
                     f'{sorted(ACTIVATIONS)}.') from None


POSTERIOR_SCALES = ('log_variance', 'log_std')


class MLPVAE(nn.Module):
  """VAE with MLP encoder x -> (mean, log_variance) and decoder z -> logits.

  With num_classes > 0 it is a conditional VAE (CVAE): the one-hot label is
  concatenated to the encoder's input and to z before decoding.

  Attributes:
    image_shape: (H, W) of the images; inputs are [B, H, W] in [0, 1].
    latent_size: dimension of z.
    encoder_widths: hidden widths of the encoder, input side first.
    decoder_widths: hidden widths of the decoder, latent side first; None
      mirrors the encoder.
    activation: name from ACTIVATIONS.
    init_scheme: weight initialisation scheme (see models.initializers).
    num_classes: 0 for a VAE; the number of labels for a CVAE.
    encoder_conv_channels: channels of 3x3, stride-2 convolutions run before
      the encoder's dense layers (Study B's CNN encoder); () for a pure MLP.
    conv_impl: convolution implementation (see models.conv).
    variational: False makes a plain autoencoder: the encoder gives only a
      code (returned as the posterior mean, with log-variance 0) and the
      training loss has no KL term.
    posterior_scale: what the second head outputs: 'log_variance', or
      'log_std' (log sigma, so sigma = exp(linear), as in Burda et al.'s
      IWAE code). The two are the same family; they differ in how a step of
      the head's weights moves sigma.
  """

  image_shape: tuple[int, int]
  latent_size: int
  encoder_widths: Sequence[int] = (400,)
  decoder_widths: Sequence[int] | None = None
  activation: str = 'relu'
  init_scheme: str = 'torch_default'
  num_classes: int = 0
  encoder_conv_channels: Sequence[int] = ()
  conv_impl: str = 'auto'
  variational: bool = True
  posterior_scale: str = 'log_variance'

  def setup(self):
    pixels = self.image_shape[0] * self.image_shape[1]
    activation_fn(self.activation)  # A bad name fails at init, not mid-run.
    if self.posterior_scale not in POSTERIOR_SCALES:
      raise ValueError(f'Unknown posterior_scale {self.posterior_scale!r}; '
                       f'choose one of {POSTERIOR_SCALES}.')
    if self.encoder_conv_channels and self.num_classes:
      raise ValueError('A CNN encoder (model.encoder_conv_channels) has no '
                       'conditional form; set model.num_classes=0.')
    self.encoder_convs = [Conv(c, 3, 2, 1, self.init_scheme, self.conv_impl)
                          for c in self.encoder_conv_channels]
    height, width = self.image_shape
    for _ in self.encoder_conv_channels:
      height, width = -(-height // 2), -(-width // 2)
    fan_in = (height * width * self.encoder_conv_channels[-1]
              if self.encoder_conv_channels else pixels) + self.num_classes
    encoder_layers = []
    for i, width in enumerate(self.encoder_widths):
      encoder_layers.append(dense(width, fan_in, self.init_scheme, name=f'enc_{i}'))
      fan_in = width
    self.encoder_layers = encoder_layers
    self.mean_head = dense(self.latent_size, fan_in, self.init_scheme, name='enc_mean')
    if self.variational:
      self.log_variance_head = dense(self.latent_size, fan_in, self.init_scheme,
                                     name='enc_log_variance')
    widths = (tuple(reversed(self.encoder_widths))
              if self.decoder_widths is None else tuple(self.decoder_widths))
    fan_in = self.latent_size + self.num_classes
    decoder_layers = []
    for i, width in enumerate(widths):
      decoder_layers.append(dense(width, fan_in, self.init_scheme, name=f'dec_{i}'))
      fan_in = width
    self.decoder_layers = decoder_layers
    self.logits_head = dense(pixels, fan_in, self.init_scheme, name='dec_logits')

  def _condition(self, h: jax.Array, labels: jax.Array | None) -> jax.Array:
    if not self.num_classes:
      return h
    if labels is None:
      raise ValueError('A conditional VAE (num_classes > 0) needs labels.')
    return jnp.concatenate(
        [h, jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype)], axis=-1)

  def encode(self, images: jax.Array,
             labels: jax.Array | None = None) -> GaussianPosterior:
    """[B, H, W] in [0, 1] (and int labels [B] for a CVAE) -> posterior [B, latent]."""
    act = activation_fn(self.activation)
    h = images
    if self.encoder_convs:
      h = h[..., None]
      for conv in self.encoder_convs:
        h = act(conv(h))
    h = self._condition(h.reshape(images.shape[0], -1), labels)
    for layer in self.encoder_layers:
      h = act(layer(h))
    if not self.variational:
      mean = self.mean_head(h)
      return GaussianPosterior(mean, jnp.zeros_like(mean))
    return self._gaussian_heads(h)

  def _gaussian_heads(self, h: jax.Array) -> GaussianPosterior:
    """[B, F] -> posterior [B, latent], the heads as one [F, 2*latent] product.

    The heads stay two Dense layers in the parameters (checkpoints, the
    PyTorch twin and sweep padding see `enc_mean` and `enc_log_variance`), but
    a product only `latent` wide (1 to 64 here) uses a CPU's matmul kernel
    poorly; one product of twice the width trains no slower
    (docs/cpu_kernels.md), and the values are the same up to float rounding.
    """
    if self.is_initializing():
      mean, scale = self.mean_head(h), self.log_variance_head(h)
    else:
      mean_head = self.mean_head.variables['params']
      log_variance_head = self.log_variance_head.variables['params']
      kernel = jnp.concatenate(
          [mean_head['kernel'], log_variance_head['kernel']], axis=1)
      bias = jnp.concatenate([mean_head['bias'], log_variance_head['bias']])
      both = h @ kernel + bias
      mean, scale = both[:, :self.latent_size], both[:, self.latent_size:]
    if self.posterior_scale == 'log_std':
      scale = 2.0 * scale
    return GaussianPosterior(mean, scale)

  def decode(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """[B, latent] (and int labels [B] for a CVAE) -> logits [B, H, W]."""
    act = activation_fn(self.activation)
    h = self._condition(z, labels)
    for layer in self.decoder_layers:
      h = act(layer(h))
    return self.logits_head(h).reshape(z.shape[0], *self.image_shape)

  def __call__(self, images: jax.Array, labels: jax.Array | None = None):
    """Encodes and decodes the posterior mean (`init` uses it; training
    samples z itself)."""
    posterior = self.encode(images, labels)
    return self.decode(posterior.mean, labels), posterior


def _build(model_config, image_shape: tuple[int, int]) -> MLPVAE:
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


register_model(ModelSpec(
    name='mlp_vae', build=_build,
    # output_bias is read where the parameters are drawn
    # (train.initial_output_bias), not by the module.
    fields=frozenset({'name', 'latent_size', 'encoder_widths',
                      'decoder_widths', 'activation', 'init_scheme',
                      'num_classes', 'encoder_conv_channels', 'conv_impl',
                      'variational', 'posterior_scale', 'output_bias'}),
    maskable_latent=True,
    description='MLP VAE or conditional VAE, optionally with convolutions '
                'before the encoder (Studies B, C, D; Burda et al.)'))
