"""The data sets vae_jax knows, each registered by name from the one module
that defines it.

A data set is a :class:`DatasetSpec`: its files, their checksums, where else
they may be found or fetched, how a split's files become arrays, and what
the arrays must look like. The modules in `vae_jax/data/catalog/` register
the built-in ones; a module anywhere else registers its own when it is
imported (by the config file that names it). Finding, verifying and
downloading the files is `vae_jax.data.files`, the same for every data set.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Callable, Sequence

import numpy as np

from vae_jax.registry import Registry

# (decompressed bytes of a split's files, in stems order; their file names)
# -> (uint8 images [N, H, W], int32 labels [N]).
SplitParser = Callable[[Sequence[bytes], Sequence[str]],
                       tuple[np.ndarray, np.ndarray]]

SPLITS = ('train', 'test')


@dataclasses.dataclass(frozen=True)
class Checksum:
  """A digest that a good copy of one file has.

  Attributes:
    file: a stem ('train-images-idx3-ubyte') for a digest of the decompressed
      bytes, which the file has under every accepted suffix and compression;
      or a stem and suffix ('usps.bz2') for a digest of exactly those stored
      bytes.
    algorithm: a hashlib name: 'sha256', or 'md5' where only that is
      published.
    digest: lower-case hex.
    origin: whose copy the digest is of, named when a file fails ('' when
      every copy has it).
  """

  file: str
  algorithm: str
  digest: str
  origin: str = ''

  def __post_init__(self):
    if self.algorithm not in hashlib.algorithms_guaranteed:
      raise ValueError(f'Checksum of {self.file}: unknown algorithm '
                       f'{self.algorithm!r}; use sha256.')
    expected_length = 2 * hashlib.new(self.algorithm).digest_size
    if (len(self.digest) != expected_length
        or self.digest.strip('0123456789abcdef')):
      raise ValueError(f'Checksum of {self.file}: {self.digest!r} is not a '
                       f'lower-case hex {self.algorithm} digest.')


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Everything vae_jax knows of one data set.

  Attributes:
    name: the registry key: --config.data.name, and the subdirectory of a
      data directory or the cache its files may be in.
    description: one line: what the images are, and whose they are.
    image_shape: (H, W) of every image.
    num_classes: labels are 0 .. num_classes - 1.
    num_train, num_test: examples in each split.
    train_stems, test_stems: each split's files, without their compression
      suffix, in the order parse_split takes them.
    parse_split: a split's decompressed files -> (uint8 images [N, H, W],
      int32 labels [N]); raises DataError on a malformed file.
    checksums: at least one per stem; a file is used only when one of its
      checksums matches.
    local_suffixes: the suffixes a file is accepted under ('' for
      uncompressed, '.gz', '.bz2'), preferred first.
    remote_suffix: the suffix the mirrors serve the files under.
    mirrors: base URLs tried in order for a download; () for none.
    system_dirs: where a system package installs the files, searched after
      the data directory and the cache.
  """

  name: str
  description: str
  image_shape: tuple[int, int]
  num_classes: int
  num_train: int
  num_test: int
  train_stems: tuple[str, ...]
  test_stems: tuple[str, ...]
  parse_split: SplitParser
  checksums: tuple[Checksum, ...]
  local_suffixes: tuple[str, ...] = ('', '.gz')
  remote_suffix: str = '.gz'
  mirrors: tuple[str, ...] = ()
  system_dirs: tuple[str, ...] = ()

  def __post_init__(self):
    if not self.name.isidentifier() or self.name != self.name.lower():
      raise ValueError(f'Data set name {self.name!r}: use lower-case letters, '
                       'digits and underscores (it is a flag value and a '
                       'directory name).')
    if self.remote_suffix not in self.local_suffixes:
      raise ValueError(f'{self.name}: remote_suffix {self.remote_suffix!r} '
                       f'must be one of local_suffixes {self.local_suffixes}.')
    for stem in self.stems:
      forms = {stem + suffix for suffix in self.local_suffixes}
      if not any(c.file == stem or c.file in forms for c in self.checksums):
        raise ValueError(f'{self.name}: no checksum for {stem}; every file '
                         'is verified before it is used. Add its sha256 '
                         '(`sha256sum` of the file) to checksums.')

  @property
  def stems(self) -> tuple[str, ...]:
    """Every file of the data set, training split first."""
    return self.train_stems + self.test_stems

  def split_stems(self, split: str) -> tuple[str, ...]:
    return {'train': self.train_stems, 'test': self.test_stems}[split]

  def split_size(self, split: str) -> int:
    return {'train': self.num_train, 'test': self.num_test}[split]


DATASETS: Registry[DatasetSpec] = Registry('data set', 'config.data.name')


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
  """Makes `spec` selectable as config.data.name = spec.name; returns it.

  Raises:
    ValueError: another data set already has the name.
  """
  return DATASETS.add(spec.name, spec, describe=lambda s: s.description)


def dataset_names() -> tuple[str, ...]:
  """The registered data sets' names, sorted."""
  return tuple(sorted(DATASETS))


def dataset_spec(name: str) -> DatasetSpec:
  """The registered data set `name`.

  Raises:
    ValueError: no data set has that name; the message lists those that do.
  """
  return DATASETS.lookup(name)
