"""Sweeps: members equal separate runs, latent masks, grouping, devices, resume."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import study_a
from configs import study_d
from test_train import tiny_config, tiny_dataset
from vae_jax.data import pipeline
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import group as group_lib
from vae_jax import models
from vae_jax import objectives
from vae_jax import optimizers
from vae_jax import report as report_lib
from vae_jax import results_table
from vae_jax import sweep
from vae_jax import train
from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry

REPO = Path(__file__).resolve().parents[1]

GRID = grid_lib.concat(
    grid_lib.zipped(beta=[1.0, 0.5], learning_rate=[1e-3, 3e-3], seed=[0, 1]),
    grid_lib.product(model__latent_size=[1], prior_std=[2.0]),
)


def sweep_config(grid=GRID, **overrides):
  config = tiny_config(**overrides)
  config.sweep = grid
  return config


def test_grid_helpers():
  assert grid_lib.product(a=[1, 2], model__b=[3]) == [
      {'a': 1, 'model.b': 3}, {'a': 2, 'model.b': 3}]
  assert grid_lib.zipped(a=[1, 2], b=[3, 4]) == [{'a': 1, 'b': 3},
                                              {'a': 2, 'b': 4}]
  with pytest.raises(ValueError, match='equal lengths'):
    grid_lib.zipped(a=[1, 2], b=[3])
  with pytest.raises(KeyError, match='not a config key'):
    grid_lib.member_config(tiny_config(), {'model.latent_sizes': 3})


def test_dotted_keys_of_configs_and_nested_dicts():
  config = tiny_config()
  assert grid_lib.get_key(config, 'model.latent_size') == 2
  grid_lib.set_key(config, 'model.latent_size', 5)
  assert config.model.latent_size == 5
  # A misspelt key adds no field; a key below a None placeholder is absent.
  with pytest.raises(KeyError, match='model.latent_sise'):
    grid_lib.set_key(config, 'model.latent_sise', 5)
  assert 'latent_sise' not in config.model
  with pytest.raises(KeyError, match='data.dir.name'):
    grid_lib.get_key(config, 'data.dir.name')
  nested = {'a': {'x': 0}}
  grid_lib.set_key(nested, 'a.b.c', 1, create=True)
  assert nested == {'a': {'x': 0, 'b': {'c': 1}}}
  assert grid_lib.get_key(nested, 'a.b') == {'c': 1}


def test_sweep_members_equal_separate_runs(tmp_path):
  config = sweep_config(num_epochs=1)
  results = sweep.run_sweep(config, tmp_path / 'sweep', dataset=tiny_dataset())
  assert len(results) == len(GRID)
  assert {r['group'] for r in results} == {0}  # one program for all
  for member, overrides in enumerate(GRID):
    if 'model.latent_size' in overrides:
      # A masked member: its parameter count is its own model's, not the
      # group's larger one; its metrics equal its own run's like the others'.
      assert results[member]['num_params'] < results[0]['num_params']
    single = driver.train_and_evaluate(
        grid_lib.member_config(config, overrides), tmp_path / f'single{member}',
        dataset=tiny_dataset())
    assert results[member]['num_params'] == single['num_params']
    for key in ('test_recon', 'test_kl', 'test_loss'):
      assert results[member][key] == pytest.approx(single[key], rel=2e-5), (
          member, key)
  table = (tmp_path / 'sweep' / 'results.csv').read_text().splitlines()
  assert len(table) == 1 + len(GRID)
  assert 'beta' in table[0] and 'test_loss' in table[0]


def test_a_group_of_one_runs_the_single_run_program_bit_for_bit(tmp_path):
  # A lone member trains unbatched (no vmap over an axis of one), so its
  # numbers are its single run's exactly, epoch by epoch.
  config = sweep_config(grid=[{'beta': 0.5}], num_epochs=2)
  sweep.run_sweep(config, tmp_path / 'sweep', dataset=tiny_dataset())
  driver.train_and_evaluate(grid_lib.member_config(config, {'beta': 0.5}),
                           tmp_path / 'single', dataset=tiny_dataset())
  lines = lambda path: [
      {k: v for k, v in json.loads(l).items()
       if k not in ('member', 'img_per_s', 'seconds')}
      for l in (path / 'metrics.jsonl').read_text().splitlines()]
  assert lines(tmp_path / 'sweep') == lines(tmp_path / 'single')


def test_a_sweep_starts_from_given_initial_parameters(tmp_path):
  # Members swap initial weights: seed 0's shuffles and noise train seed 1's
  # draw and vice versa. The reference is one compiled epoch from those
  # weights, outside the sweep.
  grid = grid_lib.zipped(seed=[0, 1])
  config = sweep_config(grid, num_epochs=1)
  dataset = tiny_dataset()
  model = models.build_model(config.model, dataset.image_shape)
  drawn = [train.init_params(model, jnp.uint32(seed), dataset.image_shape)
           for seed in (0, 1)]
  swapped = [jax.tree.map(np.asarray, drawn[1]),
             jax.tree.map(np.asarray, drawn[0])]
  results = sweep.run_sweep(config, tmp_path / 'sweep', dataset=dataset,
                            initial_params=swapped)
  optimizer = optimizers.make_optimizer(config.optimizer)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, config.batch_size,
                                         config.data.preprocessing))
  evaluate_fn = jax.jit(train.make_evaluate(model, config.eval_batch_size,
                                            config.data.preprocessing))
  train_data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  test_data = pipeline.device_data(dataset.test_images, dataset.test_labels)
  for member, params in enumerate(swapped):
    hparams = train.hyperparams_from_config(
        grid_lib.member_config(config, grid[member]))
    state, _ = epoch(train.state_from_params(params, optimizer), hparams,
                     train_data, jnp.int32(1))
    expected = evaluate_fn(state.params, hparams, test_data)
    np.testing.assert_allclose(results[member]['test_loss'],
                               float(expected['loss']), rtol=1e-5)
  drawn_results = sweep.run_sweep(config, tmp_path / 'drawn', dataset=dataset)
  assert all(abs(a['test_loss'] - b['test_loss']) > 1e-3
             for a, b in zip(results, drawn_results))

  with pytest.raises(ValueError, match='1 parameter trees for the 2 members'):
    sweep.run_sweep(config, tmp_path / 'short', dataset=dataset,
                    initial_params=swapped[:1])
  wrong = jax.tree.map(lambda x: x, swapped)
  wrong[1] = dict(wrong[1], enc_mean=dict(wrong[1]['enc_mean'],
                                          kernel=np.zeros((16, 3))))
  with pytest.raises(ValueError, match=r"initial_params\[1\]\['enc_mean'\]"
                     r"\['kernel'\] has shape \(16, 3\)"):
    sweep.run_sweep(config, tmp_path / 'wrong', dataset=dataset,
                    initial_params=wrong)


def test_shape_changing_settings_split_groups(tmp_path):
  grid = grid_lib.product(batch_size=[8, 16], beta=[1.0, 2.0])
  config = sweep_config(grid, num_epochs=1)
  configs = [grid_lib.member_config(config, m) for m in grid]
  assert group_lib.group_members(configs) == [[0, 1], [2, 3]]
  results = sweep.run_sweep(config, tmp_path / 'sweep', dataset=tiny_dataset())
  single = driver.train_and_evaluate(configs[3], tmp_path / 'single',
                                    dataset=tiny_dataset())
  assert results[3]['group'] == 1
  assert results[3]['test_loss'] == pytest.approx(single['test_loss'],
                                                  rel=2e-5)


# The layer of each maskable model that takes z as its input.
DECODER_INPUT_LAYER = {'mlp_vae': 'dec_0', 'conv_vae': 'dec_input',
                       'conv_fc_vae': 'dec_hidden', 'cnn_bn_vae': 'dec_0'}
# Settings a model needs beyond tiny_config's, and its image side.
MASKED_MODEL_SETTINGS = {
    'cnn_bn_vae': ({'model.encoder_conv_channels': (2, 3),
                    'model.decoder_widths': (16,),
                    'model.conv_impl': 'xla'}, 12)}  # op by op: XLA's is faster
MASKED_MODELS = [(name, 0) for name in sorted(DECODER_INPUT_LAYER)] + [
    ('mlp_vae', 3)]  # a conditional VAE: its one-hot label follows z


def test_every_maskable_built_in_model_is_checked_here():
  built_in = [name for name in models.model_names()
              if models.get_model(name).build.__module__.startswith(
                  'vae_jax.models')]
  assert {name for name in built_in
          if models.get_model(name).maskable_latent} == set(DECODER_INPUT_LAYER)


@pytest.mark.parametrize('model_name, num_classes', MASKED_MODELS)
def test_masked_latent_equals_smaller_model(model_name, num_classes):
  """A latent-2 model padded into a latent-5 one and masked computes the same
  loss and gradients, and its padding gets none (a BatchNorm model in
  training mode, its running averages updated alike)."""
  settings, side = MASKED_MODEL_SETTINGS.get(model_name, ({}, 8))
  image_shape = (side, side)
  model_config = tiny_config(**{'model.name': model_name,
                                'model.num_classes': num_classes,
                                **settings}).model
  model_config.latent_size = 5
  big = models.build_model(model_config, image_shape)
  model_config.latent_size = 2
  small = models.build_model(model_config, image_shape)
  x = jnp.asarray(tiny_dataset(side=side).train_images[:6] / 255.0,
                  jnp.float32)
  labels = jnp.arange(6) % 3 if num_classes else None
  small_variables = train.init_variables(small, jnp.uint32(0), image_shape)
  like = jax.eval_shape(lambda: train.init_variables(big, jnp.uint32(0),
                                                     image_shape))
  big_variables = group_lib.pad_latent_dimensions(small_variables, like, 2)
  assert jax.tree.map(lambda a: a.shape, big_variables) == jax.tree.map(
      lambda a: a.shape, like)
  small_params, big_params = small_variables['params'], big_variables['params']
  eps = jax.random.normal(jax.random.PRNGKey(1), (6, 5))
  mask = jnp.array([1, 1, 0, 0, 0], jnp.float32)

  def loss(model, params, batch_stats, eps, mask):
    posterior, batch_stats = train.apply_model(
        model, params, batch_stats, x, labels, method=model.encode,
        train=True)
    z = posterior.mean + jnp.exp(0.5 * posterior.log_variance) * eps
    if mask is not None:
      z = z * mask
    logits, batch_stats = train.apply_model(
        model, params, batch_stats, z, labels, method=model.decode,
        train=True)
    recon = objectives.bernoulli_nll_from_logits(logits, x)
    return objectives.negative_elbo(recon, posterior, 0.5, 1.0, 2.0,
                                    mask).loss.mean(), batch_stats

  (big_loss, big_stats), big_grads = jax.value_and_grad(
      loss, 1, has_aux=True)(big, big_params,
                             big_variables.get('batch_stats'), eps, mask)
  (small_loss, small_stats), small_grads = jax.value_and_grad(
      loss, 1, has_aux=True)(small, small_params,
                             small_variables.get('batch_stats'), eps[:, :2],
                             None)
  np.testing.assert_allclose(big_loss, small_loss, rtol=1e-6)
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  jax.tree.map(close, big_stats, small_stats)
  for head in ('enc_mean', 'enc_log_variance'):
    close(big_grads[head]['kernel'][:, :2], small_grads[head]['kernel'])
    np.testing.assert_array_equal(big_grads[head]['kernel'][:, 2:], 0)
    np.testing.assert_array_equal(big_params[head]['kernel'][:, 2:], 0)
  decoder_input = DECODER_INPUT_LAYER[model_name]
  big_kernel, small_kernel = (big_grads[decoder_input]['kernel'],
                              small_grads[decoder_input]['kernel'])
  close(big_kernel[:2], small_kernel[:2])
  np.testing.assert_array_equal(big_kernel[2:5], 0)
  close(big_kernel[5:], small_kernel[2:])  # the label's rows
  assert big_kernel.shape[0] == 5 + num_classes
  shared = set(big_params) - {'enc_mean', 'enc_log_variance', decoder_input}
  assert shared
  for name in shared:
    jax.tree.map(close, big_grads[name], small_grads[name])


def test_pad_latent_dimensions_rejects_shapes_that_do_not_fit():
  small = {'kernel': jnp.ones((4, 2))}
  like = {'kernel': jax.ShapeDtypeStruct((3, 5), jnp.float32)}
  with pytest.raises(ValueError, match='Cannot pad'):
    group_lib.pad_latent_dimensions(small, like, 2)


@pytest.mark.parametrize('name, reference', [
    ('adam', lambda lr: optax.adam(lr)),
    ('sgd', lambda lr: optax.sgd(lr)),
    ('rmsprop', lambda lr: optax.rmsprop(lr, decay=0.99, eps=1e-8,
                                         eps_in_sqrt=False)),
])
def test_learning_rate_as_array_matches_plain_optax(name, reference):
  config = tiny_config(optimizer=name)
  dataset = tiny_dataset()
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer(name)
  base = train.hyperparams_from_config(config)
  rates = [1e-3, 3e-2]
  hparams = group_lib.stack_hyperparams(
      [base._replace(learning_rate=jnp.float32(r)) for r in rates], 2)
  state = jax.vmap(lambda h: train.create_train_state(
      model, optimizer, h, dataset.image_shape))(hparams)
  member = lambda tree, i: jax.tree.map(lambda a: a[i], tree)

  # The optimiser alone, three updates from the same gradients: its state
  # (moments, accumulators) carries each member's rate as plain optax does.
  rng = np.random.default_rng(0)
  gradients = [jax.tree.map(
      lambda p: jnp.asarray(rng.standard_normal(p.shape), jnp.float32),
      state.params) for _ in range(3)]
  update = jax.jit(jax.vmap(functools.partial(train.apply_gradients,
                                              optimizer)))
  params, opt_state = state.params, state.opt_state
  for grads in gradients:
    params, opt_state = update(params, opt_state, grads, hparams.learning_rate)
  for i, rate in enumerate(rates):
    tx = reference(rate)
    reference_params = member(state.params, i)
    reference_state = tx.init(reference_params)
    for grads in gradients:
      updates, reference_state = tx.update(member(grads, i), reference_state,
                                           reference_params)
      reference_params = optax.apply_updates(reference_params, updates)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a[i], b, rtol=1e-6, atol=1e-7), params, reference_params)

  # The whole step, vmapped over the members: one update each, at its rate.
  # (Later steps would compare gradients that vmap sums in another order;
  # RMSprop divides by the root of the squared gradient, so a rounding
  # difference in a near-zero gradient grows into a visible one.)
  step = jax.jit(jax.vmap(train.make_train_step(model, optimizer),
                          in_axes=(0, None, 0, None)))
  x = {'images': jnp.asarray(dataset.train_images[:16] / 255.0, jnp.float32),
       'labels': jnp.asarray(dataset.train_labels[:16])}
  key = jax.random.PRNGKey(0)
  swept, _ = step(state, x, hparams, key)
  loss_fn = train.make_loss_fn(model)
  for i, rate in enumerate(rates):
    params = member(state.params, i)
    grads, _ = jax.grad(loss_fn, has_aux=True)(params, x, member(hparams, i),
                                               key)
    tx = reference(rate)
    updates, _ = tx.update(grads, tx.init(params), params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a[i], b, rtol=1e-5, atol=1e-6), swept.params,
                 optax.apply_updates(params, updates))


def test_interrupted_sweep_resumes_to_the_same_result(tmp_path):
  straight = sweep.run_sweep(sweep_config(num_epochs=2), tmp_path / 'a',
                             dataset=tiny_dataset())
  sweep.run_sweep(sweep_config(num_epochs=1), tmp_path / 'b',
                  dataset=tiny_dataset())
  resumed = sweep.run_sweep(sweep_config(num_epochs=2), tmp_path / 'b',
                            dataset=tiny_dataset())
  assert [r['test_loss'] for r in straight] == [r['test_loss'] for r in resumed]
  lines = [json.loads(l) for l in
           (tmp_path / 'b' / 'metrics.jsonl').read_text().splitlines()]
  assert sorted((l['member'], l['epoch']) for l in lines) == sorted(
      (m, e) for m in range(len(GRID)) for e in (1, 2))
  # The group's training time counts the epoch of the first call too.
  images_per_epoch = 96 // 16 * 16
  assert resumed[0]['group_train_seconds'] == pytest.approx(sum(
      images_per_epoch / l['img_per_s'] for l in lines if l['member'] == 0))


class _Interrupted(Exception):
  pass


def test_a_sweep_is_readable_while_it_trains_and_resumes_past_finished_groups(
    tmp_path, monkeypatch, caplog):
  # Two groups (batch size splits them); the call is cut short as the second
  # group starts training.
  config = sweep_config(grid_lib.product(batch_size=[8, 16], beta=[1.0, 2.0]),
                        num_epochs=1, plots=True)
  workdir = tmp_path / 'sweep'
  train_epochs = sweep.loop.train_epochs
  calls = []

  def cut_short(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise _Interrupted
    return train_epochs(*args, **kwargs)

  monkeypatch.setattr(sweep.loop, 'train_epochs', cut_short)
  with pytest.raises(_Interrupted):
    sweep.run_sweep(config, workdir, dataset=tiny_dataset())
  partial = json.loads((workdir / 'results.json').read_text())
  assert [r['status'] for r in partial] == ['finished', 'finished',
                                            'pending', 'pending']
  assert [r['epochs'] for r in partial] == [1, 1, 0, 0]
  table = (workdir / 'results.md').read_text().splitlines()
  assert 'status' in table[0] and table[4].count('pending') == 1
  assert (workdir / 'curves_by_beta.png').exists()  # from group 0 alone

  # The finished members are evaluated; the pending ones are left out.
  evaluated = evaluate.evaluate_workdir(
      workdir, ['iwae'], settings=registry.Settings(
          iwae_samples=5, num_images=10), dataset=tiny_dataset())
  assert ['iwae_nll' in r for r in evaluated] == [True, True, False, False]

  monkeypatch.setattr(sweep.loop, 'train_epochs', train_epochs)
  drawn_before = (workdir / 'member_000' / 'samples.png').stat().st_mtime_ns
  with caplog.at_level('INFO', logger='vae_jax.sweep'):
    resumed = sweep.run_sweep(config, workdir, dataset=tiny_dataset())
  messages = [r.getMessage() for r in caplog.records]
  assert any('Group 0 (of 2) finished in an earlier call' in m
             for m in messages)
  assert not any(m.startswith('Group 0: ') and 'compiled' in m
                 for m in messages)
  assert (workdir / 'member_000' / 'samples.png').stat().st_mtime_ns == (
      drawn_before)
  assert [r['status'] for r in resumed] == ['finished'] * 4
  # Group 0's results, evaluation included, are kept as they were, and so
  # is their column.
  assert resumed[:2] == evaluated[:2]
  assert 'iwae_nll' in (workdir / 'results.md').read_text().splitlines()[0]
  single = driver.train_and_evaluate(
      grid_lib.member_config(config, config.sweep[3]), tmp_path / 'single',
      dataset=tiny_dataset())
  assert resumed[3]['test_loss'] == pytest.approx(single['test_loss'],
                                                  rel=2e-5)


def test_sweep_figures(tmp_path, caplog):
  grid = grid_lib.concat(grid_lib.product(beta=[0.5, 1.0, 2.0]),
                      grid_lib.product(model__latent_size=[1, 3]))
  with caplog.at_level('INFO', logger='vae_jax'):
    sweep.run_sweep(sweep_config(grid, num_epochs=1, plots=True), tmp_path,
                    dataset=tiny_dataset())
  # Landmarks around the quiet phases: compiling and drawing.
  messages = [r.getMessage() for r in caplog.records]
  order = [next(i for i, m in enumerate(messages) if m.startswith(start))
           for start in ('Compiling model', 'Model ', 'Drawing the figures '
                         'of 5 model(s)', 'Drew the figures in ',
                         "Drawing the sweep's figures",
                         "Drew the sweep's figures in ")]
  assert order == sorted(order), messages
  for name in ('metrics_vs_beta.png', 'metrics_vs_latent_size.png',
               'member_000/samples.png', 'member_004/samples.png'):
    png = (tmp_path / name).read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000, name


FOUR_DEVICE_SCRIPT = '''
import json, sys
import jax
sys.path.insert(0, "tests")
from test_sweep import sweep_config, tiny_dataset
from vae_jax import sweep
assert len(jax.devices()) == 4, jax.devices()
config = sweep_config(num_epochs=1)
four = sweep.run_sweep(config, sys.argv[1] + "/four", dataset=tiny_dataset())
one = sweep.run_sweep(config, sys.argv[1] + "/one", dataset=tiny_dataset(),
                      devices=jax.devices()[:1])
print(json.dumps({"four": [r["test_loss"] for r in four],
                  "one": [r["test_loss"] for r in one]}))
'''


def test_four_devices_equal_one(tmp_path):
  env = {**os.environ,
         'XLA_FLAGS': '--xla_force_host_platform_device_count=4',
         'PYTHONPATH': str(REPO)}
  result = subprocess.run([sys.executable, '-c', FOUR_DEVICE_SCRIPT,
                           str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  losses = json.loads(result.stdout.strip().splitlines()[-1])
  assert len(losses['four']) == len(GRID)  # 3 members padded to 4, then dropped
  np.testing.assert_allclose(losses['four'], losses['one'], rtol=1e-5)


def test_reported_numbers_sit_beside_matching_members(tmp_path):
  grid = grid_lib.product(model__latent_size=[1, 2], beta=[1.0])
  config = sweep_config(grid, num_epochs=1)
  config.reported = [{'model.latent_size': 2, 'beta': 1.0, 'test_recon': 137.7,
                      'test_kl': 6.8, 'test_loss': 144.49}]
  results = sweep.run_sweep(config, tmp_path, dataset=tiny_dataset())
  assert results[0]['reported'] is None
  assert results[1]['reported']['test_loss'] == 144.49
  header, first, second = (tmp_path / 'results.csv').read_text().splitlines()
  assert header.endswith('reported_recon,reported_kl,reported_loss')
  assert first.endswith(',,,') and second.endswith('137.7,6.8,144.49')
  # Rewritten from the saved config (launch.evaluate), in the same order.
  evaluate.evaluate_workdir(tmp_path, ['recon_at_mean'],
                                      dataset=tiny_dataset())
  header, _, second = (tmp_path / 'results.csv').read_text().splitlines()
  assert 'test_recon_at_mean' in header.split(',')
  assert header.endswith('reported_recon,reported_kl,reported_loss')
  assert second.endswith('137.7,6.8,144.49')


def test_rank_agreement_is_spearmans_rho_with_ties_over_members_with_both():
  scipy_stats = pytest.importorskip('scipy.stats')
  rng = np.random.default_rng(0)
  ours = rng.integers(0, 5, size=12).astype(float)  # many ties
  theirs = ours + rng.normal(0, 2, size=12)
  theirs[3] = theirs[7]
  results = [{'fid': float(o), 'reported': {'fid': float(t), 'loss': 'bce'}}
             for o, t in zip(ours, theirs)]
  # A member without our number or without a published row is left out.
  results += [{'reported': {'fid': 50.0}}, {'fid': 3.0, 'reported': None}]
  rho, members = results_table.rank_agreement(results)['fid']
  assert members == 12
  np.testing.assert_allclose(
      rho, scipy_stats.spearmanr(ours, theirs).statistic, rtol=1e-12)
  reversed_order = [{'fid': x, 'reported': {'fid': -x}} for x in (1., 2., 3.)]
  assert results_table.rank_agreement(reversed_order)['fid'] == (-1.0, 3)
  # Two members give no ranking to compare; equal values give no ranks.
  assert results_table.rank_agreement(reversed_order[:2]) == {}
  assert results_table.rank_agreement(
      [{'fid': 1.0, 'reported': {'fid': x}} for x in (1., 2., 3.)]) == {}


def test_results_md_and_the_report_give_the_rank_agreement(tmp_path):
  config = {'model': {'latent_size': 2}, 'loss': 'bce'}
  reported = [{'model.latent_size': size, 'test_loss': loss}
              for size, loss in ((1, 190.0), (2, 150.0), (3, 160.0))]
  results = [{'member': i, 'settings': {'model.latent_size': size},
              'epochs': 1, 'test_recon': loss - 5, 'test_kl': 5.0,
              'test_loss': loss}
             for i, (size, loss) in enumerate(((1, 180.0), (2, 140.0),
                                               (3, 130.0)))]
  workdir_lib.mark(tmp_path, 'sweep')
  (tmp_path / 'config.json').write_text(json.dumps(config))
  results_table.write_results_table(tmp_path, results, reported, config)
  text = (tmp_path / 'results.md').read_text()
  assert "(Spearman's rho over the members that have both): test_loss " \
      '0.50 (3 members).' in text
  page = report_lib.write_report(tmp_path).read_text()
  assert 'test_loss 0.50 (3 members)' in page


@pytest.mark.parametrize('rows', study_d.ROWS)
def test_every_study_d_row_option_is_one_program_with_the_report_beside_it(
    rows):
  # Each variant of Study D's config must train as one compiled program (its
  # members differ only in array-valued settings) and every member must find
  # the report's row for its latent size and beta.
  config = study_d.get_config(rows)
  members = [grid_lib.member_config(config, overrides)
             for overrides in config.sweep]
  assert group_lib.group_members(members) == [list(range(len(members)))]
  for overrides in config.sweep:
    reported = results_table.reported_for(overrides, config.reported,
                                          config.to_dict())
    key = (overrides['model.latent_size'], overrides['beta'])
    assert reported['test_loss'] == study_d.REPORTED[key][2], overrides
  if rows == 'all':
    assert sorted((m['model.latent_size'], m['beta'])
                  for m in config.sweep) == sorted(study_d.REPORTED)
  if rows == 'beta_seeds':
    assert sorted((m['beta'], m['seed']) for m in config.sweep) == sorted(
        (beta, seed) for beta in study_d.BETAS for seed in study_d.BETA_SEEDS)
  with pytest.raises(ValueError, match='Unknown rows'):
    study_d.get_config('beta_seed')


def test_study_a_member_subsets_split_the_study_and_find_the_report():
  subsets = {m: study_a.get_config(m).sweep for m in ('pixel', 'perceptual')}
  everything = study_a.get_config('all')
  assert sorted(map(str, subsets['pixel'] + subsets['perceptual'])) == sorted(
      map(str, everything.sweep))
  assert {m['loss'] for m in subsets['perceptual']} == set(study_a.PERCEPTUAL)
  for overrides in everything.sweep:
    reported = results_table.reported_for(overrides, everything.reported,
                                          everything.to_dict())
    assert reported is not None and reported['fid'] > 0, overrides
  # The report's reading: N(1, 2) and Kaiming from its Kaiming section on.
  later = [m for m in everything.sweep
           if m['model.init_scheme'] == 'kaiming_normal']
  assert len(later) == 7 and all(
      (m['prior_mean'], m['prior_std']) == (1.0, 2.0) for m in later)
  with pytest.raises(ValueError, match='Unknown members'):
    study_a.get_config('bce')
