"""IWAE bound: the ELBO at k = 1, monotone in k, near a quadrature of log p(x)."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from test_train import tiny_config, tiny_dataset
from vae_jax.data import pipeline
from vae_jax.evaluation import likelihood
from vae_jax import models
from vae_jax import objectives
from vae_jax import optimizers
from vae_jax import train


def _model(config, dataset, seed=0):
  model = models.build_model(config.model, dataset.image_shape)
  hparams = train.hyperparams_from_config(config)
  params = model.init(jax.random.PRNGKey(seed),
                      jnp.zeros((1, *dataset.image_shape)),
                      jnp.zeros((1,), jnp.int32))['params']
  return model, params, hparams


def _trained(config, dataset, epochs):
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer(config.optimizer)
  hparams = train.hyperparams_from_config(config)
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, config.batch_size,
                                         config.data.preprocessing))
  data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  for e in range(1, epochs + 1):
    state, _ = epoch(state, hparams, data, jnp.int32(e))
  return model, state.params, hparams


@pytest.mark.parametrize('num_classes', [0, 3])
def test_one_sample_is_the_elbo_of_the_same_z(num_classes):
  config = tiny_config(**{'model.num_classes': num_classes,
                          'model.latent_size': 3})
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  # A prior other than N(0, 1) and a masked third dimension.
  hparams = hparams._replace(prior_mean=jnp.float32(0.5),
                             prior_std=jnp.float32(1.5),
                             latent_mask=jnp.array([1.0, 1.0, 0.0]))
  images = dataset.test_images[:12]
  labels = jnp.asarray(dataset.test_labels[:12] % 3)
  rng = jax.random.PRNGKey(7)
  iwae = likelihood.iwae_log_likelihood(model, params, hparams, images,
                                        labels, rng, num_samples=1,
                                        chunk_size=1,
                                        preprocessing='dynamic_binarized')

  # The documented draws: make_evaluate's split, then sample 0's key.
  binarize_key, sample_key = jax.random.split(rng)
  x = pipeline.to_model_input(jnp.asarray(images), 'dynamic_binarized',
                           binarize_key)
  z_key = jax.random.fold_in(sample_key, 0)
  _, terms = train.make_loss_fn(model)(params, {'images': x, 'labels': labels},
                                       hparams, z_key)
  posterior = model.apply({'params': params}, x, labels, method=model.encode)
  z = objectives.sample_posterior(z_key, posterior, hparams.latent_mask)
  # The ELBO's closed-form KL, sampled at the same z: log q(z|x) - log p(z).
  sampled_kl = (objectives.gaussian_log_density(
      z, posterior.mean, posterior.log_variance, hparams.latent_mask)
                - objectives.gaussian_log_density(
                    z, 0.5, 2 * jnp.log(1.5), hparams.latent_mask))
  np.testing.assert_allclose(iwae, -(terms.reconstruction + sampled_kl),
                             rtol=1e-6)
  # ... whose mean over z is the closed form negative_elbo uses.
  many = jax.vmap(objectives.sample_posterior, in_axes=(0, None, None))(
      jax.random.split(z_key, 20_000), posterior, hparams.latent_mask)
  mc_kl = jnp.mean(objectives.gaussian_log_density(
      many, posterior.mean, posterior.log_variance, hparams.latent_mask)
                   - objectives.gaussian_log_density(
                       many, 0.5, 2 * jnp.log(1.5), hparams.latent_mask), 0)
  np.testing.assert_allclose(mc_kl, terms.kl, rtol=0.02, atol=0.02)


def test_masked_dimensions_contribute_nothing():
  config = tiny_config(**{'model.latent_size': 3})
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  hparams = hparams._replace(latent_mask=jnp.array([1.0, 1.0, 0.0]))
  run = lambda p: likelihood.iwae_log_likelihood(
      model, p, hparams, dataset.test_images[:8], dataset.test_labels[:8],
      jax.random.PRNGKey(0), num_samples=20, chunk_size=20)
  # Whatever the encoder says or the decoder would do with dimension 2.
  changed = jax.tree.map(lambda a: a, params)
  changed['enc_mean']['kernel'] = params['enc_mean']['kernel'].at[:, 2].add(3.0)
  changed['enc_log_variance']['bias'] = (
      params['enc_log_variance']['bias'].at[2].set(-4.0))
  changed['dec_0']['kernel'] = params['dec_0']['kernel'].at[2].add(5.0)
  np.testing.assert_array_equal(run(params), run(changed))


def test_bound_rises_with_the_number_of_samples():
  config = tiny_config()
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  # An untrained decoder barely uses z, so p(z|x) is about the prior; a
  # narrow one under q = N(~0, ~1) makes the importance weights heavy-tailed,
  # so the bound still gains from k = 10 to 100, well above the Monte Carlo
  # noise (with N(0, 1) it is flat there to 1e-3 nats).
  hparams = hparams._replace(prior_std=jnp.float32(0.2))
  means = []
  for k in (1, 10, 100):
    log_px = likelihood.iwae_log_likelihood(
        model, params, hparams, dataset.test_images, dataset.test_labels,
        jax.random.PRNGKey(1), num_samples=k, chunk_size=10)
    means.append(float(jnp.mean(log_px)))
  assert means[0] + 0.1 < means[1] < means[2] - 0.1, means


def test_chunking_changes_nothing():
  config = tiny_config()
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  run = lambda chunk: likelihood.iwae_log_likelihood(
      model, params, hparams, dataset.test_images, dataset.test_labels,
      jax.random.PRNGKey(2), num_samples=50, chunk_size=chunk)
  whole = run(50)
  np.testing.assert_allclose(run(7), whole, rtol=1e-6)  # 7 does not divide 50
  np.testing.assert_allclose(run(1), whole, rtol=1e-6)


def test_matches_quadrature_of_a_one_dimensional_latent():
  config = tiny_config(**{'model.latent_size': 1})
  dataset = tiny_dataset(num_train=512)
  model, params, hparams = _trained(config, dataset, epochs=10)
  images = dataset.test_images[:10]
  labels = dataset.test_labels[:10]

  # log p(x) = log int p(x|z) N(z; 0, 1) dz on a fine grid, in float64.
  grid = np.linspace(-10, 10, 40_001)
  logits = np.asarray(model.apply({'params': params},
                                  jnp.asarray(grid[:, None], jnp.float32),
                                  method=model.decode), np.float64)
  logits = logits.reshape(len(grid), -1)
  x = images.reshape(len(images), -1).astype(np.float64) / 255
  log_likelihood = -(np.logaddexp(0, logits)[None] * 1.0
                     - x[:, None, :] * logits[None]).sum(-1)
  log_prior = -0.5 * (np.log(2 * np.pi) + grid ** 2)
  exact = special.logsumexp(log_likelihood + log_prior, axis=1) + np.log(
      grid[1] - grid[0])

  estimate = lambda k: np.asarray(likelihood.iwae_log_likelihood(
      model, params, hparams, images, labels, jax.random.PRNGKey(3),
      num_samples=k, chunk_size=500), np.float64)
  k1, k5000 = estimate(1), estimate(5000)
  gap_1 = np.mean(exact - k1)
  gap_5000 = np.mean(exact - k5000)
  assert -0.01 < gap_5000 < 0.05, (gap_5000, gap_1)
  assert gap_5000 < gap_1 / 5, (gap_5000, gap_1)
  np.testing.assert_allclose(k5000, exact, atol=0.1)


def test_dataset_nll_is_the_mean_over_padded_batches(caplog):
  config = tiny_config()
  dataset = tiny_dataset(num_test=37)
  model, params, hparams = _model(config, dataset)
  rng = jax.random.PRNGKey(4)
  with caplog.at_level(logging.INFO, logger='vae_jax'):
    nll = likelihood.iwae_nll(model, params, hparams, dataset.test_images,
                              dataset.test_labels, rng, num_samples=20,
                              chunk_size=20, batch_size=16)
  assert 'IWAE k=20: 37/37 images' in caplog.text
  # Batches 0, 1, 2 under fold_in(rng, b); the last one padded to 16.
  images = np.pad(dataset.test_images, [(0, 11), (0, 0), (0, 0)])
  labels = np.pad(dataset.test_labels, [(0, 11)])
  log_px = np.concatenate([np.asarray(likelihood.iwae_log_likelihood(
      model, params, hparams, images[b * 16:(b + 1) * 16],
      labels[b * 16:(b + 1) * 16], jax.random.fold_in(rng, b),
      num_samples=20, chunk_size=20)) for b in range(3)])[:37]
  assert nll == pytest.approx(-np.mean(log_px.astype(np.float64)), rel=1e-6)


def test_a_registered_likelihood_is_the_decoders(monkeypatch):
  # A unit-variance Gaussian on sigmoid(logits): a normalised density, so a
  # likelihood the bound may use, checked here in NumPy at k = 1.
  monkeypatch.setattr(objectives, 'RECONSTRUCTION_LOSSES',
                      objectives.RECONSTRUCTION_LOSSES.copy())

  def gaussian_nll(logits, images):
    squared = jnp.square(images - jax.nn.sigmoid(logits))
    return jnp.sum(0.5 * squared + 0.5 * np.log(2 * np.pi), axis=(1, 2))

  objectives.register_reconstruction_loss(objectives.ReconstructionLoss(
      'unit_gaussian', gaussian_nll, likelihood=True))
  config = tiny_config(loss='unit_gaussian')
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  images, labels = dataset.test_images[:6], jnp.asarray(dataset.test_labels[:6])
  rng = jax.random.PRNGKey(3)
  iwae = likelihood.iwae_log_likelihood(model, params, hparams, images, labels,
                                        rng, num_samples=1, chunk_size=1,
                                        preprocessing='grey',
                                        loss='unit_gaussian')

  x = np.asarray(images, np.float64) / 255
  _, sample_key = jax.random.split(rng)
  posterior = model.apply({'params': params}, jnp.asarray(x, jnp.float32),
                          labels, method=model.encode)
  z = objectives.sample_posterior(jax.random.fold_in(sample_key, 0),
                                  posterior, hparams.latent_mask)
  means = special.expit(np.asarray(model.apply(
      {'params': params}, z, labels, method=model.decode), np.float64))
  log_px_given_z = -np.sum(0.5 * (x - means) ** 2 + 0.5 * np.log(2 * np.pi),
                           axis=(1, 2))
  mean, log_variance = (np.asarray(posterior.mean, np.float64),
                        np.asarray(posterior.log_variance, np.float64))
  z = np.asarray(z, np.float64)
  log_q = -0.5 * np.sum(np.log(2 * np.pi) + log_variance
                        + (z - mean) ** 2 / np.exp(log_variance), axis=1)
  log_p = -0.5 * np.sum(np.log(2 * np.pi) + z ** 2, axis=1)
  np.testing.assert_allclose(iwae, log_px_given_z + log_p - log_q,
                             rtol=1e-5)


def test_only_a_likelihood_loss_has_a_bound():
  config = tiny_config(loss='mse')
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  for call in (likelihood.iwae_log_likelihood, likelihood.iwae_nll):
    with pytest.raises(ValueError, match="needs a decoder likelihood.*'mse' "
                       'is not a log-likelihood. These are: bce'):
      call(model, params, hparams, dataset.test_images, dataset.test_labels,
           jax.random.PRNGKey(0), num_samples=2, chunk_size=2,
           preprocessing='grey', loss='mse')
