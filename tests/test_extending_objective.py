"""A new objective is one registration: a reconstruction loss and a k-sample
bound defined here train, sweep, evaluate and report through vae_jax's own
entry points (docs/extending.md)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from test_train import tiny_config, tiny_dataset
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import objectives
from vae_jax import report
from vae_jax import sweep
from vae_jax import validation
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry

HUBER_DELTA = 0.1


# ---------------------------------------------------- the new objectives
def huber_from_logits(logits, targets):
  """Per-image Huber distance of sigmoid(logits) to the targets, summed
  over pixels: quadratic within HUBER_DELTA, linear beyond."""
  error = jnp.abs(jax.nn.sigmoid(logits) - targets).reshape(
      logits.shape[0], -1)
  quadratic = jnp.minimum(error, HUBER_DELTA)
  return jnp.sum(0.5 * quadratic ** 2 + HUBER_DELTA * (error - quadratic),
                 axis=-1)


def renyi_half_bound(log_weights):
  """Li & Turner's (2016) variational Renyi bound at alpha = 1/2:
  2 log mean_k w^(1/2), between the k-sample ELBO (alpha = 1) and the
  IWAE bound (alpha = 0)."""
  k = log_weights.shape[0]
  return 2.0 * (jax.nn.logsumexp(0.5 * log_weights, axis=0) - jnp.log(k))


SMOOTH_L1 = objectives.register_reconstruction_loss(objectives.ReconstructionLoss(
    'smooth_l1', huber_from_logits, likelihood=False,
    description='Huber (smooth L1) distance, registered by a test'))
RENYI = objectives.register_bound(objectives.KSampleBound(
    'renyi_half', renyi_half_bound, 'the variational Renyi bound, alpha 1/2'))


# -------------------------------------------------------------------- tests
def test_the_new_bound_against_numpy_and_between_the_built_in_ones():
  rng = np.random.default_rng(0)
  log_weights = rng.normal(-300.0, 4.0, size=(7, 5))
  expected = 2.0 * (special.logsumexp(0.5 * log_weights, axis=0)
                    - np.log(7))
  log_weights = jnp.asarray(log_weights, jnp.float32)
  got = np.asarray(RENYI.bound(log_weights))
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  assert np.all(got >= np.asarray(objectives.vae_bound(log_weights)) - 1e-3)
  assert np.all(got <= np.asarray(objectives.iwae_bound(log_weights)) + 1e-3)


def test_the_new_loss_against_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(3, 4, 4)).astype(np.float32)
  targets = rng.uniform(size=(3, 4, 4)).astype(np.float32)
  error = np.abs(1 / (1 + np.exp(-logits)) - targets).reshape(3, -1)
  expected = np.where(error <= HUBER_DELTA, 0.5 * error ** 2,
                      HUBER_DELTA * (error - 0.5 * HUBER_DELTA)).sum(-1)
  got = objectives.reconstruction_loss('smooth_l1')(logits, targets)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_validation_reads_the_registries():
  validation.validate(tiny_config(loss='smooth_l1'))
  validation.validate(tiny_config(objective='renyi_half', num_samples=5))
  # A distance is no likelihood: no k-sample bound of it.
  with pytest.raises(validation.ConfigError, match="'smooth_l1' is a distance"):
    validation.validate(tiny_config(loss='smooth_l1', objective='renyi_half'))
  with pytest.raises(validation.ConfigError, match="'renyi_half'"):
    validation.validate(tiny_config(objective='renyi'))
  with pytest.raises(ValueError, match='already registered'):
    objectives.register_bound(objectives.KSampleBound('iwae', renyi_half_bound))
  with pytest.raises(ValueError, match='already registered'):
    objectives.register_reconstruction_loss(
        objectives.ReconstructionLoss('perceptual', huber_from_logits))


def test_at_one_sample_the_new_bound_trains_as_the_elbo_of_one_sample(
    tmp_path):
  # With k = 1 every bound is log w_1: the same training, up to rounding.
  dataset = tiny_dataset()
  renyi = driver.train_and_evaluate(
      tiny_config(objective='renyi_half', num_samples=1), tmp_path / 'renyi',
      dataset=dataset)
  vae = driver.train_and_evaluate(
      tiny_config(objective='vae', num_samples=1), tmp_path / 'vae',
      dataset=dataset)
  assert renyi['test_loss'] == pytest.approx(vae['test_loss'], rel=1e-4)


@pytest.mark.slow  # the fast set trains the new entry through train
def test_the_new_objectives_sweep_evaluate_and_report(tmp_path):
  dataset = tiny_dataset()
  config = tiny_config(num_epochs=3)
  config.sweep = grid_lib.concat(
      grid_lib.product(loss=['smooth_l1'], beta=[1.0, 0.5]),
      grid_lib.product(objective=['renyi_half'], num_samples=[4]))
  results = sweep.run_sweep(config, tmp_path / 'sweep', dataset=dataset)
  assert [r['group'] for r in results] == [0, 0, 1]
  for member in range(3):
    losses = [json.loads(line)['test_loss'] for line in
              (tmp_path / 'sweep' / 'metrics.jsonl').read_text().splitlines()
              if json.loads(line)['member'] == member]
    assert losses[-1] < losses[0], member  # each learns its objective
  settings = registry.Settings(iwae_samples=20, iwae_chunk=8, iwae_batch=16)
  evaluated = evaluate.evaluate_workdir(tmp_path / 'sweep',
                                        ['recon_at_mean', 'iwae'],
                                        settings=settings, dataset=dataset)
  for member in evaluated:
    assert np.isfinite(member['test_recon_at_mean'])
  # The smooth-L1 members have no likelihood; the Renyi member has one.
  assert 'iwae_nll' not in evaluated[0] and 'iwae_nll' not in evaluated[1]
  assert np.isfinite(evaluated[2]['iwae_nll'])
  html = report.write_report(tmp_path / 'sweep').read_text()
  assert 'smooth_l1' in html and 'renyi_half' in html
