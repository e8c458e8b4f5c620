"""A data set added from one file: this one.

It registers `toy_bars`, a toy IDX data set (8x8 bars, four classes), and the
tests write its files, find and validate it, and train on it with
`launch.train` and `launch.sweep`. The file is also the config the launchers
are given (get_config below), as a config names the module that registers a
data set defined outside vae_jax/data/catalog/ by importing it.
"""

import dataclasses
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from configs import default
from vae_jax import data
from vae_jax import validation
from vae_jax.data import formats

REPO = Path(__file__).resolve().parents[1]
NAME = 'toy_bars'
NUM_CLASSES = 4
NUM_TRAIN, NUM_TEST = 64, 16

# `sha256sum` of the decompressed files toy_files() writes: like any data
# set's, they are checked before the files are used.
DECOMPRESSED_SHA256 = {
    'train-images-idx3-ubyte':
        '59c517b725cbc6fcbd6002164a1adb0ef4320ea669e2902a7110586ac981d230',
    'train-labels-idx1-ubyte':
        'b4a76f9bb0f742d6348cdc1f828f424b33be950000d100920719653e871ff851',
    't10k-images-idx3-ubyte':
        '03c14471157c9d432f9563c28ec98358286a8f6adad4dedd47d912f158666ef9',
    't10k-labels-idx1-ubyte':
        '20b4dedac5cffa549c31ec0f9cfc16b9e7c7591996b41f1e2023e81881ae6e45',
}

SPEC = data.register_dataset(data.DatasetSpec(
    name=NAME,
    description='toy bars: class c is a bright bar on rows 2c and 2c + 1, '
    '8x8 grey (vae_jax tests)',
    image_shape=(8, 8),
    num_classes=NUM_CLASSES,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    train_stems=formats.IDX_TRAIN_STEMS,
    test_stems=formats.IDX_TEST_STEMS,
    parse_split=formats.parse_idx_split,
    checksums=tuple(data.Checksum(stem, 'sha256', digest)
                    for stem, digest in DECOMPRESSED_SHA256.items()),
))


def get_config(kind: str = 'run'):
  """The default model on toy_bars, 2 tiny epochs; 'sweep': two members."""
  config = default.get_config()
  config.data.name = NAME
  config.data.download = False
  config.data.train_subset = 48
  config.data.test_subset = 8
  config.model.latent_size = 2
  config.model.encoder_widths = (16,)
  config.batch_size = 16
  config.eval_batch_size = 8
  config.num_epochs = 2
  config.plots = False
  if kind == 'sweep':
    config.sweep = [{'beta': 1.0}, {'beta': 0.5}]
  return config


# ------------------------------------------------------------------ files
def _idx_bytes(array: np.ndarray) -> bytes:
  """An uncompressed IDX file of a uint8 array."""
  header = bytes([0, 0, 0x08, array.ndim])
  return header + np.asarray(array.shape, '>u4').tobytes() + array.tobytes()


def toy_arrays(count: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
  """Image i: its class's bar, shifted and dimmed by i (no random numbers,
  so the bytes, and their checksums, never change)."""
  index = np.arange(offset, offset + count)
  labels = (index % NUM_CLASSES).astype(np.uint8)
  images = np.zeros((count, 8, 8), np.uint8)
  for row, (i, label) in enumerate(zip(index, labels)):
    start = i % 3
    images[row, 2 * label:2 * label + 2, start:start + 5] = 255 - 7 * (i % 9)
  return images, labels


def toy_files(directory: Path) -> Path:
  """Writes toy_bars' four gzipped IDX files into `directory`."""
  directory.mkdir(parents=True, exist_ok=True)
  train, test = toy_arrays(NUM_TRAIN, 0), toy_arrays(NUM_TEST, NUM_TRAIN)
  for stems, arrays in ((formats.IDX_TRAIN_STEMS, train),
                        (formats.IDX_TEST_STEMS, test)):
    for stem, array in zip(stems, arrays):
      (directory / f'{stem}.gz').write_bytes(gzip.compress(_idx_bytes(array)))
  return directory


@pytest.fixture
def toy_dir(tmp_path, monkeypatch):
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / 'cache'))
  return toy_files(tmp_path / 'data' / NAME)


# ------------------------------------------------------------------ tests
def test_registered_data_set_is_listed_found_and_loaded(toy_dir, monkeypatch):
  assert NAME in data.dataset_names()
  assert data.find_data_dir(NAME, data_dir=toy_dir.parent) == toy_dir
  assert data.find_data_dir(NAME) is None
  monkeypatch.setenv(data.DATA_DIR_ENV, str(toy_dir.parent))
  assert data.find_data_dir(NAME) == toy_dir

  dataset = data.load_dataset(NAME, download_if_missing=False)

  assert dataset.name == NAME and dataset.source == str(toy_dir)
  assert dataset.train_images.shape == (NUM_TRAIN, 8, 8)
  assert dataset.test_images.shape == (NUM_TEST, 8, 8)
  np.testing.assert_array_equal(dataset.test_labels,
                                toy_arrays(NUM_TEST, NUM_TRAIN)[1])
  # Class c's pixels are on its rows only.
  rows = dataset.train_images.sum(axis=2) > 0
  np.testing.assert_array_equal(np.argmax(rows, axis=1) // 2,
                                dataset.train_labels)


def test_missing_files_name_every_place_searched(tmp_path, monkeypatch):
  monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / 'env'))
  monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / 'cache'))
  with pytest.raises(data.DataNotFoundError) as info:
    data.load_dataset(NAME)
  message = str(info.value)
  assert str(tmp_path / 'env' / NAME) in message
  assert str(tmp_path / 'cache' / NAME) in message
  assert 't10k-labels-idx1-ubyte.gz' in message
  assert 'has no download mirrors' in message


def test_a_changed_file_is_refused(toy_dir):
  path = toy_dir / 'train-labels-idx1-ubyte.gz'
  labels = bytearray(gzip.decompress(path.read_bytes()))
  labels[-1] = (labels[-1] + 1) % NUM_CLASSES  # still a valid label
  path.write_bytes(gzip.compress(bytes(labels)))
  with pytest.raises(data.ChecksumError) as info:
    data.load_dataset(NAME, data_dir=toy_dir)
  message = str(info.value)
  assert str(path) in message
  assert DECOMPRESSED_SHA256['train-labels-idx1-ubyte'] in message


def test_config_validation_reads_the_registry():
  validation.validate(get_config())
  config = get_config()
  config.data.name = 'toy_barz'
  with pytest.raises(validation.ConfigError) as info:
    validation.validate(config)
  for name in ('toy_barz', NAME, 'mnist', 'fashion_mnist', 'usps'):
    assert name in str(info.value)


def test_registering_refuses_a_taken_name_and_a_file_without_checksum():
  with pytest.raises(ValueError, match='already registered'):
    data.register_dataset(dataclasses.replace(SPEC, description='other'))
  with pytest.raises(ValueError, match='no checksum for t10k-labels'):
    dataclasses.replace(SPEC, name='toy_unchecked',
                        checksums=SPEC.checksums[:3])
  with pytest.raises(ValueError, match='Unknown data set .toy_unchecked.'):
    data.dataset_spec('toy_unchecked')


def _launch(launcher: str, config: str, workdir: Path, data_dir: Path,
            cache: Path) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-m', launcher, f'--config={config}',
       f'--workdir={workdir}', f'--data_dir={data_dir}'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, data.CACHE_DIR_ENV: str(cache)})


def test_launch_train_trains_on_the_registered_data_set(toy_dir, tmp_path):
  workdir = tmp_path / 'run'
  result = _launch('launch.train', 'tests/test_extending_dataset.py',
                   workdir, toy_dir.parent, tmp_path / 'cache')
  assert result.returncode == 0, result.stderr[-3000:]
  epochs = [json.loads(line) for line in
            (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [e['epoch'] for e in epochs] == [1, 2]
  results = json.loads((workdir / 'results.json').read_text())
  assert np.isfinite(results['test_loss']) and results['epochs'] == 2
  config = json.loads((workdir / 'config.json').read_text())
  assert config['data']['name'] == NAME


@pytest.mark.slow  # the fast set trains the new entry through train
def test_launch_sweep_trains_on_the_registered_data_set(toy_dir, tmp_path):
  workdir = tmp_path / 'sweep'
  result = _launch('launch.sweep', 'tests/test_extending_dataset.py:sweep',
                   workdir, toy_dir.parent, tmp_path / 'cache')
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((workdir / 'results.json').read_text())
  assert [r['status'] for r in results] == ['finished', 'finished']
  assert all(np.isfinite(r['test_loss']) for r in results)
