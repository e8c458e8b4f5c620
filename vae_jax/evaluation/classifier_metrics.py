"""Metrics of generated digits judged by the project's MNIST classifier.

Inception Score and FID with the MNIST classifier in Inception's place
("classifier IS", "classifier-FID": its softmax and its 128-d penultimate
layer), class histograms and confusion matrices of prior samples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import objectives
from vae_jax import train
from vae_jax.data import dataset as dataset_lib
from vae_jax.evaluation import fid


# ------------------------------------------------------------------- samples
def prior_samples(model, params, hparams, num: int, rng: jax.Array,
                  labels: np.ndarray | None = None,
                  batch_size: int = 1000, batch_stats=None) -> np.ndarray:
  """Decodes z ~ N(prior_mean, prior_std^2) (masked dims 0) to images.

  Args:
    model, params: a trained VAE.
    hparams: train.Hyperparams of the run (prior_mean, prior_std,
      latent_mask [latent]).
    num: number of images.
    rng: PRNG key (objectives.sample_prior: a sample depends neither on
      batch_size nor on the masked dimensions of a sweep's model).
    labels: int [num], the requested classes of a conditional model (None
      for an unconditional one).
    batch_size: images decoded per call.
    batch_stats: a BatchNorm model's running averages.

  Returns:
    float32 [num, H, W], sigmoid of the decoder's logits (Bernoulli means).
  """
  z = objectives.sample_prior(rng, num, hparams.prior_mean, hparams.prior_std,
                             jnp.asarray(hparams.latent_mask))
  decode = _compiled_decode(model)
  return np.concatenate([
      np.asarray(decode(params, z[i:i + batch_size],
                        None if labels is None
                        else jnp.asarray(labels[i:i + batch_size]),
                        batch_stats))
      for i in range(0, num, batch_size)])


# Compiled once per model (and shapes), not once per call or per sweep member:
# the parameters are arguments.
@functools.lru_cache(maxsize=None)
def _compiled_decode(model):
  return jax.jit(lambda params, z, labels, batch_stats: jax.nn.sigmoid(
      model.apply(train.model_variables(params, batch_stats), z, labels,
                  method=model.decode)))


def reconstructions(model, params, hparams, images: np.ndarray,
                    labels: np.ndarray | None = None,
                    batch_size: int = 1000, batch_stats=None) -> np.ndarray:
  """Decodes each image's posterior mean (masked dims 0): float32 [N, H, W].

  labels: int [N], the classes a conditional model is given (None for an
  unconditional one). batch_stats: a BatchNorm model's running averages.
  """
  reconstruct = _compiled_reconstruct(model)
  return np.concatenate([
      np.asarray(reconstruct(params, hparams,
                             jnp.asarray(images[i:i + batch_size]),
                             None if labels is None
                             else jnp.asarray(labels[i:i + batch_size]),
                             batch_stats))
      for i in range(0, len(images), batch_size)])


@functools.lru_cache(maxsize=None)
def _compiled_reconstruct(model):
  return jax.jit(train.make_reconstruct(model))


@functools.lru_cache(maxsize=None)
def _compiled_features(classifier_model, layer: str):
  return jax.jit(lambda params, x: classifier_model.apply(
      {'params': params}, x, method=classifier_model.features)[layer])


# -------------------------------------------------------------- classifier
def classifier_feature_fn(classifier_model, classifier_params,
                          layer: str = 'penultimate'):
  """A compiled images [b, H, W] (uint8 or [0, 1]) -> features [b, D] function.

  layer: a key of MNISTClassifier.features ('penultimate': [b, 128], the
  classifier-FID features; 'logits': [b, classes]); conv layers are
  flattened.
  """
  apply = _compiled_features(classifier_model, layer)

  def feature_fn(images: np.ndarray) -> np.ndarray:
    features = np.asarray(apply(classifier_params,
                                dataset_lib.as_unit_float(images)))
    return features.reshape(features.shape[0], -1)

  return feature_fn


def classifier_features(classifier_model, classifier_params,
                        images: np.ndarray, batch_size: int = 1000,
                        layer: str = 'penultimate') -> np.ndarray:
  """Features [N, D] of images [N, H, W] (uint8 or [0, 1]), batch by batch."""
  feature_fn = classifier_feature_fn(classifier_model, classifier_params,
                                     layer)
  return np.concatenate([feature_fn(images[i:i + batch_size])
                         for i in range(0, len(images), batch_size)])


def classifier_probabilities(classifier_model, classifier_params,
                             images: np.ndarray,
                             batch_size: int = 1000) -> np.ndarray:
  """p(y|x) [N, classes] float64 of images [N, H, W] (uint8 or [0, 1])."""
  logits = classifier_features(classifier_model, classifier_params, images,
                               batch_size, layer='logits').astype(np.float64)
  # In float64: the Inception Score takes logs of these, tiny ones included.
  shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return shifted / shifted.sum(axis=-1, keepdims=True)


def classifier_fid(classifier_model, classifier_params, images: np.ndarray,
                   reference: tuple[np.ndarray, np.ndarray] | np.ndarray,
                   batch_size: int = 1000) -> float:
  """Fréchet distance of the classifier's penultimate features.

  Args:
    images: [N, H, W] (uint8 or [0, 1]), e.g. prior samples.
    reference: the real images [M, H, W], or their precomputed
      fid.accumulate_statistics (mean [128], cov [128, 128]).
    batch_size: images per classifier call.
  """
  feature_fn = classifier_feature_fn(classifier_model, classifier_params)
  if not isinstance(reference, tuple):
    reference = fid.accumulate_statistics(feature_fn, reference, batch_size)
  statistics = fid.accumulate_statistics(feature_fn, images, batch_size)
  return fid.frechet_distance(*statistics, *reference)


# -------------------------------------------------------------------- scores
def inception_score(probabilities: np.ndarray,
                    splits: int = 10) -> tuple[float, float]:
  """exp(E_x KL(p(y|x) || p(y))), as mean and std over `splits` parts.

  As the usual implementation (Salimans et al., 2016): the N // splits rows
  of each part estimate p(y) by their mean; rows beyond splits * (N //
  splits) are left out.

  Args:
    probabilities: p(y|x) [N, classes], rows summing to 1.
    splits: number of parts.

  Returns:
    (mean, std) of the parts' scores; 1 <= score <= classes.
  """
  probabilities = np.asarray(probabilities, np.float64)
  part_size = probabilities.shape[0] // splits
  if part_size < 1:
    raise ValueError(f'{probabilities.shape[0]} rows are fewer than '
                     f'splits={splits}.')
  scores = []
  for k in range(splits):
    part = probabilities[k * part_size:(k + 1) * part_size]
    marginal = part.mean(axis=0, keepdims=True)
    # 0 log 0 = 0: a class the classifier rules out adds nothing.
    log_part = np.log(np.where(part > 0, part, 1.0))
    log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
    kl = np.sum(part * (log_part - log_marginal), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def class_histogram(predicted: np.ndarray, num_classes: int = 10) -> np.ndarray:
  """Counts [num_classes] of the predicted classes [N]."""
  return np.bincount(np.asarray(predicted), minlength=num_classes)


def confusion_matrix(requested: np.ndarray, predicted: np.ndarray,
                     num_classes: int = 10) -> np.ndarray:
  """[num_classes, num_classes] counts; row = requested, column = predicted."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (requested, predicted), 1)
  return matrix


def balanced_labels(num_classes: int, per_class: int) -> np.ndarray:
  """int32 [num_classes * per_class]: 0, 1, ..., num_classes - 1, 0, 1, ...

  Interleaved rather than sorted, so that any contiguous run of whole
  cycles (one of inception_score's splits) holds every class equally often.
  """
  return np.tile(np.arange(num_classes, dtype=np.int32), per_class)


def conditional_sample_predictions(model, params, hparams, classifier_model,
                                   classifier_params, per_class: int,
                                   rng: jax.Array,
                                   num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """Samples `per_class` images of every class from a CVAE's prior and classifies them.

  Returns:
    (requested, predicted): int arrays [num_classes * per_class].
  """
  requested = balanced_labels(num_classes, per_class)
  images = prior_samples(model, params, hparams, len(requested), rng,
                         labels=requested)
  predicted = np.argmax(classifier_probabilities(
      classifier_model, classifier_params, images), axis=-1)
  return requested, predicted
