"""Priors, reconstruction losses and the ELBO, as pure functions of arrays.

Every hyperparameter a sweep may vary (beta, prior mean and standard deviation,
latent mask) is an array argument, so `jax.vmap` over a sweep axis and
`jax.jit` apply unchanged and a new value never triggers a recompilation.

Conventions: losses are *per image* and summed over pixels / latent
dimensions; a batch of B images gives arrays of shape [B].

Reconstruction losses (config.loss) and k-sample bounds (config.objective)
are registered by name (`register_reconstruction_loss`, `register_bound`);
validation, training and evaluation look them up there, so a new one is a
registration in the module that defines it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from vae_jax.registry import Registry

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


def standard_normal_per_latent(rng: jax.Array, shape: Sequence[int],
                               dtype=jnp.float32) -> jax.Array:
  """eps ~ N(0, I) of shape [..., latent]; column j depends only on (rng, j).

  A model masked to its first k latent dimensions therefore draws the same
  numbers as a latent-k model, so a sweep member equals its separate run.

  Args:
    rng: PRNG key.
    shape: [..., latent].
    dtype: float dtype of the result.

  Returns:
    float array of the given shape.
  """
  *batch_shape, latent = shape
  if _draws_nest(rng):
    # Row j of a [latent, ...] draw is counters j*B .. (j+1)*B - 1, whatever
    # `latent` is. One threefry call instead of two (the keys, the draws):
    # on CPU each is a loop of small kernels, a few per cent of a step.
    columns = jax.random.normal(rng, (latent, *batch_shape), dtype)
  else:
    columns = jax.vmap(lambda j: jax.random.normal(
        jax.random.fold_in(rng, j), tuple(batch_shape), dtype))(
            jnp.arange(latent))
  return jnp.moveaxis(columns, 0, -1)


def _draws_nest(rng: jax.Array) -> bool:
  """Whether a draw of shape [n, ...] starts with the draw of shape [m, ...].

  True for threefry keys with jax_threefry_partitionable (the default since
  JAX 0.5), whose element i depends only on (key, i).
  """
  return (jax.config.jax_threefry_partitionable
          and str(jax.random.key_impl(rng)) == 'threefry2x32')


def sample_prior(rng: jax.Array, num: int, prior_mean: jax.Array | float,
                 prior_std: jax.Array | float,
                 latent_mask: jax.Array) -> jax.Array:
  """z ~ N(prior_mean, prior_std^2) per dimension, masked dimensions 0:
  [num, latent] for latent_mask [latent]. The noise is one draw of shape
  [num, latent] (standard_normal_per_latent), so a sample depends neither
  on how it is batched nor on a sweep model's masked dimensions."""
  eps = standard_normal_per_latent(rng, (num, latent_mask.shape[-1]))
  return (prior_mean + prior_std * eps) * latent_mask


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
  eps = standard_normal_per_latent(rng, mean.shape, mean.dtype)
  z = mean + jnp.exp(0.5 * log_variance) * eps
  if latent_mask is not None:
    z = z * latent_mask
  return z


def _per_image_rows(logits: jax.Array, targets: jax.Array):
  """Both arrays as [B, D] rows, D the pixels of one image.

  The per-pixel terms are computed on these rows rather than on [B, H, W]:
  XLA CPU vectorises an elementwise loop along its innermost axis, and runs
  the transcendental functions slower along an MNIST row of 28 than along
  784 pixels (docs/cpu_kernels.md).
  """
  if logits.shape != targets.shape:
    raise ValueError(f'Decoder logits {logits.shape} and target images '
                     f'{targets.shape} differ in shape; the decoder must '
                     'produce one logit per input pixel.')
  batch = logits.shape[0]
  return logits.reshape(batch, -1), targets.reshape(batch, -1)


def bernoulli_nll_from_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Binary cross-entropy -log p(x | logits), summed over all but the batch axis.

  Computed from logits as softplus(l) - x * l, which is exact for any
  x in [0, 1] and never takes the log of a clipped sigmoid. softplus is
  written max(l, 0) + log1p(exp(-|l|)): as exact as jax.nn.softplus and
  cheaper on CPU (docs/cpu_kernels.md).

  Args:
    logits: decoder logits [B, ...].
    targets: pixel intensities in [0, 1], same shape as logits.

  Returns:
    Per-image negative log-likelihood in nats, shape [B].
  """
  logits, targets = _per_image_rows(logits, targets)
  softplus = jnp.maximum(logits, 0) + jnp.log1p(jnp.exp(-jnp.abs(logits)))
  return jnp.sum(softplus - targets * logits, axis=-1)


def squared_error_from_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Sum over pixels of (sigmoid(logits) - x)^2; per image, shape [B]."""
  logits, targets = _per_image_rows(logits, targets)
  return jnp.sum(jnp.square(jax.nn.sigmoid(logits) - targets), axis=-1)


def absolute_error_from_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Sum over pixels of |sigmoid(logits) - x| (L1); per image, shape [B]."""
  logits, targets = _per_image_rows(logits, targets)
  return jnp.sum(jnp.abs(jax.nn.sigmoid(logits) - targets), axis=-1)


# Losses that compare classifier features of the reconstruction and the
# input (Study A); each needs a feature function. 'perceptual+X' adds the
# pixel loss X to `perceptual_weight` times the perceptual term.
PERCEPTUAL_LOSSES = ('perceptual', 'perceptual+bce', 'perceptual+mse')

@dataclasses.dataclass(frozen=True)
class ReconstructionLoss:
  """A per-image reconstruction term that config.loss names.

  per_image: (logits [B, H, W], images [B, H, W] in [0, 1]) -> [B].
  likelihood: whether it is -log p(x|z) of a normalised decoder
    distribution; the k-sample bounds and the IWAE NLL need one, a distance
    (MSE, MAE) is not.
  """

  name: str
  per_image: Callable[[jax.Array, jax.Array], jax.Array]
  likelihood: bool = False
  description: str = ''


RECONSTRUCTION_LOSSES: Registry[ReconstructionLoss] = Registry(
    'reconstruction loss', 'config.loss', reserved=PERCEPTUAL_LOSSES)


def register_reconstruction_loss(loss: ReconstructionLoss
                                 ) -> ReconstructionLoss:
  """Makes `loss` selectable as config.loss = loss.name."""
  return RECONSTRUCTION_LOSSES.add(loss.name, loss,
                                   describe=lambda l: l.description)


for _loss in (
    ReconstructionLoss('bce', bernoulli_nll_from_logits, likelihood=True,
                       description='Bernoulli negative log-likelihood'),
    ReconstructionLoss('mse', squared_error_from_logits,
                       description='summed squared error of sigmoid(logits)'),
    ReconstructionLoss('mae', absolute_error_from_logits,
                       description='summed absolute error of sigmoid(logits)'),
):
  register_reconstruction_loss(_loss)

FeatureFn = Callable[[jax.Array], Sequence[jax.Array]]


def perceptual_distance(feature_fn: FeatureFn, logits: jax.Array,
                        targets: jax.Array) -> jax.Array:
  """Sum over layers and units of squared feature differences; per image, [B].

  Args:
    feature_fn: images [B, H, W] in [0, 1] -> a sequence of feature arrays,
      each [B, ...] (e.g. a classifier's activations after chosen ReLUs).
    logits: decoder logits [B, H, W]; the features see sigmoid(logits).
    targets: the input images [B, H, W] in [0, 1].
  """
  reconstructed = feature_fn(jax.nn.sigmoid(logits))
  # The targets are data, not parameters: their features carry no gradient.
  reference = feature_fn(jax.lax.stop_gradient(targets))
  total = jnp.zeros(logits.shape[0], logits.dtype)
  for a, b in zip(reconstructed, reference, strict=True):
    total = total + jnp.sum(jnp.square(a - b).reshape(a.shape[0], -1), axis=-1)
  return total


def loss_names() -> tuple[str, ...]:
  """Every value config.loss may take."""
  return (*sorted(RECONSTRUCTION_LOSSES), *PERCEPTUAL_LOSSES)


def is_likelihood(loss: str) -> bool:
  """Whether config.loss = `loss` is a decoder log-likelihood.

  Raises:
    registry.UnknownNameError: no loss of that name is registered.
  """
  if loss in PERCEPTUAL_LOSSES:
    return False
  return RECONSTRUCTION_LOSSES.lookup(loss).likelihood


def reconstruction_loss(kind: str, feature_fn: FeatureFn | None = None,
                        perceptual_weight: float = 0.01):
  """The per-image loss (logits [B, H, W], targets [B, H, W]) -> [B] named `kind`.

  Args:
    kind: a registered reconstruction loss or one of PERCEPTUAL_LOSSES.
    feature_fn: required by the perceptual losses (see perceptual_distance).
    perceptual_weight: weight of the perceptual term in 'perceptual+bce' and
      'perceptual+mse' (Study A used 0.01); plain 'perceptual' is unweighted.
  """
  if kind not in PERCEPTUAL_LOSSES:
    return RECONSTRUCTION_LOSSES.lookup(kind).per_image
  if feature_fn is None:
    raise ValueError(f'Loss {kind!r} needs the classifier features; set '
                     'config.perceptual.classifier_dir to a classifier trained '
                     'by `python -m launch.train_classifier`.')
  if kind == 'perceptual':
    return functools.partial(perceptual_distance, feature_fn)
  pixel_loss = RECONSTRUCTION_LOSSES[kind.split('+')[1]].per_image

  def combined(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return (pixel_loss(logits, targets) + perceptual_weight *
            perceptual_distance(feature_fn, logits, targets))

  return combined


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


# ----------------------------------------------------------- k-sample bounds
# The objective a config trains (config.objective): 'elbo' is the closed-form
# KL ELBO above with one sample (beta-weighted); 'vae' and 'iwae' are Burda,
# Grosse & Salakhutdinov's (2016) k-sample bounds on log p(x), built from
# the log importance weights log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x)
# of k = config.num_samples draws z_s ~ q(z|x). Further bounds register
# with `register_bound`.


def log_importance_weights(
    log_likelihood: jax.Array,
    z: jax.Array,
    posterior: GaussianPosterior,
    prior_mean: jax.Array | float = 0.0,
    prior_std: jax.Array | float = 1.0,
    latent_mask: jax.Array | None = None,
    beta: jax.Array | float = 1.0,
) -> tuple[jax.Array, jax.Array]:
  """log w = log p(x|z) - beta * (log q(z|x) - log p(z)) for every sample.

  Args:
    log_likelihood: log p(x|z_s) [S, B].
    z: the samples [S, B, latent].
    posterior: q(z|x), mean and log-variance [B, latent].
    prior_mean, prior_std: the prior N(m, s^2).
    latent_mask: optional {0, 1} [latent]; masked dimensions enter neither
      density.
    beta: weight of the sampled KL term; 1 gives the bound on log p(x).

  Returns:
    (log w [S, B], the sampled KL log q(z_s|x) - log p(z_s) [S, B]).
  """
  prior_std = jnp.asarray(prior_std, z.dtype)
  log_prior = gaussian_log_density(z, prior_mean, 2.0 * jnp.log(prior_std),
                                   latent_mask)
  log_posterior = gaussian_log_density(z, posterior.mean,
                                       posterior.log_variance, latent_mask)
  sampled_kl = log_posterior - log_prior
  return log_likelihood - beta * sampled_kl, sampled_kl


def iwae_bound(log_weights: jax.Array) -> jax.Array:
  """log (1/k) sum_s w_s per image, from log w [k, B]: the IWAE bound.

  A log-sum-exp, so weights far below or above 1 (log w of -500 nats is
  usual) neither underflow nor overflow. k = 1 gives log w_1.
  """
  return (jax.nn.logsumexp(log_weights, axis=0)
          - jnp.log(jnp.asarray(log_weights.shape[0], log_weights.dtype)))


def vae_bound(log_weights: jax.Array) -> jax.Array:
  """(1/k) sum_s log w_s per image, from log w [k, B]: the k-sample ELBO."""
  return jnp.mean(log_weights, axis=0)


@dataclasses.dataclass(frozen=True)
class KSampleBound:
  """A bound on log p(x) from k log importance weights, that
  config.objective names: bound(log w [k, B]) -> [B]. Training maximises
  it; the test loss is minus it."""

  name: str
  bound: Callable[[jax.Array], jax.Array]
  description: str = ''


# 'elbo' is the one-sample objective with the KL in closed form, not a
# k-sample bound.
BOUNDS: Registry[KSampleBound] = Registry('objective', 'config.objective',
                                          reserved=('elbo',))


def register_bound(bound: KSampleBound) -> KSampleBound:
  """Makes `bound` selectable as config.objective = bound.name."""
  return BOUNDS.add(bound.name, bound, describe=lambda b: b.description)


register_bound(KSampleBound('vae', vae_bound,
                            'the k-sample ELBO, mean of the log weights'))
register_bound(KSampleBound('iwae', iwae_bound,
                            'the importance-weighted bound (Burda et al.)'))


def objective_names() -> tuple[str, ...]:
  """Every value config.objective may take: 'elbo' (one sample, the KL in
  closed form) and the registered k-sample bounds."""
  return ('elbo', *BOUNDS)


def get_bound(name: str) -> KSampleBound:
  return BOUNDS.lookup(name)
