"""A grid of configurations trained as one vmapped, sharded program per group.

A sweep config is an ordinary experiment config plus `config.sweep`: a list of
members, each a dict of dotted config keys to values (built with `product`,
`zipped` and `concat`). Members that differ only in array-valued settings
(beta, prior mean/std, learning rate, seed, and latent size through a mask)
form one group: one model built at the group's largest latent size, one
stacked train state with a leading "sweep" axis, one compiled epoch
`jax.vmap`-ed over it and sharded over every device. Settings that change
shapes or code (architecture, batch size, optimiser, data) split the grid
into groups, each its own program.

Multi-host: call `jax.distributed.initialize()` in every process (the
launcher's --distributed flag does); `jax.devices()` then spans all hosts and
the sweep axis is sharded over them.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vae_jax import checkpoint as checkpoint_lib
from vae_jax import data as data_lib
from vae_jax import figure_data
from vae_jax import grid
from vae_jax import loop
from vae_jax import metric_writers
from vae_jax import models
from vae_jax import report
from vae_jax import train
from vae_jax import validation
from vae_jax import workdir as workdir_lib
from vae_jax.data import pipeline

log = logging.getLogger(__name__)

# Config keys that become arrays in train.Hyperparams and so never split a group.
ARRAY_KEYS = frozenset({'beta', 'prior_mean', 'prior_std', 'learning_rate',
                        'seed', 'model.latent_size'})
# Models whose latent size can be a mask over a larger model.
MASKABLE_MODELS = frozenset({'mlp_vae', 'conv_vae', 'conv_fc_vae'})


# The grid helpers live in vae_jax.grid (configs import them without JAX).
product, zipped, concat = grid.product, grid.zipped, grid.concat


def host_values(tree):
  """A tree of (possibly sharded over several processes) arrays as NumPy."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return multihost_utils.process_allgather(x, tiled=True)
    return jax.device_get(x)
  return jax.tree.map(one, tree)


def member_config(base: ml_collections.ConfigDict,
                  overrides: dict) -> ml_collections.ConfigDict:
  """The base config with one member's overrides (unknown keys are errors)."""
  config = copy.deepcopy(base)
  with config.unlocked():
    for key in ('sweep', 'reported'):
      if key in config:
        del config[key]
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split('.')
    try:
      for parent in parents:
        node = node[parent]
      node[leaf]  # pylint: disable=pointless-statement
    except (KeyError, AttributeError):
      raise KeyError(f'Sweep member key {key!r} is not a config key.') from None
    node[leaf] = value
  return config


def member_label(overrides: dict) -> str:
  return ', '.join(f'{k.split(".")[-1]}={v}' for k, v in overrides.items())


def _static_signature(config: ml_collections.ConfigDict) -> str:
  flat = checkpoint_lib.flatten_config(checkpoint_lib.config_as_dict(config))
  varying = set(ARRAY_KEYS)
  if config.model.name not in MASKABLE_MODELS:
    varying.discard('model.latent_size')
  if config.data.preprocessing == 'static_binarized':
    varying.discard('seed')  # the seed picks the binarised copy of the data
  return json.dumps({k: v for k, v in flat.items() if k not in varying},
                    sort_keys=True)


def group_members(configs: Sequence[ml_collections.ConfigDict]
                  ) -> list[list[int]]:
  """Indices of members grouped by everything that is not array-valued."""
  groups: dict[str, list[int]] = {}
  for index, config in enumerate(configs):
    groups.setdefault(_static_signature(config), []).append(index)
  return list(groups.values())


# ------------------------------------------------------------------- sharding
def sweep_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ('sweep',))


def padded_size(count: int, mesh: Mesh) -> int:
  """count rounded up to a multiple of the number of devices."""
  return -(-count // mesh.size) * mesh.size


def stack_hyperparams(members: Sequence[train.Hyperparams],
                      size: int) -> train.Hyperparams:
  """[size, ...] arrays; padding repeats the last member (its outputs are dropped)."""
  padded = list(members) + [members[-1]] * (size - len(members))
  return jax.tree.map(lambda *xs: jnp.stack(xs), *padded)


def pad_latent_dimensions(params, like, latent_size: int):
  """A latent-`latent_size` model's parameters in a larger model's shapes.

  Every axis that differs between a leaf and its counterpart in `like` (a
  tree of shapes) is an axis over latent dimensions, which come first on it
  (a CVAE's one-hot label follows z); zeros are inserted after the first
  `latent_size` entries. With the latent mask, the padded model computes what
  the small one does, and the padding gets zero gradients.
  """
  def pad(small, big):
    result = small
    for axis, (have, want) in enumerate(zip(small.shape, big.shape)):
      if have == want:
        continue
      if want - have <= 0 or have < latent_size:
        raise ValueError(
            f'Cannot pad a parameter of shape {small.shape} from latent size '
            f'{latent_size} to shape {big.shape}.')
      zeros_shape = list(result.shape)
      zeros_shape[axis] = want - have
      kept, rest = jnp.split(result, [latent_size], axis=axis)
      result = jnp.concatenate(
          [kept, jnp.zeros(zeros_shape, result.dtype), rest], axis=axis)
    return result
  return jax.tree.map(pad, params, like)


# ---------------------------------------------------------------------- group
def _checked_params(params, like, member: int):
  """params as arrays of `like`'s dtypes (the member's model's abstract
  parameters), if they fit; else a ValueError naming what does not fit."""
  given = jax.tree_util.tree_structure(params)
  wanted = jax.tree_util.tree_structure(like)
  if given != wanted:
    raise ValueError(f'initial_params[{member}] has the structure {given}; '
                     f"member {member}'s model has {wanted}.")
  for (path, value), expected in zip(
      jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(like)):
    if tuple(np.shape(value)) != expected.shape:
      raise ValueError(
          f'initial_params[{member}]{jax.tree_util.keystr(path)} has shape '
          f"{tuple(np.shape(value))}; member {member}'s model needs "
          f'{expected.shape}.')
  return jax.tree.map(lambda x, e: jnp.asarray(x, e.dtype), params, like)


def over_members(fn, in_axes: tuple, size: int, execution: str = 'vmap'):
  """fn mapped over the leading (members) axis of the arguments whose
  in_axes entry is 0: jax.vmap ('vmap'), the members one after another in
  one program with lax.map ('map'), or for a group of one, fn itself on
  the squeezed arrays. XLA's CPU matrix products with a batch dimension of
  one run up to 30% slower than unbatched ones
  (results/benchmark_sweep_groups_cpu.md), and a lone member should train
  at its single run's speed."""
  if size > 1 and execution == 'vmap':
    return jax.vmap(fn, in_axes=in_axes)
  if size > 1:
    def one_after_another(*args):
      mapped = tuple(arg for arg, axis in zip(args, in_axes) if axis == 0)

      def member(member_args):
        member_args = iter(member_args)
        return fn(*[next(member_args) if axis == 0 else arg
                    for arg, axis in zip(args, in_axes)])
      return jax.lax.map(member, mapped)
    return one_after_another

  def single(*args):
    args = [jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg
            for arg, axis in zip(args, in_axes)]
    return jax.tree.map(lambda x: x[None], fn(*args))
  return single


class SweepGroup:
  """One compiled program: the members of a group, stacked and sharded."""

  def __init__(self, configs: Sequence[ml_collections.ConfigDict],
               image_shape: tuple[int, int], mesh: Mesh,
               execution: str = 'vmap',
               output_bias: np.ndarray | None = None):
    """output_bias: the members' starting decoder output bias
    (train.initial_output_bias), None for the init scheme's."""
    base = configs[0]
    self._output_bias = output_bias
    model_config = copy.deepcopy(base.model)
    capacity = max(c.model.latent_size for c in configs)
    model_config.latent_size = capacity
    self.model = models.build_model(model_config, image_shape)
    self.optimizer = train.make_optimizer(base.optimizer)
    self.count = len(configs)
    self.mesh = mesh
    self.size = padded_size(self.count, mesh)
    self.sharded = NamedSharding(mesh, PartitionSpec('sweep'))
    self.hparams = jax.device_put(
        stack_hyperparams([train.hyperparams_from_config(c, capacity)
                           for c in configs], self.size), self.sharded)
    self._model_config = model_config
    self._image_shape = image_shape
    self._latent_sizes = [c.model.latent_size for c in configs]
    self._seeds = [c.seed for c in configs]
    loss = train.reconstruction_loss_for(base)
    epoch = train.make_train_epoch(self.model, self.optimizer, base.batch_size,
                                   base.data.preprocessing, loss,
                                   base.scan_unroll,
                                   **train.epoch_options(base))
    self.train_epoch = jax.jit(
        over_members(epoch, (0, 0, None, None), self.size, execution),
        donate_argnums=0,
        out_shardings=self.sharded)
    evaluate = train.make_evaluate(self.model, base.eval_batch_size,
                                   base.data.preprocessing, loss,
                                   **train.objective_options(base))
    self.evaluate = jax.jit(over_members(evaluate, (0, 0, None), self.size),
                            out_shardings=self.sharded)

  def create_state(self, initial_params: Sequence[Any] | None = None,
                   member_ids: Sequence[int] | None = None
                   ) -> train.TrainState:
    """Every member's initial state, stacked [size, ...] and sharded.

    A member is initialised by a model of its own latent size, as its
    separate run would be, then zero-padded to the group's: initialisers
    scale with fan-in, so drawing the decoder's input layer at the group's
    larger latent size would start a small-latent member from weights
    several times smaller than its own model's.

    initial_params: optional, one parameter tree per member (in the group's
      order, each shaped as its own latent size's model) to start from
      instead of drawing from the seeds.
    member_ids: the members' indices in the whole sweep, for error messages
      (default: their places in the group).
    """
    params = [None] * self.count
    for latent_size in sorted(set(self._latent_sizes)):
      members = [i for i, size in enumerate(self._latent_sizes)
                 if size == latent_size]
      model_config = copy.deepcopy(self._model_config)
      model_config.latent_size = latent_size
      model = models.build_model(model_config, self._image_shape)
      if initial_params is not None:
        like = jax.eval_shape(lambda model=model: train.init_params(
            model, jnp.uint32(0), self._image_shape))
        for member in members:
          params[member] = _checked_params(
              initial_params[member], like,
              member if member_ids is None else member_ids[member])
        continue
      init = jax.jit(jax.vmap(lambda seed, model=model: train.init_params(
          model, seed, self._image_shape, self._output_bias)))
      drawn = init(jnp.asarray([self._seeds[i] for i in members], jnp.uint32))
      for k, member in enumerate(members):
        params[member] = jax.tree.map(lambda x, k=k: x[k], drawn)
    like = jax.eval_shape(lambda: train.init_params(
        self.model, jnp.uint32(0), self._image_shape))
    padded = [pad_latent_dimensions(p, like, size)
              for p, size in zip(params, self._latent_sizes)]
    padded += [padded[-1]] * (self.size - self.count)
    # Through the host: each process drew the same numbers on its own
    # devices, and the state is laid out over every process's devices.
    stacked = jax.device_put(
        jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]),
                     *padded), NamedSharding(self.mesh, PartitionSpec()))
    return jax.jit(jax.vmap(lambda p: train.state_from_params(
        p, self.optimizer)), out_shardings=self.sharded)(stacked)

  def abstract_state(self) -> train.TrainState:
    """create_state()'s shapes, dtypes and shardings, with nothing drawn:
    the template a checkpoint is restored into."""
    like = jax.eval_shape(lambda: train.init_params(
        self.model, jnp.uint32(0), self._image_shape))
    stacked = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct((self.size, *leaf.shape),
                                          leaf.dtype), like)
    state = jax.eval_shape(jax.vmap(
        lambda p: train.state_from_params(p, self.optimizer)), stacked)
    return jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                          sharding=self.sharded), state)

  def unstack(self, tree) -> list[dict]:
    """Per-member host values of a stacked tree, padding dropped (gathered
    from every process in a multi-process sweep)."""
    host = host_values(tree)
    return [jax.tree.map(lambda x: x[i], host) for i in range(self.count)]


# ----------------------------------------------------------------------- loop
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
  grid = list(config.sweep)
  if not grid:
    raise ValueError('config.sweep is empty: list the members with '
                     'vae_jax.sweep.product / zipped / concat.')
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


def is_primary() -> bool:
  """Whether this process writes the sweep's shared files: process 0 of a
  multi-process sweep (jax.distributed), or the one process."""
  return jax.process_index() == 0


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


def _freeze(state, frozen, mask):
  """state with the members where mask [size] is True taken from frozen."""
  def pick(new, old):
    return jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)
  return jax.jit(lambda s, f: jax.tree.map(pick, s, f))(state, frozen)


class _GroupProgram:
  """A sweep group's compiled functions as the epoch loop's program.

  Members whose training diverged stay at their last finite state (frozen,
  as the checkpoint holds it) while the others train on.
  """

  def __init__(self, group: SweepGroup, epoch_fn, evaluate_fn, train_data,
               test_data, tracked_inputs, tracked_labels,
               diverged: list[int], initial_state):
    self.group = group
    self.count = group.count
    self._epoch_fn, self._evaluate_fn = epoch_fn, evaluate_fn
    self._train_data, self._test_data = train_data, test_data
    self._tracked = (tracked_inputs, tracked_labels)
    self._reconstruct = jax.jit(over_members(
        train.make_reconstruct(group.model), (0, 0, None, None), group.size))
    self.diverged = list(diverged)
    self.frozen = None
    self.initial_state = initial_state

  def _mask(self, indices) -> np.ndarray:
    mask = np.zeros(self.group.size, bool)
    mask[list(indices)] = True
    return mask

  def train_epoch(self, state, epoch: int):
    state, metrics = self._epoch_fn(state, self.group.hparams,
                                    self._train_data, jnp.int32(epoch))
    if self.diverged:
      state = _freeze(state, self.frozen, self._mask(self.diverged))
    return state, self.group.unstack(metrics)

  def evaluate(self, state) -> list[dict]:
    return self.group.unstack(self._evaluate_fn(state.params,
                                                self.group.hparams,
                                                self._test_data))

  def reconstruct(self, state) -> list[np.ndarray]:
    return self.group.unstack(self._reconstruct(state.params,
                                                self.group.hparams,
                                                *self._tracked))

  def freeze(self, state, source, indices: list[int]):
    """Freezes the members at `indices` at their state in `source`."""
    self.frozen = (source if self.frozen is None else
                   _freeze(self.frozen, source, self._mask(indices)))
    self.diverged += indices
    return _freeze(state, self.frozen, self._mask(self.diverged))


def _run_sweep(config, workdir: Path, resuming: bool, grid, configs, dataset,
               devices, initial_params) -> list[dict]:
  if is_primary():
    workdir_lib.record_data_source(workdir, dataset.name, dataset.source)
  mesh = sweep_mesh(devices)
  replicated = NamedSharding(mesh, PartitionSpec())
  train_data = pipeline.device_data(dataset.train_images, dataset.train_labels,
                                 replicated)
  test_data = pipeline.device_data(dataset.test_images, dataset.test_labels,
                                replicated)

  results: list[dict | None] = [None] * len(configs)
  metrics_path = workdir / workdir_lib.METRICS_FILE
  all_lines = (train.read_metrics(metrics_path, up_to_epoch=10**9)
               if resuming else [])
  groups = group_members(configs)
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
    group = SweepGroup(
        group_configs, dataset.image_shape, mesh,
        output_bias=train.initial_output_bias(group_configs[0].model,
                                              dataset.train_images))
    # A group keeps only its newest epochs: its members' best epochs differ.
    checkpoints = checkpoint_lib.RunCheckpoints(
        workdir / f'group_{group_index}', config.checkpoint.keep_latest,
        keep_best=False)
    start_epoch = 0
    latest = checkpoints.latest_epoch() if resuming else None
    if latest is not None:
      state = checkpoints.restore(latest, like=group.abstract_state())
      start_epoch = latest
      log.info('Group %d resumes from epoch %d.', group_index, latest)
    else:
      state = group.create_state(
          None if initial_params is None else
          [initial_params[i] for i in member_indices], member_indices)
    lines = [l for l in all_lines if l['member'] in member_indices
             and l['epoch'] <= start_epoch]
    others = [l for l in all_lines if l['member'] not in member_indices]
    # metrics.jsonl holds every group's lines; this group's members append
    # theirs through their writers (each member is a TensorBoard run too).
    jsonl = metric_writers.JsonlWriter(metrics_path, others + lines)
    histories = {m: [{k: v for k, v in l.items() if k != 'member'}
                     for l in lines if l['member'] == m]
                 for m in member_indices}
    group_models = []
    for member in member_indices:
      member_dir = workdir / f'member_{member:03d}'
      resumed_divergence = [l['epoch'] for l in histories[member]
                            if l.get('diverged')]
      group_models.append(loop.Model(
          histories[member],
          metric_writers.MultiWriter([
              jsonl.with_fields(member=member),
              metric_writers.TensorBoardWriter(
                  member_dir, purge_step=start_epoch + 1)])
          if is_primary() else None,
          member_dir / workdir_lib.RECONSTRUCTIONS_BY_EPOCH
          if is_primary() else None,
          resumed_divergence[0] if resumed_divergence else None))

    compile_start = time.perf_counter()
    epoch_fn = group.train_epoch.lower(state, group.hparams, train_data,
                                       jnp.int32(1)).compile()
    evaluate_fn = group.evaluate.lower(state.params, group.hparams,
                                       test_data).compile()
    compile_seconds = time.perf_counter() - compile_start
    log.info('Group %d: %d member(s) (padded to %d), compiled in %.1f s.',
             group_index, group.count, group.size, compile_seconds)
    batch_size = group_configs[0].batch_size
    tracked_inputs = (dataset.test_images[:train.TRACKED_IMAGES]
                      .astype(np.float32) / 255)
    program = _GroupProgram(
        group, epoch_fn, evaluate_fn, train_data, test_data, tracked_inputs,
        dataset.test_labels[:train.TRACKED_IMAGES],
        diverged=[k for k, m in enumerate(group_models)
                  if m.diverged_at is not None],
        initial_state=lambda: group.create_state(
            None if initial_params is None else
            [initial_params[i] for i in member_indices], member_indices))
    program.frozen = (jax.tree.map(jnp.copy, state) if program.diverged
                      else None)  # a copy: the epoch donates `state`

    def on_diverged(state, epoch, indices):
      for k in indices:
        member = member_indices[k]
        line = group_models[k].history[-1]
        log.warning(train.divergence_message(
            epoch, loop.non_finite_metrics(line), line, configs[member],
            epoch - 1 if epoch > 1 else None,
            who=f'Sweep member {member} ({member_label(grid[member])})')
            .replace('start a new workdir', 'sweep it again in a new '
                     'workdir; the other members carry on'))
      # Their last finite state: the previous epoch's checkpoint, or the
      # initial state when it was the first epoch.
      source = (checkpoints.restore(epoch - 1, like=group.abstract_state())
                if epoch > 1 else program.initial_state())
      return program.freeze(state, source, indices)

    def progress(epoch, img_per_s, seconds, eta):
      log.info('group %d (of %d) epoch %d/%d  test loss %s  %.0f img/s (all '
               'members)  %.1f s  group ETA %s', group_index, len(groups),
               epoch, num_epochs,
               ' '.join(f'{m.history[-1]["test_loss"]:.2f}'
                        for m in group_models), img_per_s, seconds,
               loop.format_duration(eta))

    num_epochs = group_configs[0].num_epochs
    images_per_epoch = len(dataset.train_images) // batch_size * batch_size
    state = loop.train_epochs(
        program, state, group_models, start_epoch=start_epoch,
        num_epochs=num_epochs, images_per_epoch=images_per_epoch,
        checkpoints=checkpoints, tracked_inputs=tracked_inputs,
        on_diverged=on_diverged,
        flush=jsonl.flush if is_primary() else lambda: None,
        progress=progress)
    checkpoints.close()
    lines = [{'member': m, **l} for m in member_indices
             for l in histories[m]]
    diverged = {m: model.diverged_at
                for m, model in zip(member_indices, group_models)
                if model.diverged_at is not None}
    # Every epoch's training time, those of earlier (resumed) calls included:
    # each line's rate is the epoch's images over its training seconds.
    rate_of_epoch = {l['epoch']: l['img_per_s'] for l in lines}
    train_seconds_total = sum(images_per_epoch / rate
                              for rate in rate_of_epoch.values())
    all_lines = others + lines
    for member, model in zip(member_indices, group_models):
      if model.writer is None:
        continue
      final = [l for l in model.history if not l.get('diverged')]
      model.writer.write_hparams(
          metric_writers.flat_settings(checkpoint_lib.config_as_dict(
              configs[member])),
          {k: final[-1][k] for k in ('test_recon', 'test_kl', 'test_loss')}
          if final else None)
      model.writer.close()
    final_params = group.unstack(state.params)
    for k, member in enumerate(member_indices):
      history = [l for l in lines if l['member'] == member
                 and not l.get('diverged')]
      final = history[-1] if history else {'epoch': 0}
      results[member] = {
          'member': member, 'label': member_label(grid[member]),
          'settings': dict(grid[member]), 'group': group_index,
          'status': ('diverged at epoch %d' % diverged[member]
                     if member in diverged else 'finished'),
          'epochs': final['epoch'], 'test_recon': final.get('test_recon'),
          'test_kl': final.get('test_kl'), 'test_loss': final.get('test_loss'),
          'img_per_s': (float(np.median([l['img_per_s'] for l in history]))
                        if history else None),
          'compile_seconds': compile_seconds,
          # Shared by the group's members, which train as one program; summed
          # over every epoch, across resumed calls.
          'group_train_seconds': train_seconds_total,
          # The member's own model: a masked latent size counts as itself,
          # not as the group's largest.
          'num_params': train.count_params(
              member_config(config, grid[member]).model, dataset.image_shape),
      }
      if config.plots and member not in diverged and is_primary():
        from vae_jax import plots
        member_dir = workdir / f'member_{member:03d}'
        member_dir.mkdir(exist_ok=True)
        member_hparams = jax.tree.map(lambda x, k=k: x[k],
                                      host_values(group.hparams))
        figures = figure_data.compute_run_figures(
            group.model, final_params[k], member_hparams, dataset,
            group_configs[k].model.variational)
        plots.plot_run(member_dir, figures, history,
                       loss=group_configs[k].loss)
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
    plots.plot_dataset(
        dataset.train_images, dataset.train_labels, workdir / 'dataset.png',
        f'{dataset.name.upper()}: training images, '
        f'{len(dataset.train_images):,} train / '
        f'{len(dataset.test_images):,} test, '
        f'{dataset.image_shape[0]}x{dataset.image_shape[1]}')
  return results


PENDING = 'pending'


def _earlier_results(workdir: Path) -> dict[int, dict]:
  """The members results.json holds from an earlier call (finished or
  diverged; pending ones are left out), by member index."""
  path = workdir / workdir_lib.RESULTS_FILE
  if not path.exists():
    return {}
  return {r['member']: r for r in json.loads(path.read_text())
          if r.get('status') != PENDING}


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
          'status': PENDING, 'epochs': 0, 'test_recon': None,
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
  write_results_table(workdir, table, config.get('reported', ()),
                      checkpoint_lib.config_as_dict(config))
  if config.plots:
    from vae_jax import plots
    trained = [r for r in table if r['status'] != PENDING]
    trained_members = {r['member'] for r in trained}
    losses = {c.loss for c in configs}
    plots.plot_sweep(workdir, trained,
                     [l for l in history if l['member'] in trained_members],
                     losses.pop() if len(losses) == 1 else 'mixed')


def _is_metric(key: str) -> bool:
  return key.startswith('test_') or key in EVALUATION_KEYS


def _same_setting(a: Any, b: Any) -> bool:
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    return float(a) == float(b)
  return a == b


def _reported_for(settings: dict, reported: Sequence[dict]) -> dict | None:
  """The published numbers whose settings equal the member's, if any."""
  for row in reported:
    keys = [k for k in row if not _is_metric(k)]
    if all(k in settings and _same_setting(settings[k], row[k]) for k in keys):
      return row
  return None


# Numbers launch.evaluate adds to a member's results.
EVALUATION_KEYS = ('test_recon_at_mean', 'iwae_nll', 'active_units',
                   'inception_score',
                   'classifier_fid', 'fid', 'sample_class_accuracy',
                   'recon_class_accuracy')


def write_results_table(workdir: Path, results: list[dict],
                        reported: Sequence[dict] = (),
                        base_config: dict | None = None) -> None:
  """results.csv, results.md and results.json: settings and final test metrics.

  A setting a member does not override gets base_config's value (a nested
  dict, as config.json holds) in the CSV and Markdown tables.

  `reported` rows (config.reported: settings plus test_recon / test_kl /
  test_loss of a published study) are put beside the members they match.
  EVALUATION_KEYS (added by launch.evaluate) get a column when any member
  has them.
  """
  setting_keys = sorted({k for r in results for k in r['settings']})
  metric_keys = ['test_recon', 'test_kl', 'test_loss']
  evaluation_keys = [k for k in EVALUATION_KEYS if any(k in r for r in results)]
  # Parameters and speed: the compute side of a comparison (Study C's VAE
  # against CVAE); results written before num_params existed lack it.
  cost_keys = [k for k in ('num_params', 'img_per_s')
               if all(k in r for r in results)]
  status_keys = (['status'] if any(r.get('status', 'finished') != 'finished'
                                   for r in results) else [])
  columns = ['member', *setting_keys, *status_keys, 'epochs', *metric_keys,
             *evaluation_keys, *cost_keys]
  reported_keys = [k for k in dict.fromkeys(k for row in reported for k in row)
                   if _is_metric(k)]
  # In the order of our own columns: a saved config's rows come back sorted.
  reported_keys.sort(key=lambda k: metric_keys.index(k) if k in metric_keys
                     else len(metric_keys))
  columns += [f'reported_{k.removeprefix("test_")}' for k in reported_keys]
  defaults = report.setting_defaults(base_config or {}, setting_keys)
  rows = []
  for r in results:
    row = [r['member'],
           *[report.format_setting(r['settings'].get(k, defaults.get(k, '')))
             for k in setting_keys],
           *[r.get(k) for k in status_keys],
           r['epochs'], *[r[k] for k in metric_keys],
           *[r.get(k, '') for k in evaluation_keys],
           *[r[k] for k in cost_keys]]
    if reported:
      match = _reported_for(r['settings'], reported)
      r['reported'] = match
      row += [match.get(k, '') if match else '' for k in reported_keys]
    rows.append(row)
  with workdir_lib.atomic_path(workdir / workdir_lib.RESULTS_CSV) as tmp, \
      open(tmp, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows(rows)
  workdir_lib.atomic_write_json(workdir / workdir_lib.RESULTS_FILE, results)
  fmt = lambda v: (f'{v:.2f}' if isinstance(v, float) else
                   '-' if v is None else str(v))
  column_format = {'img_per_s': lambda v: '-' if v is None else f'{v:,.0f}',
                   'num_params': lambda v: f'{v:,}'}
  markdown = ['| ' + ' | '.join(columns) + ' |',
              '|' + '---:|' * len(columns)]
  markdown += ['| ' + ' | '.join(column_format.get(c, fmt)(v)
                                for c, v in zip(columns, row)) + ' |'
               for row in rows]
  if 'img_per_s' in cost_keys:
    markdown += ['', 'img_per_s: the training rate of the member\'s compiled '
                 'group divided by its members, not the speed of that model '
                 'run alone (time it with launch.train).']
  workdir_lib.atomic_write_text(workdir / workdir_lib.RESULTS_MD,
                                '\n'.join(markdown) + '\n')
