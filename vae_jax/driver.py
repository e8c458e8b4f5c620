"""The one training driver: a run is a sweep group of one.

`train_group` trains one group (vae_jax.group) epoch by epoch: it restores
the group's checkpoint or draws its members' initial states, compiles, runs
the epoch loop (vae_jax.loop), and writes each member's results,
TensorBoard hyperparameters and figures. `train_and_evaluate` trains a
single config as a group of one whose files go to the workdir's root;
`vae_jax.sweep.run_sweep` trains a grid's groups one after another, each
member's files under member_NNN/. Where files go is the only difference.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from vae_jax import checkpoint as checkpoint_lib
from vae_jax import data as data_lib
from vae_jax.data import pipeline
from vae_jax import figure_data
from vae_jax import group as group_lib
from vae_jax import loop
from vae_jax import metric_writers
from vae_jax import train
from vae_jax import validation
from vae_jax import workdir as workdir_lib

log = logging.getLogger(__name__)

TRACKED_IMAGES = 8  # test images whose reconstructions are kept every epoch
# The final numbers a member's TensorBoard hyperparameters are shown with.
FINAL_METRICS = ('test_recon', 'test_kl', 'test_loss')


class DivergedError(RuntimeError):
  """Training produced a NaN or infinite metric."""


def read_metrics(path: Path, up_to_epoch: int) -> list[dict]:
  """The metrics.jsonl lines of epochs <= up_to_epoch ([] without a file)."""
  if not path.exists():
    return []
  lines = [json.loads(line) for line in path.read_text().splitlines() if line]
  return [line for line in lines if line['epoch'] <= up_to_epoch]


def divergence_message(epoch: int, metrics: list[str], line: dict,
                       config: ml_collections.ConfigDict, kept: int | None,
                       who: str = 'The run') -> str:
  """One paragraph: where it diverged, what was kept, what to try."""
  values = ', '.join(f'{k} = {line[k]}' for k in metrics)
  kept_text = (f'the last finite checkpoint (epoch {kept}) is kept as latest'
               if kept else 'no epoch finished with finite metrics')
  return (f'{who} diverged at epoch {epoch}: {values}; {kept_text}. Likely '
          f'causes: a learning rate too high (config.learning_rate = '
          f'{config.learning_rate:g}), a small prior_std ({config.prior_std:g}'
          f') or a large beta ({config.beta:g}). Lower the learning rate and '
          'start a new workdir.')


# ------------------------------------------------------------------ one group
@dataclasses.dataclass(frozen=True)
class MemberFiles:
  """Where one member's files go.

  directory: its TensorBoard events, reconstructions_by_epoch.npz and
    figures (the workdir itself for a run).
  fields: what its metrics.jsonl lines carry besides the epoch and the
    numbers ({'member': index} in a sweep's shared file, {} for a run).
  """

  directory: Path
  fields: dict


class SingleModelCheckpoints:
  """A run's checkpoints: its one model's state without the members axis,
  as a run's workdir holds it (and evaluation restores it)."""

  def __init__(self, checkpoints: checkpoint_lib.RunCheckpoints,
               sharding: NamedSharding):
    self._checkpoints = checkpoints
    self._sharding = sharding

  def latest_epoch(self) -> int | None:
    return self._checkpoints.latest_epoch()

  def save(self, epoch: int, state, test_loss: float) -> None:
    self._checkpoints.save(epoch, jax.tree.map(lambda x: x[0], state),
                           test_loss)

  def restore(self, epoch: int, like):
    single = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype,
                                          sharding=NamedSharding(
                                              leaf.sharding.mesh,
                                              PartitionSpec())), like)
    state = self._checkpoints.restore(epoch, like=single)
    return jax.device_put(jax.tree.map(lambda x: x[None], state),
                          self._sharding)

  def close(self) -> None:
    self._checkpoints.close()


@dataclasses.dataclass
class GroupOutcome:
  """What `train_group` leaves: per member (in the group's order) its
  results dict, its metrics lines and the epoch it diverged at (or None)."""

  results: list[dict]
  histories: list[list[dict]]
  diverged_at: list[int | None]
  compile_seconds: float


def _member_result(history: list[dict], diverged_at: int | None,
                   compile_seconds: float, train_seconds: float,
                   num_params: int) -> dict:
  finite = [line for line in history if not line.get('diverged')]
  final = finite[-1] if finite else {'epoch': 0}
  return {
      'status': ('finished' if diverged_at is None
                 else f'diverged at epoch {diverged_at}'),
      'epochs': final['epoch'],
      **{k: final.get(k) for k in FINAL_METRICS},
      'best_test_loss': min((l['test_loss'] for l in finite),
                            default=None),
      'img_per_s': (float(np.median([l['img_per_s'] for l in finite]))
                    if finite else None),
      'compile_seconds': compile_seconds,
      # Shared by a group's members, which train as one program; summed over
      # every epoch, across resumed calls.
      'group_train_seconds': train_seconds,
      # The member's own model: a masked latent size counts as itself, not
      # as the group's largest.
      'num_params': num_params,
  }


def train_group(group: group_lib.SweepGroup,
                configs: Sequence[ml_collections.ConfigDict],
                dataset: data_lib.Dataset, train_data: dict, test_data: dict,
                *, checkpoints, resuming: bool, metrics: metric_writers.JsonlWriter,
                earlier_lines: Sequence[list[dict]],
                files: Sequence[MemberFiles] | None,
                on_diverged: Callable[[Any, int, list[int], Any, list[dict]],
                                      Any],
                progress_line: Callable[[int, int, list[dict], float, float,
                                         float], str],
                initial_state: Callable[[], Any],
                plots: bool) -> GroupOutcome:
  """Trains one group from its latest checkpoint (or its initial state) to
  its configs' num_epochs.

  Args:
    group: the compiled group of `configs` (each member's config).
    dataset: the data; train_data/test_data: it on the devices.
    checkpoints: the group's RunCheckpoints (or SingleModelCheckpoints).
    resuming: whether the workdir holds this training's earlier epochs.
    metrics: the metrics.jsonl writer, holding every line the file keeps
      (other groups' included); its `flush` rewrites the file.
    earlier_lines: per member, its lines up to the checkpoint resumed from.
    files: per member, where its files go; None on a process that writes
      nothing.
    on_diverged: (state, epoch, positions, program, each member's last
      line) -> the state to go on with, or raises loop.Diverged to stop.
    progress_line: (epoch, num_epochs, last lines, img/s, seconds, eta) ->
      the progress log line.
    initial_state: draws the group's initial stacked state.
    plots: whether to draw each member's figures at the end.
  """
  log.info('Compiling model %s, %d member(s): its initial state, training '
           'epoch and evaluation (often 10-40 s on a CPU) ...',
           configs[0].model.name, group.count)
  start_epoch = 0
  latest = checkpoints.latest_epoch() if resuming else None
  if latest is not None:
    state = checkpoints.restore(latest, like=group.abstract_state())
    start_epoch = latest
    log.info('Resuming from epoch %d.', latest)
  else:
    state = initial_state()
  histories = [[{k: v for k, v in l.items() if k != 'member'}
                for l in lines if l['epoch'] <= start_epoch]
               for lines in earlier_lines]
  members = []
  for k, history in enumerate(histories):
    resumed_divergence = [l['epoch'] for l in history if l.get('diverged')]
    member_files = files[k] if files is not None else None
    members.append(loop.MemberLog(
        history,
        metric_writers.MultiWriter([
            metrics.with_fields(**member_files.fields),
            metric_writers.TensorBoardWriter(
                member_files.directory, purge_step=start_epoch + 1)])
        if member_files else None,
        member_files.directory / workdir_lib.RECONSTRUCTIONS_BY_EPOCH
        if member_files else None,
        resumed_divergence[0] if resumed_divergence else None))

  compile_start = time.perf_counter()
  epoch_fn = group.train_epoch.lower(state, group.hparams, train_data,
                                     jnp.int32(start_epoch + 1)).compile()
  evaluate_fn = group.evaluate.lower(state.params, group.hparams,
                                     test_data, state.batch_stats).compile()
  compile_seconds = time.perf_counter() - compile_start
  log.info('Model %s, %d member(s) (padded to %d): compiled in %.1f s.',
           configs[0].model.name, group.count, group.size, compile_seconds)
  tracked_inputs = (dataset.test_images[:TRACKED_IMAGES].astype(np.float32)
                    / 255)
  program = group_lib.GroupProgram(
      group, epoch_fn, evaluate_fn, train_data, test_data, tracked_inputs,
      dataset.test_labels[:TRACKED_IMAGES],
      diverged=[k for k, m in enumerate(members) if m.diverged_at is not None],
      initial_state=initial_state)
  program.frozen = (jax.tree.map(jnp.copy, state) if program.diverged
                    else None)  # a copy: the epoch donates `state`

  num_epochs = configs[0].num_epochs
  images_per_epoch = (len(dataset.train_images) // configs[0].batch_size
                      * configs[0].batch_size)

  def progress(epoch, img_per_s, seconds, eta):
    log.info(progress_line(epoch, num_epochs, [m.history[-1] for m in members],
                           img_per_s, seconds, eta))

  try:
    state = loop.train_epochs(
        program, state, members, start_epoch=start_epoch,
        num_epochs=num_epochs, images_per_epoch=images_per_epoch,
        checkpoints=checkpoints, tracked_inputs=tracked_inputs,
        on_diverged=lambda state, epoch, positions: on_diverged(
            state, epoch, positions, program,
            [m.history[-1] for m in members]),
        flush=metrics.flush if files is not None else lambda: None,
        progress=progress)
  except loop.Diverged:
    for member in members:
      if member.writer is not None:
        member.writer.close()
    raise
  finally:
    checkpoints.close()

  # Every epoch's training time, those of earlier (resumed) calls included:
  # each line's rate is the epoch's images over its training seconds.
  rate_of_epoch = {l['epoch']: l['img_per_s'] for m in members
                   for l in m.history}
  train_seconds = sum(images_per_epoch / rate
                      for rate in rate_of_epoch.values())
  results = [_member_result(m.history, m.diverged_at, compile_seconds,
                            train_seconds,
                            train.count_params(c.model, dataset.image_shape))
             for m, c in zip(members, configs)]
  final_params = group.unstack(state.params)
  final_batch_stats = group.unstack(state.batch_stats)
  member_hparams = group.unstack(group.hparams)
  drawn = [k for k, m in enumerate(members)
           if plots and files is not None and m.diverged_at is None]
  if drawn:
    draw_start = time.perf_counter()
    where = (str(files[drawn[0]].directory) if len(drawn) == 1 else
             f'{files[drawn[0]].directory} .. {files[drawn[-1]].directory.name}')
    log.info('Drawing the figures of %d model(s) (samples, reconstructions, '
             'latent space, curves) into %s ...', len(drawn), where)
  for k, (member, config) in enumerate(zip(members, configs)):
    if files is None:
      continue
    member.writer.write_hparams(
        metric_writers.flat_settings(checkpoint_lib.config_as_dict(config)),
        {key: results[k][key] for key in FINAL_METRICS}
        if results[k]['epochs'] else None)
    member.writer.close()
    if plots and member.diverged_at is None:
      from vae_jax import plots as plots_lib  # matplotlib only when drawing
      files[k].directory.mkdir(exist_ok=True)
      figures = figure_data.compute_run_figures(
          group.model, final_params[k], member_hparams[k], dataset,
          config.model.variational, final_batch_stats[k])
      plots_lib.plot_run(files[k].directory, figures,
                         [l for l in member.history if not l.get('diverged')],
                         loss=config.loss)
  if drawn:
    log.info('Drew the figures in %.1f s.', time.perf_counter() - draw_start)
  return GroupOutcome(results, [m.history for m in members],
                      [m.diverged_at for m in members], compile_seconds)


# ------------------------------------------------------------------- one run
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path,
                       overwrite: bool = False,
                       dataset: data_lib.Dataset | None = None) -> dict:
  """Trains `config` in `workdir`, resuming a run of the same config there.

  Writes config.json, checkpoints/, metrics.jsonl (a line per epoch),
  results.json and the PNG figures. `dataset` replaces the configured data
  (tests pass small arrays). Returns the results dict.

  Raises:
    validation.ConfigError: a config value out of range (before anything is
      written).
    workdir_lib.WorkdirError: the workdir is not this run's to write.
    DivergedError: a metric became NaN or infinite; the run stopped there,
      its latest checkpoint is the last finite epoch, and results.json says
      where it diverged.
  """
  if 'sweep' in config:
    raise validation.ConfigError(
        f'config.sweep lists {len(config.sweep)} members, and a run trains '
        'one configuration: train the sweep with vae_jax.run_sweep (python '
        '-m launch.sweep), or delete config.sweep.')
  validation.validate(config)
  if dataset is None:
    dataset = pipeline.load_data(config)
  validation.validate_with_data(config, len(dataset.train_images))
  if workdir_lib.check_writable(workdir, 'run'):
    validation.validate_epochs(
        config, checkpoint_lib.epochs_to_resume(workdir, config))
  lock, resuming = workdir_lib.claim(
      workdir, 'run', checkpoint_lib.config_as_dict(config), overwrite,
      checkpoint_lib.config_differences)
  try:
    return _train_run(config, Path(workdir), resuming, dataset)
  finally:
    lock.release()


def _run_progress_line(epoch, num_epochs, lines, img_per_s, seconds, eta):
  line = lines[0]
  return (f'epoch {epoch}/{num_epochs}  train loss {line["train_loss"]:.2f}  '
          f'test loss {line["test_loss"]:.2f} (recon {line["test_recon"]:.2f}'
          f', kl {line["test_kl"]:.2f})  {img_per_s:.0f} img/s  '
          f'{seconds:.1f} s  ETA {loop.format_duration(eta)}')


def _stop(state, epoch, positions, program, last_lines):
  raise loop.Diverged


def _train_run(config: ml_collections.ConfigDict, workdir: Path,
               resuming: bool, dataset: data_lib.Dataset) -> dict:
  log.info('Data: %s, %d train / %d test images of %s from %s',
           dataset.name, len(dataset.train_images), len(dataset.test_images),
           dataset.image_shape, dataset.source)
  workdir_lib.record_data_source(workdir, dataset.name, dataset.source,
                                 dataset.image_shape)
  # One device: a run is one model, and a larger mesh would only pad it.
  mesh = group_lib.sweep_mesh(jax.devices()[:1])
  replicated = NamedSharding(mesh, PartitionSpec())
  group = group_lib.SweepGroup(
      [config], dataset.image_shape, mesh,
      output_bias=train.initial_output_bias(config.model,
                                            dataset.train_images))
  checkpoints = SingleModelCheckpoints(
      checkpoint_lib.RunCheckpoints(workdir, config.checkpoint.keep_latest),
      group.sharded)
  metrics_path = workdir / workdir_lib.METRICS_FILE
  latest = checkpoints.latest_epoch() if resuming else None
  earlier = (read_metrics(metrics_path, up_to_epoch=latest)
             if latest is not None else [])
  metrics = metric_writers.JsonlWriter(metrics_path, list(earlier))
  try:
    outcome = train_group(
        group, [config], dataset,
        pipeline.device_data(dataset.train_images, dataset.train_labels,
                             replicated),
        pipeline.device_data(dataset.test_images, dataset.test_labels,
                             replicated),
        checkpoints=checkpoints, resuming=resuming, metrics=metrics,
        earlier_lines=[earlier], files=[MemberFiles(workdir, {})],
        on_diverged=_stop, progress_line=_run_progress_line,
        initial_state=group.create_state, plots=config.plots)
  except loop.Diverged:
    history = metrics.lines
    line = history[-1]
    epoch = line['epoch']
    diverged = loop.non_finite_metrics(line)
    kept = epoch - 1 if epoch > 1 else None
    message = divergence_message(epoch, diverged, line, config, kept)
    finite = history[-2] if len(history) > 1 else {}
    workdir_lib.atomic_write_json(workdir / workdir_lib.RESULTS_FILE, {
        'status': 'diverged', 'diverged_epoch': epoch,
        'diverged_metrics': diverged, 'epochs': kept or 0,
        **{k: finite[k] for k in FINAL_METRICS if k in finite},
        'message': message})
    raise DivergedError(message) from None
  results = dict(outcome.results[0])
  del results['group_train_seconds']  # a sweep's figure
  workdir_lib.atomic_write_json(workdir / workdir_lib.RESULTS_FILE, results)
  return results
