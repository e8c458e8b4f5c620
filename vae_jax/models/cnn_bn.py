"""Study B's linked code's `VAE_cnn`: convolutions with BatchNorm before an
MLP VAE.

The code (github.com/wolfball/Intellisense-Cognitive-Practice, VAE/models.py;
../shared/reports/README.md) builds

  encoder: Conv2d(1, 6, 5), BatchNorm2d(6), LeakyReLU(0.2),
           Conv2d(6, 16, 5), BatchNorm2d(16), LeakyReLU(0.2),
           Conv2d(16, 32, 5), BatchNorm2d(32), LeakyReLU(0.2)
           (stride 1, no padding: 28 -> 24 -> 20 -> 16 pixels),
           flatten (32 x 16 x 16 = 8,192), Linear(8192, hid_dim), ReLU,
           Linear(hid_dim, hid_dim), ReLU; heads mu and logvar2
  decoder: Linear(lat_dim, hid_dim), ReLU, Linear(hid_dim, 784), Sigmoid

(`en_layers` is accepted and not used by it). Its test loop calls
`model.eval()`, so the test loss normalises with the running averages.

BatchNorm state: the running averages are the 'batch_stats' collection. The
module normalises with the batch's statistics, and updates the averages,
when it is applied with that collection mutable (training:
`model.apply(variables, ..., mutable=['batch_stats'])`), and with the
running averages otherwise (evaluation, figures, metrics), so `encode` and
`decode` keep every model's signature. vae_jax.train carries the collection
in TrainState.batch_stats.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from vae_jax.models.conv import Conv
from vae_jax.models.initializers import dense
from vae_jax.models.registry import ModelSpec, register_model
from vae_jax.objectives import GaussianPosterior

KERNEL_SIZE = 5
LEAKY_SLOPE = 0.2  # nn.LeakyReLU(.2)


class BatchNorm(nn.Module):
  """torch.nn.BatchNorm2d (and 1d) with PyTorch's defaults, over the last
  (channel) axis of NHWC or [B, C] inputs.

  Training (the 'batch_stats' collection mutable): normalises with the
  batch's mean and biased variance over every axis but the last, and moves
  the running averages `momentum` of the way to the batch's mean and
  unbiased variance (n / (n - 1) times the biased one, n the values per
  channel), as PyTorch does. PyTorch's momentum 0.1 is Flax's 0.9
  (flax.linen.BatchNorm keeps 0.9 of the old average); flax.linen.BatchNorm
  also averages the biased variance, hence this module. Evaluation:
  normalises with the running averages. y = (x - mean) / sqrt(var + eps) *
  scale + bias; scale starts at 1, bias at 0, the averages at 0 and 1.
  """

  momentum: float = 0.1  # PyTorch's: the weight of the new batch
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones_init(), (features,))
    bias = self.param('bias', nn.initializers.zeros_init(), (features,))
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros,
                                 (features,), jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (features,),
                                jnp.float32)
    if self.is_mutable_collection('batch_stats'):
      axes = tuple(range(x.ndim - 1))
      count = x.size // features
      mean = jnp.mean(x, axes)
      var = jnp.mean(jnp.square(x - mean), axes)
      if not self.is_initializing():
        if count < 2:
          raise ValueError(f'BatchNorm in training needs more than one value '
                           f'per channel; got input {x.shape}.')
        running_mean.value = ((1 - self.momentum) * running_mean.value
                              + self.momentum * mean)
        running_var.value = ((1 - self.momentum) * running_var.value
                             + self.momentum * var * (count / (count - 1)))
    else:
      mean, var = running_mean.value, running_var.value
    return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


class BatchNormCNNVAE(nn.Module):
  """Study B's code's VAE_cnn (module docstring): unpadded stride-1 5x5
  convolutions, each followed by BatchNorm and LeakyReLU(0.2); flatten;
  dense layers with ReLU; linear mean and log-variance heads. Decoder:
  dense layers with ReLU, then dense to the pixels' logits [B, H, W] (the
  sigmoid is in the loss).

  The features are flattened in NHWC order (PyTorch's are C, H, W): the
  first dense layer's rows are a permutation of PyTorch's, the same model.

  Attributes:
    image_shape: (H, W); each convolution takes 4 pixels off each side.
    latent_size: dimension of z.
    conv_channels: the convolutions' output channels (the code: 6, 16, 32).
    encoder_widths: the dense layers after them (the code: hid_dim twice).
    decoder_widths: the decoder's hidden layers (the code: hid_dim once).
    init_scheme, conv_impl: as for the other models (vae_jax.models).
    variational: False makes a plain autoencoder (see MLPVAE).
  """

  image_shape: tuple[int, int]
  latent_size: int
  conv_channels: Sequence[int] = (6, 16, 32)
  encoder_widths: Sequence[int] = (400, 400)
  decoder_widths: Sequence[int] = (400,)
  init_scheme: str = 'torch_default'
  conv_impl: str = 'auto'
  variational: bool = True

  def setup(self):
    height, width = self.image_shape
    shrink = (KERNEL_SIZE - 1) * len(self.conv_channels)
    if not self.conv_channels or min(height, width) <= shrink:
      raise ValueError(
          f'cnn_bn_vae needs at least one convolution and images larger than '
          f'{shrink} pixels a side for {len(self.conv_channels)} unpadded '
          f'{KERNEL_SIZE}x{KERNEL_SIZE} convolutions; got channels '
          f'{tuple(self.conv_channels)} and images {self.image_shape}.')
    self.encoder_convs = [Conv(c, KERNEL_SIZE, 1, 0, self.init_scheme,
                               self.conv_impl) for c in self.conv_channels]
    self.encoder_norms = [BatchNorm() for _ in self.conv_channels]
    fan_in = (height - shrink) * (width - shrink) * self.conv_channels[-1]
    layers = []
    for i, features in enumerate(self.encoder_widths):
      layers.append(dense(features, fan_in, self.init_scheme, f'enc_{i}'))
      fan_in = features
    self.encoder_layers = layers
    self.mean_head = dense(self.latent_size, fan_in, self.init_scheme,
                           'enc_mean')
    if self.variational:
      self.log_variance_head = dense(self.latent_size, fan_in,
                                     self.init_scheme, 'enc_log_variance')
    fan_in = self.latent_size
    layers = []
    for i, features in enumerate(self.decoder_widths):
      layers.append(dense(features, fan_in, self.init_scheme, f'dec_{i}'))
      fan_in = features
    self.decoder_layers = layers
    self.logits_head = dense(height * width, fan_in, self.init_scheme,
                             'dec_logits')

  def encode(self, images: jax.Array,
             labels: jax.Array | None = None) -> GaussianPosterior:
    """[B, H, W] in [0, 1] -> posterior [B, latent] (labels are not used).

    Normalises with the batch's statistics when applied with 'batch_stats'
    mutable, else with the running averages.
    """
    h = images[..., None]
    for conv, norm in zip(self.encoder_convs, self.encoder_norms):
      h = nn.leaky_relu(norm(conv(h)), LEAKY_SLOPE)
    h = h.reshape(h.shape[0], -1)
    for layer in self.encoder_layers:
      h = nn.relu(layer(h))
    mean = self.mean_head(h)
    if not self.variational:
      return GaussianPosterior(mean, jnp.zeros_like(mean))
    return GaussianPosterior(mean, self.log_variance_head(h))

  def decode(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """[B, latent] -> logits [B, H, W] (labels are not used)."""
    h = z
    for layer in self.decoder_layers:
      h = nn.relu(layer(h))
    return self.logits_head(h).reshape(z.shape[0], *self.image_shape)

  def __call__(self, images: jax.Array, labels: jax.Array | None = None):
    posterior = self.encode(images, labels)
    return self.decode(posterior.mean, labels), posterior


def _check(config, where: str) -> str | None:
  """cnn_bn_vae has no conditional form and none of mlp_vae's posterior or
  output-bias options."""
  if config.model.get('num_classes', 0):
    return (f'config.model.num_classes = {config.model.num_classes}{where}: '
            'cnn_bn_vae has no conditional form; set '
            '--config.model.num_classes=0 or use mlp_vae.')
  for field, plain in (('posterior_scale', 'log_variance'),
                       ('output_bias', 'init')):
    value = config.model.get(field, plain)
    if value != plain:
      return (f'config.model.{field} = {value!r}{where} is for mlp_vae and '
              f"two_layer_vae (this model is 'cnn_bn_vae'): set "
              f'--config.model.{field}={plain}.')
  if not config.model.encoder_conv_channels:
    return (f'config.model.encoder_conv_channels = (){where}: cnn_bn_vae '
            'needs its convolutions\' channels, e.g. (6, 16, 32) as Study '
            "B's code.")
  decoder = config.model.decoder_widths
  if decoder is None:
    return (f'config.model.decoder_widths = None{where}: give cnn_bn_vae\'s '
            'decoder widths, e.g. (400,) as Study B\'s code.')
  return None


register_model(ModelSpec(
    name='cnn_bn_vae',
    build=lambda model_config, image_shape: BatchNormCNNVAE(
        image_shape=image_shape, latent_size=model_config.latent_size,
        conv_channels=tuple(model_config.encoder_conv_channels),
        encoder_widths=tuple(model_config.encoder_widths),
        decoder_widths=tuple(model_config.decoder_widths),
        init_scheme=model_config.init_scheme,
        conv_impl=model_config.conv_impl,
        variational=model_config.variational),
    fields=frozenset({'name', 'latent_size', 'encoder_conv_channels',
                      'encoder_widths', 'decoder_widths', 'init_scheme',
                      'conv_impl', 'variational', 'num_classes'}),
    # BatchNorm is in the encoder's convolutions, before z: a masked latent
    # dimension reaches neither it nor its statistics.
    maskable_latent=True, check=_check,
    description="Study B's code's VAE_cnn: 5x5 convolutions 6-16-32 with "
                'BatchNorm and LeakyReLU(0.2), two dense layers, MLP '
                'decoder'))
