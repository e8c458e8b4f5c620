r"""Evaluates a trained run or sweep from its checkpoint and writes the numbers.

  python -m launch.evaluate --workdir=/tmp/vae --metrics=iwae --iwae_samples=500
  python -m launch.evaluate --workdir=workdirs/study_d \
      --metrics=inception_score,classifier_fid,confusion
  python -m launch.evaluate --workdir=workdirs/study_d --metrics=recon_at_mean

--workdir is what `launch.train` (one run) or `launch.sweep` (every member is
evaluated) wrote; each model is evaluated at the checkpoint its results.json
was written from, and every number records that epoch. --metrics is any of
iwae, recon_at_mean, inception_score, classifier_fid, confusion and fid, as
described in vae_jax.evaluation.workdir, which does the work; where the
numbers go is described there too. The classifier metrics need a classifier from
`python -m launch.train_classifier`, looked for in --classifier_dir
(default $VAE_JAX_CACHE_DIR/classifier, else ~/.cache/vae_jax/classifier).
"""

from __future__ import annotations

import json

from absl import app
from absl import flags

from launch import common
from vae_jax.evaluation import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Workdir of a finished launch.train '
                    'run or launch.sweep sweep.', required=True)
flags.DEFINE_list('metrics', ['iwae', 'inception_score', 'classifier_fid',
                              'confusion'],
                  f'Any of {", ".join(workdir_lib.METRICS)}.')
flags.DEFINE_string('classifier_dir', None, 'Trained MNIST classifier '
                    '(launch.train_classifier); default '
                    '$VAE_JAX_CACHE_DIR/classifier, else '
                    '~/.cache/vae_jax/classifier.')
flags.DEFINE_string('data_dir', None, 'Replaces the run\'s config.data.dir.')
flags.DEFINE_integer('iwae_samples', workdir_lib.Settings.iwae_samples,
                     'Importance samples per test image.', lower_bound=1)
flags.DEFINE_integer('iwae_chunk', workdir_lib.Settings.iwae_chunk,
                     'Importance samples evaluated at once (memory ~ '
                     'chunk x batch x pixels).', lower_bound=1)
flags.DEFINE_integer('iwae_batch', workdir_lib.Settings.iwae_batch,
                     'Test images per IWAE call.', lower_bound=1)
flags.DEFINE_integer('num_images', None, 'IWAE on the first N test images '
                     'only (default: all).', lower_bound=1)
flags.DEFINE_integer('num_samples', workdir_lib.Settings.num_samples,
                     'Prior samples for the sample metrics.', lower_bound=1)
flags.DEFINE_integer('batch_size', workdir_lib.Settings.batch_size,
                     'Images per classifier or decoder call.', lower_bound=1)
flags.DEFINE_integer('seed', workdir_lib.Settings.seed, 'Seed of the samples.',
                     lower_bound=0, upper_bound=2**32 - 1)
flags.DEFINE_float('min_classifier_accuracy',
                   workdir_lib.Settings.min_classifier_accuracy,
                   'The classifier metrics refuse a classifier whose '
                   'recorded test accuracy is lower.', lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_bool('recompute', False, 'Compute every metric again, even '
                  'those results.json holds for the same checkpoint and '
                  'settings (by default only missing or stale ones are).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  settings = workdir_lib.Settings(
      iwae_samples=FLAGS.iwae_samples, iwae_chunk=FLAGS.iwae_chunk,
      iwae_batch=FLAGS.iwae_batch, num_images=FLAGS.num_images,
      num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, min_classifier_accuracy=FLAGS.min_classifier_accuracy)
  with common.user_errors():
    results = workdir_lib.evaluate_workdir(FLAGS.workdir, FLAGS.metrics,
                                           FLAGS.classifier_dir, settings,
                                           FLAGS.data_dir,
                                           recompute=FLAGS.recompute)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  common.run(main)
