"""What the benchmarks share: the matmul clock that gives each side's
fraction of the machine's rate, and the torch variants' names."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


REPO = Path(__file__).resolve().parents[1]
# torch_reference.VARIANTS, named here so that --help works without torch.
TORCH_VARIANTS = ('dataloader', 'preloaded', 'fused_adam', 'compiled')


def torch_synchronizer(device) -> Callable[[], None]:
  """Waits for `device`'s queued PyTorch work (CUDA runs asynchronously);
  a no-op on the CPU, where every call has finished when it returns."""
  import torch
  return torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)


class MatmulClock:
  """Times a float32 size^3 matmul in JAX and in PyTorch, as often as asked.

  The benchmark times it before the first epoch and again after every
  round, so that each side's share of the machine's matmul rate compares
  epochs with products timed under the same load. Each timed run repeats
  the matmul for about `seconds_per_run` (at least twice), so that a fast
  device is timed over many products rather than one launch.
  """

  def __init__(self, size: int, torch_device=None,
               seconds_per_run: float = 0.2):
    import torch
    self.size = size
    device = torch_device or torch.device('cpu')
    self._sync = torch_synchronizer(device)
    rng = np.random.default_rng(0)
    a_np, b_np = (rng.random((size, size), np.float32) for _ in range(2))
    jax_operands = jnp.asarray(a_np), jnp.asarray(b_np)
    jax_matmul = jax.jit(jnp.matmul)
    torch_operands = tuple(torch.from_numpy(x).to(device)
                           for x in (a_np, b_np))
    self._products = {
        'jax': lambda: jax_matmul(*jax_operands).block_until_ready(),
        'torch': lambda: torch.matmul(*torch_operands),
    }
    self.repeats = {}
    for framework, product in self._products.items():
      product()  # compiles, warms caches
      self._sync()
      once = math.inf
      for _ in range(3):
        start = time.perf_counter()
        product()
        self._sync()
        once = min(once, time.perf_counter() - start)
      self.repeats[framework] = int(np.clip(
          math.ceil(seconds_per_run / max(once, 1e-6)), 2, 100_000))

  def rates(self, tries: int = 3) -> dict[str, float]:
    """{'jax', 'torch'}: GFLOP/s, the best of `tries` timed runs each.

    The benchmark calls it the same way before the first epoch and after
    every round (a best of fewer runs would read lower on a noisy host); at
    2048^3 on 2 CPU cores it takes about 1.5-2 s.
    """
    best = {}
    for _ in range(tries):
      for framework, product in self._products.items():
        repeats = self.repeats[framework]
        start = time.perf_counter()
        for _ in range(repeats):
          product()
        self._sync()
        rate = 2.0 * self.size ** 3 * repeats / (time.perf_counter() - start)
        best[framework] = max(best.get(framework, 0.0), rate / 1e9)
    return best


def round_matmul_summary(round_rates: list[dict[str, float]],
                         jax_seconds, images_per_epoch: int,
                         flops_per_image: float) -> dict | None:
  """The matmul rates timed after each round, and JAX's share of them.

  round_rates: per timed round, {'jax', 'torch'} GFLOP/s of the matmul timed
    right after that round's epochs; jax_seconds: JAX's epoch seconds of the
    same rounds.

  Returns:
    'jax', 'torch': each framework's median rate; 'peak': the median of each
    round's higher rate (the fractions of peak use it); 'jax_fraction':
    {'median', 'low', 'high'} of JAX's epoch GFLOP/s over the same round's
    peak; None without a round.
  """
  rounds = min(len(round_rates), len(jax_seconds))
  if rounds == 0:
    return None
  peaks = np.array([max(r.values()) for r in round_rates[:rounds]])
  jax_gflops = (images_per_epoch * flops_per_image / 1e9
                / np.asarray(jax_seconds[:rounds], float))
  low, median, high = np.percentile(jax_gflops / peaks, [25, 50, 75])
  return {
      'jax': float(np.median([r['jax'] for r in round_rates[:rounds]])),
      'torch': float(np.median([r['torch'] for r in round_rates[:rounds]])),
      'peak': float(np.median(peaks)),
      'jax_fraction': {'median': float(median), 'low': float(low),
                       'high': float(high)},
  }


