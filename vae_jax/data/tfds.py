"""Data sets through tensorflow_datasets' data sources (no TensorFlow
needed), under the same names (tfds has mnist and fashion_mnist)."""

from __future__ import annotations

import os

import numpy as np

from vae_jax.data.dataset import DataError, DataNotFoundError, Dataset, PathLike


def load_tfds(name: str, data_dir: PathLike | None, download: bool) -> Dataset:
  """Loads `name` through tfds.data_source, which does not need TensorFlow."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise DataError(
        "source='tfds' needs tensorflow_datasets: pip install"
        " tensorflow-datasets, or use source='files'."
    ) from err
  try:
    train, test = tfds.data_source(
        name, split=['train', 'test'],
        data_dir=None if data_dir is None else os.fspath(data_dir),
        download=download)
  except Exception as err:  # pylint: disable=broad-except
    # TFDS raises many unrelated types (AssertionError, DatasetNotFoundError,
    # ImportError for a missing TF when preparing); surface them uniformly.
    raise DataNotFoundError(
        f'tfds:{name}: tfds.data_source failed with data_dir={data_dir}'
        f' ({type(err).__name__}: {err}). Prepare the data set with TFDS in'
        " array_record format first, or use source='files'."
    ) from err

  def to_arrays(split_source) -> tuple[np.ndarray, np.ndarray]:
    # Item by item: ArrayRecord sources support __getitem__ everywhere, while
    # __getitems__ is not implemented by tfds.testing.mock_data.
    examples = [split_source[i] for i in range(len(split_source))]
    images = np.stack([np.asarray(ex['image']) for ex in examples])
    labels = np.asarray([ex['label'] for ex in examples], np.int32)
    if images.ndim == 4 and images.shape[-1] == 1:
      images = images[..., 0]  # TFDS stores grey images as [H, W, 1]
    return images.astype(np.uint8), labels

  train_images, train_labels = to_arrays(train)
  test_images, test_labels = to_arrays(test)
  return Dataset(name, train_images, train_labels, test_images, test_labels,
                 source=f'tfds:{name}')
