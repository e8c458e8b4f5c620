"""How the loss curves frame long runs."""

import matplotlib.pyplot as plt
import numpy as np

from vae_jax import figure_data
from vae_jax import optimizers
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



def test_the_decoded_window_is_centred_on_the_prior():
  assert figure_data.latent_window(0.0, 1.0) == (-5.0, 5.0)  # Studies B and D
  assert figure_data.latent_window(1.0, 2.0) == (-4.0, 6.0)  # Study A's N(1, 2^2)
  assert figure_data.latent_window(0.0, 4.0) == (-10.0, 10.0)  # +- 2.5 std


def _result(member, **settings):
  return {'member': member, 'settings': settings}


def test_sweep_members_join_lines_along_a_setting_in_order():
  results = [
      _result(0, **{'model.encoder_widths': [2000], 'model.latent_size': 20}),
      _result(1, **{'model.encoder_widths': [100], 'model.latent_size': 20}),
      _result(2, **{'model.encoder_widths': [400, 400], 'model.latent_size': 2}),
      _result(3, **{'model.encoder_widths': [400], 'model.latent_size': 2}),
      _result(4, **{'model.encoder_widths': [1000], 'model.latent_size': 20}),
      _result(5, beta=0.5),
      _result(6, **{'model.encoder_widths': [400], 'model.latent_size': 20}),
  ]
  lines = plots.lines_along(results, 'model.encoder_widths')
  assert list(lines) == ['latent_size=20', 'latent_size=2']
  # Widths by depth, then by size; not as text ('1000' < '2000' < '400').
  assert [r['member'] for _, r in lines['latent_size=20']] == [1, 6, 4, 0]
  assert [r['member'] for _, r in lines['latent_size=2']] == [3, 2]
  assert plots.lines_along(results, 'beta') == {}  # one member: no line


def test_a_setting_that_follows_the_swept_one_does_not_split_its_line():
  # Study B's width sweep: the decoder's width is the encoder's.
  results = [_result(m, **{'model.encoder_widths': [w],
                           'model.decoder_widths': [w],
                           'model.latent_size': 20})
             for m, w in enumerate((100, 400, 1000))]
  lines = plots.lines_along(results, 'model.encoder_widths')
  assert list(lines) == ['latent_size=20']
  assert [r['member'] for _, r in lines['latent_size=20']] == [0, 1, 2]


def test_lines_are_named_by_the_settings_that_tell_them_apart():
  # Study B's latent sweep: one line per encoder depth; beta and the
  # convolutions are the same on both, so the legend leaves them out.
  results = [_result(m, **{'model.latent_size': latent,
                           'model.encoder_widths': widths, 'beta': 1.0,
                           'model.encoder_conv_channels': []})
             for m, (latent, widths) in enumerate(
                 [(1, [400] * 3), (2, [400] * 3), (1, [400]), (20, [400])])]
  lines = plots.lines_along(results, 'model.latent_size')
  assert list(lines) == ['encoder_widths=400-400-400', 'encoder_widths=400']
  assert [r['member'] for _, r in lines['encoder_widths=400']] == [2, 3]


def test_sweep_figures_overlay_curves_of_swept_settings_but_not_seeds(tmp_path):
  results = [_result(m, **{'model.latent_size': m + 1, 'seed': m})
             for m in range(3)]
  history = [{'member': m, 'epoch': e, 'test_loss': 100.0 - e - m,
              'test_recon': 90.0 - e, 'train_kl': 5.0 + m}
             for m in range(3) for e in range(1, 6)]
  for r in results:
    r.update(test_recon=80.0, test_kl=5.0, test_loss=85.0)
  paths = plots.plot_sweep(tmp_path, results, history, loss='mse')
  names = sorted(p.name for p in paths)
  # Along latent size the other setting (the seed) differs: no line there.
  assert 'curves_by_seed.png' not in names
  same_seed = [_result(m, **{'model.latent_size': m + 1}) for m in range(3)]
  for r in same_seed:
    r.update(test_recon=80.0, test_kl=5.0, test_loss=85.0)
  names = sorted(p.name for p in plots.plot_sweep(tmp_path, same_seed, history))
  assert names == ['curves_by_latent_size.png', 'metrics_vs_latent_size.png']


def _trained_tiny(latent_size, num_epochs=1, **overrides):
  from test_train import tiny_config, tiny_dataset
  from vae_jax import models
  from vae_jax import train
  config = tiny_config(num_epochs=num_epochs, **overrides)
  config.model.latent_size = latent_size
  dataset = tiny_dataset(num_train=32, num_test=48)
  model = models.build_model(config.model, dataset.image_shape)
  hparams = train.hyperparams_from_config(config)
  state = train.create_train_state(model, optimizers.make_optimizer(
      config.optimizer), hparams, dataset.image_shape)
  return model, state.params, hparams, dataset


def test_reconstructions_sit_at_their_inputs_places_in_the_lower_block():
  rng = np.random.default_rng(0)
  inputs = rng.uniform(0, 0.5, (13, 4, 4)).astype(np.float32)
  outputs = rng.uniform(0.5, 0.9, (13, 4, 4)).astype(np.float32)
  canvas, block = plots.reconstruction_canvas(inputs, outputs, columns=5)
  # 13 digits fill 3 rows of 5: 3 * (4 + 1) + 1 pixels; a gap of 2 rows.
  assert block == 16 and canvas.shape == (2 * 16 + 2, 5 * 5 + 1)
  for k in range(13):
    r, c = divmod(k, 5)
    top, left = 1 + r * 5, 1 + c * 5
    np.testing.assert_array_equal(canvas[top:top + 4, left:left + 4],
                                  inputs[k])
    lower = top + block + 2
    np.testing.assert_array_equal(canvas[lower:lower + 4, left:left + 4],
                                  outputs[k])
  # The two places no digit fills are left blank (white), in both blocks.
  assert (canvas[11:15, 16:26] == 1).all()
  assert (canvas[11 + 18:15 + 18, 16:26] == 1).all()


def test_figures_are_computed_apart_from_drawing(tmp_path):
  model, params, hparams, dataset = _trained_tiny(latent_size=2)
  figures = figure_data.compute_run_figures(model, params, hparams, dataset)
  side = dataset.image_shape[0]
  assert figures.reconstructions.shape == (figure_data.RECONSTRUCTED, side,
                                           side)
  assert figures.latent_means.shape == (48, 2)
  assert figures.grid.shape == (400, side, side) and figures.traversal is None
  assert figures.window == (-5.0, 5.0) and figures.latent_map is None
  # Drawing needs only these arrays: here they are changed by hand.
  figures.samples = np.zeros_like(figures.samples)
  line = {f'{split}_{key}': 1.0 for split in ('train', 'test')
          for key in ('loss', 'recon', 'kl')}
  paths = plots.plot_run(tmp_path, figures, [{'epoch': 1, **line}])
  names = {p.name for p in paths}
  assert {'loss_curves.png', 'reconstructions.png', 'samples.png',
          'latent_scatter.png', 'latent_grid.png',
          'interpolations.png'} <= names
  assert all(p.stat().st_size > 1000 for p in paths)


def test_a_wide_latent_gets_a_tsne_map_and_an_autoencoder_no_prior_figures(
    tmp_path):
  model, params, hparams, dataset = _trained_tiny(latent_size=5)
  figures = figure_data.compute_run_figures(model, params, hparams, dataset,
                                            variational=False)
  assert figures.latent_map.coordinates.shape == (48, 2)
  assert figures.samples is None and figures.grid is None
  assert figures.interpolations is None
  names = {p.name for p in plots.plot_run(tmp_path, figures, [])}
  assert 'samples.png' not in names and 'latent_scatter.png' in names
