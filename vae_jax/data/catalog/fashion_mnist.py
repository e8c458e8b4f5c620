"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): Zalando's article images,
28x28 grey, 10 classes, in MNIST's files and sizes.

Classes: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal,
6 shirt, 7 sneaker, 8 bag, 9 ankle boot. They are not digits: the project's
MNIST classifier (perceptual losses, classifier metrics) cannot judge them.
"""

from vae_jax.data.formats import IDX_TEST_STEMS, IDX_TRAIN_STEMS, parse_idx_split
from vae_jax.data.registry import Checksum, DatasetSpec, register_dataset

# The files are Zalando Research's (github.com/zalandoresearch/fashion-mnist,
# data/fashion/, MIT licence), also packaged by Debian as
# dataset-fashion-mnist (0.0~git20200523.55506a9-1), which installs them in
# /usr/share/datasets/fashion-mnist. Debian's .gz files are not Zalando's
# bytes (their MD5s differ from those Zalando publishes), so the SHA-256 are
# of the decompressed IDX bytes of Debian's files, whatever the compression.
DECOMPRESSED_SHA256 = {
    'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
}

# MD5 of Zalando's own .gz files, as its README publishes them (no SHA-256
# is published): they accept an untouched download from its mirror.
ZALANDO_ARCHIVE_MD5 = {
    'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
    'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
    't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
    't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
}

SPEC = register_dataset(DatasetSpec(
    name='fashion_mnist',
    description="Zalando's article images in 10 classes (clothes, shoes, "
    'bags), 28x28 grey (Xiao, Rasul and Vollgraf, 2017)',
    image_shape=(28, 28),
    num_classes=10,
    num_train=60000,
    num_test=10000,
    train_stems=IDX_TRAIN_STEMS,
    test_stems=IDX_TEST_STEMS,
    parse_split=parse_idx_split,
    checksums=(
        *(Checksum(stem, 'sha256', digest)
          for stem, digest in DECOMPRESSED_SHA256.items()),
        *(Checksum(name, 'md5', digest, "Zalando's download")
          for name, digest in ZALANDO_ARCHIVE_MD5.items()),
    ),
    mirrors=('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',),
    system_dirs=('/usr/share/datasets/fashion-mnist',),
))
