"""Weight initialisation schemes selectable by name from a config."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


def _torch_uniform_kernel(rng, shape, dtype=jnp.float32):
  # PyTorch's nn.Linear / nn.Conv default, kaiming_uniform(a=sqrt(5)), reduces
  # to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); Flax kernels are [..., fan_in, out].
  fan_in = 1
  for size in shape[:-1]:
    fan_in *= size
  bound = 1.0 / jnp.sqrt(fan_in)
  return jax.random.uniform(rng, shape, dtype, -bound, bound)


def torch_default_bias_init(fan_in: int):
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default bias init, and its
  kernel init where fan_in is not the kernel's own (transposed convolutions)."""

  def init(rng, shape, dtype=jnp.float32):
    bound = 1.0 / jnp.sqrt(fan_in)
    return jax.random.uniform(rng, shape, dtype, -bound, bound)

  return init


INIT_SCHEMES = ('torch_default', 'lecun_normal', 'kaiming_normal',
                'glorot_uniform')


def kernel_init(scheme: str):
  """Returns the kernel initialiser for `scheme` (one of INIT_SCHEMES).

  'torch_default' is what an unmodified PyTorch model gets; 'lecun_normal' is
  Flax's default; 'kaiming_normal' is He init, normal, fan-in, ReLU gain.
  """
  if scheme == 'torch_default':
    return _torch_uniform_kernel
  if scheme == 'lecun_normal':
    return nn.initializers.lecun_normal()
  if scheme == 'kaiming_normal':
    # Untruncated normal with std sqrt(2 / fan_in), as torch.nn.init.kaiming_normal_.
    return nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
  if scheme == 'glorot_uniform':
    return nn.initializers.glorot_uniform()
  raise ValueError(
      f'Unknown init scheme {scheme!r}; choose one of {INIT_SCHEMES}.')


def dense(features: int, fan_in: int, scheme: str, name: str | None = None
          ) -> nn.Dense:
  """A Dense layer initialised by `scheme` (bias follows the scheme too)."""
  bias_init = (torch_default_bias_init(fan_in) if scheme == 'torch_default'
               else nn.initializers.zeros_init())
  return nn.Dense(features, kernel_init=kernel_init(scheme),
                  bias_init=bias_init, name=name)
