r"""Trains the MNIST classifier used by perceptual losses and classifier metrics.

  python -m launch.train_classifier --data_dir=../shared/data
  python -m launch.train_classifier --workdir=workdirs/classifier \
      --data_dir=../shared/data

5 epochs, Adam 1e-3, batch 64 by default: about 10 minutes on 2 CPU cores.
Without --workdir it trains into the place launch.evaluate looks by default
($VAE_JAX_CACHE_DIR/classifier, else ~/.cache/vae_jax/classifier); elsewhere,
pass that directory as --classifier_dir. Writes the weights (orbax) and
classifier.json (settings, test accuracy, SHA-256 of the weights) into a
classifier workdir (marker and lock, like a run's): the same command again
keeps the trained classifier, and a save killed part way is started over.
"""

import json

from absl import flags

from launch import common
from vae_jax import classifier
from vae_jax import data
from vae_jax.evaluation import evaluate

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Where the classifier is saved: a new '
                    'or empty directory, or one this launcher wrote. Default: '
                    'where launch.evaluate looks ($VAE_JAX_CACHE_DIR/'
                    'classifier, else ~/.cache/vae_jax/classifier).')
common.define_data_dir()
flags.DEFINE_integer('epochs', 5, 'Training epochs.', lower_bound=1)
flags.DEFINE_integer('batch_size', 64, 'Batch size.', lower_bound=1)
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate (> 0).')
flags.DEFINE_integer('seed', 0, 'Seed.', lower_bound=0, upper_bound=2**32 - 1)
flags.DEFINE_bool('overwrite', False, 'Replace a classifier trained there '
                  'with other settings.')
flags.register_validator('learning_rate', lambda value: value > 0,
                         message='--learning_rate must be > 0.')


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  workdir = FLAGS.workdir or str(evaluate.default_classifier_dir())
  start = common.now()
  dataset = data.load_dataset(classifier.TRAINED_ON, data_dir=FLAGS.data_dir)
  common.log.info('MNIST classifier in %s: %d epoch(s) of %d images (about '
                  '2 minutes each on 2 CPU cores), unless one trained with '
                  'these settings is there.', workdir, FLAGS.epochs,
                  len(dataset.train_images))
  info = classifier.train_into(
      workdir, dataset, FLAGS.epochs, FLAGS.batch_size,
      FLAGS.learning_rate, FLAGS.seed, FLAGS.overwrite)
  print(json.dumps(info, indent=2))
  common.report_outputs(workdir, start)


if __name__ == '__main__':
  common.run(main)
