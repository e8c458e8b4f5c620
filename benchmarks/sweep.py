"""A K-member vmapped sweep beside the same K runs one after another."""

from __future__ import annotations

import tempfile
import time

import numpy as np

from vae_jax.data import pipeline
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import group as group_lib
from vae_jax import optimizers
from vae_jax import train


def benchmark_sweep(config, members: int, epochs: int) -> dict:
  """Wall time (compile included) of K runs one after another vs one K-member sweep."""
  from vae_jax import sweep
  config.num_epochs = epochs
  config.plots = False
  dataset = pipeline.load_data(config)
  grid = grid_lib.product(seed=list(range(members)))
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    sequential = [driver.train_and_evaluate(grid_lib.member_config(config, m),
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




def _one_after_another(fn, in_axes: tuple):
  """fn over the leading (members) axis of the arguments whose in_axes
  entry is 0, the members one after another in one program (lax.map): the
  alternative to the sweep's vmap that execution='map' measures."""
  import jax

  def mapped(*args):
    member_args = tuple(arg for arg, axis in zip(args, in_axes) if axis == 0)

    def member(one):
      one = iter(one)
      return fn(*[next(one) if axis == 0 else arg
                  for arg, axis in zip(args, in_axes)])
    return jax.lax.map(member, member_args)
  return mapped


def benchmark_groups(config, rounds: int, train_images: int,
                     execution: str = 'vmap') -> dict:
  """Each group of config.sweep as its vmapped program beside its members'
  single-run programs, epochs interleaved round by round.

  Per round: one epoch of the group, then one epoch of each member alone
  (compiled beforehand, on the same first `train_images` images). A round's
  ratio is the members' summed single-run seconds over the group's seconds,
  i.e. the group's aggregate images/s over that of the runs one after
  another; the median over rounds is reported, since single epochs on a
  shared CPU move from one to the next (docs/cpu_kernels.md).
  """
  import jax
  import jax.numpy as jnp
  from vae_jax import models
  config.data.train_subset = train_images
  dataset = pipeline.load_data(config)
  configs = [grid_lib.member_config(config, m) for m in config.sweep]
  mesh = group_lib.sweep_mesh()
  train_data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  groups = []
  for indices in group_lib.group_members(configs):
    members = [configs[i] for i in indices]
    group = group_lib.SweepGroup(members, dataset.image_shape, mesh)
    if execution == 'map' and group.size > 1:
      group.train_epoch = jax.jit(
          _one_after_another(group.member_epoch, (0, 0, None, None)),
          donate_argnums=0, out_shardings=group.sharded)
    group_state = group.create_state()
    singles = []
    for member in members:
      model = models.build_model(member.model, dataset.image_shape)
      optimizer = optimizers.make_optimizer(member.optimizer)
      hparams = train.hyperparams_from_config(member)
      epoch = jax.jit(train.make_train_epoch(
          model, optimizer, member.batch_size, member.data.preprocessing,
          train.reconstruction_loss_for(member), member.scan_unroll),
                      donate_argnums=0)
      state = train.create_train_state(model, optimizer, hparams,
                                       dataset.image_shape)
      singles.append([epoch, state, hparams])

    def run_group(epoch_index):
      nonlocal group_state
      group_state, metrics = group.train_epoch(
          group_state, group.hparams, train_data, jnp.int32(epoch_index))
      jax.block_until_ready(metrics)

    def run_single(k, epoch_index):
      epoch, state, hparams = singles[k]
      singles[k][1], metrics = epoch(state, hparams, train_data,
                                     jnp.int32(epoch_index))
      jax.block_until_ready(metrics)

    run_group(1)  # compiles
    for k in range(len(singles)):
      run_single(k, 1)
    ratios, group_seconds, single_seconds = [], [], []
    for round_index in range(rounds):
      start = time.perf_counter()
      run_group(round_index + 2)
      seconds = time.perf_counter() - start
      singles_total = 0.0
      for k in range(len(singles)):
        start = time.perf_counter()
        run_single(k, round_index + 2)
        singles_total += time.perf_counter() - start
      group_seconds.append(seconds)
      single_seconds.append(singles_total)
      ratios.append(singles_total / seconds)
    images = (len(dataset.train_images) // members[0].batch_size
              * members[0].batch_size)
    groups.append({
        'members': [grid_lib.member_label(config.sweep[i]) for i in indices],
        'group_img_per_s': float(len(indices) * images
                                 / np.median(group_seconds)),
        'serial_img_per_s': float(len(indices) * images
                                  / np.median(single_seconds)),
        'round_ratios': ratios,
        'median_ratio': float(np.median(ratios)),
    })
  return {'rounds': rounds, 'train_images': train_images,
          'execution': execution,
          'devices': [str(d) for d in jax.devices()], 'groups': groups}


def groups_markdown(result: dict) -> str:
  lines = [
      f"Each group's vmapped epoch beside its members' single-run epochs, "
      f"{result['rounds']} interleaved rounds on {result['train_images']:,} "
      f"({result['execution']}) "
      'training images; ratio = group aggregate images/s over the runs one '
      'after another (median of per-round ratios).', '',
      '| group | members | group img/s | one after another img/s | ratio '
      '(median) | per-round ratios |',
      '|---|---|---:|---:|---:|---|']
  for index, group in enumerate(result['groups']):
    lines.append(
        f"| {index} | {len(group['members'])}: "
        f"{'; '.join(group['members'])} | {group['group_img_per_s']:,.0f} | "
        f"{group['serial_img_per_s']:,.0f} | {group['median_ratio']:.2f}x | "
        f"{', '.join(f'{r:.2f}' for r in group['round_ratios'])} |")
  return '\n'.join(lines) + '\n'
