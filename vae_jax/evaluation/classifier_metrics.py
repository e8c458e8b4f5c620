"""Metrics of generated digits judged by the project's MNIST classifier."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def conditional_sample_predictions(model, params, hparams, classifier_model,
                                   classifier_params, per_class: int,
                                   rng: jax.Array,
                                   num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """Samples `per_class` images of every class from a CVAE's prior and classifies them.

  Returns:
    (requested, predicted): int arrays [num_classes * per_class].
  """
  requested = jnp.repeat(jnp.arange(num_classes), per_class)
  latent = hparams.latent_mask.shape[-1]
  eps = jax.random.normal(rng, (requested.shape[0], latent))
  z = (hparams.prior_mean + hparams.prior_std * eps) * hparams.latent_mask

  @jax.jit
  def generate_and_classify(z, labels):
    images = jax.nn.sigmoid(model.apply({'params': params}, z, labels,
                                        method=model.decode))
    return jnp.argmax(classifier_model.apply({'params': classifier_params},
                                             images), -1)

  predicted = np.concatenate([
      np.asarray(generate_and_classify(z[i:i + 1000], requested[i:i + 1000]))
      for i in range(0, requested.shape[0], 1000)])
  return np.asarray(requested), predicted


def confusion_matrix(requested: np.ndarray, predicted: np.ndarray,
                     num_classes: int = 10) -> np.ndarray:
  """[num_classes, num_classes] counts; row = requested, column = predicted."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (requested, predicted), 1)
  return matrix
