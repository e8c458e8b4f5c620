"""Test loss after N epochs over several seeds, vae_jax beside PyTorch."""

from __future__ import annotations

import tempfile
import time

from absl import app
from absl import logging
import numpy as np

from benchmarks.frameworks import GOALS, check_comparable
from launch import common
from vae_jax import data as data_lib
from vae_jax.data import pipeline
from vae_jax import grid as grid_lib
from vae_jax import loop

# --quality_init: whose initial weights each seed starts from.
QUALITY_INITS = ('own', 'torch')


def compare_quality(config, seeds: int, epochs: int,
                    dataset: data_lib.Dataset | None = None,
                    init: str = 'own', first_seed: int = 0) -> dict:
  """Test loss after `epochs` epochs for `seeds` seeds on each side.

  The seeds are first_seed, first_seed + 1, ...; a later run with
  first_seed = the earlier run's count adds seeds to a comparison.

  One seed per side cannot tell a difference between the frameworks from
  the spread of initial draws (at lr 1e-4 after 10 epochs a seed moves the
  loss by about a nat); the mean over seeds can. JAX trains its seeds as one
  vmapped sweep (members equal separate runs); PyTorch trains them one
  after another with pre-loaded tensors (torch.manual_seed(seed) draws the
  initial weights, as the frameworks benchmark does).

  init: 'own' (each side draws its own initial weights) or 'torch' (JAX's
  seed s starts from the weights PyTorch's seed s starts from; shuffles and
  posterior noise stay each side's own). Where the outcome depends mostly
  on the initial draw (Study D at latent 2 and 300 epochs), 'torch' pairs
  the seeds and compares the implementations rather than two sets of draws.

  Returns:
    {'jax' / 'torch': {'test_loss': [per seed], 'mean', 'std'},
     'difference': JAX mean - PyTorch mean, 'standard_error': of that
     difference (from the per-seed differences with init='torch'),
     'target': the 0.5-nat goal and whether it is met, ...}.
  """
  import torch
  from vae_jax import sweep
  from benchmarks import torch_reference
  check_comparable(config)
  if seeds < 2:
    raise app.UsageError(f'--quality_seeds={seeds}: a spread needs at least 2.')
  if init not in QUALITY_INITS:
    raise app.UsageError(f'--quality_init={init!r}: choose one of '
                         f'{QUALITY_INITS}.')
  if init == 'torch' and config.model.name != 'mlp_vae':
    raise app.UsageError(
        f"--quality_init=torch converts the PyTorch twin's weights for "
        f"mlp_vae only; config.model.name is {config.model.name!r} (use "
        "--quality_init=own).")
  config = config.copy_and_resolve_references()
  config.num_epochs = epochs
  config.plots = False
  if dataset is None:
    dataset = pipeline.load_data(config)
  torch_device = torch_reference.default_device()
  if torch_device.type == 'cpu':
    torch.set_num_threads(common.usable_cpus())
  if first_seed < 0:
    raise app.UsageError(f'--quality_first_seed={first_seed}: seeds are >= 0.')
  seed_ids = list(range(first_seed, first_seed + seeds))
  with config.unlocked():
    config.sweep = grid_lib.product(seed=seed_ids)

  initial_params = None
  if init == 'torch':
    initial_params = [
        torch_reference.mlp_params_for_jax(
            torch_reference.build_twin(config, dataset.image_shape, seed))
        for seed in seed_ids]
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    swept = sweep.run_sweep(config, f'{tmp}/sweep', dataset=dataset,
                            initial_params=initial_params)
  jax_seconds = time.perf_counter() - start
  jax_losses = [r['test_loss'] for r in swept]

  torch_losses = []
  start = time.perf_counter()
  images_per_epoch = (len(dataset.train_images) // config.batch_size
                      * config.batch_size)
  for index, seed in enumerate(seed_ids):

    def progress(epoch, epoch_seconds, train_loss, index=index, seed=seed):
      epochs_left = (seeds - index) * epochs - epoch
      # WARNING, as the other progress lines here: setup_logging hides
      # absl's INFO.
      logging.warning('PyTorch seed %d epoch %d/%d: train loss %.2f  %.0f '
                      'img/s  ETA %s', seed, epoch, epochs, train_loss,
                      images_per_epoch / epoch_seconds,
                      loop.format_duration(epochs_left * epoch_seconds))

    torch_losses.append(torch_reference.train_twin(
        config, dataset, seed, epochs, torch_device,
        on_epoch=progress)['test_loss'])
  torch_seconds = time.perf_counter() - start

  def summary(losses):
    return {'test_loss': losses, 'mean': float(np.mean(losses)),
            'std': float(np.std(losses, ddof=1))}

  jax_side, torch_side = summary(jax_losses), summary(torch_losses)
  difference = jax_side['mean'] - torch_side['mean']
  if init == 'torch':
    # Paired by initial weights: the spread of the per-seed differences.
    standard_error = float(np.std(np.subtract(jax_losses, torch_losses),
                                  ddof=1) / np.sqrt(seeds))
  else:
    standard_error = float(np.sqrt(jax_side['std']**2 / seeds
                                   + torch_side['std']**2 / seeds))
  goal = GOALS['test_loss_difference']
  return {
      'config': config.model.name, 'epochs': epochs, 'seeds': seeds,
      'first_seed': first_seed, 'init': init,
      'model': {'latent_size': config.model.latent_size,
                'encoder_widths': list(config.model.encoder_widths),
                'batch_size': config.batch_size,
                'learning_rate': config.learning_rate},
      'jax': dict(jax_side, seconds=jax_seconds,
                  description='one vmapped sweep over the seeds'),
      'torch': dict(torch_side, seconds=torch_seconds,
                    description='pre-loaded tensors, one run per seed'),
      'difference': difference, 'standard_error': standard_error,
      'target': {'goal': goal, 'value': abs(difference),
                 'met': bool(abs(difference) <= goal)},
  }


def quality_markdown(result: dict) -> str:
  model = result['model']
  seeds = result['seeds']
  first_seed = result.get('first_seed', 0)
  rows = ["| seed | JAX | PyTorch |", '|---:|---:|---:|']
  for index in range(seeds):
    rows.append(f"| {first_seed + index} | "
                f"{result['jax']['test_loss'][index]:.2f} | "
                f"{result['torch']['test_loss'][index]:.2f} |")
  for key in ('mean', 'std'):
    rows.append(f"| {key} | {result['jax'][key]:.2f} | "
                f"{result['torch'][key]:.2f} |")
  target = result['target']
  return '\n'.join([
      f"Test loss (nats per image) after {result['epochs']} epochs, "
      f"{result['config']} {model['encoder_widths']} latent "
      f"{model['latent_size']}, batch {model['batch_size']}, Adam "
      f"{model['learning_rate']:g}; seeds {first_seed}..{first_seed + seeds - 1}"
      " on each side"
      + ("; seed s starts from the same (PyTorch's) initial weights on both "
         "sides, the shuffles and posterior noise are each side's own."
         if result.get('init') == 'torch' else
         ', each side drawing its own initial weights.'),
      '', *rows, '',
      f"JAX - PyTorch: {result['difference']:+.2f} nats (standard error "
      f"{result['standard_error']:.2f}); goal |difference| <= "
      f"{target['goal']}: {'met' if target['met'] else 'not met'}.",
  ]) + '\n'


