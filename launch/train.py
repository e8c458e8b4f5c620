r"""Trains one VAE configuration.

  python -m launch.train --config=configs/default.py --workdir=/tmp/vae \
      --config.num_epochs=3 --data_dir=../shared/data

Running again on the same workdir resumes; a workdir holding a run of a
different config is refused unless --overwrite is given. It ends by naming
the files it wrote in --workdir (results.json, metrics.jsonl, checkpoints/,
the figures, TensorBoard events).
"""

import json

from absl import flags
from ml_collections import config_flags

from launch import common
from vae_jax import driver

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and '
                    'figures.', required=True)
flags.DEFINE_bool('overwrite', False, 'Delete a run of a different config in '
                  '--workdir (only what vae_jax wrote; refused while '
                  'anything else is there) instead of refusing to start.')
common.define_data_dir(old_config_spelling=False)  # sets config.data.dir
common.define_classifier_dir(
    'The MNIST classifier of the perceptual losses (sets '
    'config.perceptual.classifier_dir).')
config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  common.config_shortcuts(FLAGS.config, common.CONFIG_SHORTCUTS)
  start = common.now()
  results = driver.train_and_evaluate(FLAGS.config, FLAGS.workdir,
                                      overwrite=FLAGS.overwrite)
  print(json.dumps(results, indent=2))
  common.report_outputs(FLAGS.workdir, start)


if __name__ == '__main__':
  common.run(main)
