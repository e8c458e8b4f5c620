"""USPS (Hull, 1994): handwritten digits from US postal envelopes, 16x16,
in the LIBSVM multiclass distribution."""

from typing import Sequence

from vae_jax.data.formats import parse_usps_libsvm
from vae_jax.data.registry import Checksum, DatasetSpec, register_dataset

# SHA-256 of the reference .bz2 files in the project's shared data directory.
# Those are `bzip2 -9` re-compressions of the LIBSVM text, so they are not
# byte-identical to the files the LIBSVM page serves; a genuine download is
# recognised by PUBLIC_ARCHIVE_MD5 instead.
ARCHIVE_SHA256 = {
    'usps.bz2': '2abd1c59b2a6081769270393641fea427879d5e8163542eaaac8699f7460c17f',
    'usps.t.bz2': '6eacd7c0251c2460aad93c45b86414936ae0b1f40577fa2de76ee9879f7bf8ae',
}

# MD5 of the .bz2 files as served by the LIBSVM multiclass page, as registered
# by torchvision.datasets.USPS. No SHA-256 of those bytes is published.
PUBLIC_ARCHIVE_MD5 = {
    'usps.bz2': 'ec16c51db3855ca6c91edd34d0e9b197',
    'usps.t.bz2': '8ea070ee2aca1ac39742fdd1ef5ed118',
}

# SHA-256 of the decompressed LIBSVM text (of the reference archives above),
# for a directory holding 'usps' / 'usps.t' rather than the archives.
TEXT_SHA256 = {
    'usps': 'ae1ecd751e55e42c05af14e2d087c24701fb9a172fa067b4fc768c1ef18985c7',
    'usps.t': '3c1e051267475d03ffc82313e0fbc43585d036eb5a0f42e04f91cb4726b41ed7',
}


def _parse_split(contents: Sequence[bytes], origins: Sequence[str]):
  (text,), (origin,) = contents, origins
  return parse_usps_libsvm(text, origin)


SPEC = register_dataset(DatasetSpec(
    name='usps',
    description='handwritten digits 0-9 from US postal envelopes, 16x16 grey '
    '(Hull, 1994; LIBSVM multiclass files)',
    image_shape=(16, 16),
    num_classes=10,
    num_train=7291,
    num_test=2007,
    train_stems=('usps',),
    test_stems=('usps.t',),
    parse_split=_parse_split,
    checksums=(
        *(Checksum(name, 'sha256', digest, 'reference copy')
          for name, digest in ARCHIVE_SHA256.items()),
        *(Checksum(name, 'md5', digest, 'LIBSVM download')
          for name, digest in PUBLIC_ARCHIVE_MD5.items()),
        *(Checksum(stem, 'sha256', digest)
          for stem, digest in TEXT_SHA256.items()),
    ),
    local_suffixes=('.bz2', ''),
    remote_suffix='.bz2',
    mirrors=(
        'https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/',
    ),
))
