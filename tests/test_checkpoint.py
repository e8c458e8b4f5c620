"""RunCheckpoints: which epochs are kept, and runs saved in the two-manager
layout adopted without losing a verified checkpoint."""

import json
import os

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from vae_jax import checkpoint


def _state(epoch: int) -> dict:
  return {'w': jnp.full((3, 2), float(epoch)), 'step': jnp.int32(epoch)}


def _saved_epochs(workdir) -> list[int]:
  return sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir()
                if p.name.isdigit())


def _checksummed_epochs(workdir) -> list[int]:
  return sorted(int(p.stem) for p in
                (workdir / 'checkpoints' / 'checksums').glob('*.json'))


@pytest.mark.parametrize('keep_best, kept', [(True, [2, 4, 5]),
                                             (False, [4, 5])])
def test_the_newest_epochs_and_the_best_are_kept(tmp_path, keep_best, kept):
  checkpoints = checkpoint.RunCheckpoints(tmp_path, keep_latest=2,
                                          keep_best=keep_best)
  for epoch, loss in zip(range(1, 6), [5.0, 1.0, 3.0, 4.0, 6.0]):
    checkpoints.save(epoch, _state(epoch), loss)
  assert _saved_epochs(tmp_path) == kept
  assert _checksummed_epochs(tmp_path) == kept
  assert checkpoints.latest_epoch() == 5
  assert checkpoints.best_epoch() == (2 if keep_best else 4)
  for epoch in kept:
    restored = checkpoints.restore(epoch, like=_state(0))
    np.testing.assert_array_equal(restored['w'], np.full((3, 2), epoch))
  checkpoints.close()


def _legacy_run(workdir, losses: list[float], keep_latest: int = 2) -> None:
  """The files a run of the two-manager layout left: latest/<epoch> of the
  newest epochs, best/<epoch> of the lowest loss (saved with its metrics),
  and checksums/<kind>_<epoch>.json of each."""
  root = workdir / 'checkpoints'
  latest = ocp.CheckpointManager(root / 'latest', options=(
      ocp.CheckpointManagerOptions(max_to_keep=keep_latest, create=True)))
  best = ocp.CheckpointManager(root / 'best', options=(
      ocp.CheckpointManagerOptions(
          max_to_keep=1, best_fn=lambda metrics: metrics['test_loss'],
          best_mode='min', create=True)))
  lowest = np.inf
  for epoch, loss in enumerate(losses, start=1):
    if loss < lowest:
      lowest = loss
      best.save(epoch, args=ocp.args.StandardSave(_state(epoch)),
                metrics={'test_loss': loss})
    latest.save(epoch, args=ocp.args.StandardSave(_state(epoch)))
  for manager in (latest, best):
    manager.wait_until_finished()
    manager.close()
  (root / 'checksums').mkdir()
  for kind in ('latest', 'best'):
    for step in (root / kind).iterdir():
      (root / 'checksums' / f'{kind}_{step.name}.json').write_text(
          json.dumps(checkpoint._tree_digests(step)))


def test_a_run_of_the_two_manager_layout_is_adopted(tmp_path):
  _legacy_run(tmp_path, [5.0, 1.0, 3.0, 4.0])
  # A step orbax had not finished when its process was killed.
  (tmp_path / 'checkpoints' / 'latest' / '5.orbax-checkpoint-tmp-1').mkdir()
  (tmp_path / 'checkpoints' / 'best' / 'stray.json').write_text('{}')
  checkpoints = checkpoint.RunCheckpoints(tmp_path, keep_latest=2)
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == [
      '2', '3', '4', 'checksums']
  assert _checksummed_epochs(tmp_path) == [2, 3, 4]
  assert checkpoints.latest_epoch() == 4
  assert checkpoints.best_epoch() == 2  # best/'s copy, with its test loss
  for epoch in (2, 3, 4):
    restored = checkpoints.restore(epoch, like=_state(0))  # verified
    np.testing.assert_array_equal(restored['w'], np.full((3, 2), epoch))
  # The adopted epochs leave as the new ones arrive; the best stays.
  for epoch in (5, 6):
    checkpoints.save(epoch, _state(epoch), 2.0)
  assert _saved_epochs(tmp_path) == [2, 5, 6]
  assert _checksummed_epochs(tmp_path) == [2, 5, 6]
  checkpoints.close()


def test_an_adoption_cut_short_finishes_on_the_next_start(tmp_path):
  _legacy_run(tmp_path, [5.0, 1.0, 3.0])
  root = tmp_path / 'checkpoints'
  # Killed between the checksum's rename and the directory's.
  os.replace(root / 'checksums' / 'latest_3.json', root / 'checksums' / '3.json')
  checkpoints = checkpoint.RunCheckpoints(tmp_path, keep_latest=2)
  assert _saved_epochs(tmp_path) == [2, 3]
  checkpoints.verify(3)
  assert checkpoints.latest_epoch() == 3
  checkpoints.close()


def test_a_changed_adopted_checkpoint_is_still_refused(tmp_path):
  _legacy_run(tmp_path, [5.0, 1.0, 3.0])
  target = max((p for p in (tmp_path / 'checkpoints' / 'latest' / '3').rglob(
      '*') if p.is_file()), key=lambda p: p.stat().st_size)
  data = bytearray(target.read_bytes())
  data[len(data) // 2] ^= 0x01
  target.write_bytes(bytes(data))
  checkpoints = checkpoint.RunCheckpoints(tmp_path, keep_latest=2)
  with pytest.raises(checkpoint.CorruptCheckpointError, match='epoch\\(s\\) 2'):
    checkpoints.restore(3, like=_state(0))
  checkpoints.close()


def test_the_best_epoch_survives_a_restart(tmp_path):
  checkpoints = checkpoint.RunCheckpoints(tmp_path, keep_latest=1)
  for epoch, loss in zip(range(1, 4), [3.0, 1.0, 2.0]):
    checkpoints.save(epoch, _state(epoch), loss)
  checkpoints.close()
  reopened = checkpoint.RunCheckpoints(tmp_path, keep_latest=1)
  reopened.save(4, _state(4), 5.0)
  assert _saved_epochs(tmp_path) == [2, 4]
  assert reopened.best_epoch() == 2
  reopened.close()
