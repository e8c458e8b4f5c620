"""MNIST (LeCun, Cortes and Burges): handwritten digits, 28x28 grey."""

from vae_jax.data.formats import IDX_TEST_STEMS, IDX_TRAIN_STEMS, parse_idx_split
from vae_jax.data.registry import Checksum, DatasetSpec, register_dataset

# MD5 of the *decompressed* IDX files: the canonical MNIST checksums. Mirrors
# re-compress the .gz files differently, so only the decompressed bytes have a
# checksum that every copy of MNIST shares.
DECOMPRESSED_MD5 = {
    'train-images-idx3-ubyte': '6bbc9ace898e44ae57da46a324031adb',
    'train-labels-idx1-ubyte': 'a25bea736e30d166cdddb491f175f624',
    't10k-images-idx3-ubyte': '2646ac647ad5339dbf082846283269ea',
    't10k-labels-idx1-ubyte': '27ae3e4e09519cfbb04c329615203637',
}

SPEC = register_dataset(DatasetSpec(
    name='mnist',
    description='handwritten digits 0-9, 28x28 grey (LeCun, Cortes and '
    'Burges)',
    image_shape=(28, 28),
    num_classes=10,
    num_train=60000,
    num_test=10000,
    train_stems=IDX_TRAIN_STEMS,
    test_stems=IDX_TEST_STEMS,
    parse_split=parse_idx_split,
    checksums=tuple(Checksum(stem, 'md5', digest)
                    for stem, digest in DECOMPRESSED_MD5.items()),
    mirrors=(
        'https://ossci-datasets.s3.amazonaws.com/mnist/',
        'https://storage.googleapis.com/cvdf-datasets/mnist/',
        'http://yann.lecun.com/exdb/mnist/',
    ),
))
