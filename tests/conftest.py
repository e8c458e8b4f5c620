"""Shared fixtures: the real data in ../shared/data, skipped with a reason when absent."""

import os
from pathlib import Path

import pytest

from vae_jax import data

MNIST_GZ_NAMES = tuple(f'{stem}.gz'
                       for stem in data.dataset_spec('mnist').stems)
USPS_BZ2_NAMES = ('usps.bz2', 'usps.t.bz2')


def _shared_data_root() -> Path:
  override = os.environ.get('VAE_JAX_TEST_DATA')
  if override:
    return Path(override)
  return Path(__file__).resolve().parents[2] / 'shared' / 'data'


def _shared_subdir_or_skip(name: str, required: tuple[str, ...]) -> Path:
  directory = _shared_data_root() / name
  missing = [f for f in required if not (directory / f).is_file()]
  if missing:
    pytest.skip(
        f'real {name} data not available: {directory} lacks {missing}. Set'
        ' VAE_JAX_TEST_DATA to the shared data directory (holding mnist/ and'
        ' usps/) to run this test.'
    )
  return directory


@pytest.fixture(scope='session')
def mnist_dir() -> Path:
  return _shared_subdir_or_skip('mnist', MNIST_GZ_NAMES + ('MD5SUMS.raw',))


@pytest.fixture(scope='session')
def usps_dir() -> Path:
  return _shared_subdir_or_skip('usps', USPS_BZ2_NAMES + ('SHA256SUMS',))


@pytest.fixture(scope='session')
def real_mnist(mnist_dir) -> data.Dataset:
  return data.load_from_dir('mnist', mnist_dir)


@pytest.fixture(scope='session')
def real_usps(usps_dir) -> data.Dataset:
  return data.load_from_dir('usps', usps_dir)




@pytest.fixture
def one_torch_thread():
  """PyTorch on one thread for the test: tiny matmuls gain nothing from
  threads, and on a busy machine the threads' barriers make each step take
  many times longer."""
  torch = pytest.importorskip('torch')
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)
