"""Fréchet Inception Distance: feature statistics and the Fréchet distance.

The numbers follow pytorch-fid (`pytorch_fid.fid_score`): the mean and the
unbiased covariance (np.cov, rowvar=False) of the 2048-d pool features of
Inception-v3, and

  FID = |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

Everything here is numpy in float64 and framework-agnostic: a `feature_fn`
is any callable images [b, ...] -> features [b, D] (for Inception, see
`inception_fid_features`). The Inception model itself is imported lazily,
so the statistics and the distance work without Flax.

Typical use:

  >>> feature_fn = inception_fid_features()           # doctest: +SKIP
  >>> fid_from_images(feature_fn, real, generated)    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import pathlib
import time
from typing import Callable, Iterable

import numpy as np

from vae_jax import loop
from vae_jax import workdir as workdir_lib

_log = logging.getLogger(__name__)

PathLike = str | os.PathLike
FeatureFn = Callable[[np.ndarray], np.ndarray]

DEFAULT_BATCH_SIZE = 200
# pytorch-fid's default offset for a singular product of covariances.
DEFAULT_EPS = 1e-6
STATISTICS_VERSION = 1
# Inception features run at a few images per second on a CPU: a 10,000-image
# FID is half an hour, so its progress is logged this often.
PROGRESS_SECONDS = 30.0


# --------------------------------------------------------------------------
# Statistics.
# --------------------------------------------------------------------------


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and unbiased covariance of a feature matrix, as pytorch-fid.

  Args:
    features: [N, D], N >= 2.

  Returns:
    (mean [D], cov [D, D]), float64; cov = np.cov(features, rowvar=False).
  """
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(f'features must be [N >= 2, D], got {features.shape}.')
  return features.mean(axis=0), np.cov(features, rowvar=False)


class MomentAccumulator:
  """Streaming mean and covariance of feature rows, in float64.

  Sums of x and x x^T are taken about a shift (the first batch's mean), so
  that a large common offset of the features does not cancel catastrophically
  in cov = (sum xx^T - n m m^T) / (n - 1).
  """

  def __init__(self):
    self.count = 0
    self._shift = None
    self._sum = None
    self._outer = None

  def update(self, features: np.ndarray) -> None:
    """Adds features [b, D] (any float dtype)."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
      raise ValueError(f'features must be [b, D], got {features.shape}.')
    if features.shape[0] == 0:
      return
    if self._shift is None:
      dim = features.shape[1]
      self._shift = features.mean(axis=0)
      self._sum = np.zeros(dim)
      self._outer = np.zeros((dim, dim))
    elif features.shape[1] != self._shift.shape[0]:
      raise ValueError(f'features have D={features.shape[1]}, earlier batches'
                       f' had D={self._shift.shape[0]}.')
    centred = features - self._shift
    self.count += features.shape[0]
    self._sum += centred.sum(axis=0)
    self._outer += centred.T @ centred

  def statistics(self) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], unbiased cov [D, D]) of every row added so far."""
    if self.count < 2:
      raise ValueError(f'need at least 2 feature rows, got {self.count}.')
    mean_shifted = self._sum / self.count
    cov = ((self._outer - self.count * np.outer(mean_shifted, mean_shifted))
           / (self.count - 1))
    # Round-off leaves cov asymmetric in the last bits; sqrtm-based FID of an
    # asymmetric matrix would then pick up a spurious imaginary part.
    cov = 0.5 * (cov + cov.T)
    return self._shift + mean_shifted, cov


def _batches(images, batch_size: int) -> Iterable[np.ndarray]:
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  if hasattr(images, 'shape') and hasattr(images, '__getitem__'):
    for start in range(0, images.shape[0], batch_size):
      yield images[start:start + batch_size]
  else:  # an iterable of batches, e.g. a generator of samples
    yield from images


def accumulate_statistics(feature_fn: FeatureFn, images,
                          batch_size: int = DEFAULT_BATCH_SIZE,
                          progress: str | None = None,
                          progress_seconds: float = PROGRESS_SECONDS
                          ) -> tuple[np.ndarray, np.ndarray]:
  """Mean and covariance of `feature_fn` over `images`, batch by batch.

  Only one batch of features is held at a time; the moments are summed in
  float64, so the result equals gaussian_statistics of all features.

  Args:
    feature_fn: images [b, ...] -> features [b, D].
    images: an array [N, ...] (sliced into batches of `batch_size`), or an
      iterable of batches [b, ...] (used as given; `batch_size` ignored).
    batch_size: images per call of `feature_fn`.
    progress: what is computed, e.g. 'Inception FID'; when given, a line
      with the images done, images/s and (for an array) the ETA is logged
      every `progress_seconds` and after the last batch.

  Returns:
    (mean [D], cov [D, D]), float64.
  """
  total = images.shape[0] if hasattr(images, 'shape') else None
  accumulator = MomentAccumulator()
  start = last_logged = time.perf_counter()
  for batch in _batches(images, batch_size):
    accumulator.update(np.asarray(feature_fn(batch)))
    now = time.perf_counter()
    finished = total is not None and accumulator.count == total
    if progress and (finished or now - last_logged >= progress_seconds):
      last_logged = now
      rate = accumulator.count / max(now - start, 1e-9)
      line = f'{progress}: {accumulator.count:,}'
      if total is not None:
        line += (f'/{total:,} images  {rate:.1f} img/s  ETA '
                 f'{loop.format_duration((total - accumulator.count) / rate)}')
      else:
        line += f' images  {rate:.1f} img/s'
      _log.info(line)
  return accumulator.statistics()


# --------------------------------------------------------------------------
# Distance.
# --------------------------------------------------------------------------


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
  """tr((cov1 cov2)^(1/2)) for symmetric PSD [D, D] matrices.

  With any factor cov1 = F F^T, cov1 cov2 is similar to F^T cov2 F, which is
  symmetric PSD, so the trace is the sum of the square roots of its
  eigenvalues: real, and stable where the product itself is near singular.
  F is the Cholesky factor where cov1 is positive definite (the usual case,
  more samples than dimensions; a Cholesky costs a fraction of an
  eigen-decomposition), else U sqrt(s) from cov1 = U diag(s) U^T with
  round-off negative s clipped to 0.
  """
  try:
    factor = np.linalg.cholesky(cov1)
  except np.linalg.LinAlgError:
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (cov1 + cov1.T))
    factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
  middle = factor.T @ cov2 @ factor
  eigenvalues = np.linalg.eigvalsh(0.5 * (middle + middle.T))
  return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray,
                     cov2: np.ndarray, eps: float = DEFAULT_EPS) -> float:
  """Fréchet distance of N(mean1, cov1) and N(mean2, cov2), as pytorch-fid.

  Args:
    mean1, mean2: [D].
    cov1, cov2: [D, D], symmetric positive semi-definite.
    eps: where the eigen-decomposition fails or is not finite (pytorch-fid's
      case of a singular product), eps * I is added to both covariances and
      the trace recomputed, as pytorch-fid does.

  Returns:
    |m1 - m2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)), a float.
  """
  mean1, mean2 = np.atleast_1d(mean1).astype(np.float64), np.atleast_1d(
      mean2).astype(np.float64)
  cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(
      cov2).astype(np.float64)
  if mean1.shape != mean2.shape:
    raise ValueError(f'means differ in shape: {mean1.shape} vs {mean2.shape}.')
  dim = mean1.shape[0]
  if cov1.shape != (dim, dim) or cov2.shape != (dim, dim):
    raise ValueError(f'covariances must be [{dim}, {dim}], got {cov1.shape}'
                     f' and {cov2.shape}.')
  for name, value in (('mean1', mean1), ('cov1', cov1), ('mean2', mean2),
                      ('cov2', cov2)):
    if not np.isfinite(value).all():
      raise ValueError(f'{name} has non-finite entries.')
  diff = mean1 - mean2
  try:
    tr_covmean = trace_sqrt_product(cov1, cov2)
  except np.linalg.LinAlgError:
    tr_covmean = np.nan
  if not np.isfinite(tr_covmean):
    _log.warning('FID: tr sqrt(cov1 cov2) is not finite; adding %g to the'
                 ' diagonal of both covariances.', eps)
    offset = np.eye(dim) * eps
    tr_covmean = trace_sqrt_product(cov1 + offset, cov2 + offset)
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2)
               - 2.0 * tr_covmean)


def fid_from_statistics(stats1: tuple[np.ndarray, np.ndarray],
                        stats2: tuple[np.ndarray, np.ndarray]) -> float:
  """frechet_distance of two (mean, cov) pairs."""
  return frechet_distance(*stats1, *stats2)


def fid_from_images(feature_fn: FeatureFn, images_a, images_b,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> float:
  """FID between two image sets under one feature function.

  Args:
    feature_fn: images [b, ...] -> features [b, D], e.g.
      inception_fid_features().
    images_a, images_b: arrays [N, ...] or iterables of batches, as
      accumulate_statistics takes.
    batch_size: images per call of `feature_fn`.
  """
  return frechet_distance(
      *accumulate_statistics(feature_fn, images_a, batch_size),
      *accumulate_statistics(feature_fn, images_b, batch_size))


# --------------------------------------------------------------------------
# Inception features.
# --------------------------------------------------------------------------


def inception_fid_features(params=None, weights_path: PathLike | None = None,
                           conv_impl: str = 'auto',
                           chunk_size: int = 32) -> FeatureFn:
  """The FID feature function: images [B, H, W(, C)] in [0, 1] -> [B, 2048].

  Jitted Inception-v3 (vae_jax.models.inception) pool features, with
  pytorch-fid's input handling (bilinear resize to 299x299, [0, 1] ->
  [-1, 1], grey replicated to RGB). uint8 images are divided by 255.

  Args:
    params: FIDInceptionV3 params; None loads them
      (inception_weights.load_inception_params(weights_path)), downloading
      the released weights into the cache if needed.
    weights_path: an .npz or the .pth, when params is None.
    conv_impl: 'auto', 'matmul' or 'xla' (see vae_jax.models.conv).
    chunk_size: images per network call (the network compiles once).
  """
  from vae_jax.models import inception
  if params is None:
    from vae_jax.evaluation import inception_weights
    params = inception_weights.load_inception_params(weights_path)
  return inception.fid_feature_fn(params, conv_impl, chunk_size)


def reference_statistics(dataset: str = 'mnist', split: str = 'test',
                         weights=None, cache_dir: PathLike | None = None,
                         data_dir: PathLike | None = None,
                         batch_size: int = DEFAULT_BATCH_SIZE,
                         download: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
  """Inception statistics of a data set's split, cached per weights.

  The first call computes them (10000 MNIST test images: minutes on a CPU)
  and saves them to `<cache>/fid_stats/<dataset>_<split>-<weights hash>.npz`;
  later calls with the same weights read that file.

  Args:
    dataset: 'mnist' or 'usps' (vae_jax.data.load_dataset).
    split: 'test' or 'train'.
    weights: an inception_weights.InceptionWeights; None loads them
      (load_inception_weights(cache_dir=cache_dir, download=download)).
    cache_dir: the cache root for weights, data and statistics (default
      $VAE_JAX_CACHE_DIR, else ~/.cache/vae_jax).
    data_dir: where the data set's files are (default: searched, see
      vae_jax.data.find_data_dir).
    batch_size: images per feature call.
    download: whether missing weights or data may be downloaded.

  Returns:
    (mean [2048], cov [2048, 2048]), float64.
  """
  from vae_jax import data
  from vae_jax.evaluation import inception_weights
  if split not in ('train', 'test'):
    raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
  if weights is None:
    weights = inception_weights.load_inception_weights(cache_dir=cache_dir,
                                                       download=download)

  def compute():
    ds = data.load_dataset(dataset, data_dir, cache_dir,
                           download_if_missing=download)
    images = getattr(ds, f'{split}_images')
    _log.info('Computing FID statistics of %s %s (%d images)', dataset, split,
              len(images))
    return accumulate_statistics(inception_fid_features(weights.params),
                                 images, batch_size,
                                 progress=f'Inception statistics of {dataset} '
                                 f'{split}')

  return cached_statistics(f'{dataset}_{split}', weights.sha256, compute,
                           cache_dir)


# --------------------------------------------------------------------------
# Cached statistics.
# --------------------------------------------------------------------------


def save_statistics(path: PathLike, mean: np.ndarray, cov: np.ndarray,
                    weights_sha256: str = '', num_images: int = -1,
                    description: str = '') -> pathlib.Path:
  """Writes (mean, cov) to an .npz (keys mu and sigma, as pytorch-fid's files).

  The file is written under a temporary name and renamed, so an interrupted
  run never leaves a truncated cache entry behind.

  Args:
    path: the .npz to write (parents are created).
    mean: [D]; cov: [D, D].
    weights_sha256: the digest of the feature network's weights the
      statistics were computed with ('' if unknown).
    num_images: how many images went into them (-1 if unknown).
    description: free text, e.g. 'mnist test, 10000 images'.

  Returns:
    The path written.
  """
  path = pathlib.Path(path).expanduser()
  path.parent.mkdir(parents=True, exist_ok=True)
  with workdir_lib.atomic_path(path) as tmp, open(tmp, 'wb') as f:
    np.savez(f, mu=np.asarray(mean, np.float64),
             sigma=np.asarray(cov, np.float64),
             weights_sha256=np.asarray(weights_sha256),
             num_images=np.asarray(num_images, np.int64),
             description=np.asarray(description),
             version=np.asarray(STATISTICS_VERSION, np.int64))
  return path


def load_statistics(path: PathLike, weights_sha256: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Reads (mean [D], cov [D, D]) from an .npz with keys mu and sigma.

  Also reads pytorch-fid's own statistics files (which hold only mu, sigma).

  Args:
    path: the .npz.
    weights_sha256: if given, the file must record these weights; otherwise
      a ValueError says the statistics belong to another network.
  """
  path = pathlib.Path(path).expanduser()
  with np.load(path, allow_pickle=False) as f:
    mean, cov = f['mu'].astype(np.float64), f['sigma'].astype(np.float64)
    recorded = str(f['weights_sha256']) if 'weights_sha256' in f else ''
  if weights_sha256 is not None and recorded != weights_sha256:
    raise ValueError(
        f'{path}: statistics were computed with weights of SHA-256'
        f' {recorded or "(not recorded)"}, not {weights_sha256}. Delete the'
        ' file to recompute them.')
  return mean, cov


def statistics_path(cache_dir: PathLike, name: str,
                    weights_sha256: str) -> pathlib.Path:
  """`cache_dir/fid_stats/<name>-<first 16 hex of weights_sha256>.npz`."""
  return (pathlib.Path(cache_dir).expanduser() / 'fid_stats'
          / f'{name}-{weights_sha256[:16]}.npz')


def cached_statistics(name: str, weights_sha256: str,
                      compute: Callable[[], tuple[np.ndarray, np.ndarray]],
                      cache_dir: PathLike | None = None,
                      num_images: int = -1) -> tuple[np.ndarray, np.ndarray]:
  """Statistics from the cache file for (name, weights), else computed, saved.

  Args:
    name: what the statistics are of, e.g. 'mnist_test'.
    weights_sha256: digest of the feature network's weights; part of the file
      name, so other weights never reuse these statistics.
    compute: () -> (mean, cov), called only on a cache miss.
    cache_dir: the cache root (default $VAE_JAX_CACHE_DIR, else
      ~/.cache/vae_jax).
    num_images: recorded in the file.
  """
  from vae_jax import data  # numpy-only, but keep this module's imports light
  path = statistics_path(data.cache_root(cache_dir), name, weights_sha256)
  if path.is_file():
    try:
      return load_statistics(path, weights_sha256)
    except (OSError, ValueError, KeyError) as err:
      _log.warning('Recomputing FID statistics: cannot use %s: %s', path, err)
  _log.info('Computing the FID statistics of %s (%s images; once, then read '
            'from %s) ...', name, num_images if num_images >= 0 else 'all',
            path)
  mean, cov = compute()
  save_statistics(path, mean, cov, weights_sha256, num_images, name)
  _log.info('Saved FID statistics of %s to %s', name, path)
  return mean, cov
