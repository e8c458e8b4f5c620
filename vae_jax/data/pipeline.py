"""From a config to the arrays a compiled epoch reads: the data set loaded
and subset as configured, placed on the device, and turned into model
input inside the step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vae_jax import config_fields
from vae_jax.data.dataset import Dataset, binarize_static
from vae_jax.data.files import load_dataset


def load_data(config: ml_collections.ConfigDict) -> Dataset:
  """Loads the configured dataset as uint8 host arrays, preprocessed for storage."""
  dataset = load_dataset(
      config.data.name, data_dir=config.data.dir,
      cache_dir=config.data.cache_dir,
      download_if_missing=config.data.download, source=config.data.source)
  if config.data.preprocessing not in config_fields.PREPROCESSING_MODES:
    raise ValueError(f'Unknown config.data.preprocessing '
                     f'{config.data.preprocessing!r}; choose one of '
                     f'{config_fields.PREPROCESSING_MODES}.')
  train_images, train_labels = dataset.train_images, dataset.train_labels
  if config.data.train_subset is not None:
    train_images = train_images[:config.data.train_subset]
    train_labels = train_labels[:config.data.train_subset]
  test_images, test_labels = dataset.test_images, dataset.test_labels
  if config.data.test_subset is not None:
    test_images = test_images[:config.data.test_subset]
    test_labels = test_labels[:config.data.test_subset]
  if config.data.preprocessing == 'static_binarized':
    train_images = binarize_static(train_images, seed=config.seed)
    test_images = binarize_static(test_images, seed=config.seed + 1)
  return Dataset(
      name=dataset.name, train_images=train_images, train_labels=train_labels,
      test_images=test_images, test_labels=test_labels, source=dataset.source)


def device_data(images: np.ndarray, labels: np.ndarray, sharding=None) -> dict:
  """{'images': uint8 [N, H, W], 'labels': int32 [N]} placed on the device."""
  return jax.device_put({'images': np.asarray(images, np.uint8),
                         'labels': np.asarray(labels, np.int32)}, sharding)


def to_model_input(images: jax.Array, preprocessing: str,
                   rng: jax.Array) -> jax.Array:
  """uint8 [B, ...] grey levels (or floats already in [0, 1]) -> float32 of
  the same shape in [0, 1], as the model sees them.

  'dynamic_binarized' draws each pixel ~ Bernoulli(grey / 255) with `rng`;
  'grey' and 'static_binarized' (binarised once at load time) just rescale.
  """
  if jnp.issubdtype(images.dtype, jnp.floating):
    x = images.astype(jnp.float32)
  else:
    x = images.astype(jnp.float32) / 255.0
  if preprocessing == 'dynamic_binarized':
    x = jax.random.bernoulli(rng, x).astype(jnp.float32)
  return x
