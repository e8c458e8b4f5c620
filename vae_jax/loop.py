"""The epoch loop every training shares: a run is a group of one member.

`train_epochs` drives a compiled `EpochProgram` (one model, or a sweep
group's members stacked into one program) from a start epoch to the last:
it trains, evaluates, turns each model's numbers into its metrics line,
detects divergence, saves the checkpoint, writes each model's metrics
(metrics.jsonl, TensorBoard) and tracked reconstructions, and logs
progress with images/s and an ETA. What differs between a run and a sweep
is in the program (vmapped or not) and in `on_diverged`: a run stops, a
sweep freezes the diverged members and trains the others on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from vae_jax import metric_writers
from vae_jax import workdir as workdir_lib
from vae_jax.data import dataset as dataset_lib

log = logging.getLogger('vae_jax.loop')


class EpochProgram(Protocol):
  """The compiled programs of one model or of a group trained as one."""

  count: int  # models trained at once

  def train_epoch(self, state: Any, epoch: int) -> tuple[Any, list[dict]]:
    """One epoch; the new state and each model's train metrics (host)."""

  def evaluate(self, state: Any) -> list[dict]:
    """Each model's test metrics (host)."""

  def reconstruct(self, state: Any) -> list[np.ndarray]:
    """Each model's reconstructions [N, H, W] of the tracked test digits."""


@dataclasses.dataclass
class MemberLog:
  """One member of the program (a model trained in it): its history and
  where its numbers go.

  history: its metrics lines so far (a resumed run's kept lines), one dict
    per epoch; the loop appends to it.
  writer: where each epoch's numbers and reconstruction strip go (None on
    a process that writes nothing).
  tracked_path: its reconstructions_by_epoch.npz (None: not written).
  diverged_at: the epoch its metrics became non-finite, if they did.
  """

  history: list[dict]
  writer: metric_writers.MetricWriter | None = None
  tracked_path: Path | None = None
  diverged_at: int | None = None


class Diverged(Exception):
  """Raised by an `on_diverged` that stops the loop."""


def track_reconstructions(path: Path, epoch: int, inputs: np.ndarray,
                          outputs: np.ndarray) -> None:
  """Appends one epoch's outputs [N, H, W] (in [0, 1]) to the file at
  `path`; later epochs left by an interrupted run are dropped first.

  The file is an uncompressed npz of uint8 pixels (inputs [N, H, W], epochs
  [E], outputs [E, N, H, W]): it is rewritten every epoch, so its cost
  grows with the epochs, and compressing it would dominate a late epoch's
  bookkeeping. Files of float pixels, compressed, are converted on append.
  """
  epochs, stacked = [], []
  if path.exists():
    with np.load(path, allow_pickle=False) as saved:
      keep = saved['epochs'] < epoch
      epochs = list(saved['epochs'][keep])
      stacked = list(dataset_lib.as_grey_levels(saved['outputs'][keep]))
  epochs.append(epoch)
  stacked.append(dataset_lib.as_grey_levels(outputs))
  with workdir_lib.atomic_path(path) as temporary, open(temporary, 'wb') as f:
    np.savez(f, inputs=dataset_lib.as_grey_levels(inputs), epochs=np.asarray(epochs),
             outputs=np.stack(stacked))


def read_tracked_reconstructions(path: Path
                                 ) -> tuple[np.ndarray, list[int], np.ndarray]:
  """The file of `track_reconstructions`: inputs [N, H, W], the epochs, and
  outputs [E, N, H, W], pixels as float32 in [0, 1]."""
  with np.load(path, allow_pickle=False) as saved:
    inputs, epochs, outputs = (saved['inputs'], saved['epochs'].tolist(),
                               saved['outputs'])
  return (dataset_lib.as_unit_float(inputs), epochs,
          dataset_lib.as_unit_float(outputs))


def format_duration(seconds: float) -> str:
  """A duration as a person reads it: '45 s', '12 min 05 s', '2 h 07 min'."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds} s'
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f'{minutes} min {seconds:02d} s'
  hours, minutes = divmod(minutes, 60)
  return f'{hours} h {minutes:02d} min'


def non_finite_metrics(line: dict) -> list[str]:
  """The metric names of an epoch's line whose values are NaN or infinite."""
  return [k for k, v in line.items()
          if isinstance(v, float) and not np.isfinite(v)]


def train_epochs(program: EpochProgram, state: Any,
                 members: Sequence[MemberLog],
                 *, start_epoch: int, num_epochs: int, images_per_epoch: int,
                 checkpoints, tracked_inputs: np.ndarray,
                 on_diverged: Callable[[Any, int, list[int]], Any],
                 flush: Callable[[], None] = lambda: None,
                 progress: Callable[[int, float, float, float],
                                    None] | None = None
                 ) -> Any:
  """Trains epochs start_epoch + 1 .. num_epochs; returns the final state.

  Args:
    program: the compiled epoch, evaluation and reconstruction.
    state: the state after start_epoch (restored or initial).
    members: one per member of the program, in its order.
    start_epoch, num_epochs: the epochs to train are the ones after
      start_epoch up to num_epochs.
    images_per_epoch: training images each model sees per epoch.
    checkpoints: a checkpoint.RunCheckpoints.
    tracked_inputs: the tracked test digits [N, H, W] in [0, 1].
    on_diverged: called as on_diverged(state, epoch, indices) when the
      models at `indices` produced non-finite numbers this epoch (their
      lines are written, marked 'diverged'); returns the state to go on
      with, or raises Diverged to stop before this epoch is checkpointed.
    flush: called once per epoch after the models' writers have their
      numbers (e.g. rewrites a shared metrics.jsonl).
    progress: called as progress(epoch, img_per_s of all models, seconds,
      eta_seconds) to log the epoch (the models' histories hold its lines).
  """
  run_start = time.perf_counter()
  for epoch in range(start_epoch + 1, num_epochs + 1):
    epoch_start = time.perf_counter()
    state, train_metrics = program.train_epoch(state, epoch)
    train_seconds = time.perf_counter() - epoch_start
    test_metrics = program.evaluate(state)
    seconds = time.perf_counter() - epoch_start
    img_per_s = images_per_epoch / train_seconds
    newly = []
    for k, member in enumerate(members):
      if member.diverged_at is not None:
        continue
      line = {f'train_{n}': float(v) for n, v in train_metrics[k].items()}
      line.update({f'test_{n}': float(v) for n, v in test_metrics[k].items()})
      line.update(img_per_s=img_per_s, seconds=seconds)
      if non_finite_metrics(line):
        line['diverged'] = True
        member.diverged_at = epoch
        newly.append(k)
      member.history.append({'epoch': epoch, **line})
      if member.writer is not None:
        member.writer.write_scalars(epoch, line)
    if newly:
      for member in members:
        if member.writer is not None:
          member.writer.flush()
      flush()
      state = on_diverged(state, epoch, newly)
    # A run's checkpoint carries its test loss; a group's, the mean over
    # the members still training.
    finite = [m.history[-1]['test_loss'] for m in members
              if m.diverged_at is None]
    checkpoints.save(epoch, state,
                     float(np.mean(finite)) if finite else float('inf'))
    tracked = program.reconstruct(state)
    for k, member in enumerate(members):
      if member.diverged_at is not None:
        continue
      if member.writer is not None:
        member.writer.write_images(epoch, {
            'reconstructions': metric_writers.reconstruction_strip(
                tracked_inputs, tracked[k])})
        member.writer.flush()
      if member.tracked_path is not None:
        member.tracked_path.parent.mkdir(exist_ok=True)
        track_reconstructions(member.tracked_path, epoch, tracked_inputs,
                              tracked[k])
    flush()
    if progress is not None:
      eta = ((time.perf_counter() - run_start) / (epoch - start_epoch)
             * (num_epochs - epoch))
      progress(epoch, img_per_s * program.count,
               time.perf_counter() - epoch_start, eta)
  return state
