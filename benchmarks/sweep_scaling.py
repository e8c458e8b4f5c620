r"""Sweep scaling: aggregate training images/s and peak device memory of one
K-member sweep (seeds 0..K-1 of one config) for several K.

  python -m benchmarks.sweep_scaling --config=configs/study_d.py \
      --data_dir=../shared/data --members=1,8,64,256 --epochs=2 \
      --workdir=/tmp/scaling

Each K trains `epochs` epochs in a fresh sweep; the rate is that of the
epochs after the first (which includes nothing but the run: compilation is
timed apart by the sweep). Peak memory is the device's own counter where it
has one (GPUs, TPUs), else the process's resident peak.
"""

import json
import resource
import tempfile
import time
from pathlib import Path

import jax
from absl import flags
from ml_collections import config_flags

from launch import common
from vae_jax.data import pipeline
from vae_jax import grid as grid_lib
from vae_jax import sweep

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'configs/study_d.py', 'Config.')
flags.DEFINE_list('members', ['1', '8', '64', '256'], 'Sweep sizes K.')
flags.DEFINE_integer('epochs', 2, 'Epochs per K (the first is a warm-up).')
flags.DEFINE_string('workdir', None, 'Directory for sweep_scaling.json/.md.')
common.define_old_spelling('output', 'workdir')
common.define_data_dir(old_config_spelling=False)  # sets config.data.dir


def peak_memory_bytes() -> tuple[int, str]:
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device peak'
  kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return kib * 1024, 'process resident peak'


def measure(config, members: int, epochs: int, dataset) -> dict:
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.num_epochs = epochs
    config.plots = False
    config.sweep = grid_lib.product(seed=list(range(members)))
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    results = sweep.run_sweep(config, Path(tmp) / 'sweep', dataset=dataset)
    seconds = time.perf_counter() - start
    lines = [json.loads(l) for l in
             (Path(tmp) / 'sweep' / 'metrics.jsonl').read_text().splitlines()]
  later = [l['img_per_s'] for l in lines if l['epoch'] > 1] or [
      l['img_per_s'] for l in lines]
  peak, peak_kind = peak_memory_bytes()
  return {'members': members, 'epochs': epochs, 'wall_seconds': seconds,
          'aggregate_img_per_s': sum(later) / max(1, len(later)) * members,
          'peak_memory_bytes': peak, 'peak_memory_kind': peak_kind,
          'test_loss_first_member': results[0]['test_loss']}


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  config = FLAGS.config
  common.config_shortcuts(config, {'data_dir': 'data.dir'})
  dataset = pipeline.load_data(config)
  rows = []
  for k in (int(m) for m in FLAGS.members):
    rows.append(measure(config, k, FLAGS.epochs, dataset))
    print(json.dumps(rows[-1]), flush=True)
  device = jax.devices()[0]
  lines = [f'Sweep scaling on {device.platform} ({device.device_kind}), '
           f'{FLAGS.epochs} epoch(s) per K, {len(dataset.train_images):,} '
           'training images.', '',
           '| K | aggregate images/s | per member | peak memory, MiB | wall, s |',
           '|---:|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f"| {r['members']} | {r['aggregate_img_per_s']:,.0f} | "
                 f"{r['aggregate_img_per_s'] / r['members']:,.0f} | "
                 f"{r['peak_memory_bytes'] / 2**20:,.0f} ({r['peak_memory_kind']}) | "
                 f"{r['wall_seconds']:.1f} |")
  markdown = '\n'.join(lines) + '\n'
  print(markdown)
  if FLAGS.workdir:
    out = Path(FLAGS.workdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'sweep_scaling.json').write_text(json.dumps(rows, indent=2))
    (out / 'sweep_scaling.md').write_text(markdown)


if __name__ == '__main__':
  common.run(main)
