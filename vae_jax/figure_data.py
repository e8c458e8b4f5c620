"""What a trained run's figures show, computed from the model: arrays only.

`compute_run_figures` decodes and encodes with the trained parameters
(reconstructions, prior samples, the encoded test set, decoded latent grids
and interpolations, a t-SNE map of latent codes wider than 3) and returns
them as NumPy arrays; `vae_jax.plots.plot_run` draws them. Keeping the two
apart lets the figures be redrawn, restyled or tested without a model.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import objectives
from vae_jax import train
from vae_jax import tsne

TSNE_POINTS = 2000  # latent codes drawn in a t-SNE map (exact t-SNE is O(N^2))
TSNE_PERPLEXITY = 30.0
# Test digits in reconstructions.png: four rows of eight over their
# reconstructions, as Study B's report shows them.
RECONSTRUCTED = 32
INTERPOLATION_STEPS = 10


@dataclasses.dataclass
class LatentMap:
  """A 2-d picture of latent codes: t-SNE coordinates [M, 2] of the codes
  `indices` [M] (into the encoded test set), for latent spaces wider than 3."""

  coordinates: np.ndarray
  indices: np.ndarray
  perplexity: float


@dataclasses.dataclass
class RunFigures:
  """Everything plots.plot_run draws besides the loss curves.

  Images are [..., H, W] float arrays in [0, 1]. Fields of figures that do
  not apply are None: prior samples, grids and interpolations for a plain
  autoencoder (no prior), the traversal unless the latent is 1-d, the grid
  unless it is 2-d, the t-SNE map unless it is wider than 3.
  """

  inputs: np.ndarray  # [RECONSTRUCTED, H, W] test digits
  reconstructions: np.ndarray  # their decoded posterior means
  latent_means: np.ndarray  # [N, d] encoded test set (the member's own d)
  test_labels: np.ndarray  # [N]
  conditional: bool
  samples: np.ndarray | None = None  # [rows * 8, H, W]
  sample_title: str = ''
  sample_row_labels: list[str] | None = None
  latent_map: LatentMap | None = None
  window: tuple[float, float] | None = None  # decoded latent range
  traversal: np.ndarray | None = None  # [15, H, W] along a 1-d latent
  traversal_values: np.ndarray | None = None
  grid: np.ndarray | None = None  # [20 * 20, H, W] over a 2-d latent
  grid_values: np.ndarray | None = None
  interpolations: np.ndarray | None = None  # [5, STEPS, H, W]
  interpolation_caption: str = ''


def latent_window(prior_mean: float, prior_std: float) -> tuple[float, float]:
  """The latent range the decoder is drawn over: the prior's mean +- 5, or
  +- 2.5 prior standard deviations where that is wider ([-5, 5] for
  N(0, 1), the range Studies B and D draw; [-4, 6] for N(1, 2^2))."""
  half = max(5.0, 2.5 * prior_std)
  return prior_mean - half, prior_mean + half


def latent_map(codes: np.ndarray) -> LatentMap:
  """t-SNE of a fixed sample of TSNE_POINTS codes [N, d]."""
  keep = np.sort(np.random.default_rng(0).permutation(len(codes))[:TSNE_POINTS])
  return LatentMap(tsne.embed(codes[keep], perplexity=TSNE_PERPLEXITY), keep,
                   TSNE_PERPLEXITY)


def compute_run_figures(model, params, hparams, dataset,
                        variational: bool = True,
                        batch_stats=None) -> RunFigures:
  """Decodes and encodes what a trained run's figures show.

  Args:
    model: the run's Flax VAE (a sweep member's group model).
    params: its trained parameters.
    hparams: its Hyperparams (the prior, and a sweep member's latent mask).
    dataset: the data it trained on (the test set is encoded).
    variational: False for a plain autoencoder: no prior samples, latent
      grids or interpolations.
    batch_stats: a BatchNorm model's running averages (it normalises with
      them, as in evaluation).
  """
  variables = train.model_variables(params, batch_stats)
  decode = jax.jit(lambda z, labels: jax.nn.sigmoid(
      model.apply(variables, z, labels, method=model.decode)))
  encode = jax.jit(lambda x, labels: model.apply(variables, x, labels,
                                                 method=model.encode))
  latent_size = hparams.latent_mask.shape[-1]
  num_classes = getattr(model, 'num_classes', 0)
  test = dataset.test_images.astype(np.float32) / 255.0
  labels = dataset.test_labels
  inputs = test[:RECONSTRUCTED]
  reconstructions = np.asarray(decode(encode(inputs, labels[:RECONSTRUCTED])
                                      .mean, labels[:RECONSTRUCTED]))
  # A sweep member's latent space is the unmasked dimensions of its model's.
  kept = np.flatnonzero(np.asarray(hparams.latent_mask) > 0)

  def embed(codes: np.ndarray) -> np.ndarray:
    full = np.zeros((len(codes), latent_size), np.float32)
    full[:, kept] = codes
    return full

  means = np.concatenate([
      np.asarray(encode(test[i:i + 1000], labels[i:i + 1000]).mean)
      for i in range(0, len(test), 1000)])[:, kept]
  figures = RunFigures(inputs, reconstructions, means, labels,
                       conditional=bool(num_classes),
                       latent_map=latent_map(means) if len(kept) > 3 else None)
  if not variational:
    return figures  # an autoencoder's codes follow no prior

  # 8x8 samples; a conditional model's rows are its classes, 8 of each.
  rows = num_classes or 8
  z = objectives.sample_prior(jax.random.PRNGKey(0), rows * 8,
                             hparams.prior_mean, hparams.prior_std,
                             jnp.asarray(hparams.latent_mask))
  figures.samples = np.asarray(decode(z, jnp.repeat(jnp.arange(rows), 8)))
  figures.sample_title = (f'Samples from the prior N('
                          f'{float(hparams.prior_mean):g}, '
                          f'{float(hparams.prior_std):g}$^2$)')
  if num_classes:
    figures.sample_title += ' of each digit'
    figures.sample_row_labels = [f'digit {d}' for d in range(num_classes)]

  low, high = latent_window(float(hparams.prior_mean),
                            float(hparams.prior_std))
  figures.window = (low, high)
  if len(kept) == 1:
    values = np.linspace(low, high, 15, dtype=np.float32)
    figures.traversal = np.asarray(decode(embed(values[:, None]),
                                          np.zeros(len(values), np.int32)))
    figures.traversal_values = values
  if len(kept) == 2:
    values = np.linspace(low, high, 20, dtype=np.float32)
    grid = np.stack(np.meshgrid(values, values[::-1]), -1).reshape(-1, 2)
    grid_labels = np.zeros(len(grid), np.int32)  # digit 0 for a CVAE
    figures.grid = np.asarray(decode(embed(grid), grid_labels))
    figures.grid_values = values
  # From a test digit d to one of d + 1, for d = 0, 2, ..., 8.
  first = [int(np.argmax(labels == d)) for d in range(0, 10, 2)]
  second = [int(np.argmax(labels == d)) for d in range(1, 10, 2)]
  ends = np.asarray(encode(test[first + second], labels[first + second]).mean)
  steps = np.linspace(0, 1, INTERPOLATION_STEPS,
                      dtype=np.float32)[None, :, None]
  path_z = ((1 - steps) * ends[:len(first), None] +
            steps * ends[len(first):, None]).reshape(-1, ends.shape[1])
  # A CVAE keeps the first digit's label along the path.
  path_labels = np.repeat(labels[first], INTERPOLATION_STEPS)
  interpolated = np.asarray(decode(path_z * np.asarray(hparams.latent_mask),
                                   path_labels))
  figures.interpolations = interpolated.reshape(
      len(first), INTERPOLATION_STEPS, *interpolated.shape[1:])
  figures.interpolation_caption = (
      'first digit  ->  second digit (decoded with the first digit\'s label'
      ' throughout)' if num_classes else 'first digit  ->  second digit')
  return figures
