"""benchmarks.run and torch_reference's PyTorch variants, on tiny data."""

from __future__ import annotations

import copy
import json
import logging
import math
import mmap
import re
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest
from absl import app

torch = pytest.importorskip(
    'torch', reason='the PyTorch comparison needs torch (pip install '
    'torch==2.13.0, the CPU or CUDA build you want)')

from benchmarks import common as bench_common
from benchmarks import frameworks
from benchmarks import peak_memory
from benchmarks import quality
from benchmarks import torch_reference
from configs import default
from vae_jax import data
from vae_jax import driver
from vae_jax import optimizers

REPO = Path(__file__).resolve().parents[1]
EAGER_VARIANTS = ('dataloader', 'preloaded', 'fused_adam')


def tiny_dataset(num_train=160, num_test=40, side=8, seed=0) -> data.Dataset:
  rng = np.random.default_rng(seed)

  def make(count):
    return ((rng.random((count, side, side)) ** 3 * 255).astype(np.uint8),
            rng.integers(0, 10, count).astype(np.int32))

  return data.Dataset('tiny', *make(num_train), *make(num_test),
                      source='synthetic')


def tiny_config():
  config = default.get_config()
  config.model.encoder_widths = (16,)
  config.model.latent_size = 2
  config.batch_size = 16
  config.eval_batch_size = 16
  config.learning_rate = 1e-2
  return config


def train_variant(variant, initial_model, images, epochs=3, shuffle_seed=0):
  """Epoch losses and final parameters of `variant` from `initial_model`."""
  torch.manual_seed(123)  # the posterior samples: the same for every variant
  trainer = torch_reference.VariantTrainer(
      variant, copy.deepcopy(initial_model), images, batch_size=16,
      learning_rate=1e-2, seed=shuffle_seed, device='cpu')
  losses = [trainer.train_epoch()[1] for _ in range(epochs)]
  return np.array(losses), torch.cat(
      [p.detach().flatten() for p in trainer.model.parameters()]).numpy()


def test_eager_variants_follow_one_trajectory(one_torch_thread):
  images = tiny_dataset().train_images
  torch.manual_seed(0)
  initial = torch_reference.MLPVAE(64, 2, (16,))
  runs = {v: train_variant(v, initial, images) for v in EAGER_VARIANTS}
  losses, params = runs['preloaded']
  assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
  # Same batches, same float values, same ops: the DataLoader changes only
  # where the batches come from.
  np.testing.assert_array_equal(runs['dataloader'][0], losses)
  np.testing.assert_array_equal(runs['dataloader'][1], params)
  # The fused kernel orders Adam's arithmetic differently: rounding only.
  np.testing.assert_allclose(runs['fused_adam'][0], losses, rtol=1e-4)
  np.testing.assert_allclose(runs['fused_adam'][1], params, atol=1e-4)
  # ... and the comparison can fail: another shuffle is another trajectory.
  other_losses, _ = train_variant('preloaded', initial, images,
                                  shuffle_seed=1)
  assert np.abs(other_losses - losses).max() > 1e-3


def test_jax_training_steps_follow_the_pytorch_twin(one_torch_thread):
  # The benchmark's quality comparison assumes the two sides implement the
  # same model, loss and optimiser: from the same weights, batches and
  # posterior noise, 30 steps of vae_jax's train step (Adam, 784-16-8-2)
  # and of the twin with torch.optim.Adam must stay together to rounding.
  import jax
  import jax.numpy as jnp
  from vae_jax import models
  from vae_jax import objectives
  from vae_jax import train
  config = default.get_config()
  config.model.encoder_widths = (16, 8)
  config.model.latent_size = 2
  config.learning_rate = 3e-3
  torch.manual_seed(0)
  twin = torch_reference.MLPVAE(784, 2, (16, 8))
  model = models.build_model(config.model, (28, 28))
  optimizer = optimizers.make_optimizer('adam')
  initial = torch_reference.mlp_params_for_jax(twin)
  state = train.state_from_params(initial, optimizer)
  step = jax.jit(train.make_train_step(model, optimizer))
  hparams = train.hyperparams_from_config(config)
  torch_adam = torch.optim.Adam(twin.parameters(), lr=config.learning_rate)
  images = tiny_dataset(num_train=30 * 32, side=28).train_images
  for i in range(30):
    batch = images[32 * i:32 * (i + 1)].astype(np.float32) / 255
    key = jax.random.PRNGKey(i)
    state, metrics = step(state, {'images': jnp.asarray(batch),
                                  'labels': jnp.zeros(32, jnp.int32)},
                          hparams, key)
    # The noise the JAX step drew, for the twin's reparameterisation.
    noise = torch.from_numpy(np.array(
        objectives.standard_normal_per_latent(key, (32, 2))))
    x = torch.from_numpy(batch)
    mean, log_variance = twin.encode(x)
    logits = twin.decode(mean + torch.exp(0.5 * log_variance) * noise)
    loss = torch_reference.negative_elbo(logits, x, mean, log_variance)[2]
    torch_adam.zero_grad()
    loss.backward()
    torch_adam.step()
    np.testing.assert_allclose(float(metrics['loss']), loss.item(), rtol=1e-5)
  ours = jax.tree.map(np.asarray, state.params)
  theirs = jax.tree.map(np.asarray, torch_reference.mlp_params_for_jax(twin))
  moved = max(np.abs(ours[k]['kernel'] - initial[k]['kernel']).max()
              for k in ours)
  assert moved > 0.03  # 30 steps of 3e-3: far past the tolerance below
  for name in ours:
    for part in ('kernel', 'bias'):
      np.testing.assert_allclose(ours[name][part], theirs[name][part],
                                 atol=2e-5, err_msg=f'{name}/{part}')


def test_training_products_are_every_dense_flop_of_a_step():
  config = tiny_config()
  config.model.encoder_widths = (16, 12)
  dataset = tiny_dataset()
  model, hparams, state, _, _ = frameworks.jax_training(config, dataset)
  products = frameworks.training_products(model, state.params, hparams, config,
                                         dataset.image_shape)
  # Forward, weight gradient and input gradient of each layer, none of the
  # last for the first layer (its input is data), and the encoder's two
  # heads as one product: enc_0 2, enc_1 3, heads 3, dec_0 3, dec_1 3,
  # dec_logits 3.
  assert len(products) == 17
  assert sum(p.flops for p in products) == pytest.approx(
      config.batch_size * frameworks.dense_train_flops_per_image(state.params))
  heads = frameworks.Product(m=config.batch_size, k=12, n=2 * 2,
                            lhs_transposed=False, rhs_transposed=False)
  assert heads in products
  # Weight gradients contract over the batch: the activations transposed.
  assert frameworks.Product(m=64, k=config.batch_size, n=16,
                           lhs_transposed=True,
                           rhs_transposed=False) in products


def test_benchmark_names_every_variant():
  # benchmark names them without importing torch (for --help).
  assert bench_common.TORCH_VARIANTS == tuple(torch_reference.VARIANTS)


def test_adam_labels_what_was_used():
  params = [torch.nn.Parameter(torch.zeros(3))]
  optimizer, label = torch_reference.make_adam(params, 1e-3, fused=True)
  assert label == 'Adam(fused=True)' and optimizer.defaults['fused']
  _, label = torch_reference.make_adam(params, 1e-3)
  assert label == 'Adam (default: for-loop)'


def table_rows(markdown: str) -> dict[str, list[str]]:
  rows = {}
  for line in markdown.splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    if line.startswith('| JAX') or line.startswith('| PyTorch'):
      rows[cells[0]] = cells
  return rows


def number(cell: str) -> float:
  return float(re.match(r'[+-]?[\d,.]+', cell).group().replace(',', ''))


def test_benchmark_on_tiny_data_reports_every_variant(monkeypatch,
                                                     one_torch_thread, caplog):
  # A compiler failure shows up at the first call of the compiled function.
  def failing_compile(fn, **unused_kwargs):
    def compiled(*args):
      raise RuntimeError('no C++ compiler here')
    return compiled

  monkeypatch.setattr(torch, 'compile', failing_compile)
  with caplog.at_level(logging.WARNING):
    result = frameworks.benchmark_frameworks(
        tiny_config(), epochs=2, variants=[*EAGER_VARIANTS, 'compiled'],
        matmul_size=64, dataset=tiny_dataset(), torch_threads=1)
  # Progress through the probes, product by product, and the warm-up said.
  logged = [r.getMessage() for r in caplog.records]
  assert any(m.startswith('Timing the ') and 'matrix products' in m
             for m in logged)
  probes = [m for m in logged if m.strip().startswith('product ')]
  assert probes and probes[-1].strip().startswith(
      f'product {len(probes)}/{len(probes)} ')
  assert any(m.startswith('epoch 1 (warm-up, not timed)') for m in logged)
  assert logged.index(next(m for m in logged if m.startswith(
      'Compiling the JAX epoch'))) < logged.index(next(
          m for m in logged if m.startswith('epoch 1 ')))

  assert result['torch_unavailable'] == {
      'compiled': 'RuntimeError: no C++ compiler here'}
  assert list(result['torch']) == list(EAGER_VARIANTS)
  fastest = max(result['torch'], key=lambda v: result['torch'][v]['img_per_s'])
  assert result['best_torch_variant'] == fastest
  assert result['speedup'] == pytest.approx(
      result['jax']['img_per_s'] / result['torch'][fastest]['img_per_s'])
  assert result['epochs_timed'] == 1
  for variant, r in result['torch'].items():
    # JAX's lead over the fastest variant is its smallest.
    assert r['speedup'] >= result['speedup'] - 1e-9, variant
    assert r['test_loss_difference'] == pytest.approx(
        result['jax']['test']['loss'] - r['test']['loss'])
    # Two epochs from the same initialisation scheme on the same data.
    assert abs(r['test_loss_difference']) < 5.0, variant

  # The matmul is timed after every timed round too; the fractions of peak
  # use those rates, so epochs and products share the machine's load.
  assert len(result['matmul_gflops_rounds']) == result['epochs_timed']
  assert result['peak_gflops'] == pytest.approx(
      np.median([max(r.values()) for r in result['matmul_gflops_rounds']]))
  assert result['jax']['fraction_of_peak'] == pytest.approx(
      result['jax']['gflops'] / result['peak_gflops'])
  json.dumps(result)  # what --output writes
  markdown = frameworks.to_markdown(result)
  rows = table_rows(markdown)
  assert set(rows) == {'JAX (vae_jax)', 'PyTorch compiled',
                       *(f'PyTorch {v}' for v in EAGER_VARIANTS)}
  assert 'unavailable: RuntimeError: no C++ compiler here' in rows[
      'PyTorch compiled'][1]
  for name, cells in rows.items():
    if name == 'PyTorch compiled':
      continue
    images_per_s, test_loss = number(cells[2]), number(cells[-2])
    assert math.isfinite(images_per_s) and images_per_s > 0, name
    assert math.isfinite(test_loss) and test_loss > 0, name
  assert f"({fastest}): **{result['speedup']:.2f}x**" in markdown
  for variant, r in result['torch'].items():
    # One timed round: its ratio is the speed-up itself.
    assert r['paired_speedup']['median'] == pytest.approx(r['speedup'])
  # A value just short of its goal never prints as the goal.
  short = copy.deepcopy(result)
  short['targets']['speedup'].update(value=1.4996, met=False)
  short['targets']['fraction_of_peak'].update(value=0.54996, met=False)
  goals_line = frameworks.to_markdown(short).split('Goals: ')[1]
  assert 'fastest PyTorch: 1.499x, not met' in goals_line
  assert 'matmul rate: 54.9%, not met' in goals_line
  assert (f"the peak is the median of each round's higher rate, "
          f"{result['peak_gflops']:.0f} GFLOP/s" in markdown)
  assert (f"of peak ({result['peak_gflops']:.0f} GFLOP/s)" in markdown)
  products_only = result['products_only']
  assert products_only['products'] == 11  # 64-16-2 and back, as above
  assert products_only['jax'] > 0 and products_only['torch'] > 0
  assert (f"nothing but JAX's products would be "
          f"{products_only['jax'] / result['torch'][fastest]['img_per_s']:.2f}x"
          in markdown)


def test_frameworks_never_times_an_epoch_that_compiles():
  # The first epoch is the warm-up (torch.compile compiles in it): with one
  # epoch there is nothing to time, so no ratio is reported.
  with pytest.raises(ValueError, match='at least 2'):
    frameworks.benchmark_frameworks(tiny_config(), epochs=1,
                                    dataset=tiny_dataset())


def test_quality_mode_compares_seed_means(one_torch_thread, caplog):
  config = tiny_config()
  dataset = tiny_dataset()
  with caplog.at_level('WARNING'):
    result = quality.compare_quality(config, seeds=3, epochs=2,
                                       dataset=dataset)
  # PyTorch's runs show progress at the level the launcher prints.
  progress = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith('PyTorch seed')]
  assert len(progress) == 6
  assert progress[-1].startswith('PyTorch seed 2 epoch 2/2')
  assert progress[-1].endswith('ETA 0 s') and 'img/s' in progress[-1]
  jax_losses = np.array(result['jax']['test_loss'])
  torch_losses = np.array(result['torch']['test_loss'])
  assert jax_losses.shape == torch_losses.shape == (3,)
  # Each seed draws its own initial weights on both sides.
  assert len(set(jax_losses.round(4))) == 3
  assert len(set(torch_losses.round(4))) == 3
  assert result['difference'] == pytest.approx(
      jax_losses.mean() - torch_losses.mean())
  assert result['standard_error'] == pytest.approx(np.sqrt(
      jax_losses.var(ddof=1) / 3 + torch_losses.var(ddof=1) / 3))
  # The same model and optimiser from the same initialisation scheme.
  assert abs(result['difference']) < 4 * result['standard_error'] + 1.0
  # Seed 1 on JAX's side is what a separate run of seed 1 reaches.
  single = copy.deepcopy(config)
  single.seed, single.num_epochs, single.plots = 1, 2, False
  with tempfile.TemporaryDirectory() as tmp:
    separate = driver.train_and_evaluate(single, tmp + '/run', dataset=dataset)
  assert jax_losses[1] == pytest.approx(separate['test_loss'], rel=2e-5)
  markdown = quality.quality_markdown(result)
  assert f"{result['difference']:+.2f} nats" in markdown
  assert f"| 2 | {jax_losses[2]:.2f} | {torch_losses[2]:.2f} |" in markdown


def test_quality_mode_can_start_both_sides_from_pytorchs_weights(
    one_torch_thread, monkeypatch):
  from vae_jax import sweep
  config = tiny_config()
  dataset = tiny_dataset()
  given = {}
  run_sweep = sweep.run_sweep

  def recording_run_sweep(*args, **kwargs):
    given['initial_params'] = kwargs['initial_params']
    return run_sweep(*args, **kwargs)

  monkeypatch.setattr(sweep, 'run_sweep', recording_run_sweep)
  paired = quality.compare_quality(config, seeds=4, epochs=2,
                                     dataset=dataset, init='torch')
  # JAX's seed s starts from the weights torch.manual_seed(s) gives the twin.
  for seed, params in enumerate(given['initial_params']):
    torch.manual_seed(seed)
    twin = torch_reference.build_model(
        **torch_reference.twin_kwargs(config, dataset.image_shape))
    expected = torch_reference.mlp_params_for_jax(twin)
    assert jax.tree.all(jax.tree.map(np.array_equal, params, expected))
  own = quality.compare_quality(config, seeds=4, epochs=2, dataset=dataset)
  # PyTorch's side is the same runs either way.
  assert own['init'] == 'own' and own['torch']['test_loss'] == pytest.approx(
      paired['torch']['test_loss'])
  jax_paired = np.array(paired['jax']['test_loss'])
  torch_losses = np.array(paired['torch']['test_loss'])
  # Paired by initial weights, each JAX seed lands near its PyTorch twin's
  # result, closer than seeds lie to each other and than unpaired seeds.
  paired_gaps = np.abs(jax_paired - torch_losses)
  own_gaps = np.abs(np.array(own['jax']['test_loss']) - torch_losses)
  assert paired_gaps.max() < np.ptp(torch_losses)
  assert paired_gaps.mean() < own_gaps.mean()
  assert paired['standard_error'] == pytest.approx(
      np.std(jax_paired - torch_losses, ddof=1) / 2)
  assert "same (PyTorch's) initial weights" in quality.quality_markdown(paired)

  conv = tiny_config()
  conv.model.name = 'conv_vae'
  with pytest.raises(app.UsageError, match='mlp_vae only'):
    quality.compare_quality(conv, seeds=2, epochs=1, dataset=dataset,
                              init='torch')


def test_torch_twin_trains_the_same_whether_or_not_it_is_evaluated_on_the_way(
    one_torch_thread):
  config = tiny_config()
  dataset = tiny_dataset()
  quiet = torch_reference.train_twin(config, dataset, seed=3, epochs=3,
                                     device='cpu')
  epochs_seen = []
  watched = torch_reference.train_twin(
      config, dataset, seed=3, epochs=3, device='cpu', evaluate_every=1,
      on_epoch=lambda epoch, seconds, loss: epochs_seen.append(epoch))
  assert epochs_seen == [1, 2, 3]
  assert [epoch for epoch, _ in watched['history']] == [1, 2, 3]
  assert quiet['history'] == [(3, quiet['test_loss'])]
  # The evaluations sample from the generator the training noise comes
  # from; restoring it leaves the run's last loss exactly as without them.
  assert watched['test_loss'] == quiet['test_loss']
  other_seed = torch_reference.train_twin(config, dataset, seed=4, epochs=3,
                                          device='cpu')
  assert other_seed['test_loss'] != quiet['test_loss']


def test_quality_mode_can_start_at_a_later_seed(one_torch_thread):
  config = tiny_config()
  dataset = tiny_dataset()
  result = quality.compare_quality(config, seeds=2, epochs=1,
                                     dataset=dataset, first_seed=2)
  assert result['first_seed'] == 2
  # PyTorch's seeds are 2 and 3, each as a run of its own.
  for index, seed in enumerate((2, 3)):
    alone = torch_reference.train_twin(config, dataset, seed, epochs=1,
                                       device='cpu')
    assert result['torch']['test_loss'][index] == alone['test_loss']
  # JAX's are the sweep members of seeds 2 and 3.
  single = copy.deepcopy(config)
  single.seed, single.num_epochs, single.plots = 3, 1, False
  with tempfile.TemporaryDirectory() as tmp:
    separate = driver.train_and_evaluate(single, tmp + '/run', dataset=dataset)
  assert result['jax']['test_loss'][1] == pytest.approx(
      separate['test_loss'], rel=2e-5)
  markdown = quality.quality_markdown(result)
  assert 'seeds 2..3 on each side' in markdown
  assert markdown.count('| 2 | ') == 1 and markdown.count('| 3 | ') == 1
  with pytest.raises(app.UsageError, match='quality_first_seed=-1'):
    quality.compare_quality(config, seeds=2, epochs=1, dataset=dataset,
                              first_seed=-1)


def test_targets_and_best_variant():
  result = {
      'epochs': 10, 'jax': {'img_per_s': 300.0, 'fraction_of_peak': 0.6},
      'torch': {'a': {'img_per_s': 100.0, 'test_loss_difference': 0.2},
                'b': {'img_per_s': 250.0, 'test_loss_difference': -0.7}}}
  assert frameworks.best_torch_variant(result) == 'b'
  result['speedup'] = 300.0 / 250.0
  goals = frameworks.targets(result)
  assert goals['speedup']['met'] is False
  assert goals['fraction_of_peak']['met'] is True
  assert goals['test_loss_difference']['value'] == pytest.approx(0.7)
  assert goals['test_loss_difference']['met'] is False
  assert frameworks.best_torch_variant(dict(result, torch={})) is None


def test_paired_speedup_takes_ratios_round_by_round():
  # Load that slows both sides in the same rounds leaves every ratio 2.
  paired = frameworks.paired_speedup([1.0, 1.0, 2.0, 2.0, 2.0],
                                    [2.0, 2.0, 4.0, 4.0, 4.0])
  assert paired == {'median': 2.0, 'low': 2.0, 'high': 2.0}
  # Quartiles of the ratios [1, 2, 3, 4, 0.5].
  skewed = frameworks.paired_speedup([1.0, 1.0, 1.0, 1.0, 4.0],
                                    [1.0, 2.0, 3.0, 4.0, 2.0])
  assert skewed['median'] == 2.0
  assert (skewed['low'], skewed['high']) == (1.0, 3.0)
  # A variant dropped after two rounds is paired with JAX's first two.
  assert frameworks.paired_speedup([1.0, 2.0, 9.0], [3.0, 4.0]) == {
      'median': 2.5, 'low': 2.25, 'high': 2.75}
  assert frameworks.paired_speedup([1.0], []) is None


def test_matmul_clock_repeats_a_cheap_product_more():
  # Each timed run lasts about seconds_per_run, so a fast device is timed
  # over many products rather than one launch.
  small = bench_common.MatmulClock(16, seconds_per_run=0.05)
  large = bench_common.MatmulClock(512, seconds_per_run=0.05)
  for framework in ('jax', 'torch'):
    assert small.repeats[framework] > large.repeats[framework] >= 2
  rates = large.rates(tries=1)
  assert set(rates) == {'jax', 'torch'}
  assert all(math.isfinite(rate) and rate > 0 for rate in rates.values())


def test_round_matmul_summary_pairs_each_round_with_its_epochs():
  # 1000 images of 1e8 FLOPs: JAX's rounds at 100, 50 and 200 GFLOP/s
  # against round peaks of 100, 60 and 120 (the higher framework each time).
  rates = [{'jax': 100.0, 'torch': 80.0}, {'jax': 50.0, 'torch': 60.0},
           {'jax': 90.0, 'torch': 120.0}]
  summary = bench_common.round_matmul_summary(rates, [1.0, 2.0, 0.5], 1000, 1e8)
  assert summary['jax'] == 90.0 and summary['torch'] == 80.0
  assert summary['peak'] == 100.0
  # Fractions 1, 5/6 and 5/3: median and quartiles.
  fraction = summary['jax_fraction']
  assert fraction['median'] == pytest.approx(1.0)
  assert fraction['low'] == pytest.approx((5 / 6 + 1) / 2)
  assert fraction['high'] == pytest.approx((1 + 5 / 3) / 2)
  # Only rounds with a JAX epoch count.
  assert bench_common.round_matmul_summary(rates, [1.0], 1000, 1e8)['peak'] == 100.0
  assert bench_common.round_matmul_summary([], [1.0], 1000, 1e8) is None


def _touch_fresh_pages(num_bytes: int) -> None:
  # An anonymous mapping of its own: malloc could hand back pages that an
  # earlier test already made resident, which would add nothing to the RSS.
  with mmap.mmap(-1, num_bytes) as pages:
    pages.write(b'\x01' * num_bytes)


def test_peak_memory_counts_only_the_tracked_work():
  _touch_fresh_pages(64 * 2 ** 20)  # a higher peak, before the work
  with peak_memory.track() as memory:
    _touch_fresh_pages(16 * 2 ** 20)
  assert memory['method'].startswith('VmHWM')
  assert 12 < memory['increase_mib'] < 48, memory


def test_memory_workers_measure_each_side():
  dataset = tiny_dataset(num_train=2048)
  config = tiny_config()
  flags_ = [f'--config={REPO / "configs" / "default.py"}',
            '--config.model.encoder_widths=(16,)',
            '--config.model.latent_size=2', '--config.batch_size=16']
  memory = frameworks.measure_memory(config, dataset, ['preloaded'], flags_,
                                    torch_threads=1)
  assert set(memory) == {'jax', 'preloaded'}
  for side, m in memory.items():
    assert 'error' not in m, (side, m)
    assert m['peak_rss_mib'] >= m['rss_before_mib'] > 0, side
    assert m['increase_mib'] == pytest.approx(
        m['peak_rss_mib'] - m['rss_before_mib'])
  # At least the variant's float copy of the data: 2048 * 64 * 4 B = 0.5 MiB.
  assert memory['preloaded']['increase_mib'] > 0.5
