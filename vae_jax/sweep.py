"""A grid of configurations trained group by group (vae_jax.group), each
group one vmapped, sharded program, through the one driver (vae_jax.driver).

A sweep config is an ordinary experiment config plus `config.sweep`: a list of
members, each a dict of dotted config keys to values (built with
vae_jax.grid's `product`, `zipped` and `concat`). Members that differ only in
array-valued settings train as one group; settings that change shapes or code
split the grid into groups, trained one after another.

Multi-host: call `jax.distributed.initialize()` in every process (the
launcher's --distributed flag does); `jax.devices()` then spans all hosts and
the sweep axis is sharded over them. Process 0 writes the shared files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from vae_jax import checkpoint as checkpoint_lib
from vae_jax import data as data_lib
from vae_jax.data import pipeline
from vae_jax import driver
from vae_jax.grid import member_config, member_label
from vae_jax import group as group_lib
from vae_jax.group import is_primary
from vae_jax import loop
from vae_jax import metric_writers
from vae_jax import results_table
from vae_jax import train
from vae_jax import validation
from vae_jax import workdir as workdir_lib

log = logging.getLogger(__name__)


def run_sweep(config: ml_collections.ConfigDict, workdir: str | Path,
              overwrite: bool = False,
              dataset: data_lib.Dataset | None = None,
              devices: Sequence[jax.Device] | None = None,
              initial_params: Sequence[Any] | None = None) -> list[dict]:
  """Trains every member of config.sweep; returns one results dict per member.

  Writes to workdir: config.json, metrics.jsonl (a line per member and
  epoch), results.csv / results.md / results.json (settings and final test
  metrics of every member; rewritten after each group, with the members of
  the groups still to train marked pending), group_<g>/checkpoints (the
  stacked state of each group), and figures. An interrupted sweep resumes
  from each group's latest checkpoint; groups an earlier call finished keep
  their results and figures and are not compiled again.
  `devices` (default: all) carry the sweep axis; `dataset` replaces the
  configured data (tests pass small arrays). `initial_params`, one parameter
  tree per member of config.sweep (each at the member's own latent size),
  replaces the draws from the seeds, e.g. to start from another
  implementation's initial weights; the seeds still draw the shuffles and
  the posterior noise, and a resumed group starts from its checkpoint.
  """
  workdir = Path(workdir)
  if 'sweep' not in config:
    raise validation.ConfigError(
        'The config has no config.sweep: list the members with '
        'vae_jax.grid.product / zipped / concat, or train one configuration '
        'with vae_jax.train_and_evaluate (python -m launch.train).')
  grid = list(config.sweep)
  if not grid:
    raise ValueError('config.sweep is empty: list the members with '
                     'vae_jax.grid.product / zipped / concat.')
  if initial_params is not None and len(initial_params) != len(grid):
    raise ValueError(f'initial_params has {len(initial_params)} parameter '
                     f'trees for the {len(grid)} members of config.sweep; '
                     'give one per member, in the sweep\'s order.')
  configs = [member_config(config, overrides) for overrides in grid]
  for index, member in enumerate(configs):
    validation.validate(member, f' (sweep member {index}: '
                        f'{member_label(grid[index])})')
  data_settings = {json.dumps(c.data.to_dict(), sort_keys=True) for c in configs}
  if len(data_settings) > 1:
    raise ValueError('Members of one sweep must share config.data (they train '
                     'on the same arrays); run a separate sweep per dataset.')
  if dataset is None:
    dataset = pipeline.load_data(configs[0])
  for index, member in enumerate(configs):
    validation.validate_with_data(
        member, len(dataset.train_images),
        f' (sweep member {index}: {member_label(grid[index])})')
  if workdir_lib.check_writable(workdir, 'sweep'):
    validation.validate_epochs(
        config, checkpoint_lib.epochs_to_resume(workdir, config))
  lock, resuming = _claim_on_primary(workdir, config, overwrite)
  try:
    return _run_sweep(config, workdir, resuming, grid, configs, dataset,
                      devices, initial_params)
  finally:
    if lock is not None:
      lock.release()


def _claim_on_primary(workdir: Path, config, overwrite: bool):
  """Process 0 claims the workdir (and holds its lock); every process learns
  whether the sweep resumes. Returns (lock or None, resuming)."""
  lock, status, error = None, 0, None
  if is_primary():
    try:
      lock, resuming = workdir_lib.claim(
          workdir, 'sweep', checkpoint_lib.config_as_dict(config), overwrite,
          checkpoint_lib.config_differences)
      status = 1 if resuming else 2
    except Exception as caught:  # told to the others first, then raised
      error = caught
  if jax.process_count() > 1:
    status = int(multihost_utils.broadcast_one_to_all(np.int32(status)))
  if error is not None:
    raise error
  if status == 0:
    raise workdir_lib.WorkdirError(
        f'Process 0 refused the workdir {workdir}; its output says why.')
  return lock, status == 1


def _run_sweep(config, workdir: Path, resuming: bool, grid, configs, dataset,
               devices, initial_params) -> list[dict]:
  if is_primary():
    workdir_lib.record_data_source(workdir, dataset.name, dataset.source,
                                   dataset.image_shape)
  mesh = group_lib.sweep_mesh(devices)
  replicated = NamedSharding(mesh, PartitionSpec())
  train_data = pipeline.device_data(dataset.train_images, dataset.train_labels,
                                    replicated)
  test_data = pipeline.device_data(dataset.test_images, dataset.test_labels,
                                   replicated)

  results: list[dict | None] = [None] * len(configs)
  metrics_path = workdir / workdir_lib.METRICS_FILE
  all_lines = (driver.read_metrics(metrics_path, up_to_epoch=10**9)
               if resuming else [])
  groups = group_lib.group_members(configs)
  log.info('Sweep of %d members in %d group(s) on %d device(s).',
           len(configs), len(groups), mesh.size)
  earlier = _earlier_results(workdir) if resuming else {}
  done_earlier = _groups_done_earlier(groups, configs, earlier)
  for group_index, member_indices in enumerate(groups):
    if done_earlier[group_index]:
      for member in member_indices:
        results[member] = earlier.get(member)
      log.info('Group %d (of %d) finished in an earlier call: its results, '
               'checkpoints and figures stay as they are.', group_index,
               len(groups))
      continue
    group_configs = [configs[i] for i in member_indices]
    group = group_lib.SweepGroup(
        group_configs, dataset.image_shape, mesh,
        output_bias=train.initial_output_bias(group_configs[0].model,
                                              dataset.train_images))
    # A group keeps only its newest epochs: its members' best epochs differ.
    checkpoints = checkpoint_lib.RunCheckpoints(
        workdir_lib.group_dir(workdir, group_index),
        config.checkpoint.keep_latest,
        keep_best=False)
    latest = (checkpoints.latest_epoch() if resuming else None) or 0
    others = [l for l in all_lines if l['member'] not in member_indices]
    kept = [[l for l in all_lines if l['member'] == m and l['epoch'] <= latest]
            for m in member_indices]
    # metrics.jsonl holds every group's lines; this group's members append
    # theirs through their writers (each member is a TensorBoard run too).
    # In the file's order, so that a resumed sweep's file is the one an
    # uninterrupted sweep writes (lines interleaved by epoch).
    metrics = metric_writers.JsonlWriter(
        metrics_path, [l for l in all_lines
                       if l['member'] not in member_indices
                       or l['epoch'] <= latest])

    def on_diverged(state, epoch, positions, program, last_lines):
      for k in positions:
        member = member_indices[k]
        log.warning(driver.divergence_message(
            epoch, loop.non_finite_metrics(last_lines[k]), last_lines[k],
            configs[member], epoch - 1 if epoch > 1 else None,
            who=f'Sweep member {member} ({member_label(grid[member])})')
            .replace('start a new workdir', 'sweep it again in a new '
                     'workdir; the other members carry on'))
      # Their last finite state: the previous epoch's checkpoint, or the
      # initial state when it was the first epoch.
      source = (checkpoints.restore(epoch - 1, like=group.abstract_state())
                if epoch > 1 else program.initial_state())
      return program.freeze(state, source, positions)

    def progress_line(epoch, num_epochs, lines, img_per_s, seconds, eta):
      return (f'group {group_index} (of {len(groups)}) epoch {epoch}/'
              f'{num_epochs}  test loss '
              + ' '.join(f'{line["test_loss"]:.2f}' for line in lines)
              + f'  {img_per_s:.0f} img/s (all members)  {seconds:.1f} s  '
              f'group ETA {loop.format_duration(eta)}')

    outcome = driver.train_group(
        group, group_configs, dataset, train_data, test_data,
        checkpoints=checkpoints, resuming=resuming, metrics=metrics,
        earlier_lines=kept,
        files=([driver.MemberFiles(workdir_lib.member_dir(workdir, m),
                                   {'member': m})
                for m in member_indices] if is_primary() else None),
        on_diverged=on_diverged, progress_line=progress_line,
        initial_state=lambda: group.create_state(
            None if initial_params is None else
            [initial_params[i] for i in member_indices], member_indices),
        plots=config.plots)
    for k, member in enumerate(member_indices):
      results[member] = {
          'member': member, 'label': member_label(grid[member]),
          'settings': dict(grid[member]), 'group': group_index,
          **outcome.results[k]}
    all_lines = (list(metrics.lines) if is_primary() else
                 others + [{'member': m, **line}
                           for m, history in zip(member_indices,
                                                 outcome.histories)
                           for line in history])
    if is_primary() and group_index < len(groups) - 1:
      # A long sweep is readable while it trains: the members of the groups
      # to come are listed as pending.
      _write_sweep_results(workdir, config, configs, grid, groups, results,
                           all_lines, dataset.image_shape)
  if not is_primary():
    return results
  _write_sweep_results(workdir, config, configs, grid, groups, results,
                       all_lines, dataset.image_shape)
  if config.plots:
    from vae_jax import plots
    log.info('Drawing dataset.png ...')
    plots.plot_dataset(
        dataset.train_images, dataset.train_labels, workdir / 'dataset.png',
        f'{dataset.name.upper()}: training images, '
        f'{len(dataset.train_images):,} train / '
        f'{len(dataset.test_images):,} test, '
        f'{dataset.image_shape[0]}x{dataset.image_shape[1]}')
  return results


def _earlier_results(workdir: Path) -> dict[int, dict]:
  """The members results.json holds from an earlier call (finished or
  diverged; pending ones are left out), by member index."""
  path = workdir / workdir_lib.RESULTS_FILE
  if not path.exists():
    return {}
  return {r['member']: r for r in json.loads(path.read_text())
          if r.get('status') != results_table.PENDING}


def _groups_done_earlier(groups: list[list[int]], configs,
                         earlier: dict[int, dict]) -> list[bool]:
  """Per group, whether an earlier call trained it to its last epoch and
  wrote its results (results.json is written after each group, from its
  final checkpoint): such a group is neither recompiled nor redrawn.

  Process 0 decides (it wrote results.json) and tells the others, so that
  every process trains the same groups.
  """
  done = np.zeros(len(groups), np.int32)
  if is_primary():
    for g, members in enumerate(groups):
      num_epochs = configs[members[0]].num_epochs
      entries = [earlier.get(m) for m in members]
      # A sweep resumed with more epochs trains its finished groups further;
      # a diverged member stopped early either way.
      done[g] = all(e is not None and (e['epochs'] == num_epochs or
                                       e.get('status', 'finished')
                                       != 'finished')
                    for e in entries)
  if jax.process_count() > 1:
    done = np.asarray(multihost_utils.broadcast_one_to_all(done))
  return [bool(d) for d in done]


def _pending_result(member: int, grid, group_index: int, model_config,
                    image_shape) -> dict:
  return {'member': member, 'label': member_label(grid[member]),
          'settings': dict(grid[member]), 'group': group_index,
          'status': results_table.PENDING, 'epochs': 0, 'test_recon': None,
          'test_kl': None, 'test_loss': None, 'img_per_s': None,
          'num_params': train.count_params(model_config, image_shape)}


def _write_sweep_results(workdir: Path, config, configs, grid, groups,
                         results: list[dict | None], history: list[dict],
                         image_shape) -> None:
  """The results tables and (config.plots) the sweep-level figures, from the
  groups trained so far; members of groups still to train are pending."""
  group_of = {m: g for g, members in enumerate(groups) for m in members}
  table = [r if r is not None else
           _pending_result(m, grid, group_of[m], configs[m].model, image_shape)
           for m, r in enumerate(results)]
  results_table.write_results_table(workdir, table,
                                    config.get('reported', ()),
                                    checkpoint_lib.config_as_dict(config))
  if config.plots:
    from vae_jax import plots
    start = time.perf_counter()
    log.info('Drawing the sweep\'s figures (metrics_vs_*.png, '
             'curves_by_*.png) into %s ...', workdir)
    trained = [r for r in table if r['status'] != results_table.PENDING]
    trained_members = {r['member'] for r in trained}
    losses = {c.loss for c in configs}
    plots.plot_sweep(workdir, trained,
                     [l for l in history if l['member'] in trained_members],
                     losses.pop() if len(losses) == 1 else 'mixed')
    log.info('Drew the sweep\'s figures in %.1f s.',
             time.perf_counter() - start)

