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


def _init_linear(layer: nn.Linear, scheme: str) -> None:
  if scheme == 'torch_default':
    return  # what nn.Linear already did
  if scheme == 'kaiming_normal':
    nn.init.kaiming_normal_(layer.weight, mode='fan_in', nonlinearity='relu')
    nn.init.zeros_(layer.bias)
    return
  if scheme == 'lecun_normal':
    bound = 1.0 / math.sqrt(layer.in_features)
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
        _init_linear(module, init_scheme)

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


def negative_elbo(logits, x, mean, log_variance, beta: float = 1.0):
  """Per-image means of (reconstruction, KL, loss) for a N(0, I) prior."""
  batch = x.shape[0]
  reconstruction = F.binary_cross_entropy_with_logits(
      logits, x.flatten(1), reduction='sum') / batch
  kl = -0.5 * torch.sum(1 + log_variance - mean.pow(2) - log_variance.exp()
                        ) / batch
  return reconstruction, kl, reconstruction + beta * kl


def train_epoch(model: MLPVAE, optimizer: torch.optim.Optimizer,
                images: torch.Tensor, batch_size: int,
                generator: torch.Generator) -> float:
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
    _, _, loss = negative_elbo(logits, x, mean, log_variance)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
  return time.perf_counter() - start


@torch.no_grad()
def evaluate(model: MLPVAE, images: torch.Tensor,
             batch_size: int = 1000) -> dict[str, float]:
  """Per-image test reconstruction, KL and loss (one posterior sample)."""
  model.eval()
  totals = np.zeros(3)
  for i in range(0, images.shape[0], batch_size):
    x = images[i:i + batch_size]
    logits, mean, log_variance = model(x)
    terms = negative_elbo(logits, x, mean, log_variance)
    totals += np.array([t.item() for t in terms]) * x.shape[0]
  totals /= images.shape[0]
  return {'recon': totals[0], 'kl': totals[1], 'loss': totals[2]}
