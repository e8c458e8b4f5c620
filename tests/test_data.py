"""Tests for vae_jax.data: loading, verification, lookup, download, tfds.

Real-data tests use the project's shared reference copies (../shared/data from
the repository root, or $VAE_JAX_TEST_DATA) and skip when those are absent.
Downloads are tested against an HTTP server on 127.0.0.1; nothing here touches
the outside network (an autouse fixture points the default mirrors at a closed
local port).
"""

import bz2
import dataclasses
import gzip
import hashlib
import http.server
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vae_jax import data
from vae_jax.data import registry
from vae_jax.data.catalog import mnist, usps

from conftest import MNIST_GZ_NAMES, USPS_BZ2_NAMES


# ------------------------------------------------------------------ helpers
def _closed_local_url() -> str:
  """A URL on 127.0.0.1 whose port nothing listens on (connection refused)."""
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
  return f'http://127.0.0.1:{port}/nothing-here/'


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
  """Bytes and mtime of every file, to prove a loader left them untouched."""
  return {
      p.name: (p.read_bytes(), p.stat().st_mtime_ns)
      for p in sorted(directory.iterdir())
  }


def _link_files(source: Path, destination: Path, names) -> Path:
  destination.mkdir(parents=True, exist_ok=True)
  for name in names:
    (destination / name).symlink_to(source / name)
  return destination


def _write_idx(path: Path, array: np.ndarray, type_code: int) -> None:
  header = bytes([0, 0, type_code, array.ndim])
  header += np.asarray(array.shape, '>u4').tobytes()
  path.write_bytes(header + array.tobytes())


def _flip_byte(blob: bytes, offset: int) -> bytes:
  return blob[:offset] + bytes([blob[offset] ^ 0xFF]) + blob[offset + 1:]


def _libsvm_line(label: int, values) -> str:
  return f'{label} ' + ' '.join(
      f'{i}:{v:.6f}' for i, v in enumerate(values, start=1)) + '\n'


# ----------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
  """No user env vars, a throwaway default cache, and no reachable mirrors."""
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / 'default_cache'))
  closed = (_closed_local_url(),)
  for name in data.dataset_names():
    monkeypatch.setitem(registry.DATASETS, name, dataclasses.replace(
        data.dataset_spec(name), mirrors=closed))


@pytest.fixture(scope='module')
def mnist_raw(mnist_dir) -> dict[str, bytes]:
  """Decompressed bytes of each MNIST file, keyed by stem."""
  return {stem: gzip.decompress((mnist_dir / f'{stem}.gz').read_bytes())
          for stem in mnist.DECOMPRESSED_MD5}


class _Server:
  """Serves `routes` (URL path -> bytes) on 127.0.0.1 and logs each request."""

  def __init__(self, routes: dict[str, bytes], cut_paths: set[str]):
    self.routes, self.cut_paths, self.requests = routes, cut_paths, []
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        server.requests.append(self.path)
        body = server.routes.get(self.path)
        if body is None:
          self.send_error(404)
          return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.path in server.cut_paths:
          # Announce the full length, send half, hang up: a dropped connection.
          self.wfile.write(body[:len(body) // 2])
          self.close_connection = True
        else:
          self.wfile.write(body)

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
    self.thread.start()

  def mirror(self, name: str) -> str:
    return f'http://127.0.0.1:{self.httpd.server_address[1]}/{name}/'

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


@pytest.fixture(scope='module')
def file_server(mnist_dir, usps_dir, mnist_raw):
  """Mirrors: good/, truncated/ (short but complete responses), cut/ (dropped
  connections), corrupt/ (well-formed archives with one content byte flipped);
  any other path is a 404."""
  routes, cut_paths = {}, set()
  for name in MNIST_GZ_NAMES:
    good = (mnist_dir / name).read_bytes()
    raw = mnist_raw[name[:-len('.gz')]]
    routes[f'/good/{name}'] = good
    routes[f'/truncated/{name}'] = good[:len(good) // 2]
    routes[f'/cut/{name}'] = good
    cut_paths.add(f'/cut/{name}')
    routes[f'/corrupt/{name}'] = gzip.compress(
        _flip_byte(raw, len(raw) - 1), compresslevel=1)
  for name in USPS_BZ2_NAMES:
    good = (usps_dir / name).read_bytes()
    routes[f'/good/{name}'] = good
    routes[f'/corrupt/{name}'] = _flip_byte(good, len(good) // 2)
  server = _Server(routes, cut_paths)
  yield server
  server.close()


@pytest.fixture
def server(file_server):
  file_server.requests.clear()
  return file_server


# ------------------------------------------------------------- real MNIST
def test_real_mnist_shapes_dtypes_and_labels(real_mnist, mnist_dir):
  ds = real_mnist
  assert ds.name == 'mnist'
  assert ds.source == str(mnist_dir)
  assert ds.image_shape == (28, 28)
  assert ds.train_images.shape == (60000, 28, 28)
  assert ds.test_images.shape == (10000, 28, 28)
  assert ds.train_images.dtype == ds.test_images.dtype == np.uint8
  assert ds.train_labels.dtype == ds.test_labels.dtype == np.int32
  train_counts = np.bincount(ds.train_labels, minlength=10)
  test_counts = np.bincount(ds.test_labels, minlength=10)
  assert len(train_counts) == len(test_counts) == 10  # no label above 9
  assert train_counts.sum() == 60000 and test_counts.sum() == 10000
  assert train_counts.min() > 5000  # every digit well represented
  assert ds.train_labels[0] == 5  # the famous first MNIST digit
  assert ds.train_images.min() == 0 and ds.train_images.max() == 255


def test_hardcoded_mnist_md5_match_md5sums_file(mnist_dir):
  listed = {}
  for line in (mnist_dir / 'MD5SUMS.raw').read_text().splitlines():
    digest, name = line.split()
    listed[name] = digest
  assert mnist.DECOMPRESSED_MD5 == listed


def test_hardcoded_usps_sha256_match_sha256sums_file(usps_dir):
  listed = {}
  for line in (usps_dir / 'SHA256SUMS').read_text().splitlines():
    digest, name = line.split()
    listed[Path(name).name] = digest
  assert usps.ARCHIVE_SHA256 == listed


def test_raw_idx_files_load_the_same_as_gz(tmp_path, mnist_raw, real_mnist):
  for stem, raw in mnist_raw.items():
    (tmp_path / stem).write_bytes(raw)
  ds = data.load_from_dir('mnist', tmp_path)
  assert ds.source == str(tmp_path)
  for field in ('train_images', 'train_labels', 'test_images', 'test_labels'):
    np.testing.assert_array_equal(getattr(ds, field), getattr(real_mnist, field))


def test_mnist_found_in_name_subdirectory(tmp_path, mnist_dir):
  _link_files(mnist_dir, tmp_path / 'mnist', MNIST_GZ_NAMES)
  ds = data.load_from_dir('mnist', tmp_path)
  assert ds.source == str(tmp_path / 'mnist')
  assert ds.test_images.shape == (10000, 28, 28)


# ---------------------------------------------------- corrupted / missing
def test_flipped_byte_raises_checksum_error_and_leaves_files(
    tmp_path, mnist_dir, mnist_raw):
  stem = 't10k-labels-idx1-ubyte'
  _link_files(mnist_dir, tmp_path, [n for n in MNIST_GZ_NAMES
                                    if not n.startswith(stem)])
  corrupted = _flip_byte(mnist_raw[stem], 100)  # a label, past the header
  (tmp_path / stem).write_bytes(corrupted)
  before = _snapshot(tmp_path)

  with pytest.raises(data.ChecksumError) as info:
    data.load_from_dir('mnist', tmp_path)

  message = str(info.value)
  assert str(tmp_path / stem) in message
  assert mnist.DECOMPRESSED_MD5[stem] in message
  assert hashlib.md5(corrupted).hexdigest() in message
  assert _snapshot(tmp_path) == before
  # Without verification the same file loads, showing the check is what failed.
  unverified = data.load_from_dir('mnist', tmp_path, verify=False)
  assert unverified.test_labels[100 - 8] == mnist_raw[stem][100] ^ 0xFF


def test_truncated_gz_raises_data_error_naming_file(tmp_path, mnist_dir):
  name = 't10k-labels-idx1-ubyte.gz'
  _link_files(mnist_dir, tmp_path, [n for n in MNIST_GZ_NAMES if n != name])
  whole = (mnist_dir / name).read_bytes()
  (tmp_path / name).write_bytes(whole[:len(whole) // 2])
  before = _snapshot(tmp_path)

  with pytest.raises(data.DataError) as info:
    data.load_from_dir('mnist', tmp_path)

  message = str(info.value)
  assert str(tmp_path / name) in message
  assert 'truncated' in message and 'download it again' in message
  assert _snapshot(tmp_path) == before


def test_missing_file_raises_not_found_listing_file_and_places(
    tmp_path, mnist_dir):
  missing = 'train-labels-idx1-ubyte'
  _link_files(mnist_dir, tmp_path,
              [n for n in MNIST_GZ_NAMES if not n.startswith(missing)])
  before = _snapshot(tmp_path)

  with pytest.raises(data.DataNotFoundError) as info:
    data.load_from_dir('mnist', tmp_path)

  assert isinstance(info.value, FileNotFoundError)
  message = str(info.value)
  assert missing in message
  assert 'train-images-idx3-ubyte or' not in message  # only what is missing
  assert str(tmp_path) in message and str(tmp_path / 'mnist') in message
  assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- read_idx
@pytest.mark.parametrize('dtype, type_code', [
    ('>u1', 0x08), ('>i2', 0x0B), ('>i4', 0x0C), ('>f4', 0x0D), ('>f8', 0x0E)])
def test_read_idx_round_trips_every_type(tmp_path, dtype, type_code):
  array = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(dtype)
  path = tmp_path / 'x-idx3'
  _write_idx(path, array, type_code)
  loaded = data.read_idx(path)
  assert loaded.shape == (2, 3, 4)
  assert loaded.dtype == np.dtype(dtype).newbyteorder('=')
  assert loaded.flags.writeable
  np.testing.assert_array_equal(loaded, array)
  gz_path = tmp_path / 'x-idx3.gz'
  gz_path.write_bytes(gzip.compress(path.read_bytes()))
  np.testing.assert_array_equal(data.read_idx(gz_path), array)


@pytest.mark.parametrize('mangle, expected_words', [
    (lambda b: b + b'\0', 'header says'),
    (lambda b: b[:-1], 'header says'),
    (lambda b: b[:6], 'truncated inside the IDX header'),
    (lambda b: b'\x00\x00\x07' + b[3:], 'not an IDX file'),
    (lambda b: b'\x1f\x8b' + b[2:], 'not an IDX file'),
])
def test_read_idx_rejects_malformed_files(tmp_path, mangle, expected_words):
  path = tmp_path / 'bad-idx1-ubyte'
  _write_idx(path, np.arange(10, dtype=np.uint8), 0x08)
  path.write_bytes(mangle(path.read_bytes()))
  with pytest.raises(data.DataError, match=expected_words) as info:
    data.read_idx(path)
  assert str(path) in str(info.value)


def test_read_idx_missing_file_is_not_found(tmp_path):
  with pytest.raises(data.DataNotFoundError, match='nope-idx1-ubyte'):
    data.read_idx(tmp_path / 'nope-idx1-ubyte')


# --------------------------------------------------------------- download
def test_download_falls_through_bad_mirrors_to_good_one(
    server, tmp_path, mnist_dir):
  mirrors = [server.mirror(m) for m in ('truncated', 'cut', 'corrupt', 'good')]
  cache = tmp_path / 'cache'

  directory = data.download('mnist', cache, mirrors=mirrors)

  assert directory == cache / 'mnist'
  assert sorted(p.name for p in directory.iterdir()) == sorted(MNIST_GZ_NAMES)
  for name in MNIST_GZ_NAMES:
    assert (directory / name).read_bytes() == (mnist_dir / name).read_bytes()
  # Every mirror was tried for every file, in the given order.
  assert server.requests == [
      f'/{m}/{name}' for name in MNIST_GZ_NAMES
      for m in ('truncated', 'cut', 'corrupt', 'good')]


def test_download_with_only_bad_mirrors_raises_and_leaves_nothing(
    server, tmp_path):
  mirrors = [server.mirror(m) for m in ('truncated', 'cut', 'corrupt', 'absent')]
  cache = tmp_path / 'cache'

  with pytest.raises(data.DataError) as info:
    data.download('mnist', cache, mirrors=mirrors)

  message = str(info.value)
  for mirror in mirrors:
    assert mirror + MNIST_GZ_NAMES[0] in message
  assert 'ChecksumError' in message and '404' in message
  assert 'offline' in message
  assert list((cache / 'mnist').iterdir()) == []  # no partial or temp file


def test_download_never_replaces_existing_file_with_bad_one(server, tmp_path):
  directory = tmp_path / 'cache' / 'mnist'
  directory.mkdir(parents=True)
  stale = directory / MNIST_GZ_NAMES[0]
  stale.write_bytes(b'an old, broken download')
  before = _snapshot(directory)

  with pytest.raises(data.DataError):
    data.download('mnist', tmp_path / 'cache',
                  mirrors=[server.mirror('corrupt')])

  assert _snapshot(directory) == before


def test_download_skips_valid_cached_files_and_replaces_invalid_ones(
    server, tmp_path, mnist_dir):
  directory = tmp_path / 'cache' / 'mnist'
  directory.mkdir(parents=True)
  for name in MNIST_GZ_NAMES[:3]:
    shutil.copy(mnist_dir / name, directory / name)
  broken = directory / MNIST_GZ_NAMES[3]
  broken.write_bytes(b'garbage')

  data.download('mnist', tmp_path / 'cache', mirrors=[server.mirror('good')])
  assert server.requests == [f'/good/{MNIST_GZ_NAMES[3]}']
  assert broken.read_bytes() == (mnist_dir / MNIST_GZ_NAMES[3]).read_bytes()

  server.requests.clear()
  data.download('mnist', tmp_path / 'cache', mirrors=[server.mirror('good')])
  assert server.requests == []  # everything cached and valid: no fetch at all


def test_download_usps_from_local_mirror(server, tmp_path, usps_dir, real_usps):
  mirrors = [server.mirror('corrupt'), server.mirror('good')]
  directory = data.download('usps', tmp_path / 'cache', mirrors=mirrors)

  assert sorted(p.name for p in directory.iterdir()) == sorted(USPS_BZ2_NAMES)
  for name in USPS_BZ2_NAMES:
    assert (directory / name).read_bytes() == (usps_dir / name).read_bytes()
  assert server.requests == [f'/{m}/{name}' for name in USPS_BZ2_NAMES
                             for m in ('corrupt', 'good')]


def test_load_dataset_downloads_into_cache_when_missing(server, tmp_path,
                                                        real_mnist):
  cache = tmp_path / 'cache'
  ds = data.load_dataset('mnist', cache_dir=cache,
                         mirrors=[server.mirror('good')])
  assert ds.source == str(cache / 'mnist')
  np.testing.assert_array_equal(ds.test_labels, real_mnist.test_labels)
  assert len(server.requests) == 4

  server.requests.clear()
  data.load_dataset('mnist', cache_dir=cache, mirrors=[server.mirror('good')])
  assert server.requests == []  # second call finds the cache


def test_unknown_dataset_name_is_rejected(tmp_path):
  with pytest.raises(ValueError, match='cifar'):
    data.download('cifar', tmp_path)
  with pytest.raises(ValueError, match='cifar'):
    data.load_dataset('cifar')


# ------------------------------------------------------------------ lookup
@pytest.fixture
def three_copies(tmp_path, mnist_dir):
  """An explicit dir, an env-var dir and a cache (files under cache/mnist)."""
  explicit = _link_files(mnist_dir, tmp_path / 'explicit', MNIST_GZ_NAMES)
  from_env = _link_files(mnist_dir, tmp_path / 'from_env', MNIST_GZ_NAMES)
  cache = tmp_path / 'cache'
  _link_files(mnist_dir, cache / 'mnist', MNIST_GZ_NAMES)
  return explicit, from_env, cache


def test_lookup_order_explicit_then_env_then_cache(three_copies, monkeypatch,
                                                   tmp_path):
  explicit, from_env, cache = three_copies
  monkeypatch.setenv(data.DATA_DIR_ENV, str(from_env))
  monkeypatch.setenv(data.CACHE_DIR_ENV, str(cache))

  assert data.find_data_dir('mnist', data_dir=explicit) == explicit
  assert data.find_data_dir('mnist') == from_env

  monkeypatch.delenv(data.DATA_DIR_ENV)
  assert data.find_data_dir('mnist') == cache / 'mnist'

  # An env var pointing at a directory without the files falls through.
  empty = tmp_path / 'empty'
  empty.mkdir()
  monkeypatch.setenv(data.DATA_DIR_ENV, str(empty))
  assert data.find_data_dir('mnist') == cache / 'mnist'

  # The cache_dir argument beats $VAE_JAX_CACHE_DIR.
  assert data.find_data_dir('mnist', cache_dir=empty) is None


def test_explicit_dir_without_files_is_an_error_not_a_fallback(
    three_copies, monkeypatch, tmp_path):
  _, from_env, cache = three_copies
  monkeypatch.setenv(data.DATA_DIR_ENV, str(from_env))
  monkeypatch.setenv(data.CACHE_DIR_ENV, str(cache))
  empty = tmp_path / 'empty'
  empty.mkdir()

  with pytest.raises(data.DataNotFoundError, match='t10k-labels-idx1-ubyte'):
    data.find_data_dir('mnist', data_dir=empty)
  with pytest.raises(data.DataNotFoundError, match=str(empty)):
    data.load_dataset('mnist', data_dir=empty)


def test_load_dataset_uses_env_dir(three_copies, monkeypatch):
  _, from_env, cache = three_copies
  monkeypatch.setenv(data.DATA_DIR_ENV, str(from_env))
  ds = data.load_dataset('mnist', cache_dir=cache, download_if_missing=False)
  assert ds.source == str(from_env)
  assert ds.train_images.shape == (60000, 28, 28)


def test_offline_with_nothing_found_and_download_disabled(tmp_path):
  with pytest.raises(data.DataNotFoundError) as info:
    data.load_dataset('mnist', cache_dir=tmp_path / 'cache',
                      download_if_missing=False)
  message = str(info.value)
  assert data.DATA_DIR_ENV in message and data.CACHE_DIR_ENV in message
  assert '--data_dir' in message  # the launchers' flag
  assert 'train-images-idx3-ubyte.gz' in message
  assert str(tmp_path / 'cache' / 'mnist') in message
  assert 'Downloading is disabled' in message
  assert not (tmp_path / 'cache').exists()  # nothing created when not allowed


def test_offline_download_failure_is_reported(tmp_path):
  # The autouse fixture made the default mirrors a closed local port.
  with pytest.raises(data.DataNotFoundError) as info:
    data.load_dataset('usps', cache_dir=tmp_path / 'cache')
  message = str(info.value)
  assert 'download was attempted and failed' in message
  assert '\n' not in message  # one paragraph; the mirrors' errors are its cause
  assert (data.dataset_spec('usps').mirrors[0] + 'usps.bz2'
          in str(info.value.__cause__))
  assert data.DATA_DIR_ENV in message
  assert list((tmp_path / 'cache' / 'usps').iterdir()) == []


# -------------------------------------------------------------------- USPS
def test_real_usps(real_usps, usps_dir):
  ds = real_usps
  assert ds.name == 'usps' and ds.source == str(usps_dir)
  assert ds.train_images.shape == (7291, 16, 16)
  assert ds.test_images.shape == (2007, 16, 16)
  assert ds.image_shape == (16, 16)
  assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int32
  for labels in (ds.train_labels, ds.test_labels):
    assert set(np.unique(labels)) == set(range(10))
  for images in (ds.train_images, ds.test_images):
    assert images.min() == 0 and images.max() == 255
  # First training line: '7 1:-1 ... 8:-0.631 9:0.862 ...' -> digit 6.
  assert ds.train_labels[0] == 6
  assert ds.train_images[0, 0, 7] == round((-0.631 + 1) / 2 * 255)  # 47
  assert ds.train_images[0, 0, 8] == round((0.862 + 1) / 2 * 255)  # 237


def test_usps_decompressed_files_load_the_same(tmp_path, usps_dir, real_usps):
  for name in USPS_BZ2_NAMES:
    raw = bz2.decompress((usps_dir / name).read_bytes())
    (tmp_path / name[:-len('.bz2')]).write_bytes(raw)
  ds = data.load_from_dir('usps', tmp_path)
  np.testing.assert_array_equal(ds.train_images, real_usps.train_images)
  np.testing.assert_array_equal(ds.test_labels, real_usps.test_labels)


def test_usps_flipped_byte_raises_checksum_error(tmp_path, usps_dir):
  (tmp_path / 'usps.bz2').symlink_to(usps_dir / 'usps.bz2')
  good = (usps_dir / 'usps.t.bz2').read_bytes()
  (tmp_path / 'usps.t.bz2').write_bytes(_flip_byte(good, 1000))
  before = _snapshot(tmp_path)
  with pytest.raises(data.ChecksumError) as info:
    data.load_from_dir('usps', tmp_path)
  assert str(tmp_path / 'usps.t.bz2') in str(info.value)
  assert usps.ARCHIVE_SHA256['usps.t.bz2'] in str(info.value)
  assert _snapshot(tmp_path) == before


def test_usps_decompressed_file_with_a_changed_label_is_rejected(tmp_path,
                                                                 usps_dir):
  (tmp_path / 'usps.bz2').symlink_to(usps_dir / 'usps.bz2')
  text = bz2.decompress((usps_dir / 'usps.t.bz2').read_bytes())
  first, rest = text.split(b' ', 1)
  changed = (b'1' if first != b'1' else b'2') + b' ' + rest
  (tmp_path / 'usps.t').write_bytes(changed)
  with pytest.raises(data.ChecksumError) as info:
    data.load_from_dir('usps', tmp_path)
  assert str(tmp_path / 'usps.t') in str(info.value)
  assert usps.TEXT_SHA256['usps.t'] in str(info.value)


def test_usps_decompressed_file_missing_a_line_is_rejected(tmp_path, usps_dir):
  (tmp_path / 'usps.bz2').symlink_to(usps_dir / 'usps.bz2')
  lines = bz2.decompress((usps_dir / 'usps.t.bz2').read_bytes()).splitlines(True)
  (tmp_path / 'usps.t').write_bytes(b''.join(lines[:-1]))
  with pytest.raises(data.DataError, match='2006 examples.*expected 2007'):
    data.load_from_dir('usps', tmp_path)


def test_parse_usps_maps_values_and_labels():
  values = [-1.0, 1.0, 0.0, 0.5] + [-1.0] * 252
  text = (_libsvm_line(1, values) + _libsvm_line(10, [1.0] * 256)).encode()
  images, labels = data.parse_usps_libsvm(text)
  assert images.shape == (2, 16, 16) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, np.array([0, 9], np.int32))
  # round((v + 1) / 2 * 255): 0 -> 127.5 rounds half to even (128).
  np.testing.assert_array_equal(images[0, 0, :4], [0, 255, 128, 191])
  assert (images[1] == 255).all()


def test_parse_usps_rejects_wrong_feature_count_on_every_line():
  text = (_libsvm_line(1, [0.0] * 255) * 3).encode()
  with pytest.raises(data.DataError, match='255 features per line'):
    data.parse_usps_libsvm(text)


@pytest.mark.parametrize('line, expected_words', [
    (_libsvm_line(3, [0.0] * 255), 'line 2: not dense LIBSVM'),
    ('3 1:0.1 2:x' + _libsvm_line(3, [0.0] * 254)[1:], 'line 2: not dense'),
    (_libsvm_line(11, [0.0] * 256), 'labels outside'),
    (_libsvm_line(3, [0.0] * 255 + [1.5]), r'outside \[-1, 1\]'),
    (_libsvm_line(3, [0.0] * 256).replace(' 2:', ' 3:'), 'line 2: feature indices'),
])
def test_parse_usps_rejects_malformed_text(line, expected_words):
  text = (_libsvm_line(1, [0.0] * 256) + line).encode()
  with pytest.raises(data.DataError, match=expected_words):
    data.parse_usps_libsvm(text, origin='some/usps')


# -------------------------------------------------------------------- tfds
def test_tfds_source_gives_dataset_format():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=6):
    ds = data.load_dataset('mnist', source='tfds')
  assert ds.name == 'mnist' and ds.source == 'tfds:mnist'
  assert ds.train_images.shape == ds.test_images.shape == (6, 28, 28)
  assert ds.train_images.dtype == np.uint8
  assert ds.train_labels.dtype == ds.test_labels.dtype == np.int32
  assert ds.train_labels.shape == (6,)
  assert ((ds.train_labels >= 0) & (ds.train_labels <= 9)).all()


def test_unknown_source_is_rejected():
  with pytest.raises(ValueError, match='hdf5'):
    data.load_dataset('mnist', source='hdf5')


# ---------------------------------------------------------------- binarize
def test_binarize_static_values_determinism_and_mean():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(500, 28, 28), dtype=np.uint8)
  original = images.copy()

  binary = data.binarize_static(images, seed=1)

  assert binary.shape == images.shape and binary.dtype == np.uint8
  assert set(np.unique(binary)) == {0, 255}
  np.testing.assert_array_equal(images, original)  # input untouched
  np.testing.assert_array_equal(binary, data.binarize_static(images, seed=1))
  assert not np.array_equal(binary, data.binarize_static(images, seed=2))
  assert (binary[images == 0] == 0).all()
  assert (binary[images == 255] == 255).all()
  # Mean of n Bernoulli(p) draws: standard error <= 0.5 / sqrt(n); allow 5.
  n = images.size
  expected = images.mean() / 255
  assert abs((binary == 255).mean() - expected) < 5 * 0.5 / np.sqrt(n)


def test_binarize_static_per_pixel_probability():
  grey = np.full((200_000,), 64, np.uint8).reshape(-1, 20, 20)
  on_fraction = (data.binarize_static(grey, seed=3) == 255).mean()
  p = 64 / 255
  assert abs(on_fraction - p) < 5 * np.sqrt(p * (1 - p) / grey.size)


def test_binarize_static_rejects_non_uint8():
  with pytest.raises(TypeError, match='uint8'):
    data.binarize_static(np.zeros((2, 4, 4), np.float32), seed=0)


# ------------------------------------------------------------- Dataset/misc
def test_dataset_validates_dtypes_and_shapes():
  images = np.zeros((3, 4, 4), np.uint8)
  labels = np.zeros((3,), np.int32)
  ds = data.Dataset('mnist', images, labels, images[:2], labels[:2], 'test')
  assert ds.image_shape == (4, 4)
  with pytest.raises(ValueError, match='train_images'):
    data.Dataset('mnist', images.astype(np.float32), labels, images, labels, 't')
  with pytest.raises(ValueError, match='test_labels'):
    data.Dataset('mnist', images, labels, images, labels[:2], 't')


def test_data_package_imports_only_numpy():
  code = (
      'import sys\n'
      'import vae_jax.data\n'
      'heavy = {"jax", "tensorflow", "tensorflow_datasets"} & set(sys.modules)\n'
      'print(sorted(heavy))\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=True, timeout=60)
  assert result.stdout.strip() == '[]'
