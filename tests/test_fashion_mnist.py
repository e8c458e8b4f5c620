"""Fashion-MNIST: found the way MNIST is found (here among small fixture
files written by the tests, never the real ones unless installed), refused
when a checksum does not match, and refused by the MNIST classifier."""

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from configs import default
from vae_jax import classifier
from vae_jax import data
from vae_jax import validation
from vae_jax.data import formats
from vae_jax.data import registry
from vae_jax.data.catalog import fashion_mnist

NAME = 'fashion_mnist'
DEBIAN_DIR = Path('/usr/share/datasets/fashion-mnist')


def _idx_bytes(array: np.ndarray) -> bytes:
  header = bytes([0, 0, 0x08, array.ndim])
  return header + np.asarray(array.shape, '>u4').tobytes() + array.tobytes()


def _fixture_files(directory: Path, count: int = 5) -> dict[str, bytes]:
  """Fashion-MNIST's four .gz files holding `count` images each; returns the
  decompressed bytes by stem."""
  directory.mkdir(parents=True, exist_ok=True)
  images = (np.arange(count * 28 * 28) % 251).astype(np.uint8)
  labels = (np.arange(count) % 10).astype(np.uint8)
  contents = {}
  for stems in (formats.IDX_TRAIN_STEMS, formats.IDX_TEST_STEMS):
    for stem, array in zip(stems, (images.reshape(count, 28, 28), labels)):
      contents[stem] = _idx_bytes(array)
      (directory / f'{stem}.gz').write_bytes(gzip.compress(contents[stem]))
  return contents


@pytest.fixture(autouse=True)
def _nothing_found_elsewhere(monkeypatch, tmp_path):
  """No data dir from the environment, an empty cache, no system directory
  (the Debian package may be installed here), and no reachable mirror."""
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / 'cache'))
  monkeypatch.setitem(registry.DATASETS, NAME, dataclasses.replace(
      data.dataset_spec(NAME), system_dirs=(), mirrors=()))


def test_found_in_the_data_dir_the_env_dir_the_cache_and_a_system_dir(
    tmp_path, monkeypatch):
  explicit = tmp_path / 'explicit'
  _fixture_files(explicit)
  assert data.find_data_dir(NAME, data_dir=explicit) == explicit
  assert data.find_data_dir(NAME) is None

  system = tmp_path / 'usr_share'
  _fixture_files(system)
  monkeypatch.setitem(registry.DATASETS, NAME, dataclasses.replace(
      data.dataset_spec(NAME), system_dirs=(str(system),)))
  assert data.find_data_dir(NAME) == system

  cached = tmp_path / 'cache' / NAME
  _fixture_files(cached)
  assert data.find_data_dir(NAME) == cached  # the cache comes first

  from_env = tmp_path / 'env' / NAME
  _fixture_files(from_env)
  monkeypatch.setenv(data.DATA_DIR_ENV, str(from_env.parent))
  assert data.find_data_dir(NAME) == from_env


def test_unverified_fixture_files_load_as_fashion_mnist(tmp_path):
  _fixture_files(tmp_path, count=5)
  dataset = data.load_from_dir(NAME, tmp_path, verify=False)
  assert dataset.name == NAME and dataset.image_shape == (28, 28)
  assert dataset.train_images.shape == dataset.test_images.shape == (5, 28, 28)
  np.testing.assert_array_equal(dataset.test_labels, np.arange(5))


def test_checksum_mismatch_is_refused_naming_file_and_digests(tmp_path):
  contents = _fixture_files(tmp_path)
  stem = 'train-images-idx3-ubyte'
  with pytest.raises(data.ChecksumError) as info:
    data.load_dataset(NAME, data_dir=tmp_path)
  message = str(info.value)
  assert str(tmp_path / f'{stem}.gz') in message
  assert fashion_mnist.DECOMPRESSED_SHA256[stem] in message
  assert hashlib.sha256(contents[stem]).hexdigest() in message
  assert fashion_mnist.ZALANDO_ARCHIVE_MD5[f'{stem}.gz'] in message
  assert 'holds 5 examples, expected 60000' in message
  assert 'download it again' in message


def test_not_found_lists_every_place_and_the_debian_package(tmp_path,
                                                            monkeypatch):
  monkeypatch.setitem(registry.DATASETS, NAME, dataclasses.replace(
      data.dataset_spec(NAME), system_dirs=(str(tmp_path / 'debian'),)))
  monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / 'env'))
  with pytest.raises(data.DataNotFoundError) as info:
    data.load_dataset(NAME, download_if_missing=False)
  message = str(info.value)
  for place in ('env', 'cache', 'debian'):
    assert str(tmp_path / place / NAME) in message
  assert 'system package directory' in message
  assert 'train-images-idx3-ubyte.gz' in message


def test_the_registration_points_at_the_debian_package_and_zalando():
  spec = fashion_mnist.SPEC
  assert spec.system_dirs == (str(DEBIAN_DIR),)
  assert spec.mirrors == (
      'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',)
  assert (spec.image_shape, spec.num_classes) == ((28, 28), 10)


def test_the_mnist_classifier_refuses_fashion_mnist():
  config = default.get_config()
  config.data.name = NAME
  validation.validate(config)
  config.loss = 'perceptual+bce'
  with pytest.raises(validation.ConfigError, match='cannot judge fashion_mnist'):
    validation.validate(config)
  with pytest.raises(classifier.ClassifierError,
                     match='The classifier metrics use the classifier trained'
                     ' on mnist.*cannot judge fashion_mnist'):
    classifier.check_judges(NAME, (28, 28), 'The classifier metrics')
  classifier.check_judges('mnist', (28, 28), 'The classifier metrics')
  classifier.check_judges('tiny', (28, 28), 'The classifier metrics')
  with pytest.raises(classifier.ClassifierError, match='usps'):
    classifier.check_judges('usps', (16, 16), 'The classifier metrics')


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(),
                    reason='the Debian package dataset-fashion-mnist is not '
                    'installed (apt-get install dataset-fashion-mnist)')
def test_real_fashion_mnist_from_the_debian_package():
  dataset = data.load_from_dir(NAME, DEBIAN_DIR)
  assert dataset.train_images.shape == (60000, 28, 28)
  assert dataset.test_images.shape == (10000, 28, 28)
  assert (np.bincount(dataset.train_labels) == 6000).all()
  assert (np.bincount(dataset.test_labels) == 1000).all()
  # Zalando's first training images: ankle boot, T-shirt/top, T-shirt/top.
  np.testing.assert_array_equal(dataset.train_labels[:3], [9, 0, 0])
