"""Importance-weighted (IWAE) estimates of log p(x) of a trained VAE.

log p(x) >= L_k = E[log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)], z_i ~ q(z|x)
(Burda et al., 2016); L_1 is the ELBO and L_k rises to log p(x) as k grows.
The k samples are drawn in chunks folded into a running logsumexp, so memory
is bounded by the chunk size, not by k.

The likelihood p(x|z) is the run's reconstruction loss, which must be a
registered likelihood (objectives.is_likelihood: the Bernoulli 'bce', or one
registered with likelihood=True). On 'grey' images the Bernoulli
cross-entropy is the one the test loss uses, which is not a normalised
density over grey levels; the bound still compares with the test loss (the
negative ELBO) one to one.
"""

from __future__ import annotations

import functools
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import objectives
from vae_jax import train
from vae_jax.data import pipeline
from vae_jax.evaluation import registry

log = logging.getLogger(__name__)


def check_likelihood_loss(loss: str) -> None:
  """Raises registry.MetricError unless `loss` is a decoder likelihood (and
  registry.UnknownNameError if no loss of that name is registered)."""
  if not objectives.is_likelihood(loss):
    likelihoods = [name for name in objectives.loss_names()
                   if objectives.is_likelihood(name)]
    raise registry.MetricError(
        f'The IWAE bound needs a decoder likelihood p(x|z): config.loss '
        f'{loss!r} is not a log-likelihood. These are: '
        f'{", ".join(likelihoods)}.')


def sample_log_weights(model, params, hparams: train.Hyperparams,
                       x: jax.Array, labels: jax.Array,
                       posterior: objectives.GaussianPosterior,
                       sample_keys: jax.Array, loss: str,
                       batch_stats=None) -> jax.Array:
  """log p(x|z) + log p(z) - log q(z|x) for one z per key and image.

  Args:
    model, params: the VAE and its parameters.
    hparams: the prior N(prior_mean, prior_std^2) and latent_mask [latent];
      masked dimensions enter neither log p(z) nor log q(z|x).
    x: model input, float32 [B, H, W] in [0, 1].
    labels: int32 [B] (used by conditional models only).
    posterior: q(z|x), mean and log-variance [B, latent].
    sample_keys: PRNG keys [S]; key s draws z_s for every image by
      objectives.sample_posterior.
    loss: the run's config.loss, a registered likelihood: -log p(x|z).
    batch_stats: a BatchNorm model's running averages.

  Returns:
    Log importance weights, float32 [S, B].
  """
  log_weights, _, _ = train.importance_sampled_terms(
      model, train.model_variables(params, batch_stats), x, labels,
      posterior, hparams, sample_keys,
      objectives.RECONSTRUCTION_LOSSES.lookup(loss).per_image)
  return log_weights


@functools.partial(jax.jit, static_argnames=('model', 'num_samples',
                                             'chunk_size', 'preprocessing',
                                             'loss'))
def _iwae_log_likelihood(model, params, hparams, images, labels, rng,
                         num_samples, chunk_size, preprocessing, loss,
                         batch_stats):
  binarize_key, sample_key = jax.random.split(rng)
  x = pipeline.to_model_input(images, preprocessing, binarize_key)
  posterior = model.apply(train.model_variables(params, batch_stats), x,
                          labels, method=model.encode)
  num_chunks = -(-num_samples // chunk_size)

  def body(chunk, running):
    indices = chunk * chunk_size + jnp.arange(chunk_size)
    # Sample i's key depends on i alone, so the chunk size changes only the
    # order of the sum, never the samples.
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(sample_key,
                                                            indices)
    log_weights = sample_log_weights(model, params, hparams, x, labels,
                                     posterior, keys, loss, batch_stats)
    # The last chunk may run past num_samples; its extra samples weigh 0.
    log_weights = jnp.where((indices < num_samples)[:, None], log_weights,
                            -jnp.inf)
    return jnp.logaddexp(running, jax.nn.logsumexp(log_weights, axis=0))

  running = jnp.full(images.shape[:1], -jnp.inf, jnp.float32)
  total = jax.lax.fori_loop(0, num_chunks, body, running)
  return total - jnp.log(jnp.float32(num_samples))


def iwae_log_likelihood(model, params, hparams: train.Hyperparams,
                        images: jax.Array, labels: jax.Array, rng: jax.Array,
                        num_samples: int = 5000, chunk_size: int = 100,
                        preprocessing: str = 'grey',
                        loss: str = 'bce', batch_stats=None) -> jax.Array:
  """IWAE estimate of log p(x) in nats for every image, with k = num_samples.

  Compiled once per (model, shapes, num_samples, chunk_size, preprocessing,
  loss).
  rng is split as train.make_evaluate splits its batch key: (binarisation
  key, sampling key); sample i is objectives.sample_posterior(
  jax.random.fold_in(sampling_key, i), q(z|x), latent_mask). So k = 1 gives
  the single-sample ELBO with the z that train.make_loss_fn would draw from
  fold_in(sampling_key, 0), except that its KL is the sampled
  log q(z|x) - log p(z) instead of the closed form. hparams.beta is ignored:
  the bound is on log p(x) itself.

  Args:
    model, params: a trained VAE (conditional ones use labels).
    hparams: prior_mean, prior_std and latent_mask of the run.
    images: uint8 [B, H, W] as stored (see pipeline.to_model_input).
    labels: int32 [B].
    rng: PRNG key.
    num_samples: k, importance samples per image.
    chunk_size: samples evaluated at once; memory grows with
      chunk_size * B * pixels.
    preprocessing: the run's config.data.preprocessing.
    loss: the run's config.loss, a registered likelihood (check_likelihood_loss).
    batch_stats: a BatchNorm model's running averages (it normalises with
      them, as in evaluation).

  Returns:
    float32 [B], log p(x) estimates (a lower bound in expectation).
  """
  check_likelihood_loss(loss)
  if not getattr(model, 'variational', True):
    raise ValueError('The IWAE bound needs a variational model; this one '
                     '(config.model.variational=False) is a plain autoencoder '
                     'without q(z|x).')
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f'num_samples ({num_samples}) and chunk_size '
                     f'({chunk_size}) must be positive.')
  return _iwae_log_likelihood(model, params, hparams, images, labels, rng,
                              num_samples, min(chunk_size, num_samples),
                              preprocessing, loss, batch_stats)


def iwae_nll(model, params, hparams: train.Hyperparams, images: np.ndarray,
             labels: np.ndarray, rng: jax.Array, num_samples: int = 5000,
             chunk_size: int = 100, preprocessing: str = 'grey',
             loss: str = 'bce', batch_size: int = 100,
             batch_stats=None) -> float:
  """Mean over images of -iwae_log_likelihood, in nats; logs progress per batch.

  Args:
    images: uint8 [N, H, W]; labels: int32 [N]. Batch b uses
      jax.random.fold_in(rng, b); the last batch is padded (to compile
      once) and the padding dropped.
    Others as for iwae_log_likelihood.

  Returns:
    The estimated test negative log-likelihood -log p(x), mean over N.
  """
  check_likelihood_loss(loss)
  num_images = len(images)
  total, start = 0.0, time.perf_counter()
  for batch_index, begin in enumerate(range(0, num_images, batch_size)):
    batch_images = images[begin:begin + batch_size]
    batch_labels = labels[begin:begin + batch_size]
    count = len(batch_images)
    padding = batch_size - count
    batch_images = np.pad(batch_images, [(0, padding), (0, 0), (0, 0)])
    batch_labels = np.pad(batch_labels, [(0, padding)])
    log_px = iwae_log_likelihood(
        model, params, hparams, batch_images, batch_labels,
        jax.random.fold_in(rng, batch_index), num_samples, chunk_size,
        preprocessing, loss, batch_stats)
    total -= float(np.sum(np.asarray(log_px)[:count], dtype=np.float64))
    done = begin + count
    seconds = time.perf_counter() - start
    log.info('IWAE k=%d: %d/%d images  NLL %.3f  %.1f img/s  ETA %.0f s',
             num_samples, done, num_images, total / done, done / seconds,
             seconds / done * (num_images - done))
  return total / num_images
