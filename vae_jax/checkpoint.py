"""Orbax checkpoints of a run, verified on restore, and how a saved config
is compared with the one resuming it.

Layout under a workdir:
  checkpoints/latest/<epoch>  the newest `keep_latest` epochs
  checkpoints/best/<epoch>    the epoch with the lowest test loss
  checkpoints/checksums/      SHA-256 of each checkpoint's files
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from vae_jax import workdir as workdir_lib
from vae_jax.models import MODEL_FIELDS

log = logging.getLogger('vae_jax.checkpoint')

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
  if name != current_flat.get('model.name') or name not in MODEL_FIELDS:
    return set()
  return {k for k in set(saved_flat) | set(current_flat)
          if k.startswith('model.') and k.count('.') == 1
          and k.split('.')[1] not in MODEL_FIELDS[name]}


def config_differences(saved: dict, current: dict) -> list[str]:
  """Lists 'key: saved -> current' for keys that differ, ignoring
  RESUMABLE_KEYS and model fields the run's model does not use (a sweep's
  members, with their own models, are compared by the sweep list itself)."""
  saved_flat, current_flat = flatten_config(saved), flatten_config(current)
  unused = _unused_model_keys(saved_flat, current_flat)
  differences = []
  for key in sorted(set(saved_flat) | set(current_flat)):
    if key in RESUMABLE_KEYS or key in unused:
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


class RunCheckpoints:
  """The latest `keep_latest` epochs and the best epoch by test loss, each
  verified on restore against the SHA-256 of its files taken at save.

  Layout under WORKDIR/checkpoints: latest/<epoch>, best/<epoch> (orbax)
  and checksums/<latest|best>_<epoch>.json. A checkpoint saved but not yet
  checksummed when its process was killed is deleted on the next start,
  so a run resumes from the newest verified epoch.
  """

  def __init__(self, workdir: str | Path, keep_latest: int = 2):
    self.root = Path(workdir).absolute() / workdir_lib.CHECKPOINTS_DIR
    self.checksums = self.root / 'checksums'
    # Checkpoints saved before vae_jax recorded checksums are adopted as
    # they are; in a run that records them, one without is unfinished.
    adopt = not self.checksums.exists()
    if _primary():
      self.checksums.mkdir(parents=True, exist_ok=True)
      for kind in ('latest', 'best'):
        if adopt:
          for epoch in self._steps(kind):
            workdir_lib.atomic_write_json(
                self._checksum_path(kind, epoch),
                _tree_digests(self._step_dir(kind, epoch)))
        self._discard_unverified(kind)
    _barrier('vae_jax checkpoints opened')
    self.latest = ocp.CheckpointManager(
        self.root / 'latest',
        options=ocp.CheckpointManagerOptions(max_to_keep=keep_latest,
                                             create=True))
    self.best = ocp.CheckpointManager(
        self.root / 'best',
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda metrics: metrics['test_loss'],
            best_mode='min', create=True))

  def _step_dir(self, kind: str, epoch: int) -> Path:
    return self.root / kind / str(epoch)

  def _checksum_path(self, kind: str, epoch: int) -> Path:
    return self.checksums / f'{kind}_{epoch}.json'

  def _steps(self, kind: str) -> list[int]:
    directory = self.root / kind
    if not directory.is_dir():
      return []
    return sorted(int(p.name) for p in directory.iterdir()
                  if p.is_dir() and p.name.isdigit())

  def _discard_unverified(self, kind: str) -> None:
    for epoch in self._steps(kind):
      if not self._checksum_path(kind, epoch).exists():
        log.warning('Checkpoint %s/%d was not finished (no checksums): '
                    'removed; resuming from the one before.', kind, epoch)
        shutil.rmtree(self._step_dir(kind, epoch))
    kept = {f'{kind}_{epoch}.json' for epoch in self._steps(kind)}
    for path in self.checksums.glob(f'{kind}_*.json'):
      if path.name not in kept:
        path.unlink()

  def _record(self, kind: str, epoch: int) -> None:
    manager = self.best if kind == 'best' else self.latest
    manager.wait_until_finished()
    _barrier(f'vae_jax checkpoint {kind} {epoch} written')
    if not _primary():
      return
    workdir_lib.atomic_write_json(
        self._checksum_path(kind, epoch),
        _tree_digests(self._step_dir(kind, epoch)))
    kept = {f'{kind}_{e}.json' for e in self._steps(kind)}
    for path in self.checksums.glob(f'{kind}_*.json'):
      if path.name not in kept:
        path.unlink()

  def verify(self, epoch: int, best: bool = False) -> None:
    """Raises CorruptCheckpointError unless every file of the checkpoint is
    as it was saved."""
    kind = 'best' if best else 'latest'
    directory = self._step_dir(kind, epoch)
    expected = json.loads(self._checksum_path(kind, epoch).read_text())
    found = _tree_digests(directory)
    for name in sorted(set(expected) | set(found)):
      if expected.get(name) != found.get(name):
        what = ('is missing' if name not in found else
                'was not written by this checkpoint' if name not in expected
                else 'differs from its SHA-256 taken at save')
        others = [e for e in self._steps(kind) if e != epoch]
        offer = (f'The other {kind} checkpoint(s): epoch(s) '
                 f'{", ".join(map(str, others))}; to resume from the newest '
                 f'of them, move {directory} out of the workdir and run '
                 'again.' if others else
                 f'No other {kind} checkpoint is kept; start a new workdir.')
        raise CorruptCheckpointError(
            f'Checkpoint {directory} is corrupted: {directory / name} {what}. '
            f'Refusing to restore it. {offer}')

  def latest_epoch(self) -> int | None:
    return self.latest.latest_step()

  def save(self, epoch: int, state: Any, test_loss: float,
           is_best: bool) -> None:
    # best/ first: a process killed once latest/ holds this epoch then
    # leaves a best/ that agrees with the metrics up to it.
    if is_best:
      self.best.save(epoch, args=ocp.args.StandardSave(state),
                     metrics={'test_loss': float(test_loss)})
      self._record('best', epoch)
    self.latest.save(epoch, args=ocp.args.StandardSave(state))
    self._record('latest', epoch)
    _barrier(f'vae_jax checksums {epoch} written')

  def restore(self, epoch: int, like: Any, best: bool = False) -> Any:
    """Restores epoch's state into the structure, dtypes and shardings of
    `like`, after verifying its files (CorruptCheckpointError if changed)."""
    manager = self.best if best else self.latest
    manager.wait_until_finished()
    self.verify(epoch, best)
    return manager.restore(epoch, args=ocp.args.StandardRestore(like))

  def best_epoch(self) -> int | None:
    return self.best.best_step()

  def close(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()
    self.latest.close()
    self.best.close()
