"""How the loss curves frame long runs."""

import matplotlib.pyplot as plt
import numpy as np

from vae_jax import plots


def _long_run(epochs=300):
  """A loss like a 300-epoch run's: 290 at epoch 1, 175 by epoch 30, then a
  slow fall to about 160."""
  t = np.arange(1, epochs + 1)
  return list(160 + 130 * np.exp(-(t - 1) / 6) + 15 * np.exp(-t / 100))


def test_a_long_run_is_framed_on_its_later_epochs():
  curve = _long_run()
  fig, ax = plt.subplots()
  ax.plot(curve)
  assert plots.focus_on_later_epochs(ax, [curve, [c + 1 for c in curve]])
  low, high = ax.get_ylim()
  later = curve[30:]
  assert low <= min(curve) and high >= max(later) + 1
  assert high < max(curve) - 50  # the first epochs no longer set the scale
  plt.close(fig)


def test_short_or_gently_moving_runs_keep_every_point():
  fig, ax = plt.subplots()
  short = _long_run(10)
  assert not plots.focus_on_later_epochs(ax, [short])
  # A KL-like curve: its first epochs stay within the later range's size.
  t = np.arange(300)
  kl = list(4.2 - 1.5 * np.exp(-t / 40))
  kl[0] = 5.0
  assert not plots.focus_on_later_epochs(ax, [kl])
  plt.close(fig)

