"""A sweep group: members that share one model's code and shapes, trained as
one compiled program.

Members that differ only in array-valued settings (beta, prior mean/std,
learning rate, seed, and latent size through a mask) form one group: one
model built at the group's largest latent size, one stacked train state with
a leading "sweep" axis, one compiled epoch `jax.vmap`-ed over it and sharded
over every device (a group of one runs its model unbatched, as a single run).
Settings that change shapes or code (architecture, batch size, optimiser,
data) split a grid into groups, each its own program.

Multi-host: call `jax.distributed.initialize()` in every process (the
launcher's --distributed flag does); `jax.devices()` then spans all hosts and
the sweep axis is sharded over them.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vae_jax import checkpoint as checkpoint_lib
from vae_jax import config_fields
from vae_jax import models
from vae_jax import optimizers
from vae_jax import train



def host_values(tree):
  """A tree of (possibly sharded over several processes) arrays as NumPy."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return multihost_utils.process_allgather(x, tiled=True)
    return jax.device_get(x)
  return jax.tree.map(one, tree)


def is_primary() -> bool:
  """Whether this process writes the sweep's shared files: process 0 of a
  multi-process sweep (jax.distributed), or the one process."""
  return jax.process_index() == 0


def _static_signature(config: ml_collections.ConfigDict) -> str:
  flat = checkpoint_lib.flatten_config(checkpoint_lib.config_as_dict(config))
  # Fields that are arrays in train.Hyperparams never split a group.
  varying = set(config_fields.sweep_array_keys())
  if not models.get_model(config.model.name).maskable_latent:
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


def over_members(fn, in_axes: tuple, size: int):
  """fn mapped over the leading (members) axis of the arguments whose
  in_axes entry is 0: jax.vmap, or for a group of one, fn itself on the
  squeezed arrays. XLA's CPU matrix products with a batch dimension of one
  run slower than unbatched ones (docs/cpu_kernels.md), and a lone member
  should train at its single run's speed."""
  if size > 1:
    return jax.vmap(fn, in_axes=in_axes)

  def single(*args):
    args = [jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg
            for arg, axis in zip(args, in_axes)]
    return jax.tree.map(lambda x: x[None], fn(*args))
  return single


class SweepGroup:
  """One compiled program: the members of a group, stacked and sharded."""

  def __init__(self, configs: Sequence[ml_collections.ConfigDict],
               image_shape: tuple[int, int], mesh: Mesh,
               output_bias: np.ndarray | None = None):
    """output_bias: the members' starting decoder output bias
    (train.initial_output_bias), None for the init scheme's."""
    base = configs[0]
    self._output_bias = output_bias
    model_config = copy.deepcopy(base.model)
    capacity = max(c.model.latent_size for c in configs)
    model_config.latent_size = capacity
    self.model = models.build_model(model_config, image_shape)
    self.optimizer = optimizers.make_optimizer(base.optimizer)
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
    # One member's epoch (state, hparams, data, epoch), before mapping.
    self.member_epoch = train.make_train_epoch(
        self.model, self.optimizer, base.batch_size, base.data.preprocessing,
        loss, base.scan_unroll, **train.epoch_options(base))
    self.train_epoch = jax.jit(
        over_members(self.member_epoch, (0, 0, None, None), self.size),
        donate_argnums=0,
        out_shardings=self.sharded)
    evaluate = train.make_evaluate(self.model, base.eval_batch_size,
                                   base.data.preprocessing, loss,
                                   **train.objective_options(base))
    # evaluate(params, hparams, data, batch_stats): each member normalises
    # with its own running averages (a BatchNorm model's; {} otherwise).
    self.evaluate = jax.jit(over_members(evaluate, (0, 0, None, 0), self.size),
                            out_shardings=self.sharded)

  def create_state(self, initial_params: Sequence[Any] | None = None,
                   member_ids: Sequence[int] | None = None
                   ) -> train.TrainState:
    """Every member's initial state, stacked [size, ...] and sharded.

    A member is initialised by a model of its own latent size, as its
    separate run would be, then zero-padded to the group's: initialisers
    scale with fan-in, so drawing the decoder's input layer at the group's
    larger latent size would start a small-latent member from weights
    several times smaller than its own model's. A BatchNorm model's members
    each start their own running averages (state.batch_stats), as their
    model's init gives them.

    initial_params: optional, one parameter tree per member (in the group's
      order, each shaped as its own latent size's model) to start from
      instead of drawing from the seeds.
    member_ids: the members' indices in the whole sweep, for error messages
      (default: their places in the group).
    """
    variables = [None] * self.count
    for latent_size in sorted(set(self._latent_sizes)):
      members = [i for i, size in enumerate(self._latent_sizes)
                 if size == latent_size]
      model_config = copy.deepcopy(self._model_config)
      model_config.latent_size = latent_size
      model = models.build_model(model_config, self._image_shape)
      init = jax.jit(jax.vmap(lambda seed, model=model: train.init_variables(
          model, seed, self._image_shape, self._output_bias)))
      drawn = init(jnp.asarray([self._seeds[i] for i in members], jnp.uint32))
      if initial_params is not None:
        like = jax.eval_shape(lambda model=model: train.init_params(
            model, jnp.uint32(0), self._image_shape))
      for k, member in enumerate(members):
        variables[member] = jax.tree.map(lambda x, k=k: x[k], drawn)
        if initial_params is not None:
          variables[member]['params'] = _checked_params(
              initial_params[member], like,
              member if member_ids is None else member_ids[member])
    like = jax.eval_shape(lambda: train.init_variables(
        self.model, jnp.uint32(0), self._image_shape))
    padded = [pad_latent_dimensions(v, like, size)
              for v, size in zip(variables, self._latent_sizes)]
    padded += [padded[-1]] * (self.size - self.count)
    # Through the host: each process drew the same numbers on its own
    # devices, and the state is laid out over every process's devices.
    stacked = jax.device_put(
        jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]),
                     *padded), NamedSharding(self.mesh, PartitionSpec()))
    return jax.jit(jax.vmap(lambda v: train.state_from_params(
        v['params'], self.optimizer, v.get('batch_stats'))),
                   out_shardings=self.sharded)(stacked)

  def abstract_state(self) -> train.TrainState:
    """create_state()'s shapes, dtypes and shardings, with nothing drawn:
    the template a checkpoint is restored into."""
    like = jax.eval_shape(lambda: train.init_variables(
        self.model, jnp.uint32(0), self._image_shape))
    stacked = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct((self.size, *leaf.shape),
                                          leaf.dtype), like)
    state = jax.eval_shape(jax.vmap(
        lambda v: train.state_from_params(v['params'], self.optimizer,
                                          v.get('batch_stats'))), stacked)
    return jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                          sharding=self.sharded), state)

  def unstack(self, tree) -> list[dict]:
    """Per-member host values of a stacked tree, padding dropped (gathered
    from every process in a multi-process sweep)."""
    host = host_values(tree)
    return [jax.tree.map(lambda x: x[i], host) for i in range(self.count)]


def _freeze(state, frozen, mask):
  """state with the members where mask [size] is True taken from frozen."""
  def pick(new, old):
    return jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)
  return jax.jit(lambda s, f: jax.tree.map(pick, s, f))(state, frozen)


class GroupProgram:
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
        train.make_reconstruct(group.model), (0, 0, None, None, 0),
        group.size))
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
                                                self._test_data,
                                                state.batch_stats))

  def reconstruct(self, state) -> list[np.ndarray]:
    return self.group.unstack(self._reconstruct(state.params,
                                                self.group.hparams,
                                                *self._tracked,
                                                state.batch_stats))

  def freeze(self, state, source, indices: list[int]):
    """Freezes the members at `indices` at their state in `source`."""
    self.frozen = (source if self.frozen is None else
                   _freeze(self.frozen, source, self._mask(indices)))
    self.diverged += indices
    return _freeze(state, self.frozen, self._mask(self.diverged))
