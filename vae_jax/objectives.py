"""Priors, reconstruction losses and the ELBO, as pure functions of arrays.

Every hyperparameter a sweep may vary (beta, prior mean and standard deviation,
latent mask) is an array argument, so `jax.vmap` over a sweep axis and
`jax.jit` apply unchanged and a new value never triggers a recompilation.

Conventions: losses are *per image* and summed over pixels / latent
dimensions; a batch of B images gives arrays of shape [B].
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

_LOG_2PI = 1.8378770664093453


class GaussianPosterior(NamedTuple):
  """Diagonal Gaussian q(z|x) = N(mean, exp(log_variance))."""

  mean: jax.Array  # [..., latent]
  log_variance: jax.Array  # [..., latent]


def gaussian_kl_to_prior(
    posterior: GaussianPosterior,
    prior_mean: jax.Array | float = 0.0,
    prior_std: jax.Array | float = 1.0,
    latent_mask: jax.Array | None = None,
) -> jax.Array:
  """Closed-form KL(N(mu, sigma^2) || N(m, s^2)), summed over latent dims.

  KL = sum_d log(s / sigma_d) + (sigma_d^2 + (mu_d - m)^2) / (2 s^2) - 1/2.

  Args:
    posterior: mean and log-variance, each [..., latent].
    prior_mean: m, a scalar or an array broadcastable to [..., latent].
    prior_std: s > 0, a scalar or an array broadcastable to [..., latent].
    latent_mask: optional {0, 1} array [latent]; masked dimensions add 0.

  Returns:
    KL per example, shape [...].
  """
  mean, log_variance = posterior
  prior_std = jnp.asarray(prior_std, mean.dtype)
  prior_log_variance = 2.0 * jnp.log(prior_std)
  kl_per_dim = 0.5 * (
      prior_log_variance
      - log_variance
      + (jnp.exp(log_variance) + jnp.square(mean - prior_mean))
      / jnp.square(prior_std)
      - 1.0
  )
  if latent_mask is not None:
    kl_per_dim = kl_per_dim * latent_mask
  return jnp.sum(kl_per_dim, axis=-1)


def gaussian_log_density(
    z: jax.Array,
    mean: jax.Array | float,
    log_variance: jax.Array | float,
    latent_mask: jax.Array | None = None,
) -> jax.Array:
  """log N(z; mean, exp(log_variance)) summed over the last axis.

  Args:
    z: samples [..., latent].
    mean, log_variance: broadcastable to z.
    latent_mask: optional {0, 1} array [latent]; masked dimensions add 0.

  Returns:
    Log density, shape [...].
  """
  log_variance = jnp.asarray(log_variance, z.dtype)
  per_dim = -0.5 * (
      _LOG_2PI + log_variance + jnp.square(z - mean) * jnp.exp(-log_variance)
  )
  if latent_mask is not None:
    per_dim = per_dim * latent_mask
  return jnp.sum(per_dim, axis=-1)


def sample_posterior(
    rng: jax.Array,
    posterior: GaussianPosterior,
    latent_mask: jax.Array | None = None,
) -> jax.Array:
  """Reparameterised sample z = mu + sigma * eps, eps ~ N(0, I).

  Masked dimensions are exactly 0, so the decoder never sees them.

  Args:
    rng: PRNG key.
    posterior: mean and log-variance, each [..., latent].
    latent_mask: optional {0, 1} array [latent].

  Returns:
    z with the posterior's shape [..., latent].
  """
  mean, log_variance = posterior
  eps = jax.random.normal(rng, mean.shape, mean.dtype)
  z = mean + jnp.exp(0.5 * log_variance) * eps
  if latent_mask is not None:
    z = z * latent_mask
  return z


def bernoulli_nll_from_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Binary cross-entropy -log p(x | logits), summed over all but the batch axis.

  Computed from logits as softplus(l) - x * l, which is exact for any
  x in [0, 1] and never takes the log of a clipped sigmoid.

  Args:
    logits: decoder logits [B, ...].
    targets: pixel intensities in [0, 1], same shape as logits.

  Returns:
    Per-image negative log-likelihood in nats, shape [B].
  """
  per_pixel = jax.nn.softplus(logits) - targets * logits
  return jnp.sum(per_pixel.reshape(per_pixel.shape[0], -1), axis=-1)


def squared_error_from_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Sum over pixels of (sigmoid(logits) - x)^2; per image, shape [B]."""
  error = jax.nn.sigmoid(logits) - targets
  return jnp.sum(jnp.square(error).reshape(error.shape[0], -1), axis=-1)


def absolute_error_from_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Sum over pixels of |sigmoid(logits) - x| (L1); per image, shape [B]."""
  error = jax.nn.sigmoid(logits) - targets
  return jnp.sum(jnp.abs(error).reshape(error.shape[0], -1), axis=-1)


RECONSTRUCTION_LOSSES = {
    'bce': bernoulli_nll_from_logits,
    'mse': squared_error_from_logits,
    'mae': absolute_error_from_logits,
}


def reconstruction_loss(kind: str):
  """The per-image loss (logits [B, ...], targets [B, ...]) -> [B] named `kind`."""
  try:
    return RECONSTRUCTION_LOSSES[kind]
  except KeyError:
    raise ValueError(f'Unknown reconstruction loss {kind!r} in config.loss; '
                     f'choose one of {sorted(RECONSTRUCTION_LOSSES)}.') from None


class ElboTerms(NamedTuple):
  """Per-image terms of the negative ELBO; each has shape [B]."""

  reconstruction: jax.Array
  kl: jax.Array
  loss: jax.Array  # reconstruction + beta * kl


def negative_elbo(
    reconstruction: jax.Array,
    posterior: GaussianPosterior,
    beta: jax.Array | float = 1.0,
    prior_mean: jax.Array | float = 0.0,
    prior_std: jax.Array | float = 1.0,
    latent_mask: jax.Array | None = None,
) -> ElboTerms:
  """Combines a per-image reconstruction loss with beta * KL to the prior.

  Args:
    reconstruction: per-image reconstruction loss [B] (e.g. from
      `bernoulli_nll_from_logits`).
    posterior: q(z|x) parameters, each [B, latent].
    beta: weight of the KL term (scalar array).
    prior_mean, prior_std: the diagonal Gaussian prior N(m, s^2).
    latent_mask: optional {0, 1} array [latent].

  Returns:
    ElboTerms of shape [B] each.
  """
  kl = gaussian_kl_to_prior(posterior, prior_mean, prior_std, latent_mask)
  return ElboTerms(reconstruction, kl, reconstruction + beta * kl)
