r"""Evaluates a trained run or sweep from its checkpoint and writes the numbers.

  python -m launch.evaluate --workdir=/tmp/vae --metrics=iwae --iwae_samples=500
  python -m launch.evaluate --workdir=workdirs/study_d \
      --metrics=inception_score,classifier_fid,confusion
  python -m launch.evaluate --workdir=workdirs/study_d --metrics=recon_at_mean
  python -m launch.evaluate --workdir=/tmp/mine --imports=my_models

--workdir is what `launch.train` (one run) or `launch.sweep` (every member is
evaluated) wrote (--imports names the modules registering what it was
trained with outside vae_jax, as its config file imported them); each model is evaluated at the checkpoint its results.json
was written from, and every number records that epoch. --metrics names
metrics of vae_jax.evaluation.metrics (the help of --metrics lists them with
what each computes; every other flag's help names the metrics that read it).
vae_jax.evaluation.evaluate does the work and describes where the numbers go.
The classifier metrics need a classifier from
`python -m launch.train_classifier` (about 10 minutes on 2 CPU cores),
looked for in --classifier_dir (default $VAE_JAX_CACHE_DIR/classifier, else
~/.cache/vae_jax/classifier). The test data is read where the run found
it (its config, else its data.json) unless --data_dir names another place.
It ends by naming the files it wrote.
"""

from __future__ import annotations

import json

from absl import flags

from launch import common
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry

DEFAULTS = registry.Settings()


def _help(text: str, setting: str) -> str:
  """text, and which metrics read Settings field `setting`."""
  return f'{text} Read by: {", ".join(registry.readers(setting)) or "none"}.'


def _metrics_help() -> str:
  """Every registered metric: its name, what it needs, what it computes."""
  lines = []
  for name, evaluator in registry.EVALUATORS.items():
    needs = ', '.join(sorted(evaluator.needs)) or 'the model only'
    lines.append(f'{name} (needs {needs}): {evaluator.description}')
  return 'Any of these. ' + ' '.join(lines)


FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Workdir of a finished launch.train '
                    'run or launch.sweep sweep.', required=True)
flags.DEFINE_list('metrics', ['iwae', 'inception_score', 'classifier_fid',
                              'confusion'],
                  _metrics_help())
flags.DEFINE_list(
    'imports', [], 'Python modules to import first: those registering a '
    'model, loss, data set or metric defined outside vae_jax that the '
    'workdir\'s config names (its config file imported them for training; '
    'config.json does not record imports). Importable from this directory or '
    '$PYTHONPATH.')
common.define_classifier_dir()
common.define_inception_weights()
common.define_data_dir(help_text=(
    'Directory holding the test data set\'s files, replacing where the run '
    'found them (its config.data.dir, else the directory its data.json '
    'records).'))
flags.DEFINE_integer('iwae_samples', DEFAULTS.iwae_samples,
                     _help('Importance samples per test image.',
                           'iwae_samples'), lower_bound=1)
flags.DEFINE_integer('iwae_chunk', DEFAULTS.iwae_chunk,
                     _help('Importance samples evaluated at once (memory ~ '
                           'chunk x batch x pixels).', 'iwae_chunk'),
                     lower_bound=1)
flags.DEFINE_integer('iwae_batch', DEFAULTS.iwae_batch,
                     _help('Test images per IWAE call.', 'iwae_batch'),
                     lower_bound=1)
flags.DEFINE_integer('num_images', None,
                     _help('IWAE on the first N test images only (default: '
                           'all).', 'num_images'), lower_bound=1)
flags.DEFINE_integer('num_samples', DEFAULTS.num_samples,
                     _help('Prior samples for the sample metrics.',
                           'num_samples'), lower_bound=1)
flags.DEFINE_integer('batch_size', DEFAULTS.batch_size,
                     _help('Images per classifier or decoder call.',
                           'batch_size'), lower_bound=1)
flags.DEFINE_integer('seed', DEFAULTS.seed,
                     _help('Seed of the samples.', 'seed'),
                     lower_bound=0, upper_bound=2**32 - 1)
flags.DEFINE_float('min_classifier_accuracy',
                   DEFAULTS.min_classifier_accuracy,
                   _help('The classifier metrics refuse a classifier whose '
                         'recorded test accuracy is lower.',
                         'min_classifier_accuracy'), lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_bool('recompute', False, 'Compute every metric again, even '
                  'those results.json holds for the same checkpoint and '
                  'settings (by default only missing or stale ones are).')


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  start = common.now()
  common.import_modules(FLAGS.imports)
  settings = registry.Settings(
      iwae_samples=FLAGS.iwae_samples, iwae_chunk=FLAGS.iwae_chunk,
      iwae_batch=FLAGS.iwae_batch, num_images=FLAGS.num_images,
      num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, min_classifier_accuracy=FLAGS.min_classifier_accuracy)
  results = evaluate.evaluate_workdir(FLAGS.workdir, FLAGS.metrics,
                                      FLAGS.classifier_dir, settings,
                                      FLAGS.data_dir,
                                      recompute=FLAGS.recompute,
                                      inception_weights=FLAGS.inception_weights)
  print(json.dumps(results, indent=2))
  common.report_outputs(FLAGS.workdir, start)


if __name__ == '__main__':
  common.run(main)
