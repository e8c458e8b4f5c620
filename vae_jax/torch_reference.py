"""PyTorch implementations of vae_jax models, for side-by-side comparisons.

Optional: this module imports torch; nothing else in vae_jax imports it.
The models mirror vae_jax.models layer for layer (same widths, activations,
initialisation scheme, per-image summed BCE + KL), so a benchmark compares
the frameworks, not two different programs.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _init_layer(layer: nn.Module, scheme: str) -> None:
  if scheme == 'torch_default':
    return  # what the layer's constructor already did
  if scheme == 'kaiming_normal':
    nn.init.kaiming_normal_(layer.weight, mode='fan_in', nonlinearity='relu')
    nn.init.zeros_(layer.bias)
    return
  if scheme == 'lecun_normal':
    bound = 1.0 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(layer.weight)[0])
    nn.init.trunc_normal_(layer.weight, std=bound / 0.87962566103423978,
                          a=-2 * bound / 0.87962566103423978,
                          b=2 * bound / 0.87962566103423978)
    nn.init.zeros_(layer.bias)
    return
  raise ValueError(f'Unknown init scheme {scheme!r}.')


class MLPVAE(nn.Module):
  """The PyTorch twin of vae_jax.models.MLPVAE (ReLU activations)."""

  def __init__(self, pixels: int, latent_size: int,
               encoder_widths: Sequence[int] = (400,),
               decoder_widths: Sequence[int] | None = None,
               init_scheme: str = 'torch_default'):
    super().__init__()
    widths = [pixels, *encoder_widths]
    self.encoder = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.mean_head = nn.Linear(widths[-1], latent_size)
    self.log_variance_head = nn.Linear(widths[-1], latent_size)
    decoder_widths = (list(reversed(encoder_widths)) if decoder_widths is None
                      else list(decoder_widths))
    widths = [latent_size, *decoder_widths]
    self.decoder = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.logits_head = nn.Linear(widths[-1], pixels)
    for module in self.modules():
      if isinstance(module, nn.Linear):
        _init_layer(module, init_scheme)

  def encode(self, x: torch.Tensor):
    h = x.flatten(1)
    for layer in self.encoder:
      h = F.relu(layer(h))
    return self.mean_head(h), self.log_variance_head(h)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    h = z
    for layer in self.decoder:
      h = F.relu(layer(h))
    return self.logits_head(h)

  def forward(self, x: torch.Tensor):
    mean, log_variance = self.encode(x)
    z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
    return self.decode(z), mean, log_variance


class ConvVAE(nn.Module):
  """The PyTorch twin of vae_jax.models.ConvVAE (Study E), NCHW."""

  def __init__(self, image_shape: Sequence[int], latent_size: int,
               init_scheme: str = 'torch_default'):
    super().__init__()
    self.image_shape = tuple(image_shape)
    conv = lambda cin, cout, stride: nn.Conv2d(cin, cout, 3, stride, 1)
    self.encoder = nn.ModuleList([conv(1, 32, 1), conv(32, 64, 2),
                                  conv(64, 64, 2), conv(64, 64, 1)])
    height, width = (-(-s // 4) for s in self.image_shape)
    self.bottleneck = (64, height, width)
    flat = 64 * height * width
    self.mean_head = nn.Linear(flat, latent_size)
    self.log_variance_head = nn.Linear(flat, latent_size)
    self.decoder_input = nn.Linear(latent_size, flat)
    self.decoder = nn.ModuleList([
        nn.ConvTranspose2d(64, 64, 3, 1, 1), nn.ConvTranspose2d(64, 64, 3, 2, 1),
        nn.ConvTranspose2d(64, 32, 3, 2, 0), nn.ConvTranspose2d(32, 1, 3, 1, 0)])
    for module in self.modules():
      if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        _init_layer(module, init_scheme)

  def encode(self, x: torch.Tensor):
    h = x.unsqueeze(1)
    for layer in self.encoder:
      h = F.leaky_relu(layer(h))
    h = h.flatten(1)
    return self.mean_head(h), self.log_variance_head(h)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    h = self.decoder_input(z).view(z.shape[0], *self.bottleneck)
    for i, layer in enumerate(self.decoder):
      h = layer(h)
      if i < len(self.decoder) - 1:
        h = F.leaky_relu(h)
    height, width = self.image_shape
    return h[:, 0, :height, :width].flatten(1)

  forward = MLPVAE.forward


RECONSTRUCTION_LOSSES = {
    'bce': lambda logits, x: F.binary_cross_entropy_with_logits(
        logits, x, reduction='sum'),
    'mse': lambda logits, x: F.mse_loss(torch.sigmoid(logits), x,
                                        reduction='sum'),
    'mae': lambda logits, x: F.l1_loss(torch.sigmoid(logits), x,
                                       reduction='sum'),
}


def negative_elbo(logits, x, mean, log_variance, beta: float = 1.0,
                  loss: str = 'bce'):
  """Per-image means of (reconstruction, KL, loss) for a N(0, I) prior."""
  batch = x.shape[0]
  reconstruction = RECONSTRUCTION_LOSSES[loss](logits, x.flatten(1)) / batch
  kl = -0.5 * torch.sum(1 + log_variance - mean.pow(2) - log_variance.exp()
                        ) / batch
  return reconstruction, kl, reconstruction + beta * kl


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer,
                images: torch.Tensor, batch_size: int,
                generator: torch.Generator, loss: str = 'bce') -> float:
  """One epoch over pre-loaded float images [N, H, W]; returns seconds.

  Like the JAX loop, the N % batch_size images left by the shuffle are
  skipped, so both sides process the same number of images.
  """
  model.train()
  start = time.perf_counter()
  order = torch.randperm(images.shape[0], generator=generator)
  for i in range(images.shape[0] // batch_size):
    x = images[order[i * batch_size:(i + 1) * batch_size]]
    logits, mean, log_variance = model(x)
    _, _, total = negative_elbo(logits, x, mean, log_variance, loss=loss)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
  return time.perf_counter() - start


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, batch_size: int = 1000,
             loss: str = 'bce') -> dict[str, float]:
  """Per-image test reconstruction, KL and loss (one posterior sample)."""
  model.eval()
  totals = np.zeros(3)
  for i in range(0, images.shape[0], batch_size):
    x = images[i:i + batch_size]
    logits, mean, log_variance = model(x)
    terms = negative_elbo(logits, x, mean, log_variance, loss=loss)
    totals += np.array([t.item() for t in terms]) * x.shape[0]
  totals /= images.shape[0]
  return {'recon': totals[0], 'kl': totals[1], 'loss': totals[2]}
