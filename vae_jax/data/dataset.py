"""The in-memory data set, the errors every loader raises, and static
binarisation. Plain numpy."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

PathLike = str | os.PathLike


REDOWNLOAD_HINT = (
    'Delete it and download it again (or remove it from the cache and let '
    'load_dataset re-download it).'
)


class DataError(Exception):
  """Base: a data file is missing, truncated, corrupted or fails verification."""


class DataNotFoundError(DataError, FileNotFoundError):
  """The files of a data set are not where they were looked for."""


class ChecksumError(DataError, ValueError):
  """A data file's digest differs from the hard-coded one."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A data set of grey images and their labels, held in memory.

  Attributes:
    name: a registered data set's name (vae_jax.data.dataset_names()), or
      any name for arrays made in memory.
    train_images: uint8 [N_train, H, W], grey levels 0..255 (0 = background).
    train_labels: int32 [N_train], classes 0 .. num_classes - 1.
    test_images: uint8 [N_test, H, W].
    test_labels: int32 [N_test].
    source: where the data came from: a directory, or 'tfds:<name>'.
  """

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str

  def __post_init__(self):
    # Fail here, at construction, rather than deep inside a jitted train step.
    for split in ('train', 'test'):
      images = getattr(self, f'{split}_images')
      labels = getattr(self, f'{split}_labels')
      if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f'Dataset {self.name!r} from {self.source}: {split}_images must be'
            f' uint8 [N, H, W], got {images.dtype} {images.shape}.'
        )
      if labels.dtype != np.int32 or labels.shape != images.shape[:1]:
        raise ValueError(
            f'Dataset {self.name!r} from {self.source}: {split}_labels must be'
            f' int32 [{images.shape[0]}], got {labels.dtype} {labels.shape}.'
        )
    if self.train_images.shape[1:] != self.test_images.shape[1:]:
      raise ValueError(
          f'Dataset {self.name!r} from {self.source}: train images are'
          f' {self.train_images.shape[1:]} but test images are'
          f' {self.test_images.shape[1:]}.'
      )

  @property
  def image_shape(self) -> tuple[int, int]:
    """(H, W) of every image."""
    return tuple(self.train_images.shape[1:])


def as_unit_float(images: np.ndarray) -> np.ndarray:
  """uint8 grey levels 0..255 (stored data) or floats in [0, 1] -> float32
  in [0, 1]."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(255.0)
  return images.astype(np.float32)


def as_grey_levels(images: np.ndarray) -> np.ndarray:
  """Floats in [0, 1] -> uint8 grey levels 0..255 (uint8 passes through)."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images
  return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def binarize_static(images: np.ndarray, seed: int) -> np.ndarray:
  """Draws one fixed binarisation of grey images ('static binarisation').

  Each pixel is on with probability grey / 255, sampled once with
  numpy.random.default_rng(seed), so every epoch sees the same binary images.
  Grey 0 is always off and 255 always on.

  Args:
    images: uint8 [..., H, W], grey levels 0..255.
    seed: seed of the numpy Generator.

  Returns:
    uint8 array of the same shape with values in {0, 255}.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise TypeError(
        f'binarize_static expects uint8 grey images (0..255), got {images.dtype}.'
    )
  rng = np.random.default_rng(seed)
  # float32 halves the memory of MNIST's 47M draws; uniform in [0, 1) keeps
  # 255 -> always on (u < 1.0) and 0 -> always off (u < 0.0 is never true).
  uniform = rng.random(images.shape, dtype=np.float32)
  on = uniform < images.astype(np.float32) / np.float32(255.0)
  return on.astype(np.uint8) * np.uint8(255)
