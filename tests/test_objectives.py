"""Objectives against independent references: NumPy/SciPy formulas and Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from vae_jax import objectives


def _posterior(rng, batch=5, latent=4):
  mean = rng.normal(size=(batch, latent)).astype(np.float32)
  log_variance = rng.normal(scale=0.5, size=(batch, latent)).astype(np.float32)
  return objectives.GaussianPosterior(jnp.asarray(mean),
                                      jnp.asarray(log_variance))


@pytest.mark.parametrize('prior_mean, prior_std', [(0.0, 1.0), (1.0, 2.0),
                                                   (-0.5, 0.3)])
def test_kl_matches_monte_carlo(prior_mean, prior_std):
  rng = np.random.default_rng(0)
  posterior = _posterior(rng, batch=3, latent=2)
  kl = np.asarray(objectives.gaussian_kl_to_prior(posterior, prior_mean,
                                                  prior_std))
  mean = np.asarray(posterior.mean, np.float64)
  std = np.exp(0.5 * np.asarray(posterior.log_variance, np.float64))
  samples = mean + std * rng.standard_normal((400_000, *mean.shape))
  log_ratio = (stats.norm.logpdf(samples, mean, std)
               - stats.norm.logpdf(samples, prior_mean, prior_std)).sum(-1)
  estimate = log_ratio.mean(0)
  standard_error = log_ratio.std(0) / np.sqrt(len(log_ratio))
  np.testing.assert_array_less(np.abs(kl - estimate), 5 * standard_error + 1e-4)


def test_kl_matches_closed_form_in_float64():
  rng = np.random.default_rng(1)
  posterior = _posterior(rng)
  mu = np.asarray(posterior.mean, np.float64)
  var = np.exp(np.asarray(posterior.log_variance, np.float64))
  m, s = 1.0, 2.0
  expected = np.sum(np.log(s) - 0.5 * np.log(var)
                    + (var + (mu - m) ** 2) / (2 * s * s) - 0.5, axis=-1)
  got = objectives.gaussian_kl_to_prior(posterior, m, s)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_kl_to_itself_is_zero():
  posterior = objectives.GaussianPosterior(jnp.full((2, 3), 1.0),
                                           jnp.full((2, 3), 2 * np.log(2.0)))
  np.testing.assert_allclose(
      objectives.gaussian_kl_to_prior(posterior, 1.0, 2.0), 0.0, atol=1e-6)


def test_latent_mask_drops_dimensions_from_kl_and_z():
  rng = np.random.default_rng(2)
  posterior = _posterior(rng, latent=5)
  mask = jnp.array([1, 1, 0, 1, 0], jnp.float32)
  kept = np.array([0, 1, 3])
  sub = objectives.GaussianPosterior(posterior.mean[:, kept],
                                     posterior.log_variance[:, kept])
  np.testing.assert_allclose(
      objectives.gaussian_kl_to_prior(posterior, 0.3, 1.5, mask),
      objectives.gaussian_kl_to_prior(sub, 0.3, 1.5), rtol=1e-6)
  z = objectives.sample_posterior(jax.random.PRNGKey(0), posterior, mask)
  assert np.all(np.asarray(z)[:, [2, 4]] == 0)
  assert np.all(np.asarray(z)[:, kept] != 0)


def test_gaussian_log_density_matches_scipy():
  rng = np.random.default_rng(3)
  z = rng.normal(size=(6, 3))
  mean = rng.normal(size=(6, 3))
  log_variance = rng.normal(size=(6, 3))
  expected = stats.norm.logpdf(z, mean, np.exp(0.5 * log_variance)).sum(-1)
  got = objectives.gaussian_log_density(jnp.asarray(z, jnp.float32),
                                        jnp.asarray(mean, jnp.float32),
                                        jnp.asarray(log_variance, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_nll_matches_numpy_for_grey_targets():
  rng = np.random.default_rng(4)
  logits = rng.normal(scale=4, size=(3, 28, 28))
  targets = rng.random((3, 28, 28))
  p = 1 / (1 + np.exp(-logits))
  expected = -(targets * np.log(p) + (1 - targets) * np.log1p(-p)).sum((1, 2))
  got = objectives.bernoulli_nll_from_logits(
      jnp.asarray(logits, jnp.float32), jnp.asarray(targets, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_nll_is_finite_for_saturated_logits():
  # A clipped sigmoid would give log(0) = -inf or a clip-dependent constant.
  logits = jnp.array([[200.0, -200.0]])
  targets = jnp.array([[0.0, 1.0]])
  np.testing.assert_allclose(
      objectives.bernoulli_nll_from_logits(logits, targets), [400.0],
      rtol=1e-6)


def test_negative_elbo_weights_kl_by_beta():
  rng = np.random.default_rng(5)
  posterior = _posterior(rng)
  reconstruction = jnp.asarray(rng.random(5), jnp.float32)
  terms = objectives.negative_elbo(reconstruction, posterior, beta=0.25,
                                   prior_mean=1.0, prior_std=2.0)
  np.testing.assert_allclose(terms.loss,
                             terms.reconstruction + 0.25 * terms.kl, rtol=1e-6)
  np.testing.assert_allclose(
      terms.kl, objectives.gaussian_kl_to_prior(posterior, 1.0, 2.0))


@pytest.mark.parametrize('kind', ['bce', 'mse', 'mae'])
def test_reconstruction_losses_match_numpy(kind):
  rng = np.random.default_rng(6)
  logits = rng.normal(scale=3, size=(4, 16, 16))
  targets = rng.random((4, 16, 16))
  p = 1 / (1 + np.exp(-logits))
  expected = {
      'bce': -(targets * np.log(p) + (1 - targets) * np.log1p(-p)),
      'mse': (p - targets) ** 2,
      'mae': np.abs(p - targets),
  }[kind].sum((1, 2))
  got = objectives.reconstruction_loss(kind)(jnp.asarray(logits, jnp.float32),
                                             jnp.asarray(targets, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize('kind', ['bce', 'mse', 'mae'])
def test_reconstruction_loss_rejects_logits_of_another_shape(kind):
  # Broadcast against [B, 1, H, W] images, [B, H, W] logits would make a
  # [B, B, H, W] loss and sum a wrong number without complaint.
  with pytest.raises(ValueError, match=r'\(2, 28, 28\).*\(2, 1, 28, 28\)'):
    objectives.reconstruction_loss(kind)(jnp.zeros((2, 28, 28)),
                                         jnp.zeros((2, 1, 28, 28)))


def test_unknown_reconstruction_loss_names_the_choices():
  # Other tests register losses of their own: the built-in ones come first.
  with pytest.raises(ValueError, match="'huber' in config.loss; choose one "
                     'of bce, mse, mae, .*perceptual, perceptual'):
    objectives.reconstruction_loss('huber')


@pytest.mark.parametrize('partitionable', [True, False])
def test_per_latent_noise_is_standard_normal_and_nested(partitionable):
  # Partitionable threefry draws all columns at once; otherwise one keyed
  # draw per column. Both must nest.
  key = jax.random.PRNGKey(3)
  with jax.threefry_partitionable(partitionable):
    wide = objectives.standard_normal_per_latent(key, (20000, 6))
    narrow = jax.jit(objectives.standard_normal_per_latent,
                     static_argnums=1)(key, (20000, 2))
  # The first columns do not depend on how many follow: a masked model
  # samples what the smaller model does.
  np.testing.assert_array_equal(wide[:, :2], narrow)
  for column in np.asarray(wide).T:
    assert stats.kstest(column, 'norm').pvalue > 1e-3
  # Columns are independent of each other.
  correlation = np.corrcoef(np.asarray(wide).T)
  np.testing.assert_allclose(correlation, np.eye(6), atol=0.03)
