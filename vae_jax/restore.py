"""The trained models of a run or sweep workdir, restored from its checkpoints.

  config = restore.load_run_config(workdir)
  members = restore.restore_members(workdir, config, image_shape=(28, 28))

A run is one Member; a sweep is one per member, each unstacked from its
group's checkpoint (the group rebuilt as the sweep built it, with
vae_jax.group). Evaluation reads trained models through this module only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import ml_collections

from vae_jax import config_fields
from vae_jax import checkpoint as checkpoint_lib
from vae_jax import grid as grid_lib
from vae_jax import group as group_lib
from vae_jax import models
from vae_jax import optimizers
from vae_jax import train
from vae_jax import workdir as workdir_lib


class Member(NamedTuple):
  """A trained model: a run, or one member of a sweep."""

  index: int | None  # the sweep member's number; None for a run
  directory: Path  # its own files (figures, confusion.json)
  config: ml_collections.ConfigDict
  model: Any
  params: Any
  hparams: train.Hyperparams
  epoch: int  # the checkpoint's: the epoch its results.json was written at
  # A BatchNorm model's running averages, which evaluation normalises with
  # ({} for a model without BatchNorm).
  batch_stats: Any = {}

  @property
  def variables(self) -> dict:
    """What member.model.apply takes (train.model_variables)."""
    return train.model_variables(self.params, self.batch_stats)


def load_run_config(workdir: Path) -> ml_collections.ConfigDict:
  """The config.json of a run or sweep, with keys added since it was saved."""
  path = Path(workdir) / workdir_lib.CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(
        f'{workdir} holds no vae_jax run or sweep ({path.name} missing); pass '
        'the workdir a run or sweep trained in (the --workdir of launch.train '
        'or launch.sweep, or of vae_jax.train_and_evaluate or run_sweep).')
  saved = json.loads(path.read_text())
  flat = checkpoint_lib.flatten_config(saved)
  for key, value in config_fields.defaults_for_absent_keys().items():
    if key not in flat:
      grid_lib.set_key(saved, key, value, create=True)
  return ml_collections.ConfigDict(saved)


def restore_members(workdir: Path, config: ml_collections.ConfigDict,
                    image_shape: tuple[int, int],
                    skip: frozenset[int] = frozenset()) -> list[Member]:
  """The parameters of the run, or of every sweep member but those in
  `skip`, from the checkpoint of the epoch its results.json was written at
  (a group all of whose members are skipped is not restored: it may not
  have trained yet).

  Raises:
    FileNotFoundError: that checkpoint is not there (training went on past
      the results and has not finished): finish training first.
  """
  workdir = Path(workdir)
  results = json.loads((workdir / workdir_lib.RESULTS_FILE).read_text())
  if 'sweep' not in config:
    model = models.build_model(config.model, image_shape)
    hparams = train.hyperparams_from_config(config)
    # Shapes only: drawing real initial parameters, op by op, takes seconds.
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                          sharding=device),
        jax.eval_shape(lambda: train.create_train_state(
            model, optimizers.make_optimizer(config.optimizer), hparams,
            image_shape)))
    epoch = results['epochs']
    state = _restore_epoch(workdir, like, epoch)
    return [Member(None, workdir, config, model, state.params, hparams, epoch,
                   state.batch_stats)]

  grid = list(config.sweep)
  configs = [grid_lib.member_config(config, overrides) for overrides in grid]
  epochs = {r['member']: r.get('epochs') for r in results}
  mesh = group_lib.sweep_mesh()
  members = []
  for group_index, indices in enumerate(group_lib.group_members(configs)):
    if set(indices) <= skip:
      continue
    group = group_lib.SweepGroup([configs[i] for i in indices], image_shape,
                                 mesh)
    # A diverged member stopped earlier; the group trained on to the others'.
    epoch = max(epochs[i] or 0 for i in indices)
    state = _restore_epoch(workdir_lib.group_dir(workdir, group_index),
                           group.abstract_state(), epoch)
    params = group.unstack(state.params)
    batch_stats = group.unstack(state.batch_stats)
    hparams = group.unstack(group.hparams)
    for k, member in enumerate(indices):
      members.append(Member(member, workdir_lib.member_dir(workdir, member),
                            configs[member], group.model, params[k],
                            hparams[k], epoch, batch_stats[k]))
  return sorted(members, key=lambda m: m.index)


def _restore_epoch(directory: Path, like, epoch: int):
  """The checkpoint of `epoch`, the one results.json was written from."""
  checkpoints = checkpoint_lib.RunCheckpoints(directory)
  try:
    if epoch not in checkpoints.epochs():
      latest = checkpoints.latest_epoch()
      raise FileNotFoundError(
          f'{directory}: results.json was written at epoch {epoch}, whose '
          f'checkpoint is gone (the newest is epoch {latest}): training went '
          'on past those results. Run the same launch.train / launch.sweep '
          'command again to finish it, then evaluate.')
    return checkpoints.restore(epoch, like=like)
  finally:
    checkpoints.close()
