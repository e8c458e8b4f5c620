r"""Trains the MNIST classifier used by perceptual losses and classifier metrics.

  python -m launch.train_classifier --workdir=workdirs/classifier \
      --data_dir=../shared/data

5 epochs, Adam 1e-3, batch 64 by default. Writes the weights (orbax) and
classifier.json (test accuracy, SHA-256 of the weights).
"""

import json

from absl import app
from absl import flags

from launch import common
from vae_jax import classifier
from vae_jax import data

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Where the classifier is saved.',
                    required=True)
flags.DEFINE_string('data_dir', None, 'MNIST directory (default: '
                    '$VAE_JAX_DATA_DIR, then the cache, then download).')
flags.DEFINE_integer('epochs', 5, 'Training epochs.')
flags.DEFINE_integer('batch_size', 64, 'Batch size.')
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_integer('seed', 0, 'Seed.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  dataset = data.load_dataset('mnist', data_dir=FLAGS.data_dir)
  model, params = classifier.train_classifier(
      dataset, FLAGS.epochs, FLAGS.batch_size, FLAGS.learning_rate, FLAGS.seed)
  test_accuracy = classifier.accuracy(model, params, dataset.test_images,
                                      dataset.test_labels)
  info = {'test_accuracy': test_accuracy, 'epochs': FLAGS.epochs,
          'batch_size': FLAGS.batch_size, 'learning_rate': FLAGS.learning_rate,
          'seed': FLAGS.seed}
  sha = classifier.save_classifier(FLAGS.workdir, params, info)
  print(json.dumps(dict(info, sha256=sha), indent=2))


if __name__ == '__main__':
  common.run(main)
