"""t-SNE: the perplexity calibration, the gradient and the embedding itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax import tsne


def _clusters(num_clusters=10, per_cluster=30, dims=50, seed=0):
  rng = np.random.default_rng(seed)
  # Apart in 50-d (every point's nearest neighbours share its cluster), but
  # ten centres cannot all stay apart in two principal components.
  centres = rng.normal(0.0, 1.0, (num_clusters, dims))
  labels = np.repeat(np.arange(num_clusters), per_cluster)
  points = centres[labels] + rng.normal(0.0, 1.0, (len(labels), dims))
  return points.astype(np.float32), labels


def _nearest_neighbour_accuracy(y, labels, k=5):
  """Share of points whose k nearest others mostly carry their label."""
  distances = ((y[:, None] - y[None]) ** 2).sum(-1)
  np.fill_diagonal(distances, np.inf)
  neighbours = np.argsort(distances, axis=1)[:, :k]
  votes = np.array([np.bincount(labels[n], minlength=labels.max() + 1)
                    for n in neighbours])
  return float(np.mean(votes.argmax(1) == labels))


@pytest.mark.parametrize('perplexity', [5.0, 30.0])
def test_conditional_rows_are_gaussian_with_the_asked_perplexity(perplexity):
  x = np.random.default_rng(1).normal(size=(120, 7)).astype(np.float32)
  squared = ((x[:, None] - x[None]) ** 2).sum(-1)
  p = np.asarray(tsne.conditional_probabilities(jnp.asarray(squared),
                                                perplexity), np.float64)
  np.testing.assert_allclose(np.diag(p), 0.0)
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
  entropy = -np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300)), 0.0), 1)
  np.testing.assert_allclose(np.exp(entropy), perplexity, rtol=1e-3)
  # log p(j|i) is affine in d_ij with a negative slope: a Gaussian kernel.
  for i in (0, 57, 119):
    others = np.arange(len(x)) != i
    slope, intercept = np.polyfit(squared[i, others], np.log(p[i, others]), 1)
    fitted = slope * squared[i, others] + intercept
    assert slope < 0
    np.testing.assert_allclose(np.log(p[i, others]), fitted, atol=1e-3)


def test_joint_probabilities_are_symmetric_and_sum_to_one():
  x = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
  p = np.asarray(tsne.joint_probabilities(jnp.asarray(x), 10.0))
  np.testing.assert_allclose(p, p.T, atol=1e-9)
  np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)


def test_closed_form_gradient_matches_autodiff():
  x, _ = _clusters(num_clusters=3, per_cluster=15, dims=6)
  p = tsne.joint_probabilities(jnp.asarray(x), 8.0)
  y = jax.random.normal(jax.random.PRNGKey(0), (len(x), 2))
  expected = jax.grad(tsne.kl_divergence, argnums=1)(p, y)
  np.testing.assert_allclose(tsne.kl_gradient(p, y), expected, rtol=1e-4,
                             atol=1e-6)


def test_embedding_separates_clusters_that_pca_mixes():
  x, labels = _clusters()
  y = tsne.embed(x, perplexity=20.0)
  assert y.shape == (len(x), 2) and np.all(np.isfinite(y))
  pca = np.asarray(tsne.pca_start(jnp.asarray(x)))
  tsne_accuracy = _nearest_neighbour_accuracy(y, labels)
  pca_accuracy = _nearest_neighbour_accuracy(pca, labels)
  assert tsne_accuracy >= 0.97
  assert _nearest_neighbour_accuracy(x, labels) == 1.0
  assert pca_accuracy < 0.8  # the clusters overlap in PCA
  p = tsne.joint_probabilities(jnp.asarray(x), 20.0)
  assert tsne.kl_divergence(p, jnp.asarray(y)) < 0.5 * tsne.kl_divergence(
      p, jnp.asarray(pca))


def test_embed_rejects_too_few_points():
  with pytest.raises(ValueError, match='N >= 4'):
    tsne.embed(np.zeros((3, 5)))
