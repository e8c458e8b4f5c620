r"""Trains the MNIST classifier used by perceptual losses and classifier metrics.

  python -m launch.train_classifier --workdir=workdirs/classifier \
      --data_dir=../shared/data

5 epochs, Adam 1e-3, batch 64 by default. Writes the weights (orbax) and
classifier.json (settings, test accuracy, SHA-256 of the weights) into a
classifier workdir (marker and lock, like a run's): the same command again
keeps the trained classifier, and a save killed part way is started over.
"""

import json

from absl import app
from absl import flags

from launch import common
from vae_jax import classifier
from vae_jax import data

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Where the classifier is saved: a new '
                    'or empty directory, or one this launcher wrote.',
                    required=True)
flags.DEFINE_string('data_dir', None, 'MNIST directory (default: '
                    '$VAE_JAX_DATA_DIR, then the cache, then download).')
flags.DEFINE_integer('epochs', 5, 'Training epochs.', lower_bound=1)
flags.DEFINE_integer('batch_size', 64, 'Batch size.', lower_bound=1)
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate (> 0).')
flags.DEFINE_integer('seed', 0, 'Seed.', lower_bound=0, upper_bound=2**32 - 1)
flags.DEFINE_bool('overwrite', False, 'Replace a classifier trained there '
                  'with other settings.')
flags.register_validator('learning_rate', lambda value: value > 0,
                         message='--learning_rate must be > 0.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  with common.user_errors():
    dataset = data.load_dataset(classifier.TRAINED_ON,
                                data_dir=FLAGS.data_dir)
    info = classifier.train_into(
        FLAGS.workdir, dataset, FLAGS.epochs, FLAGS.batch_size,
        FLAGS.learning_rate, FLAGS.seed, FLAGS.overwrite)
  print(json.dumps(info, indent=2))


if __name__ == '__main__':
  common.run(main)
