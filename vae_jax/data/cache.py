"""The download cache: where downloads land, and a download that only ever
appears under its real name after it has been verified (data sets and the
Inception weights alike)."""

from __future__ import annotations

import http.client
import logging
import os
import pathlib
import tempfile
import urllib.request
from typing import Any, Callable, Sequence

from vae_jax.data.dataset import DataError, PathLike

_log = logging.getLogger(__name__)


CACHE_DIR_ENV = 'VAE_JAX_CACHE_DIR'


DEFAULT_CACHE_DIR = pathlib.Path('~/.cache/vae_jax')


_DOWNLOAD_CHUNK_BYTES = 1 << 20


def cache_root(cache_dir: PathLike | None) -> pathlib.Path:
  """The download cache: cache_dir, else $VAE_JAX_CACHE_DIR, else
  ~/.cache/vae_jax (datasets, Inception weights, FID statistics)."""
  if cache_dir is None:
    cache_dir = os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
  return pathlib.Path(cache_dir).expanduser()


def _fetch(url: str, destination: pathlib.Path, timeout: float) -> None:
  """Streams `url` into `destination`; raises if fewer bytes than announced."""
  with urllib.request.urlopen(url, timeout=timeout) as response:
    announced = response.headers.get('Content-Length')
    received = 0
    with open(destination, 'wb') as out:
      while chunk := response.read(_DOWNLOAD_CHUNK_BYTES):
        out.write(chunk)
        received += len(chunk)
  if announced is not None and received != int(announced):
    raise DataError(f'received {received} of {announced} bytes (truncated)')


def fetch_first_verified(urls: Sequence[str], final_path: pathlib.Path,
                         verify: Callable[[pathlib.Path], Any],
                         timeout: float) -> tuple[pathlib.Path | None, list[str]]:
  """Downloads from each URL in turn until a copy passes `verify`.

  Returns (final_path, []) on success, else (None, one line per failure).
  A failed or interrupted download never shows up under the real name.
  """
  failures = []
  for url in urls:
    # A temp file in the same directory, so the final rename is atomic.
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{final_path.name}.',
                                    suffix='.part', dir=final_path.parent)
    os.close(fd)
    tmp_path = pathlib.Path(tmp_name)
    try:
      _log.info('Downloading %s', url)
      _fetch(url, tmp_path, timeout)
      verify(tmp_path)
      os.replace(tmp_path, final_path)
      _log.info('Verified and saved %s', final_path)
      return final_path, []
    except (OSError, http.client.HTTPException, ValueError, DataError) as err:
      # OSError covers URLError, HTTPError and timeouts; HTTPException a
      # connection cut mid-body; ValueError a malformed URL; DataError a
      # download that arrived but failed verification.
      reason = str(err).replace(str(tmp_path), 'downloaded file')
      failures.append(f'  {url}: {type(err).__name__}: {reason}')
      _log.warning('Download failed: %s: %s', url, reason)
    finally:
      tmp_path.unlink(missing_ok=True)
  return None, failures
