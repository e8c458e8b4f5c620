"""Figures of a trained run: loss curves, reconstructions, samples, latent maps.

Each `plot_*` function takes NumPy arrays and writes one PNG; `plot_run`
draws every figure of a run from what vae_jax.figure_data computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

# No matplotlib.use(): without a display matplotlib picks Agg itself, and a
# notebook keeps its inline backend. Figures are closed once saved.
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from vae_jax import loop
from vae_jax import workdir as workdir_lib

if TYPE_CHECKING:  # drawing needs arrays only, not JAX
  from vae_jax.figure_data import LatentMap, RunFigures

DPI = 110


def tile_images(images: np.ndarray, rows: int, cols: int,
                pad: int = 1) -> np.ndarray:
  """[rows*cols, H, W] in [0, 1] -> one [rows*(H+pad)+pad, cols*(W+pad)+pad] image."""
  count, height, width = images.shape
  if count != rows * cols:
    raise ValueError(f'{count} images do not fill a {rows}x{cols} grid.')
  canvas = np.ones((rows * (height + pad) + pad, cols * (width + pad) + pad),
                   np.float32)
  for index, image in enumerate(images):
    r, c = divmod(index, cols)
    top, left = pad + r * (height + pad), pad + c * (width + pad)
    canvas[top:top + height, left:left + width] = image
  return canvas


# The unit of each reconstruction loss (config.loss), summed over pixels.
RECON_UNITS = {
    'bce': 'nats per image',
    'mse': 'squared error per image',
    'mae': 'absolute error per image',
    'perceptual': 'feature distance per image',
    'perceptual+bce': 'BCE + weighted features, per image',
    'perceptual+mse': 'SE + weighted features, per image',
}


def loss_units(loss: str) -> tuple[str, str]:
  """(reconstruction unit, total unit) of a config.loss; KL is in nats."""
  recon = RECON_UNITS.get(loss, 'per image')
  return recon, ('nats per image' if loss == 'bce'
                 else 'recon + beta * KL, per image')


def _integer_epochs(ax) -> None:
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: Path) -> Path:
  """Writes the figure whole: a process killed while drawing leaves the old
  PNG (or none), never a truncated one."""
  try:
    with workdir_lib.atomic_path(path) as temporary:
      fig.savefig(temporary, dpi=DPI, bbox_inches='tight', format='png')
  finally:
    plt.close(fig)
  return path


MARKED_EPOCHS = 40  # longer curves are drawn as plain lines


def focus_on_later_epochs(ax, curves: Sequence[Sequence[float]]) -> bool:
  """Cuts the y-axis above the later epochs' curves when the first epochs
  would otherwise squash them (a 300-epoch loss falls from 290 to 160 in the
  first few epochs, then moves by 0.1s). Returns whether it cut.

  Later epochs are those after the first tenth (runs of 20 epochs or more);
  the cut is made only if the first epochs rise above them by more than
  their own range, so short runs and gently moving curves keep every point.
  """
  length = min(len(c) for c in curves)
  if length < 20:
    return False
  values = np.array([c[:length] for c in curves], np.float64)
  later = values[:, length // 10:]
  low, high = values.min(), later.max()
  span = high - low
  if span <= 0 or values.max() - high <= span:
    return False
  ax.set_ylim(low - 0.05 * span, high + 0.15 * span)
  ax.text(0.98, 0.96, 'first epochs above the axis', transform=ax.transAxes,
          ha='right', va='top', fontsize=8, color='0.35')
  return True


def plot_loss_curves(history: Sequence[dict], path: Path,
                     loss: str = 'bce') -> Path:
  """Train and test loss, reconstruction and KL per epoch, on separate axes,
  each in its own unit (loss: the config.loss the run was trained with)."""
  epochs = [line['epoch'] for line in history]
  marked = len(epochs) <= MARKED_EPOCHS
  recon_unit, total_unit = loss_units(loss)
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for ax, key, title, unit in zip(
      axes, ('loss', 'recon', 'kl'),
      ('Total (recon + beta * KL)', f'Reconstruction ({loss.upper()})',
       'KL to prior'), (total_unit, recon_unit, 'nats per image')):
    train_curve = [line[f'train_{key}'] for line in history]
    test_curve = [line[f'test_{key}'] for line in history]
    ax.plot(epochs, train_curve, 'o-' if marked else '-', label='train',
            markersize=3)
    ax.plot(epochs, test_curve, 's-' if marked else '-', label='test',
            markersize=3)
    focus_on_later_epochs(ax, [train_curve, test_curve])
    ax.set_title(title)
    ax.set_xlabel('epoch')
    _integer_epochs(ax)
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    ax.legend(loc='best')
  fig.tight_layout()
  return _save(fig, path)


def reconstruction_canvas(inputs: np.ndarray, outputs: np.ndarray,
                          columns: int = 8) -> tuple[np.ndarray, int]:
  """Inputs [N, H, W] in rows of `columns` above their reconstructions
  [N, H, W] in the same places (Study B's report shows its digits so), the
  blocks a blank row apart. Returns (canvas, height of one block)."""
  columns = min(columns, len(inputs))
  rows = -(-len(inputs) // columns)
  blank = np.ones((rows * columns - len(inputs),) + inputs.shape[1:],
                  np.float32)
  blocks = [tile_images(np.concatenate([images, blank]), rows, columns)
            for images in (inputs, outputs)]
  gap = np.ones((inputs.shape[1] // 2, blocks[0].shape[1]), np.float32)
  return np.concatenate([blocks[0], gap, blocks[1]]), blocks[0].shape[0]


def plot_reconstructions(inputs: np.ndarray, outputs: np.ndarray, path: Path,
                         title: str = 'Test reconstructions',
                         columns: int = 8) -> Path:
  """Inputs [N, H, W] above their reconstructions [N, H, W], each block in
  rows of `columns`, a digit's reconstruction at its place in the lower one."""
  canvas, block = reconstruction_canvas(inputs, outputs, columns)
  width = canvas.shape[1] / canvas.shape[0] * 5
  fig, ax = plt.subplots(figsize=(width + 1.6, 5.6))
  ax.imshow(canvas, cmap='gray', vmin=0, vmax=1)
  ax.set_yticks([block / 2, canvas.shape[0] - block / 2],
                ['inputs', 'reconstructions'])
  ax.set_xticks([])
  for side in ('top', 'right', 'bottom', 'left'):
    ax.spines[side].set_visible(False)
  ax.set_title(title)
  return _save(fig, path)


def plot_samples(images: np.ndarray, path: Path, title: str,
                 row_labels: Sequence[str] | None = None) -> Path:
  """A square grid of images [n*n, H, W], or rows of images [R*C, H, W]
  with a label beside each of the R = len(row_labels) rows."""
  rows = len(row_labels) if row_labels else int(round(np.sqrt(len(images))))
  columns = len(images) // rows
  fig, ax = plt.subplots(figsize=(5, 5.3 * rows / columns))
  canvas = tile_images(images, rows, columns)
  ax.imshow(canvas, cmap='gray', vmin=0, vmax=1)
  ax.set_xticks([])
  if row_labels:
    height = canvas.shape[0] / rows
    ax.set_yticks([height * (i + 0.5) for i in range(rows)], row_labels)
    for side in ('top', 'right', 'bottom', 'left'):
      ax.spines[side].set_visible(False)
  else:
    ax.set_yticks([])
  ax.set_title(title)
  return _save(fig, path)


def plot_dataset(images: np.ndarray, labels: np.ndarray, path: Path,
                 title: str, per_class: int = 8) -> Path:
  """The first `per_class` training images of each digit [N, H, W] uint8,
  one column per digit, labelled."""
  classes = sorted(set(np.asarray(labels).tolist()))
  picked = [np.flatnonzero(labels == c)[:per_class] for c in classes]
  rows = min(len(p) for p in picked)
  grid = np.stack([images[p[:rows]] for p in picked], axis=1)  # [rows, C, H, W]
  canvas = tile_images(grid.reshape(-1, *images.shape[1:]).astype(np.float32)
                       / 255, rows, len(classes))
  fig, ax = plt.subplots(figsize=(len(classes) * 0.55 + 0.6, rows * 0.55 + 0.9))
  ax.imshow(canvas, cmap='gray', vmin=0, vmax=1)
  width = canvas.shape[1] / len(classes)
  ax.set_xticks([width * (i + 0.5) for i in range(len(classes))],
                [str(c) for c in classes])
  ax.xaxis.tick_top()
  ax.set_yticks([])
  ax.set_title(title, pad=22)
  return _save(fig, path)


def plot_latent_grid(images: np.ndarray, values: np.ndarray,
                     path: Path) -> Path:
  """Decoded images [n*n, H, W] of the grid z = (values[j], values[n-1-i])."""
  side = len(values)
  canvas = tile_images(images, side, side, pad=0)
  extent = (values[0], values[-1], values[0], values[-1])
  fig, ax = plt.subplots(figsize=(7, 7))
  ax.imshow(canvas, cmap='gray', vmin=0, vmax=1, extent=extent)
  ax.set_xlabel('$z_1$')
  ax.set_ylabel('$z_2$')
  ax.set_title(f'Decoder over [{values[0]:g}, {values[-1]:g}]$^2$')
  return _save(fig, path)


def plot_latent_traversal(images: np.ndarray, values: np.ndarray,
                          path: Path) -> Path:
  """Decoded images [n, H, W] along a 1-d latent at `values` [n]."""
  count = len(values)
  fig, ax = plt.subplots(figsize=(count * 0.55 + 0.6, 1.6))
  ax.imshow(tile_images(images, 1, count, pad=0), cmap='gray', vmin=0, vmax=1,
            extent=(values[0], values[-1], 0, 1), aspect='auto')
  ax.set_yticks([])
  ax.set_xlabel('$z$')
  ax.set_title(f'Decoder along the latent over [{values[0]:g}, {values[-1]:g}]')
  return _save(fig, path)


def _class_colorbar(fig, points, ax, pad: float = 0.05):
  colorbar = fig.colorbar(points, ax=ax, ticks=range(10), pad=pad)
  colorbar.set_label('class')


def plot_latent_scatter(z: np.ndarray, labels: np.ndarray, path: Path,
                        title: str = 'Test set in latent space (posterior means)',
                        latent_map: LatentMap | None = None) -> Path:
  """Latent codes [N, d] coloured by digit label [N].

  d = 1: a strip per digit; d = 2: the plane; d = 3: a 3-d scatter; d > 3:
  `latent_map`, a t-SNE map of some of them (figure_data.latent_map).
  """
  d = z.shape[1]
  colour = dict(c=labels, cmap='tab10', vmin=-0.5, vmax=9.5, rasterized=True)
  if d == 3:
    fig = plt.figure(figsize=(7.5, 6.5))
    ax = fig.add_subplot(projection='3d')
    points = ax.scatter(z[:, 0], z[:, 1], z[:, 2], s=2, alpha=0.6, **colour)
    ax.set_xlabel('$z_1$')
    ax.set_ylabel('$z_2$')
    ax.set_zlabel('$z_3$')
    _class_colorbar(fig, points, ax, pad=0.12)  # room for the z label
    ax.set_title(title)
    return _save(fig, path)
  fig, ax = plt.subplots(figsize=(7, 6))
  if d == 1:
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(labels))
    points = ax.scatter(z[:, 0], labels + jitter, s=2, alpha=0.6, **colour)
    ax.set_xlabel('$z$')
    ax.set_ylabel('class')
    ax.set_yticks(range(10))
  elif d == 2:
    points = ax.scatter(z[:, 0], z[:, 1], s=3, alpha=0.7, **colour)
    ax.set_xlabel('$z_1$')
    ax.set_ylabel('$z_2$')
  else:
    if latent_map is None:
      raise ValueError(f'{d}-d codes are drawn as a t-SNE map: pass '
                       'latent_map=figure_data.latent_map(z).')
    embedded, keep = latent_map.coordinates, latent_map.indices
    points = ax.scatter(embedded[:, 0], embedded[:, 1], s=4, alpha=0.7,
                        **dict(colour, c=labels[keep]))
    ax.set_xlabel('t-SNE 1')
    ax.set_ylabel('t-SNE 2')
    title += (f',\nt-SNE of {d}-d (perplexity {latent_map.perplexity:g},'
              f' {len(keep)} images)')
  _class_colorbar(fig, points, ax)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  return _save(fig, path)


def plot_latent_by_class(z: np.ndarray, labels: np.ndarray, path: Path,
                         title: str) -> Path:
  """2-d codes [N, 2], one panel per digit (its codes in colour over all the
  others' in grey): how each class fills the latent space, which a single
  scatter hides when a CVAE's classes overlap."""
  classes = sorted(set(np.asarray(labels).tolist()))
  fig, axes = plt.subplots(2, (len(classes) + 1) // 2, figsize=(13, 5.6),
                           sharex=True, sharey=True)
  colours = plt.cm.tab10(np.arange(10))
  for ax, digit in zip(axes.flat, classes):
    ax.scatter(z[:, 0], z[:, 1], s=1, color='0.85', rasterized=True)
    mine = labels == digit
    ax.scatter(z[mine, 0], z[mine, 1], s=2, color=colours[digit % 10],
               rasterized=True)
    ax.set_title(f'class {digit}')
    ax.grid(alpha=0.3)
  for ax in axes[-1]:
    ax.set_xlabel('$z_1$')
  for ax in axes[:, 0]:
    ax.set_ylabel('$z_2$')
  fig.suptitle(title)
  fig.tight_layout()
  return _save(fig, path)


def plot_interpolations(images: np.ndarray, path: Path,
                        caption: str = 'first image  ->  second image'
                        ) -> Path:
  """Rows of decoded images [rows, steps, H, W] between two encoded digits."""
  rows, steps = images.shape[:2]
  fig, ax = plt.subplots(figsize=(steps * 0.6 + 0.6, rows * 0.6 + 0.8))
  ax.imshow(tile_images(images.reshape(rows * steps, *images.shape[2:]), rows,
                        steps), cmap='gray', vmin=0, vmax=1)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_xlabel(caption)
  ax.set_title('Interpolations between encoded test images')
  return _save(fig, path)


def plot_reconstructions_by_epoch(inputs: np.ndarray, outputs: np.ndarray,
                                  epochs: Sequence[int], path: Path,
                                  max_rows: int = 10) -> Path:
  """Inputs [N, H, W] above their reconstructions after each epoch [E, N, H, W]."""
  keep = np.unique(np.linspace(0, len(epochs) - 1, min(max_rows, len(epochs)))
                   .round().astype(int))
  rows = [inputs] + [outputs[i] for i in keep]
  count = len(inputs)
  canvas = tile_images(np.concatenate(rows), len(rows), count)
  fig, ax = plt.subplots(figsize=(count * 0.6 + 1.2, len(rows) * 0.6 + 0.7))
  ax.imshow(canvas, cmap='gray', vmin=0, vmax=1)
  height = canvas.shape[0] / len(rows)
  ax.set_yticks([height * (i + 0.5) for i in range(len(rows))],
                ['input'] + [f'epoch {epochs[i]}' for i in keep])
  ax.set_xticks([])
  ax.set_title('Test reconstructions as training goes on')
  return _save(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, path: Path, title: str,
                          row_label: str = 'requested digit',
                          count_label: str = 'samples') -> Path:
  """Counts [C, C]: rows = requested (or true) digit, columns = predicted."""
  fig, ax = plt.subplots(figsize=(6.4, 5.6))
  shown = ax.imshow(matrix, cmap='Blues')
  for (r, c), count in np.ndenumerate(matrix):
    ax.text(c, r, str(count), ha='center', va='center', fontsize=7,
            color='white' if count > matrix.max() / 2 else 'black')
  ax.set_xticks(range(matrix.shape[1]))
  ax.set_yticks(range(matrix.shape[0]))
  ax.set_xlabel('digit predicted by the classifier')
  ax.set_ylabel(row_label)
  fig.colorbar(shown, ax=ax).set_label(count_label)
  ax.set_title(title)
  return _save(fig, path)


def plot_class_histogram(counts: np.ndarray, path: Path, title: str) -> Path:
  """Counts [C] of generated digits per predicted class."""
  fig, ax = plt.subplots(figsize=(6, 3.4))
  ax.bar(range(len(counts)), counts, color='tab:blue')
  ax.axhline(np.sum(counts) / len(counts), color='k', ls='--', lw=1,
             label='uniform')
  ax.set_xticks(range(len(counts)))
  ax.set_xlabel('digit predicted by the classifier')
  ax.set_ylabel('samples')
  ax.set_title(title)
  ax.legend()
  return _save(fig, path)


def plot_run(workdir: Path, figures: RunFigures, history: Sequence[dict],
             loss: str = 'bce') -> list[Path]:
  """Writes every figure of a trained run into workdir.

  figures: from figure_data.compute_run_figures; loss: the run's
  config.loss (the curves' units).
  """
  workdir = Path(workdir)
  paths = [plot_loss_curves(history, workdir / 'loss_curves.png', loss),
           plot_reconstructions(figures.inputs, figures.reconstructions,
                                workdir / 'reconstructions.png')]
  if figures.samples is not None:
    paths.append(plot_samples(figures.samples, workdir / 'samples.png',
                              figures.sample_title,
                              figures.sample_row_labels))
  paths.append(plot_latent_scatter(
      figures.latent_means, figures.test_labels,
      workdir / 'latent_scatter.png', latent_map=figures.latent_map))
  if figures.conditional and figures.latent_means.shape[1] == 2:
    paths.append(plot_latent_by_class(
        figures.latent_means, figures.test_labels,
        workdir / 'latent_by_class.png',
        'Test set in latent space per class (posterior means; the label '
        'is given to the encoder)'))
  if figures.traversal is not None:
    paths.append(plot_latent_traversal(figures.traversal,
                                       figures.traversal_values,
                                       workdir / 'latent_traversal.png'))
  if figures.grid is not None:
    paths.append(plot_latent_grid(figures.grid, figures.grid_values,
                                  workdir / 'latent_grid.png'))
  if figures.interpolations is not None:
    paths.append(plot_interpolations(figures.interpolations,
                                     workdir / 'interpolations.png',
                                     figures.interpolation_caption))
  return paths + _tracked_reconstructions(workdir)


def _tracked_reconstructions(workdir: Path) -> list[Path]:
  """reconstructions_by_epoch.png from the run's tracked .npz, if any."""
  tracked = workdir / workdir_lib.RECONSTRUCTIONS_BY_EPOCH
  if not tracked.exists():
    return []
  inputs, epochs, outputs = loop.read_tracked_reconstructions(tracked)
  return [plot_reconstructions_by_epoch(
      inputs, outputs, epochs, workdir / 'reconstructions_by_epoch.png')]


def _setting_order(value) -> tuple:
  """Sorts swept values: numbers by size, tuples of widths by depth then
  width, anything else by its text."""
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return (0, float(value))
  if isinstance(value, (list, tuple)):
    return (1, len(value), tuple(value))
  return (2, str(value))


def _setting_text(value) -> str:
  if isinstance(value, float):
    return f'{value:g}'
  if isinstance(value, (list, tuple)):
    return '-'.join(str(v) for v in value) or 'none'
  return str(value)


def _determined_by(settings: Sequence[dict], key: str, other: str) -> bool:
  """Whether every member's `other` setting follows from its `key` one (and
  varies at all: a constant setting splits nothing either way)."""
  seen: dict[str, str] = {}
  for s in settings:
    if other not in s:
      return False
    value, then = repr(s[key]), repr(s[other])
    if seen.setdefault(value, then) != then:
      return False
  return len(set(seen.values())) > 1


def lines_along(results: Sequence[dict], key: str
                ) -> dict[str, list[tuple[Any, dict]]]:
  """Members joined into lines along one swept setting `key`.

  A line holds the members whose other settings all agree, sorted by their
  value of `key`; the dict's keys describe those other settings, naming
  only those that differ between the lines when there are several (a
  legend says what tells the lines apart). A setting that `key` determines
  across the sweep (a decoder width that follows the encoder's) does not
  split lines. Lines of a single member are left out.
  """
  along = [r['settings'] for r in results if key in r['settings']]
  tied = {other for other in {k for s in along for k in s} - {key}
          if _determined_by(along, key, other)}
  grouped: dict[tuple, list[tuple[Any, dict]]] = {}
  for result in results:
    settings = result['settings']
    if key not in settings:
      continue
    others = tuple((k, _setting_text(v)) for k, v in sorted(settings.items())
                   if k != key and k not in tied)
    grouped.setdefault(others, []).append((settings[key], result))
  grouped = {k: v for k, v in grouped.items() if len(v) > 1}
  values_of: dict[str, set] = {}
  for others in grouped:
    for k, text in others:
      values_of.setdefault(k, set()).add(text)
  shown = {k for k, texts in values_of.items()
           if len(grouped) == 1 or len(texts) > 1}
  return {', '.join(f'{k.split(".")[-1]}={text}' for k, text in others
                    if k in shown):
          sorted(members, key=lambda p: _setting_order(p[0]))
          for others, members in grouped.items()}


def _sweep_panels(results: Sequence[dict], key: str, loss: str,
                  metrics: Sequence[str], titles: Sequence[str],
                  figsize: tuple[float, float]):
  """The members' lines along `key` and one axis per metric ('test_loss',
  'train_kl', ...) with its unit; None when no line has two members.

  Returns (lines, the setting's short name, figure, [(axis, metric, title,
  unit)]).
  """
  lines = lines_along(results, key)
  if not lines:
    return None
  recon_unit, total_unit = loss_units(loss)
  units = {'loss': total_unit, 'recon': recon_unit, 'kl': 'nats per image'}
  fig, axes = plt.subplots(1, len(metrics), figsize=figsize)
  panels = [(ax, metric, title, units[metric.split('_', 1)[1]])
            for ax, metric, title in zip(axes, metrics, titles)]
  return lines, key.split('.')[-1], fig, panels


def plot_metric_against(results: Sequence[dict], key: str, path: Path,
                        log_x: bool = False,
                        loss: str = 'bce') -> Path | None:
  """Test reconstruction, KL and total against one numeric swept setting.

  Members are joined into a line when all their other settings agree; lines
  of a single point are left out. Returns None when no line has two points.
  """
  found = _sweep_panels(results, key, loss,
                        ('test_recon', 'test_kl', 'test_loss'),
                        ('Reconstruction', 'KL to prior', 'Total'), (13, 3.6))
  if found is None:
    return None
  lines, name, fig, panels = found
  for ax, metric, title, unit in panels:
    for label, points in lines.items():
      ax.plot([float(p[0]) for p in points], [p[1][metric] for p in points],
              'o-', label=label or 'all')
    ax.set_xlabel(name)
    ax.set_ylabel(f'test, {unit}')
    ax.set_title(f'{title} vs {name}')
    if log_x:
      ax.set_xscale('log')
      ax.minorticks_off()
    # Ticks at the swept values, written plainly (0.5, not 5x10^-1).
    values = sorted({float(p[0]) for points in lines.values() for p in points})
    ax.set_xticks(values, [f'{v:g}' for v in values])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='best')
  fig.tight_layout()
  return _save(fig, path)


def plot_curves_along(results: Sequence[dict], history: Sequence[dict],
                      key: str, path: Path, loss: str = 'bce') -> Path | None:
  """Per-epoch curves of every member along one swept setting, overlaid:
  test total, test reconstruction and train KL (Study B's and E's figures),
  one colour per value of `key`. None when no line has two members.

  history: the sweep's metrics.jsonl lines ({'member', 'epoch', ...}).
  """
  found = _sweep_panels(results, key, loss,
                        ('test_loss', 'test_recon', 'train_kl'),
                        ('Test total', 'Test reconstruction',
                         'Train KL to prior'), (14, 4.2))
  if found is None:
    return None
  lines, name, fig, panels = found
  axes = [panel[0] for panel in panels]
  styles = ('-', '--', ':', '-.')
  # One colour per value of the setting, the same on every line.
  values = sorted({_setting_text(value): value for points in lines.values()
                   for value, _ in points}.values(), key=_setting_order)
  palette = dict(zip(map(_setting_text, values),
                     plt.cm.viridis(np.linspace(0, 0.9, len(values)))))
  for ax, metric, title, unit in panels:
    for style, (others, points) in zip(styles * len(lines), lines.items()):
      for value, result in points:
        colour = palette[_setting_text(value)]
        member = [l for l in history if l['member'] == result['member']]
        label = f'{name}={_setting_text(value)}'
        if len(lines) > 1:
          label += f' ({others})'
        ax.plot([l['epoch'] for l in member], [l[metric] for l in member],
                style, color=colour, label=label, lw=1.4)
    curves = [[l[metric] for l in history if l['member'] == r['member']]
              for points in lines.values() for _, r in points]
    focus_on_later_epochs(ax, curves)
    ax.set_title(title)
    ax.set_xlabel('epoch')
    _integer_epochs(ax)
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc='center left', bbox_to_anchor=(1.0, 0.5),
             fontsize=8, frameon=False)
  fig.suptitle(f'Every member along {name}', y=1.02)
  fig.tight_layout()
  return _save(fig, path)


# Swept settings drawn as overlaid curves; 'loss' is left out (its members'
# losses are in different units) and so is the seed (repeats, not a setting).
UNCURVED_SETTINGS = frozenset({'loss', 'seed'})


def plot_sweep(workdir: Path, results: Sequence[dict],
               history: Sequence[dict] = (), loss: str = 'bce') -> list[Path]:
  """The sweep-level figures: metrics against beta and against latent size,
  and per-epoch curves overlaid along every swept setting
  (curves_by_<setting>.png)."""
  workdir = Path(workdir)
  paths = [plot_metric_against(results, 'beta', workdir / 'metrics_vs_beta.png',
                               log_x=True, loss=loss),
           plot_metric_against(results, 'model.latent_size',
                               workdir / 'metrics_vs_latent_size.png',
                               log_x=True, loss=loss)]
  keys = sorted({k for r in results for k in r['settings']} - UNCURVED_SETTINGS)
  for key in keys:
    if history:
      paths.append(plot_curves_along(
          results, history, key,
          workdir / f'curves_by_{key.split(".")[-1]}.png', loss))
  return [p for p in paths if p is not None]
