"""Optimisers and learning-rate schedules, selected by name from a config.

Every optimiser keeps its learning rate in its state (optax's
inject_hyperparams), so the rate is an array the train step sets each step:
a sweep gives each member its own, and a schedule scales it by the step.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


class BurdaAdamState(NamedTuple):
  count: jax.Array  # int32 [], updates made
  mu: Any  # first moments
  nu: Any  # second moments


def scale_by_burda_adam(b1: float = 0.99, b2: float = 0.999,
                        eps: float = 1e-4) -> optax.GradientTransformation:
  """Adam as the IWAE paper's code runs it (yburda/iwae, optimizers.py).

  It differs from Kingma & Ba's Adam (and optax.adam) in three ways:
  the second moments start at one, not zero; epsilon is added to sqrt(v)
  after the step size's bias correction, not to a bias-corrected v; and the
  update of step t uses the moments *before* step t's gradient enters them
  (a Theano update list reads every shared variable's old value), so the
  first update is zero. With t = 1, 2, ...:

    direction_t = sqrt(1 - b2^t) / (1 - b1^t) * m_{t-1} / (sqrt(v_{t-1}) + eps)
    m_t = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) g_t^2

  m_0 = 0, v_0 = 1. Chain with a learning rate (`burda_adam`) for updates.
  """

  def init(params):
    return BurdaAdamState(
        count=jnp.zeros([], jnp.int32),
        mu=jax.tree.map(jnp.zeros_like, params),
        nu=jax.tree.map(jnp.ones_like, params))

  def update(grads, state, params=None):
    del params
    t = (state.count + 1).astype(jnp.float32)
    step_size = jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    directions = jax.tree.map(
        lambda m, v: step_size * m / (jnp.sqrt(v) + eps), state.mu, state.nu)
    mu = jax.tree.map(lambda m, g: b1 * m + (1.0 - b1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1.0 - b2) * jnp.square(g),
                      state.nu, grads)
    return directions, BurdaAdamState(count=state.count + 1, mu=mu, nu=nu)

  return optax.GradientTransformation(init, update)


def burda_adam(learning_rate, b1: float = 0.99, b2: float = 0.999,
               eps: float = 1e-4) -> optax.GradientTransformation:
  """`scale_by_burda_adam` followed by -learning_rate (a descent step)."""
  return optax.chain(scale_by_burda_adam(b1, b2, eps),
                     optax.scale_by_learning_rate(learning_rate))


# Defaults follow PyTorch's (torch.optim), so results compare one to one;
# 'burda_adam' is the IWAE code's (beta1 0.99, beta2 0.999, eps 1e-4).
_FACTORIES: dict[str, Callable[..., optax.GradientTransformation]] = {
    'adam': lambda learning_rate: optax.adam(learning_rate, eps=1e-8),
    'rmsprop': lambda learning_rate: optax.rmsprop(
        learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False),
    'adagrad': lambda learning_rate: optax.adagrad(
        learning_rate, initial_accumulator_value=0.0, eps=1e-10),
    'sgd': lambda learning_rate: optax.sgd(learning_rate),
    'burda_adam': burda_adam,
}
OPTIMIZERS = tuple(_FACTORIES)


def make_optimizer(name: str) -> optax.GradientTransformation:
  """The optimiser `name`, its learning rate held in its state (set each
  step by train.apply_gradients)."""
  if name not in _FACTORIES:
    raise ValueError(f'Unknown optimizer {name!r} in config.optimizer; choose '
                     f'one of {sorted(_FACTORIES)}.')
  return optax.inject_hyperparams(_FACTORIES[name])(learning_rate=0.0)


# Burda et al. (2016), section 5: stage i = 0..7 trains 3^i epochs at
# 1e-3 * 10^(-i/7); their code rounds the rate to two digits
# (1e-4 * round(10^(1 - i/7), 1)). As scales of config.learning_rate = 1e-3:
BURDA_STAGE_EPOCHS = tuple(3**i for i in range(8))  # 3,280 epochs in all
BURDA_STAGE_SCALES = tuple(round(10**(1 - i / 7), 1) / 10 for i in range(8))

SCHEDULES = ('constant', 'burda')


def learning_rate_scale(name: str, steps_per_epoch: int) -> optax.Schedule:
  """The factor config.learning_rate is multiplied by at each optimiser step.

  'constant': 1. 'burda': the eight stages above, one after the other; after
  the last stage the last scale holds. Since it is a function of the step
  count in the train state, a run resumed in any stage continues it.
  """
  if name == 'constant':
    return optax.constant_schedule(1.0)
  if name == 'burda':
    boundaries, epochs = [], 0
    for stage_epochs in BURDA_STAGE_EPOCHS[:-1]:
      epochs += stage_epochs
      boundaries.append(epochs * steps_per_epoch)
    return optax.join_schedules(
        [optax.constant_schedule(scale) for scale in BURDA_STAGE_SCALES],
        boundaries)
  raise ValueError(f'Unknown learning-rate schedule {name!r} in '
                   f'config.lr_schedule; choose one of {SCHEDULES}.')
