"""Orbax checkpoints of a run, verified on restore, and how a saved config
is compared with the one resuming it.

Layout under a workdir:
  checkpoints/<epoch>/       orbax steps: the newest `keep_latest` epochs and
                             the epoch of the lowest test loss
  checkpoints/checksums/     SHA-256 of each step's files, <epoch>.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from vae_jax import config_fields
from vae_jax import workdir as workdir_lib
from vae_jax import models
from vae_jax import train

log = logging.getLogger('vae_jax.checkpoint')

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


def _unused_model_keys(saved_flat: dict, current_flat: dict) -> set[str]:
  """model.* keys that the (same) model of both configs is not built from."""
  name = saved_flat.get('model.name')
  if (name != current_flat.get('model.name')
      or name not in models.model_names()):
    return set()
  fields = models.get_model(name).fields
  return {k for k in set(saved_flat) | set(current_flat)
          if k.startswith('model.') and k.count('.') == 1
          and k.split('.')[1] not in fields}


def config_differences(saved: dict, current: dict) -> list[str]:
  """Lists 'key: saved -> current' for keys that differ, ignoring
  resumable fields (config_fields.Field.resumable) and model fields the
  run's model does not use (a sweep's members, with their own models, are
  compared by the sweep list itself). A field the saved config lacks
  counts at its default, which is what that run trained with."""
  saved_flat, current_flat = flatten_config(saved), flatten_config(current)
  unused = _unused_model_keys(saved_flat, current_flat)
  resumable = config_fields.resumable_keys()
  absent_means = flatten_config(config_fields.defaults_for_absent_keys())
  differences = []
  for key in sorted(set(saved_flat) | set(current_flat)):
    if key in resumable or key in unused:
      continue
    old, new = saved_flat.get(key, '<absent>'), current_flat.get(key, '<absent>')
    if key not in saved_flat and absent_means.get(key, old) == new:
      continue
    if old != new:
      differences.append(f'{key}: {old!r} -> {new!r}')
  return differences


def trained_epochs(workdir: str | Path) -> int | None:
  """The newest checkpointed epoch of the run or sweep in `workdir` (its
  checkpoints/ or any group_*/checkpoints/), None if it has none."""
  workdir = Path(workdir)
  epochs = [int(p.name) for directory in
            [workdir / workdir_lib.CHECKPOINTS_DIR,
             *workdir.glob('group_*/' + workdir_lib.CHECKPOINTS_DIR)]
            if directory.is_dir()
            for p in directory.iterdir() if p.name.isdigit()]
  return max(epochs, default=None)


def epochs_to_resume(workdir: str | Path,
                     config: ml_collections.ConfigDict) -> int | None:
  """trained_epochs(workdir) when `workdir` holds a run or sweep that
  `config` resumes (no differences but the resumable keys), else None."""
  path = Path(workdir) / workdir_lib.CONFIG_FILE
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  if config_differences(saved, config_as_dict(config)):
    return None
  return trained_epochs(workdir)


def config_as_dict(config: ml_collections.ConfigDict) -> dict:
  # A JSON round trip makes tuples lists, as they are in the saved file.
  return json.loads(config.to_json())


def _primary() -> bool:
  """Whether this process writes shared files (process 0)."""
  return jax.process_index() == 0


def _barrier(name: str) -> None:
  """Waits for every process of a multi-process run (no-op for one)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


class CorruptCheckpointError(RuntimeError):
  """A checkpoint's files differ from what was written when it was saved."""


def _tree_digests(directory: Path) -> dict[str, str]:
  """SHA-256 of every file under directory, by relative path."""
  digests = {}
  for path in sorted(directory.rglob('*')):
    if path.is_file():
      sha = hashlib.sha256()
      with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
          sha.update(block)
      digests[str(path.relative_to(directory))] = sha.hexdigest()
  return digests


# The layout of runs saved with one orbax manager for the newest epochs and
# another for the best: checkpoints/{latest,best}/<epoch> and
# checksums/{latest,best}_<epoch>.json. Adopted on open (see _adopt_legacy).
_LEGACY_KINDS = ('best', 'latest')  # best first: its copy carries the metrics


def _test_loss(metrics: dict) -> float:
  return metrics['test_loss']


def _saved_tree(state: Any) -> Any:
  """What a checkpoint holds of `state`: a train.TrainState as the dict of
  its fields, without `batch_stats` when it is empty (a model without
  BatchNorm). That is the tree (orbax's tree metadata, key for key) of the
  checkpoints written before train states carried BatchNorm statistics, so
  those still restore and a model without BatchNorm saves what it always
  did. Other trees are saved as they are."""
  if not isinstance(state, train.TrainState):
    return state
  fields = {'step': state.step, 'params': state.params,
            'opt_state': state.opt_state}
  if state.batch_stats:
    fields['batch_stats'] = state.batch_stats
  return fields


class RunCheckpoints:
  """A run's (or sweep group's) checkpoints, one orbax CheckpointManager:
  each epoch is saved with its test loss; the newest `keep_latest` epochs
  and, with `keep_best`, the epoch of the lowest test loss are preserved.
  Every step is verified on restore against the SHA-256 of its files taken
  at save.

  Layout under WORKDIR/checkpoints: <epoch>/ (orbax) and
  checksums/<epoch>.json. A checkpoint saved but not yet checksummed when
  its process was killed is deleted on the next start, so a run resumes
  from the newest verified epoch.
  """

  def __init__(self, workdir: str | Path, keep_latest: int = 2,
               keep_best: bool = True):
    self.root = Path(workdir).absolute() / workdir_lib.CHECKPOINTS_DIR
    self.checksums = self.root / 'checksums'
    if _primary():
      self._adopt_legacy()
      # Checkpoints saved before vae_jax recorded checksums are adopted as
      # they are; in a run that records them, one without is unfinished.
      adopt = not self.checksums.exists()
      self.checksums.mkdir(parents=True, exist_ok=True)
      if adopt:
        for epoch in self._steps():
          workdir_lib.atomic_write_json(self._checksum_path(epoch),
                                        _tree_digests(self._step_dir(epoch)))
      self._discard_unverified()
    _barrier('vae_jax checkpoints opened')
    policies = [ocp.checkpoint_managers.LatestN(n=keep_latest)]
    if keep_best:
      policies.append(ocp.checkpoint_managers.BestN(
          get_metric_fn=_test_loss, reverse=True,
          n=1, keep_checkpoints_without_metrics=False))
    # best_fn makes orbax write each step's test loss beside it, so that
    # BestN still knows the best epoch after a restart.
    self.manager = ocp.CheckpointManager(
        self.root, options=ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(
                policies),
            best_fn=_test_loss, best_mode='min',
            create=True))

  def _adopt_legacy(self) -> None:
    """Moves checkpoints of the two-manager layout into this one.

    Each step keeps its files (so its recorded SHA-256 still holds); an
    epoch in both latest/ and best/ keeps best/'s copy, which carries the
    test loss. Every move is a rename, checksum before directory, so a
    process killed here resumes the adoption on its next start.
    """
    for kind in _LEGACY_KINDS:
      directory = self.root / kind
      if not directory.is_dir():
        continue
      for step in sorted(directory.iterdir()):
        epoch = int(step.name) if step.name.isdigit() else None
        old_checksum = self.checksums / f'{kind}_{step.name}.json'
        if epoch is None or self._step_dir(epoch).exists():
          # orbax's unfinished temporaries, or the same epoch adopted from
          # best/: vae_jax's own files either way.
          if step.is_dir():
            shutil.rmtree(step)
          else:
            step.unlink()
          old_checksum.unlink(missing_ok=True)
          continue
        if old_checksum.exists():
          os.replace(old_checksum, self._checksum_path(epoch))
        os.replace(step, self._step_dir(epoch))
      for stale in self.checksums.glob(f'{kind}_*.json'):
        stale.unlink()
      directory.rmdir()
      log.info('Checkpoints of %s/ moved to %s.', kind, self.root)

  def _step_dir(self, epoch: int) -> Path:
    return self.root / str(epoch)

  def _checksum_path(self, epoch: int) -> Path:
    return self.checksums / f'{epoch}.json'

  def _steps(self) -> list[int]:
    if not self.root.is_dir():
      return []
    return sorted(int(p.name) for p in self.root.iterdir()
                  if p.is_dir() and p.name.isdigit())

  def _drop_checksums_of_deleted_steps(self) -> None:
    kept = {f'{epoch}.json' for epoch in self._steps()}
    for path in self.checksums.glob('*.json'):
      if path.name not in kept:
        path.unlink()

  def _discard_unverified(self) -> None:
    for epoch in self._steps():
      if not self._checksum_path(epoch).exists():
        log.warning('Checkpoint %d was not finished (no checksums): '
                    'removed; resuming from the one before.', epoch)
        shutil.rmtree(self._step_dir(epoch))
    self._drop_checksums_of_deleted_steps()

  def verify(self, epoch: int) -> None:
    """Raises CorruptCheckpointError unless every file of the checkpoint is
    as it was saved."""
    directory = self._step_dir(epoch)
    expected = json.loads(self._checksum_path(epoch).read_text())
    found = _tree_digests(directory)
    for name in sorted(set(expected) | set(found)):
      if expected.get(name) != found.get(name):
        what = ('is missing' if name not in found else
                'was not written by this checkpoint' if name not in expected
                else 'differs from its SHA-256 taken at save')
        others = [e for e in self._steps() if e != epoch]
        offer = (f'The other checkpoint(s): epoch(s) '
                 f'{", ".join(map(str, others))}; to resume from the newest '
                 f'of them, move {directory} out of the workdir and run '
                 'again.' if others else
                 'No other checkpoint is kept; start a new workdir.')
        raise CorruptCheckpointError(
            f'Checkpoint {directory} is corrupted: {directory / name} {what}. '
            f'Refusing to restore it. {offer}')

  def latest_epoch(self) -> int | None:
    return self.manager.latest_step()

  def epochs(self) -> list[int]:
    """Every kept epoch, oldest first."""
    return sorted(self.manager.all_steps())

  def best_epoch(self) -> int | None:
    """The kept epoch of the lowest test loss (None if none was saved)."""
    return self.manager.best_step()

  def save(self, epoch: int, state: Any, test_loss: float) -> None:
    """Saves epoch's state, then its checksums; a step the preservation
    policy no longer keeps is deleted with its checksums."""
    self.manager.save(epoch, args=ocp.args.StandardSave(_saved_tree(state)),
                      metrics={'test_loss': float(test_loss)})
    self.manager.wait_until_finished()
    _barrier(f'vae_jax checkpoint {epoch} written')
    if _primary():
      workdir_lib.atomic_write_json(self._checksum_path(epoch),
                                    _tree_digests(self._step_dir(epoch)))
      self._drop_checksums_of_deleted_steps()
    _barrier(f'vae_jax checksums {epoch} written')

  def restore(self, epoch: int, like: Any) -> Any:
    """Restores epoch's state into the structure, dtypes and shardings of
    `like`, after verifying its files (CorruptCheckpointError if changed)."""
    self.manager.wait_until_finished()
    self.verify(epoch)
    restored = self.manager.restore(
        epoch, args=ocp.args.StandardRestore(_saved_tree(like)))
    if isinstance(like, train.TrainState):
      return like.replace(**restored)
    return restored

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
