r"""Trains one VAE configuration.

  python -m launch.train --config=configs/default.py --workdir=/tmp/vae \
      --config.num_epochs=3 --config.data.dir=../shared/data

Running again on the same workdir resumes; a workdir holding a run of a
different config is refused unless --overwrite is given.
"""

import json

from absl import app
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
config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  with common.user_errors():
    results = driver.train_and_evaluate(FLAGS.config, FLAGS.workdir,
                                       overwrite=FLAGS.overwrite)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  common.run(main)
