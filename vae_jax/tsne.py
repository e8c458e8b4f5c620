"""Exact t-SNE in JAX, for drawing latent spaces of more than three dimensions.

t-SNE (van der Maaten & Hinton, 2008) places N points in the plane so that
a Student-t similarity between them matches Gaussian similarities in the
original space, each point's Gaussian width chosen to give a set perplexity.
The exact form costs O(N^2) per iteration: a few seconds for the 2,000
points a scatter plot draws. The optimiser follows the reference
implementation (and scikit-learn's): early exaggeration 12 with momentum 0.5
for 250 iterations, then momentum 0.8; per-coordinate adaptive gains;
learning rate max(N / 48, 50); a PCA start scaled to standard deviation
1e-4.

  y = tsne.embed(x, perplexity=30.0)  # x [N, D] -> y [N, 2]
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

EARLY_EXAGGERATION = 12.0
EXAGGERATION_ITERATIONS = 250
BISECTION_STEPS = 100


def pairwise_squared_distances(x: jax.Array) -> jax.Array:
  """Squared Euclidean distances [N, N] between the rows of x [N, D]."""
  squared_norms = jnp.sum(x * x, axis=1)
  distances = squared_norms[:, None] + squared_norms[None, :] - 2.0 * x @ x.T
  return jnp.maximum(distances, 0.0)


def conditional_probabilities(squared_distances: jax.Array, perplexity: float
                              ) -> jax.Array:
  """P[i, j] = p(j | i): Gaussian kernels [N, N] whose rows have `perplexity`.

  Row i is proportional to exp(-beta_i * d_ij) over j != i (P[i, i] = 0),
  with the precision beta_i found by bisection so that exp(entropy of row i)
  equals the perplexity.
  """
  num_points = squared_distances.shape[0]
  if not 1.0 <= perplexity < num_points:
    raise ValueError(f'perplexity {perplexity} must be in [1, {num_points}) '
                     f'for {num_points} points; lower it or pass more points.')
  off_diagonal = ~jnp.eye(num_points, dtype=bool)
  # Shifting each row by its smallest distance keeps exp() from underflowing
  # without changing the normalised row.
  nearest = jnp.min(jnp.where(off_diagonal, squared_distances, jnp.inf), 1)
  shifted = jnp.where(off_diagonal, squared_distances - nearest[:, None], 0.0)
  target_entropy = jnp.log(perplexity)

  def rows(beta):
    weights = jnp.where(off_diagonal, jnp.exp(-beta[:, None] * shifted), 0.0)
    total = jnp.sum(weights, axis=1)
    probabilities = weights / total[:, None]
    entropy = jnp.log(total) + beta * jnp.sum(probabilities * shifted, axis=1)
    return probabilities, entropy

  def bisect(_, bounds):
    low, high, beta = bounds
    _, entropy = rows(beta)
    too_flat = entropy > target_entropy  # a wider kernel than wanted
    low = jnp.where(too_flat, beta, low)
    high = jnp.where(too_flat, high, beta)
    beta = jnp.where(jnp.isinf(high), beta * 2.0, (low + high) / 2.0)
    return low, high, beta

  start = (jnp.zeros(num_points), jnp.full(num_points, jnp.inf),
           jnp.ones(num_points) / jnp.maximum(jnp.mean(shifted), 1e-12))
  _, _, beta = jax.lax.fori_loop(0, BISECTION_STEPS, bisect, start)
  return rows(beta)[0]


def joint_probabilities(x: jax.Array, perplexity: float) -> jax.Array:
  """Symmetric P [N, N] = (p(j|i) + p(i|j)) / 2N for points x [N, D]."""
  conditional = conditional_probabilities(pairwise_squared_distances(x),
                                          perplexity)
  return (conditional + conditional.T) / (2.0 * x.shape[0])


def _student_t_kernel(y: jax.Array) -> jax.Array:
  """(1 + |y_i - y_j|^2)^-1 [N, N] with a zero diagonal."""
  kernel = 1.0 / (1.0 + pairwise_squared_distances(y))
  return kernel * (1.0 - jnp.eye(y.shape[0]))


def kl_divergence(p: jax.Array, y: jax.Array) -> jax.Array:
  """KL(P || Q) [] where Q is the Student-t similarity of the embedding y [N, 2]."""
  kernel = _student_t_kernel(y)
  q = kernel / jnp.sum(kernel)
  tiny = jnp.finfo(p.dtype).tiny
  return jnp.sum(p * (jnp.log(jnp.maximum(p, tiny)) -
                      jnp.log(jnp.maximum(q, tiny))))


def kl_gradient(p: jax.Array, y: jax.Array) -> jax.Array:
  """d KL(P || Q) / dy [N, 2] = 4 sum_j (p_ij - q_ij) (y_i - y_j) / (1 + |y_i - y_j|^2)."""
  kernel = _student_t_kernel(y)
  q = kernel / jnp.sum(kernel)
  forces = (p - q) * kernel
  return 4.0 * (jnp.sum(forces, axis=1, keepdims=True) * y - forces @ y)


def pca_start(x: jax.Array) -> jax.Array:
  """The first two principal components of x [N, D], scaled to std 1e-4."""
  centred = x - jnp.mean(x, axis=0)
  _, _, components = jnp.linalg.svd(centred, full_matrices=False)
  projected = centred @ components[:2].T
  return projected / jnp.std(projected[:, 0]) * 1e-4


@functools.partial(jax.jit, static_argnames=('num_iterations',))
def optimise(p: jax.Array, start: jax.Array, num_iterations: int = 1000
             ) -> jax.Array:
  """Gradient descent on KL(P || Q) from start [N, 2]; returns the embedding."""
  learning_rate = jnp.maximum(p.shape[0] / EARLY_EXAGGERATION / 4.0, 50.0)

  def step(iteration, carry):
    y, update, gains = carry
    early = iteration < EXAGGERATION_ITERATIONS
    gradient = kl_gradient(jnp.where(early, EARLY_EXAGGERATION, 1.0) * p, y)
    momentum = jnp.where(early, 0.5, 0.8)
    # Grow the step of coordinates whose gradient keeps its direction.
    same_direction = jnp.sign(gradient) == jnp.sign(-update)
    gains = jnp.maximum(jnp.where(same_direction, gains + 0.2, gains * 0.8),
                        0.01)
    update = momentum * update - learning_rate * gains * gradient
    return y + update, update, gains

  carry = (start, jnp.zeros_like(start), jnp.ones_like(start))
  return jax.lax.fori_loop(0, num_iterations, step, carry)[0]


def embed(x, perplexity: float = 30.0, num_iterations: int = 1000
          ) -> np.ndarray:
  """t-SNE of the rows of x [N, D] into the plane: float32 [N, 2].

  Deterministic (PCA start). perplexity is capped at (N - 1) / 3 so that few
  points still embed.
  """
  x = jnp.asarray(x, jnp.float32)
  if x.ndim != 2 or x.shape[0] < 4:
    raise ValueError(f't-SNE needs points [N >= 4, D]; got shape {x.shape}.')
  perplexity = min(perplexity, (x.shape[0] - 1) / 3.0)
  p = jnp.maximum(joint_probabilities(x, perplexity), 1e-12)
  return np.asarray(optimise(p, pca_start(x), num_iterations))
