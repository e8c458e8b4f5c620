r"""Trains every member of a sweep config as one vmapped program per group.

  python -m launch.sweep --config=configs/study_d.py --workdir=workdirs/study_d
  python -m launch.sweep --config=configs/study_d.py --workdir=/tmp/d \
      --config.num_epochs=2 --data_dir=../shared/data

Several processes (hosts, or processes on one machine): start the same
command in every process. With --coordinator_address, --num_processes and
--process_id they join through JAX's own runtime (jax.distributed.initialize);
with --distributed alone JAX finds them itself (Cloud TPU, SLURM, Open MPI).
The sweep axis is sharded over every process's devices; each process loads
the data; process 0 writes the workdir's files and holds its lock; every
process takes part in the orbax checkpoints. It ends by naming the files it
wrote in --workdir (the results tables, metrics.jsonl, the sweep figures,
one member_NNN/ per member, the groups' checkpoints).

  python -m launch.sweep --config=configs/study_d.py --workdir=/shared/d \
      --coordinator_address=10.0.0.1:8476 --num_processes=2 --process_id=0
"""

from pathlib import Path

from absl import flags
from ml_collections import config_flags

from launch import common
from vae_jax import group as group_lib
from vae_jax import sweep
from vae_jax import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory of the sweep.', required=True)
flags.DEFINE_bool('overwrite', False, 'Delete a sweep of a different config '
                  'in --workdir (only what vae_jax wrote; refused while '
                  'anything else is there) instead of refusing to start.')
common.define_data_dir(old_config_spelling=False)  # sets config.data.dir
common.define_classifier_dir(
    'The MNIST classifier of the perceptual losses (sets '
    'config.perceptual.classifier_dir).')
flags.DEFINE_bool('distributed', False, 'Join the other processes through '
                  'jax.distributed.initialize(), the cluster found by JAX '
                  '(implied by --coordinator_address).')
flags.DEFINE_string('coordinator_address', None, 'HOST:PORT of process 0 '
                    'for jax.distributed.initialize.')
flags.DEFINE_integer('num_processes', None, 'Processes in the sweep.')
flags.DEFINE_integer('process_id', None, 'This process\'s index, 0..N-1.')
flags.DEFINE_integer('heartbeat_timeout', 30, 'Seconds after which the '
                     'others stop when a process stops answering.')
config_flags.DEFINE_config_file('config', None, 'Sweep config file.',
                                lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  common.config_shortcuts(FLAGS.config, common.CONFIG_SHORTCUTS)
  start = common.now()
  if FLAGS.distributed or FLAGS.coordinator_address:
    import jax
    # CPU devices of several processes exchange arrays through gloo.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
        heartbeat_timeout_seconds=FLAGS.heartbeat_timeout)
  results = sweep.run_sweep(FLAGS.config, FLAGS.workdir,
                            overwrite=FLAGS.overwrite)
  if group_lib.is_primary():
    print((Path(FLAGS.workdir) / workdir_lib.RESULTS_MD).read_text())
    common.report_outputs(FLAGS.workdir, start)
  diverged = [r for r in results if r['status'] != 'finished']
  if diverged:
    common.fail('; '.join(f'member {r["member"]} ({r["label"]}) '
                          f'{r["status"]}' for r in diverged)
                + ': their last finite state is kept and they are marked in '
                'the results table; the other members finished.')


if __name__ == '__main__':
  common.run(main)
