"""A K-member vmapped sweep beside the same K runs one after another."""

from __future__ import annotations

import tempfile
import time

import numpy as np

from vae_jax import train
from vae_jax.data import pipeline


def benchmark_sweep(config, members: int, epochs: int) -> dict:
  """Wall time (compile included) of K runs one after another vs one K-member sweep."""
  from vae_jax import sweep
  config.num_epochs = epochs
  config.plots = False
  dataset = pipeline.load_data(config)
  grid = sweep.product(seed=list(range(members)))
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    sequential = [train.train_and_evaluate(sweep.member_config(config, m),
                                           f'{tmp}/run{i}', dataset=dataset)
                  for i, m in enumerate(grid)]
    sequential_seconds = time.perf_counter() - start
    sweep_config = config.copy_and_resolve_references()
    with sweep_config.unlocked():
      sweep_config.sweep = grid
    start = time.perf_counter()
    swept = sweep.run_sweep(sweep_config, f'{tmp}/sweep', dataset=dataset)
    sweep_seconds = time.perf_counter() - start
  single_img_per_s = float(np.median([r['img_per_s'] for r in sequential]))
  sweep_img_per_s = float(np.median([r['img_per_s'] for r in swept])) * members
  return {
      'members': members, 'epochs': epochs,
      'sequential_seconds': sequential_seconds, 'sweep_seconds': sweep_seconds,
      'wall_time_ratio': sequential_seconds / sweep_seconds,
      'single_run_img_per_s': single_img_per_s,
      'sweep_aggregate_img_per_s': sweep_img_per_s,
      # K runs one after another train at one run's rate.
      'aggregate_vs_sequential': sweep_img_per_s / single_img_per_s,
      'sequential_test_loss': [r['test_loss'] for r in sequential],
      'sweep_test_loss': [r['test_loss'] for r in swept],
  }


def sweep_markdown(result: dict) -> str:
  k = result['members']
  return '\n'.join([
      f"| {k} runs of {result['epochs']} epoch(s), compile included | "
      f"one after another | one {k}-member sweep |",
      '|---|---:|---:|',
      f"| wall time, s | {result['sequential_seconds']:.1f} | "
      f"{result['sweep_seconds']:.1f} |",
      f"| training images/s, all members together | "
      f"{result['single_run_img_per_s']:,.0f} | "
      f"{result['sweep_aggregate_img_per_s']:,.0f} |",
      '',
      f"The sweep takes {1 / result['wall_time_ratio']:.2f}x the wall time of "
      f"{k} runs one after another ({result['wall_time_ratio']:.2f}x faster); "
      f"its aggregate training throughput is "
      f"{result['aggregate_vs_sequential']:.2f}x theirs (training "
      f"{k * result['epochs']} member-epochs at "
      f"{result['sweep_aggregate_img_per_s'] / k:,.0f} images/s each).",
  ]) + '\n'


