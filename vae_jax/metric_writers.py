"""Where a run's metrics go: one writer interface, several sinks.

In the style of clu's MetricWriter (write_scalars, write_images,
write_hparams, flush, close). The training loops write every epoch through
a `MultiWriter` of

* `JsonlWriter`: metrics.jsonl, a line per epoch (and sweep member), the
  file vae_jax reads back to resume, report and plot; and
* `TensorBoardWriter`: TensorBoard event files (through tensorboardX, no
  TensorFlow), so that `tensorboard --logdir WORKDIR` shows a run, or every
  member of a sweep as a run of its own, with its curves, its hyperparameters
  and the tracked test digits' reconstructions after each epoch.

The progress line (images/s, ETA) is the loops' own log line.
"""

from __future__ import annotations

import abc
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vae_jax import workdir as workdir_lib


class MetricWriter(abc.ABC):
  """Receives a run's metrics, step by step (a step is an epoch)."""

  @abc.abstractmethod
  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    """Numbers of one step, e.g. {'train_loss': 151.2, 'test_kl': 5.1}."""

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """Images of one step: [H, W] or [H, W, 3] arrays with values in [0, 1]."""

  def write_hparams(self, hparams: Mapping[str, Any],
                    metrics: Mapping[str, float] | None = None) -> None:
    """The run's settings (flat: name -> number, string or bool) and, for
    writers that show them together, its final metrics."""

  def flush(self) -> None:
    """Makes everything written so far durable."""

  def close(self) -> None:
    self.flush()


class MultiWriter(MetricWriter):
  """Passes every call on to each of `writers`."""

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = list(writers)

  def write_scalars(self, step, scalars):
    for writer in self.writers:
      writer.write_scalars(step, scalars)

  def write_images(self, step, images):
    for writer in self.writers:
      writer.write_images(step, images)

  def write_hparams(self, hparams, metrics=None):
    for writer in self.writers:
      writer.write_hparams(hparams, metrics)

  def flush(self):
    for writer in self.writers:
      writer.flush()

  def close(self):
    for writer in self.writers:
      writer.close()


def finite_or_none(line: Mapping[str, Any]) -> dict:
  """line with NaN and infinite floats as None (strict JSON has neither)."""
  return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
          for k, v in line.items()}


class JsonlWriter(MetricWriter):
  """metrics.jsonl: each step appends {'epoch': step, **fields, **scalars}.

  `lines` is the list the lines are appended to, shared with whoever reads
  the history (a resumed run passes the lines it kept; a sweep shares one
  list between its members' writers, see `with_fields`). flush() rewrites
  the whole file atomically, so a crash leaves the previous file whole and a
  resumed run drops the lines after its checkpoint by writing fewer.
  Non-finite numbers are written as null.
  """

  def __init__(self, path: Path, lines: list[dict],
               fields: Mapping[str, Any] | None = None):
    self.path = Path(path)
    self.lines = lines
    self.fields = dict(fields or {})

  def with_fields(self, **fields) -> JsonlWriter:
    """A writer into the same file and lines whose lines carry `fields` too
    (a sweep member's: member=index)."""
    return JsonlWriter(self.path, self.lines, {**self.fields, **fields})

  def write_scalars(self, step, scalars):
    self.lines.append({**self.fields, 'epoch': step, **scalars})

  def flush(self):
    workdir_lib.atomic_write_text(self.path, ''.join(
        json.dumps(finite_or_none(line), allow_nan=False) + '\n'
        for line in self.lines))


def _tag(name: str) -> str:
  """'train_loss' -> 'train/loss': TensorBoard groups charts by prefix."""
  head, _, rest = name.partition('_')
  return f'{head}/{rest}' if head in ('train', 'test') and rest else name


class TensorBoardWriter(MetricWriter):
  """TensorBoard event files in `logdir` (events.out.tfevents.*).

  A resumed run passes purge_step (its first new epoch): TensorBoard then
  hides what an interrupted attempt had written from that step on. Only
  finite numbers are written (a diverged epoch's NaN is in metrics.jsonl).
  """

  def __init__(self, logdir: Path, purge_step: int | None = None):
    # tensorboardX writes the event format without TensorFlow.
    import tensorboardX
    Path(logdir).mkdir(parents=True, exist_ok=True)
    self._writer = tensorboardX.SummaryWriter(
        str(logdir), purge_step=purge_step, flush_secs=3600)

  def write_scalars(self, step, scalars):
    for name, value in scalars.items():
      if (isinstance(value, (int, float, np.number))
          and not isinstance(value, bool) and math.isfinite(value)):
        self._writer.add_scalar(_tag(name), float(value), step)

  def write_images(self, step, images):
    for name, image in images.items():
      image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
      self._writer.add_image(name, image, step,
                             dataformats='HW' if image.ndim == 2 else 'HWC')

  def write_hparams(self, hparams, metrics=None):
    from tensorboardX.summary import hparams as hparams_summary
    metrics = {_tag(k): float(v) for k, v in (metrics or {}).items()
               if v is not None and math.isfinite(v)}
    values = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
              for k, v in hparams.items()}
    for summary in hparams_summary(values, metrics):
      self._writer.file_writer.add_summary(summary)
    # The hparams dashboard reads each metric's value from the scalars of the
    # same tag in this run; they are the last step's, already written.

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()


def flat_settings(config: Mapping[str, Any], prefix: str = '') -> dict:
  """A nested config dict as {'model.latent_size': 2, ...}; tuples and
  other values as their str (TensorBoard's hparams take numbers, strings and
  bools)."""
  flat = {}
  for key, value in config.items():
    name = f'{prefix}{key}'
    if isinstance(value, Mapping):
      flat.update(flat_settings(value, name + '.'))
    elif isinstance(value, (bool, int, float, str)):
      flat[name] = value
    elif value is not None:
      flat[name] = str(value)
  return flat


def reconstruction_strip(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
  """Tracked test digits [N, H, W] in a row above their reconstructions."""
  return np.concatenate([np.concatenate(list(inputs), axis=1),
                         np.concatenate(list(outputs), axis=1)], axis=0)
