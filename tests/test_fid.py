"""FID statistics and distance against numpy, scipy and Gaussian closed forms."""

import numpy as np
import pytest

from vae_jax.evaluation import fid

scipy_linalg = pytest.importorskip('scipy.linalg')


def _random_cov(dim, seed, rank=None):
  rng = np.random.default_rng(seed)
  factor = rng.normal(size=(dim, rank or dim)) / np.sqrt(dim)
  return factor @ factor.T + (0 if rank else 0.1 * np.eye(dim))


def _scipy_fid(mean1, cov1, mean2, cov2, eps=1e-6):
  """pytorch_fid.fid_score.calculate_frechet_distance, verbatim in numbers."""
  diff = mean1 - mean2
  covmean = scipy_linalg.sqrtm(cov1.dot(cov2))
  if not np.isfinite(covmean).all():
    offset = np.eye(cov1.shape[0]) * eps
    covmean = scipy_linalg.sqrtm((cov1 + offset).dot(cov2 + offset))
  covmean = covmean.real
  return (diff.dot(diff) + np.trace(cov1) + np.trace(cov2)
          - 2 * np.trace(covmean))


def test_gaussian_statistics_is_numpy_mean_and_cov():
  x = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
  mean, cov = fid.gaussian_statistics(x)
  assert mean.dtype == cov.dtype == np.float64
  np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False),
                             rtol=1e-12)


@pytest.mark.parametrize('batch_size', [1, 7, 64, 1000])
def test_accumulate_statistics_equals_numpy(batch_size):
  rng = np.random.default_rng(1)
  # A large common offset: the naive sum-of-squares formula loses digits here.
  images = rng.normal(size=(203, 4, 3))
  projection = rng.normal(size=(12, 9))
  feature_fn = lambda batch: batch.reshape(len(batch), -1) @ projection + 1e3
  features = feature_fn(images)
  mean, cov = fid.accumulate_statistics(feature_fn, images, batch_size)
  np.testing.assert_allclose(mean, features.mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(features, rowvar=False), rtol=1e-8,
                             atol=1e-9)
  np.testing.assert_array_equal(cov, cov.T)


def test_accumulate_statistics_takes_an_iterable_of_batches():
  rng = np.random.default_rng(2)
  batches = [rng.normal(size=(n, 5)) for n in (3, 1, 10)]
  mean, cov = fid.accumulate_statistics(lambda b: b, iter(batches))
  everything = np.concatenate(batches)
  np.testing.assert_allclose(mean, everything.mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(everything, rowvar=False), rtol=1e-10)


def test_accumulate_statistics_logs_progress_with_rate_and_eta(caplog):
  images = np.zeros((25, 3))
  with caplog.at_level('INFO', logger=fid.__name__):
    fid.accumulate_statistics(lambda b: b + np.arange(3) * len(b), images,
                              batch_size=10, progress='Inception FID',
                              progress_seconds=0.0)
  lines = [r.getMessage() for r in caplog.records]
  assert [line.split(' images')[0] for line in lines] == [
      'Inception FID: 10/25', 'Inception FID: 20/25', 'Inception FID: 25/25']
  assert all('img/s  ETA' in line for line in lines), lines
  assert lines[-1].endswith('ETA 0 s')
  caplog.clear()
  # A long interval logs the finished count alone; no label logs nothing.
  with caplog.at_level('INFO', logger=fid.__name__):
    fid.accumulate_statistics(lambda b: b + np.arange(3) * len(b), images,
                              batch_size=10, progress='FID',
                              progress_seconds=3600.0)
    fid.accumulate_statistics(lambda b: b + np.arange(3) * len(b), images, 10)
  assert [r.getMessage().split(' images')[0] for r in caplog.records] == [
      'FID: 25/25']


def test_accumulate_statistics_needs_two_rows():
  with pytest.raises(ValueError, match='at least 2'):
    fid.accumulate_statistics(lambda b: b, np.zeros((1, 3)))


@pytest.mark.parametrize('dim, seed', [(2, 0), (16, 1), (64, 2)])
def test_frechet_distance_matches_scipy_sqrtm(dim, seed):
  rng = np.random.default_rng(seed)
  mean1, mean2 = rng.normal(size=dim), rng.normal(size=dim)
  cov1, cov2 = _random_cov(dim, seed + 10), _random_cov(dim, seed + 20)
  expected = _scipy_fid(mean1, cov1, mean2, cov2)
  got = fid.frechet_distance(mean1, cov1, mean2, cov2)
  assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
  # Symmetric in its two arguments, as a distance must be.
  assert fid.frechet_distance(mean2, cov2, mean1, cov1) == pytest.approx(
      got, rel=1e-9)


def test_frechet_distance_closed_form_for_diagonal_covariances():
  rng = np.random.default_rng(3)
  mean1, mean2 = rng.normal(size=10), rng.normal(size=10)
  s1, s2 = rng.uniform(0.1, 3, size=10), rng.uniform(0.1, 3, size=10)
  s1[:3] = 0.0  # singular: scipy's sqrtm of the product needs care here
  expected = (np.sum((mean1 - mean2) ** 2)
              + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2)))
  got = fid.frechet_distance(mean1, np.diag(s1), mean2, np.diag(s2))
  assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_closed_form_for_commuting_covariances():
  # Same eigenvectors, different eigenvalues: (S1 S2)^(1/2) = Q sqrt(l1 l2) Q^T.
  rng = np.random.default_rng(4)
  q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
  l1, l2 = rng.uniform(0.1, 2, size=8), rng.uniform(0.1, 2, size=8)
  mean1, mean2 = rng.normal(size=8), rng.normal(size=8)
  expected = (np.sum((mean1 - mean2) ** 2)
              + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2)))
  got = fid.frechet_distance(mean1, q @ np.diag(l1) @ q.T, mean2,
                             q @ np.diag(l2) @ q.T)
  assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_rank_deficient_covariances_matches_scipy():
  # Fewer samples than dimensions, as when FID is taken over a small set.
  rng = np.random.default_rng(5)
  a, b = rng.normal(size=(20, 48)), rng.normal(size=(20, 48)) + 0.3
  stats_a, stats_b = fid.gaussian_statistics(a), fid.gaussian_statistics(b)
  expected = _scipy_fid(*stats_a, *stats_b)
  got = fid.fid_from_statistics(stats_a, stats_b)
  assert got == pytest.approx(expected, rel=1e-6)


def test_fid_of_identical_statistics_is_zero():
  rng = np.random.default_rng(6)
  features = rng.normal(size=(500, 32)) * rng.uniform(0.01, 10, size=32)
  mean, cov = fid.gaussian_statistics(features)
  assert abs(fid.frechet_distance(mean, cov, mean, cov)) < 1e-9 * np.trace(cov)


def test_fid_from_images_equals_distance_of_statistics():
  rng = np.random.default_rng(7)
  a, b = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) * 2
  feature_fn = lambda batch: np.tanh(batch)
  expected = fid.frechet_distance(*fid.gaussian_statistics(np.tanh(a)),
                                  *fid.gaussian_statistics(np.tanh(b)))
  assert fid.fid_from_images(feature_fn, a, b, batch_size=16) == pytest.approx(
      expected, rel=1e-10)


def test_frechet_distance_rejects_non_finite_and_mismatched_inputs():
  cov = np.eye(3)
  with pytest.raises(ValueError, match='non-finite'):
    fid.frechet_distance(np.array([0, np.nan, 0]), cov, np.zeros(3), cov)
  with pytest.raises(ValueError, match='shape'):
    fid.frechet_distance(np.zeros(3), cov, np.zeros(4), np.eye(4))


def test_save_and_load_statistics_round_trip(tmp_path):
  rng = np.random.default_rng(8)
  mean, cov = fid.gaussian_statistics(rng.normal(size=(10, 4)))
  path = fid.save_statistics(tmp_path / 'sub' / 's.npz', mean, cov,
                             weights_sha256='ab' * 32, num_images=10)
  got_mean, got_cov = fid.load_statistics(path, weights_sha256='ab' * 32)
  np.testing.assert_array_equal(got_mean, mean)
  np.testing.assert_array_equal(got_cov, cov)
  with pytest.raises(ValueError, match='not ' + 'cd' * 32):
    fid.load_statistics(path, weights_sha256='cd' * 32)
  assert not list(path.parent.glob('.*.part'))


def test_cached_statistics_computes_once_per_weights(tmp_path):
  calls = []

  def compute():
    calls.append(1)
    return np.zeros(2), np.eye(2)

  sha = '0123456789abcdef' * 4
  for _ in range(2):
    mean, cov = fid.cached_statistics('toy', sha, compute, cache_dir=tmp_path)
  assert len(calls) == 1
  assert fid.statistics_path(tmp_path, 'toy', sha).is_file()
  assert sha[:16] in fid.statistics_path(tmp_path, 'toy', sha).name
  fid.cached_statistics('toy', 'f' * 64, compute, cache_dir=tmp_path)
  assert len(calls) == 2
  np.testing.assert_array_equal(cov, np.eye(2))


def test_reference_statistics_are_computed_once_and_cached(tmp_path,
                                                           monkeypatch):
  from vae_jax import data
  from vae_jax.evaluation import inception_weights
  rng = np.random.default_rng(9)
  images = rng.integers(0, 256, size=(12, 4, 4), dtype=np.uint8)
  dataset = data.Dataset('mnist', images, np.zeros(12, np.int32), images[:7],
                         np.zeros(7, np.int32), 'fake')
  loads = []
  monkeypatch.setattr(data, 'load_dataset',
                      lambda *args, **kwargs: loads.append(1) or dataset)
  # A cheap stand-in for Inception: the statistics' plumbing is under test.
  monkeypatch.setattr(fid, 'inception_fid_features',
                      lambda params: lambda x: np.asarray(x, float).reshape(
                          len(x), -1)[:, :5])
  weights = inception_weights.InceptionWeights({}, '12' * 32, tmp_path)
  for _ in range(2):
    mean, cov = fid.reference_statistics('mnist', 'test', weights,
                                         cache_dir=tmp_path, batch_size=3)
  assert len(loads) == 1
  expected = fid.gaussian_statistics(images[:7].reshape(7, -1)[:, :5])
  np.testing.assert_allclose(mean, expected[0], rtol=1e-12)
  np.testing.assert_allclose(cov, expected[1], rtol=1e-10)
  assert (tmp_path / 'fid_stats' / f'mnist_test-{"12" * 8}.npz').is_file()
