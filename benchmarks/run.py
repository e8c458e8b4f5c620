r"""vae_jax's benchmarks, one entry point; each mode is a module of benchmarks/.

  python -m benchmarks.run --config=configs/default.py \
      --data_dir=../shared/data --epochs=4 --workdir=/tmp/bench
  python -m benchmarks.run --mode=sweep --config=configs/study_d.py \
      --data_dir=../shared/data --epochs=2 --sweep_members=8
  python -m benchmarks.run --mode=sweep --sweep_groups \
      --config=configs/study_c.py --data_dir=../shared/data
  python -m benchmarks.run --mode=quality --config=configs/study_d.py \
      --data_dir=../shared/data --epochs=10 --quality_seeds=5
  python -m benchmarks.run --mode=fid

frameworks (frameworks.py): training speed, memory and test loss beside
PyTorch's loops; sweep (sweep.py): a vmapped sweep beside its members run
one after another; quality (quality.py): test loss over seeds per
framework; fid (fid.py): Inception feature extraction beside pytorch-fid.
Each prints a Markdown table and, with --workdir, writes NAME.json and
NAME.md there (the last lines name them). They run from the checkout and are
not installed with vae_jax. --epochs sets how long each side trains
(--config.num_epochs, the spelling of launch.train, is read as --epochs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from absl import app
from absl import flags
from ml_collections import config_flags

from benchmarks import frameworks
from benchmarks import quality
from benchmarks import sweep
from benchmarks.common import TORCH_VARIANTS
from benchmarks.quality import QUALITY_INITS
from launch import common


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'configs/default.py',
                                'Experiment config to benchmark.')
flags.DEFINE_integer(
    'epochs', 4, 'Epochs each side trains. frameworks: at least 2; the '
    'first (where JAX and torch.compile compile) is a warm-up, the others '
    'are timed, and the test loss is taken after the last: --epochs=10 for '
    'the 10-epoch loss comparison. sweep: epochs of each run.',
    lower_bound=1)
flags.DEFINE_integer('matmul_size', 2048, 'Side of the matmul for the peak rate.')
flags.DEFINE_string('workdir', None, 'Directory for the report, NAME.json '
                    'and NAME.md (made if missing; files of the same name '
                    'are replaced).')
common.define_old_spelling('output', 'workdir')
common.define_data_dir(old_config_spelling=False)  # sets config.data.dir
flags.DEFINE_string(
    'mode', 'frameworks', 'What to benchmark, a key of MODES: frameworks '
    '(vae_jax beside PyTorch), sweep (a K-member vmapped sweep beside the '
    'same K runs one after another), quality (test loss after --epochs over '
    '--quality_seeds seeds per framework) or fid (Inception feature '
    'extraction beside pytorch-fid).')
flags.DEFINE_integer('fid_images', 64, 'Images per repeat for --mode=fid.')
flags.DEFINE_integer('fid_batch_size', 32, 'Batch size for --mode=fid.')
flags.DEFINE_integer('sweep_members', 8, 'K for --mode=sweep (seeds 0..K-1).')
flags.DEFINE_bool(
    'sweep_groups', False, '--mode=sweep: benchmark every group of the '
    "config's own sweep (e.g. configs/study_c.py), each group's epoch "
    "beside its members' single-run epochs in interleaved rounds, instead "
    'of K seeds of the config.')
flags.DEFINE_integer('sweep_rounds', 5, '--sweep_groups: interleaved rounds.')
flags.DEFINE_enum('sweep_execution', 'vmap', ('vmap', 'map'),
                  '--sweep_groups: how a group runs its members.')
flags.DEFINE_integer('sweep_train_images', 4096,
                     '--sweep_groups: training images per epoch.')
flags.DEFINE_integer('quality_seeds', 5,
                     'Seeds per framework for --mode=quality (first..first+N-1).')
flags.DEFINE_integer('quality_first_seed', 0,
                     '--mode=quality: the first seed, so that more seeds can '
                     'be added to an earlier comparison.')

flags.DEFINE_enum(
    'quality_init', 'own', QUALITY_INITS,
    "--mode=quality: 'own' (each side draws seed s's initial weights its own "
    "way) or 'torch' (both start seed s from the PyTorch twin's draw, so the "
    'comparison is paired; MLP models).')
flags.DEFINE_list('torch_variants', list(TORCH_VARIANTS),
                  f'PyTorch loops to time beside JAX, from {TORCH_VARIANTS}.')
flags.DEFINE_bool(
    'memory', True, 'frameworks: measure each side\'s peak memory, training '
    'one epoch in a fresh process per side.')
flags.DEFINE_string('memory_worker', None,
                    'Internal: train one JAX epoch on this .npz and print its '
                    'peak memory as JSON (see measure_memory).')

# What the config may vary while the PyTorch twin still trains the same thing.

def frameworks_mode(config) -> tuple[dict, str, str]:
  if FLAGS.epochs < 2:
    raise app.UsageError(
        f'--epochs={FLAGS.epochs} leaves no epoch to time: the first epoch '
        'is a warm-up (JAX and torch.compile compile in it, so a ratio '
        'from it measures compilation); give --epochs=2 or more.')
  # The command line rebuilds the config in the JAX memory worker.
  memory_flags = sys.argv[1:] if FLAGS.memory else None
  result = frameworks.benchmark_frameworks(
      config, epochs=FLAGS.epochs, variants=FLAGS.torch_variants,
      matmul_size=FLAGS.matmul_size, memory_flags=memory_flags)
  return result, frameworks.to_markdown(result), 'benchmark'


def sweep_mode(config) -> tuple[dict, str, str]:
  if FLAGS.sweep_groups:
    result = sweep.benchmark_groups(config, FLAGS.sweep_rounds,
                                    FLAGS.sweep_train_images,
                                    FLAGS.sweep_execution)
    return result, sweep.groups_markdown(result), 'benchmark_sweep_groups'
  result = sweep.benchmark_sweep(config, FLAGS.sweep_members, FLAGS.epochs)
  return result, sweep.sweep_markdown(result), 'benchmark_sweep'


def quality_mode(config) -> tuple[dict, str, str]:
  result = quality.compare_quality(config, FLAGS.quality_seeds, FLAGS.epochs,
                           init=FLAGS.quality_init,
                           first_seed=FLAGS.quality_first_seed)
  return result, quality.quality_markdown(result), 'benchmark_quality'


def fid_mode(config) -> tuple[dict, str, str]:
  """Inception feature extraction: our port against pytorch-fid's network,
  same (random) weights and images, interleaved."""
  del config  # the Inception network does not depend on the VAE config
  from benchmarks import fid as fid_benchmark
  result = fid_benchmark.benchmark_feature_extraction(
      FLAGS.fid_images, FLAGS.fid_batch_size, repeats=max(FLAGS.epochs - 1, 1))
  return result, fid_benchmark.to_markdown(result), 'benchmark_fid'


# --mode -> function(config) -> (result dict, Markdown, report name); the
# report is written as NAME.json and NAME.md.
MODES: dict[str, Callable[..., tuple[dict, str, str]]] = {
    'frameworks': frameworks_mode,
    'sweep': sweep_mode,
    'quality': quality_mode,
    'fid': fid_mode,
}


def _epochs_from_config() -> None:
  """--config.num_epochs (launch.train's spelling) is read as --epochs."""
  old = 'config.num_epochs'
  if old not in FLAGS or not FLAGS[old].present:
    return  # ml_collections registers --config.KEY only when it is given
  common.note_old_spelling(old, 'epochs', 'benchmarks.run')
  value = FLAGS.config.num_epochs
  if FLAGS['epochs'].present and FLAGS.epochs != value:
    raise app.UsageError(f'--epochs={FLAGS.epochs} and --{old}={value} '
                         'disagree; give --epochs only.')
  FLAGS.epochs = value


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  common.config_shortcuts(FLAGS.config, {'data_dir': 'data.dir'})
  _epochs_from_config()
  if FLAGS.memory_worker:
    print(json.dumps(frameworks.jax_memory_worker(FLAGS.config, FLAGS.memory_worker)))
    return
  if FLAGS.mode not in MODES:
    raise app.UsageError(f'Unknown --mode={FLAGS.mode}; choose from '
                         f'{sorted(MODES)}.')
  result, markdown, name = MODES[FLAGS.mode](FLAGS.config)
  report(result, markdown, name)


def report(result: dict, markdown: str, name: str) -> None:
  """Prints the table; with --workdir also writes NAME.json and NAME.md."""
  print(markdown)
  if not FLAGS.workdir:
    common.log.info('The table is above; --workdir=DIR also writes it as '
                    '%s.json and %s.md.', name, name)
    return
  out = Path(FLAGS.workdir).absolute()
  out.mkdir(parents=True, exist_ok=True)
  (out / f'{name}.json').write_text(json.dumps(result, indent=2))
  (out / f'{name}.md').write_text(markdown)
  common.log.info('Wrote %s and %s.', out / f'{name}.json',
                  out / f'{name}.md')


if __name__ == '__main__':
  common.run(main)
