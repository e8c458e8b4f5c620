r"""Trains every member of a sweep config as one vmapped program per group.

  python -m launch.sweep --config=configs/study_d.py --workdir=workdirs/study_d
  python -m launch.sweep --config=configs/study_d.py --workdir=/tmp/d \
      --config.num_epochs=2 --config.data.dir=../shared/data

Multi-host (e.g. TPU pods, several GPU hosts): start the same command in every
process with --distributed; JAX's own runtime (jax.distributed.initialize,
configured from the cluster environment or JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES, JAX_PROCESS_ID) joins them, and the sweep axis is sharded
over all their devices.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from launch import common
from vae_jax import sweep

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory of the sweep.', required=True)
flags.DEFINE_bool('overwrite', False, 'Delete a sweep of a different config '
                  'in --workdir instead of refusing to start.')
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize() '
                  'first (multi-host).')
config_flags.DEFINE_config_file('config', None, 'Sweep config file.',
                                lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  if FLAGS.distributed:
    import jax
    jax.distributed.initialize()
  with common.user_errors():
    results = sweep.run_sweep(FLAGS.config, FLAGS.workdir,
                              overwrite=FLAGS.overwrite)
  print((sweep.Path(FLAGS.workdir) / 'results.md').read_text())
  diverged = [r for r in results if r['status'] != 'finished']
  if diverged:
    raise SystemExit(
        'vae_jax: ' + '; '.join(f'member {r["member"]} ({r["label"]}) '
                                f'{r["status"]}' for r in diverged)
        + ': their last finite state is kept and they are marked in the '
        'results table; the other members finished.')


if __name__ == '__main__':
  common.run(main)
