"""Image data sets for the VAE experiments, registered by name.

Loading is plain numpy (importing this package never pulls in JAX or
TensorFlow); :func:`load_dataset` returns a :class:`Dataset` of uint8 grey
images and int32 labels:

  >>> ds = load_dataset('fashion_mnist')             # doctest: +SKIP
  >>> ds.train_images.shape, ds.train_images.dtype   # doctest: +SKIP
  ((60000, 28, 28), dtype('uint8'))

`python -m vae_jax.data` lists the registered data sets and where their
files are. Where the files come from, in order (see :func:`find_data_dir`):

1. an explicit ``data_dir`` (a launcher's ``--data_dir``, ``config.data.dir``),
2. ``$VAE_JAX_DATA_DIR``,
3. the download cache (``$VAE_JAX_CACHE_DIR``, default ``~/.cache/vae_jax``),
4. where a system package installs them (Debian's dataset-fashion-mnist),
5. a download into that cache from the data set's mirrors, when allowed.

Every file is verified against the data set's checksums before it is used,
and a download only ever lands in the cache after it has been verified.

Modules: `registry` (DatasetSpec: what one data set is; register and look
up by name), `catalog/` (one module per built-in data set: MNIST,
Fashion-MNIST, USPS), `files` (finding, verifying, downloading and loading
any registered data set), `dataset` (the Dataset, errors, static
binarisation), `formats` (IDX and LIBSVM parsing), `cache` (the verified
download cache), `tfds` (tensorflow_datasets sources), and `pipeline`
(config -> device arrays -> model input; it imports JAX, so it is not
imported here).
"""

from vae_jax.data.cache import CACHE_DIR_ENV
from vae_jax.data.cache import DEFAULT_CACHE_DIR
from vae_jax.data.cache import cache_root
from vae_jax.data.cache import fetch_first_verified
from vae_jax.data.dataset import ChecksumError
from vae_jax.data.dataset import DataError
from vae_jax.data.dataset import DataNotFoundError
from vae_jax.data.dataset import Dataset
from vae_jax.data.dataset import PathLike
from vae_jax.data.dataset import as_grey_levels
from vae_jax.data.dataset import as_unit_float
from vae_jax.data.dataset import binarize_static
from vae_jax.data.files import DATA_DIR_ENV
from vae_jax.data.files import download
from vae_jax.data.files import find_data_dir
from vae_jax.data.files import load_dataset
from vae_jax.data.files import load_from_dir
from vae_jax.data.formats import parse_idx
from vae_jax.data.formats import parse_usps_libsvm
from vae_jax.data.formats import read_idx
from vae_jax.data.registry import Checksum
from vae_jax.data.registry import DatasetSpec
from vae_jax.data.registry import dataset_names
from vae_jax.data.registry import dataset_spec
from vae_jax.data.registry import register_dataset
from vae_jax.data import catalog  # registers the built-in data sets
