"""Orbax checkpoints of a run, and the guard that keeps runs from clobbering each other.

Layout of a workdir:
  config.json               the config the run was started with
  checkpoints/latest/<epoch>  the newest `keep_latest` epochs
  checkpoints/best/<epoch>    the epoch with the lowest test loss
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import ml_collections
import orbax.checkpoint as ocp

CONFIG_FILE = 'config.json'

# Keys that may differ between the run in a workdir and the config resuming it:
# they say where data lives, how long or how fast to train, not what is
# trained.
RESUMABLE_KEYS = frozenset({
    'num_epochs', 'data.dir', 'data.cache_dir', 'data.download',
    'checkpoint.keep_latest', 'plots', 'scan_unroll',
})


# Config keys added after runs were saved, with the value that reproduces how
# such a run behaved; a saved config lacking one still resumes at this value.
ADDED_KEYS_DEFAULTS = {
    'loss': 'bce',
    'model.conv_impl': 'auto',
    'model.num_classes': 0,
    'data.test_subset': None,
    'model.encoder_conv_channels': [],
    'model.hidden_size': 47,
    'model.variational': True,
    'perceptual.classifier_dir': None,
    'perceptual.layers': ['relu2', 'relu4'],
    'perceptual.weight': 0.01,
    'scan_unroll': 1,
}


class WorkdirError(RuntimeError):
  """The workdir holds something this run must not resume or overwrite."""


def flatten_config(tree: Any, prefix: str = '') -> dict[str, Any]:
  """A nested config dict as {'model.latent_size': 20, ...} (tuples as lists)."""
  if isinstance(tree, dict):
    flat = {}
    for key, value in tree.items():
      flat.update(flatten_config(value, f'{prefix}{key}.'))
    return flat
  if isinstance(tree, tuple):
    tree = list(tree)
  return {prefix[:-1]: tree}


def config_differences(saved: dict, current: dict) -> list[str]:
  """Lists 'key: saved -> current' for keys that differ, ignoring RESUMABLE_KEYS."""
  saved_flat, current_flat = flatten_config(saved), flatten_config(current)
  differences = []
  for key in sorted(set(saved_flat) | set(current_flat)):
    if key in RESUMABLE_KEYS:
      continue
    old, new = saved_flat.get(key, '<absent>'), current_flat.get(key, '<absent>')
    if key not in saved_flat and ADDED_KEYS_DEFAULTS.get(key, old) == new:
      continue
    if old != new:
      differences.append(f'{key}: {old!r} -> {new!r}')
  return differences


def config_as_dict(config: ml_collections.ConfigDict) -> dict:
  # A JSON round trip makes tuples lists, as they are in the saved file.
  return json.loads(config.to_json())


def prepare_workdir(workdir: str | Path, config: ml_collections.ConfigDict,
                    overwrite: bool = False) -> bool:
  """Makes `workdir` ready for a run of `config`; returns True when resuming.

  A new or empty directory starts a fresh run. A directory holding a run of
  the same config (up to RESUMABLE_KEYS) resumes it. A run with a different
  config is refused unless `overwrite`, which deletes that run first. A
  non-empty directory that holds no run is never touched.

  Raises:
    WorkdirError: with what differs and what to do.
  """
  workdir = Path(workdir)
  config_path = workdir / CONFIG_FILE
  current = config_as_dict(config)
  if workdir.exists() and any(workdir.iterdir()):
    if not config_path.exists():
      raise WorkdirError(
          f'Workdir {workdir} is not empty and holds no vae_jax run '
          f'(no {CONFIG_FILE}); refusing to write into it. Choose a new or '
          'empty --workdir.')
    saved = json.loads(config_path.read_text())
    differences = config_differences(saved, current)
    if not differences:
      config_path.write_text(json.dumps(current, indent=2, sort_keys=True))
      return True
    if not overwrite:
      raise WorkdirError(
          f'Workdir {workdir} holds a run with a different config:\n  '
          + '\n  '.join(differences)
          + '\nUse a new --workdir, or pass --overwrite to delete that run '
          'and start this one.')
    shutil.rmtree(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  config_path.write_text(json.dumps(current, indent=2, sort_keys=True))
  return False


class RunCheckpoints:
  """The latest `keep_latest` epochs and the best epoch by test loss."""

  def __init__(self, workdir: str | Path, keep_latest: int = 2):
    root = Path(workdir).absolute() / 'checkpoints'
    self.latest = ocp.CheckpointManager(
        root / 'latest',
        options=ocp.CheckpointManagerOptions(max_to_keep=keep_latest,
                                             create=True))
    self.best = ocp.CheckpointManager(
        root / 'best',
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda metrics: metrics['test_loss'],
            best_mode='min', create=True))

  def latest_epoch(self) -> int | None:
    return self.latest.latest_step()

  def save(self, epoch: int, state: Any, test_loss: float,
           is_best: bool) -> None:
    self.latest.save(epoch, args=ocp.args.StandardSave(state))
    if is_best:
      self.best.save(epoch, args=ocp.args.StandardSave(state),
                     metrics={'test_loss': float(test_loss)})

  def restore(self, epoch: int, like: Any, best: bool = False) -> Any:
    """Restores epoch's state into the structure, dtypes and shardings of `like`."""
    manager = self.best if best else self.latest
    manager.wait_until_finished()
    return manager.restore(epoch, args=ocp.args.StandardRestore(like))

  def best_epoch(self) -> int | None:
    return self.best.best_step()

  def close(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()
    self.latest.close()
    self.best.close()
