"""The train step, compiled epoch, evaluation, workdir guard, checkpoints and launcher."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from vae_jax import checkpoint
from vae_jax import data
from vae_jax.data import pipeline
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import loop
from vae_jax import models
from vae_jax import objectives
from vae_jax import optimizers
from vae_jax import train
from vae_jax import workdir as workdir_lib

REPO = Path(__file__).resolve().parents[1]


def tiny_dataset(num_train=96, num_test=40, side=8, seed=0) -> data.Dataset:
  """Blobs at random places: learnable, unlike uniform noise."""
  rng = np.random.default_rng(seed)
  ys, xs = np.mgrid[:side, :side]

  def make(count):
    centres = rng.uniform(1, side - 2, size=(count, 2))
    labels = rng.integers(0, 10, count).astype(np.int32)
    dist2 = (ys - centres[:, :1, None]) ** 2 + (xs - centres[:, 1:, None]) ** 2
    return (255 * np.exp(-dist2 / 3.0)).astype(np.uint8), labels

  train_images, train_labels = make(num_train)
  test_images, test_labels = make(num_test)
  return data.Dataset('tiny', train_images, train_labels, test_images,
                      test_labels, source='synthetic')


def tiny_config(**overrides):
  config = default.get_config()
  config.model.encoder_widths = (16,)
  config.model.latent_size = 2
  config.batch_size = 16
  config.eval_batch_size = 16
  config.num_epochs = 2
  config.plots = False
  for key, value in overrides.items():
    grid_lib.set_key(config, key, value)
  return config


def _data(images, labels=None):
  labels = np.zeros(len(images), np.int32) if labels is None else labels
  return pipeline.device_data(images, labels)


def _parts(config, dataset):
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer(config.optimizer)
  hparams = train.hyperparams_from_config(config)
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  return model, optimizer, hparams, state


def test_default_model_parameter_count():
  config = default.get_config()
  model = models.build_model(config.model, (28, 28))
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))['params']
  # 784-400-(20, 20) encoder, 20-400-784 decoder, as pytorch/examples/vae.
  assert sum(x.size for x in jax.tree.leaves(params)) == 652_824


def test_torch_default_init_bounds():
  config = default.get_config()
  model = models.build_model(config.model, (28, 28))
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))['params']
  kernel = np.asarray(params['enc_0']['kernel'])
  bound = 1 / np.sqrt(784)
  assert np.abs(kernel).max() <= bound
  # Uniform on [-b, b] has standard deviation b / sqrt(3).
  assert abs(kernel.std() - bound / np.sqrt(3)) < 0.01 * bound


@pytest.mark.parametrize('seed', [0, 1])
def test_torch_default_init_draws_every_parameter_from_its_uniform(seed):
  # Study D's latent-2 outcome depends strongly on the initial draw, so every
  # kernel and bias (not just one layer's moments) is tested against
  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch nn.Linear's default.
  from scipy import stats
  from configs import study_d
  config = study_d.get_config()
  config.model.latent_size = 2
  model = models.build_model(config.model, (28, 28))
  params = train.init_params(model, jnp.uint32(seed), (28, 28))
  fan_ins = {'enc_0': 784, 'enc_1': 256, 'enc_mean': 256,
             'enc_log_variance': 256, 'dec_0': 2, 'dec_1': 256,
             'dec_logits': 256}
  assert sorted(params) == sorted(fan_ins)
  for layer, fan_in in fan_ins.items():
    bound = 1 / np.sqrt(fan_in)
    for name, values in params[layer].items():
      values = np.asarray(values).ravel()
      assert np.abs(values).max() <= bound, (layer, name)
      uniform = stats.uniform(loc=-bound, scale=2 * bound)
      assert stats.kstest(values, uniform.cdf).pvalue > 1e-3, (layer, name)
  # Layers are drawn independently: no two same-shaped kernels correlate.
  first, second = (np.asarray(params[k]['kernel']).ravel()
                   for k in ('enc_mean', 'enc_log_variance'))
  assert abs(np.corrcoef(first, second)[0, 1]) < 5 / np.sqrt(first.size)


def test_kaiming_normal_init_std():
  config = default.get_config()
  config.model.init_scheme = 'kaiming_normal'
  model = models.build_model(config.model, (28, 28))
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))['params']
  kernel = np.asarray(params['dec_logits']['kernel'])  # fan_in 400
  assert abs(kernel.std() - np.sqrt(2 / 400)) < 0.01 * np.sqrt(2 / 400)
  assert np.all(np.asarray(params['dec_logits']['bias']) == 0)


def test_loss_matches_manual_forward_pass():
  config = tiny_config()
  dataset = tiny_dataset()
  model, _, hparams, state = _parts(config, dataset)
  hparams = hparams._replace(beta=jnp.float32(0.7),
                             prior_mean=jnp.float32(1.0),
                             prior_std=jnp.float32(2.0))
  x = jnp.asarray(dataset.train_images[:5] / 255.0, jnp.float32)
  rng = jax.random.PRNGKey(3)
  batch = {'images': x, 'labels': jnp.zeros(5, jnp.int32)}
  mean_loss, terms = train.make_loss_fn(model)(state.params, batch, hparams, rng)

  # The same computation by hand in NumPy float64 from the raw parameters.
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params)
  h = np.maximum(x.reshape(5, -1) @ p['enc_0']['kernel'] + p['enc_0']['bias'], 0)
  mu = h @ p['enc_mean']['kernel'] + p['enc_mean']['bias']
  log_var = h @ p['enc_log_variance']['kernel'] + p['enc_log_variance']['bias']
  eps = np.asarray(objectives.standard_normal_per_latent(rng, mu.shape),
                   np.float64)
  z = mu + np.exp(0.5 * log_var) * eps
  h = np.maximum(z @ p['dec_0']['kernel'] + p['dec_0']['bias'], 0)
  logits = h @ p['dec_logits']['kernel'] + p['dec_logits']['bias']
  target = np.asarray(x, np.float64).reshape(5, -1)
  prob = 1 / (1 + np.exp(-logits))
  bce = -(target * np.log(prob) + (1 - target) * np.log1p(-prob)).sum(-1)
  var = np.exp(log_var)
  kl = (np.log(2.0) - 0.5 * log_var + (var + (mu - 1) ** 2) / 8 - 0.5).sum(-1)
  np.testing.assert_allclose(terms.reconstruction, bce, rtol=1e-4)
  np.testing.assert_allclose(terms.kl, kl, rtol=1e-4)
  np.testing.assert_allclose(mean_loss, np.mean(bce + 0.7 * kl), rtol=1e-4)


def test_training_reduces_the_loss():
  config = tiny_config(num_epochs=1)
  dataset = tiny_dataset(num_train=512)
  model, optimizer, hparams, state = _parts(config, dataset)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey'))
  evaluate = jax.jit(train.make_evaluate(model, 16, 'grey'))
  images = _data(dataset.train_images)
  before = evaluate(state.params, hparams, _data(dataset.test_images))
  for e in range(1, 6):
    state, _ = epoch(state, hparams, images, jnp.int32(e))
  after = evaluate(state.params, hparams, _data(dataset.test_images))
  assert float(after['loss']) < 0.8 * float(before['loss'])
  assert int(state.step) == 5 * (512 // 16)


def test_unrolled_epoch_takes_the_same_steps():
  config = tiny_config()
  # 7 steps: unroll 2 and 3 each leave one step over.
  dataset = tiny_dataset(num_train=16 * 7 + 5)
  model, optimizer, hparams, state = _parts(config, dataset)
  images = _data(dataset.train_images)

  def one_epoch(unroll):
    epoch = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey',
                                           unroll=unroll))
    return epoch(state, hparams, images, jnp.int32(1))

  rolled_state, rolled_metrics = one_epoch(1)
  assert int(rolled_state.step) == 7
  for unroll in (2, 3):
    unrolled_state, unrolled_metrics = one_epoch(unroll)
    assert int(unrolled_state.step) == 7
    for rolled, unrolled in zip(jax.tree.leaves(rolled_state.params),
                                jax.tree.leaves(unrolled_state.params)):
      np.testing.assert_allclose(unrolled, rolled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(unrolled_metrics['loss'],
                               rolled_metrics['loss'], rtol=1e-6)
  with pytest.raises(ValueError, match='scan_unroll=0'):
    train.make_train_epoch(model, optimizer, 16, 'grey', unroll=0)


def test_swept_values_are_arrays_not_recompiled():
  config = tiny_config()
  dataset = tiny_dataset()
  model, optimizer, hparams, state = _parts(config, dataset)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey'))
  images = _data(dataset.train_images)
  outputs = []
  for beta, lr, prior_std in [(1.0, 1e-3, 1.0), (0.1, 1e-2, 2.0)]:
    h = hparams._replace(beta=jnp.float32(beta),
                         learning_rate=jnp.float32(lr),
                         prior_std=jnp.float32(prior_std))
    outputs.append(epoch(state, h, images, jnp.int32(1)))
  assert epoch._cache_size() == 1
  # ... and the values reach the computation.
  assert not np.allclose(outputs[0][1]['loss'], outputs[1][1]['loss'])


def test_vmapped_epoch_equals_separate_epochs():
  config = tiny_config()
  dataset = tiny_dataset()
  model, optimizer, hparams, _ = _parts(config, dataset)
  members = [hparams._replace(beta=jnp.float32(b), seed=jnp.uint32(s),
                              learning_rate=jnp.float32(lr))
             for b, s, lr in [(1.0, 0, 1e-3), (0.5, 1, 3e-3), (4.0, 2, 1e-4)]]
  create = lambda h: train.create_train_state(model, optimizer, h,
                                              dataset.image_shape)
  epoch = train.make_train_epoch(model, optimizer, 16, 'dynamic_binarized')
  images = _data(dataset.train_images)
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
  states = jax.vmap(create)(stacked)
  states, metrics = jax.jit(jax.vmap(epoch, in_axes=(0, 0, None, None)))(
      states, stacked, images, jnp.int32(1))
  for i, member in enumerate(members):
    state, single = jax.jit(epoch)(create(member), member, images, jnp.int32(1))
    np.testing.assert_allclose(metrics['loss'][i], single['loss'], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-4,
                                                         atol=1e-6),
                 states.params, state.params)


def test_epoch_shuffle_depends_on_seed_and_epoch_only():
  config = tiny_config()
  dataset = tiny_dataset()
  model, optimizer, hparams, state = _parts(config, dataset)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey'))
  images = _data(dataset.train_images)
  a = epoch(state, hparams, images, jnp.int32(4))[1]['loss']
  b = epoch(state, hparams, images, jnp.int32(4))[1]['loss']
  c = epoch(state, hparams, images, jnp.int32(5))[1]['loss']
  assert a == b and a != c


def test_evaluate_counts_every_image_once():
  config = tiny_config()
  dataset = tiny_dataset(num_test=37)  # not a multiple of the batch
  model, _, hparams, state = _parts(config, dataset)
  test = jnp.asarray(dataset.test_images)
  metrics = jax.jit(train.make_evaluate(model, 16, 'grey'))(
      state.params, hparams, _data(dataset.test_images))
  # The KL needs no sample, so it can be checked image by image.
  posterior = model.apply({'params': state.params}, test / 255.0,
                          method=model.encode)
  expected = objectives.gaussian_kl_to_prior(posterior).mean()
  np.testing.assert_allclose(metrics['kl'], expected, rtol=1e-5)


def test_evaluate_at_the_posterior_mean_matches_numpy():
  config = tiny_config()
  dataset = tiny_dataset(num_test=37)
  model, _, hparams, state = _parts(config, dataset)
  data_ = _data(dataset.test_images)
  at_mean = jax.jit(train.make_evaluate(model, 16, 'grey', decode_mean=True))(
      state.params, hparams, data_)
  sampled = jax.jit(train.make_evaluate(model, 16, 'grey'))(
      state.params, hparams, data_)
  x = dataset.test_images.astype(np.float64) / 255.0
  variables = {'params': state.params}
  posterior = model.apply(variables, jnp.asarray(x, jnp.float32),
                          method=model.encode)
  logits = np.asarray(model.apply(variables, posterior.mean,
                                  method=model.decode), np.float64)
  # -[x log p + (1 - x) log(1 - p)] with p = sigmoid(logits), per image.
  log_p, log_1mp = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
  bce = -(x * log_p + (1 - x) * log_1mp).reshape(len(x), -1).sum(1)
  np.testing.assert_allclose(at_mean['recon'], bce.mean(), rtol=1e-5)
  # The KL does not depend on the decoded z; the reconstruction does.
  np.testing.assert_allclose(at_mean['kl'], sampled['kl'], rtol=1e-6)
  assert abs(float(at_mean['recon']) - float(sampled['recon'])) > 1e-3


def test_dynamic_binarization_samples_grey_levels():
  grey = jnp.full((200, 28, 28), 64, jnp.uint8)
  x = pipeline.to_model_input(grey, 'dynamic_binarized', jax.random.PRNGKey(0))
  assert set(np.unique(np.asarray(x))) == {0.0, 1.0}
  assert abs(float(x.mean()) - 64 / 255) < 0.005
  y = pipeline.to_model_input(grey, 'dynamic_binarized', jax.random.PRNGKey(1))
  assert not np.array_equal(x, y)


# ------------------------------------------------- train_and_evaluate & workdir
def _run(config, workdir, **kwargs):
  return driver.train_and_evaluate(config, str(workdir), dataset=tiny_dataset(),
                                  **kwargs)


def test_train_and_evaluate_writes_metrics_results_figures(tmp_path):
  config = tiny_config(plots=True)
  results = _run(config, tmp_path / 'run')
  run = tmp_path / 'run'
  lines = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()]
  assert [l['epoch'] for l in lines] == [1, 2]
  for key in ('train_recon', 'train_kl', 'train_loss', 'test_recon',
              'test_kl', 'test_loss', 'img_per_s', 'seconds'):
    assert np.isfinite(lines[-1][key])
  saved = json.loads((run / 'results.json').read_text())
  assert saved['epochs'] == 2 and saved == results
  assert saved['test_loss'] == pytest.approx(lines[-1]['test_loss'])
  assert saved['test_loss'] == pytest.approx(saved['test_recon']
                                             + saved['test_kl'], rel=1e-5)
  for name in ('loss_curves', 'reconstructions', 'samples', 'latent_grid',
               'latent_scatter', 'interpolations', 'reconstructions_by_epoch'):
    png = (run / f'{name}.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000, name
  with np.load(run / workdir_lib.RECONSTRUCTIONS_BY_EPOCH) as tracked:
    assert tracked['epochs'].tolist() == [1, 2]
    assert tracked['outputs'].shape == (2, driver.TRACKED_IMAGES, 8, 8)
    # Training changes the reconstructions between epochs.
    assert not np.allclose(tracked['outputs'][0], tracked['outputs'][1])
  assert (run / 'checkpoints' / '2').is_dir()
  assert json.loads((run / 'config.json').read_text())['model']['latent_size'] == 2


def test_resume_is_bit_identical_to_uninterrupted_run(tmp_path):
  config = tiny_config(num_epochs=3)
  _run(config, tmp_path / 'straight')
  interrupted = tiny_config(num_epochs=1)
  _run(interrupted, tmp_path / 'resumed')
  _run(config, tmp_path / 'resumed')  # resumes at epoch 1

  def final_state(workdir):
    manager = checkpoint.RunCheckpoints(workdir)
    model, optimizer, hparams, like = _parts(config, tiny_dataset())
    restored = manager.restore(manager.latest_epoch(), like=like)
    manager.close()
    return restored

  a, b = final_state(tmp_path / 'straight'), final_state(tmp_path / 'resumed')
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert int(b.step) == 3 * (96 // 16)
  lines = lambda w: [json.loads(l) for l in
                     (w / 'metrics.jsonl').read_text().splitlines()]
  straight, resumed = lines(tmp_path / 'straight'), lines(tmp_path / 'resumed')
  assert [l['epoch'] for l in resumed] == [1, 2, 3]
  assert ([l['test_loss'] for l in straight]
          == [l['test_loss'] for l in resumed])


def _snapshot(directory: Path) -> dict:
  return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
          for p in sorted(directory.rglob('*')) if p.is_file()}


def test_workdir_with_different_config_is_refused_and_untouched(tmp_path):
  workdir = tmp_path / 'run'
  _run(tiny_config(), workdir)
  before = _snapshot(workdir)
  with pytest.raises(workdir_lib.WorkdirError) as error:
    _run(tiny_config(beta=0.5), workdir)
  message = str(error.value)
  assert 'beta: 1.0 -> 0.5' in message and '--overwrite' in message
  assert _snapshot(workdir) == before


def test_overwrite_replaces_a_run_with_a_different_config(tmp_path):
  workdir = tmp_path / 'run'
  _run(tiny_config(), workdir)
  _run(tiny_config(beta=0.5, num_epochs=1), workdir, overwrite=True)
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert len(lines) == 1
  assert json.loads((workdir / 'config.json').read_text())['beta'] == 0.5
  assert not (workdir / 'checkpoints' / '2').exists()


def test_foreign_nonempty_workdir_is_never_touched(tmp_path):
  (tmp_path / 'notes.txt').write_text('mine')
  for overwrite in (False, True):
    with pytest.raises(workdir_lib.WorkdirError, match='is not a vae_jax workdir'):
      _run(tiny_config(), tmp_path, overwrite=overwrite)
  assert [p.name for p in tmp_path.iterdir()] == ['notes.txt']


def test_more_epochs_on_a_finished_run_extends_it(tmp_path):
  workdir = tmp_path / 'run'
  _run(tiny_config(num_epochs=1), workdir)
  results = _run(tiny_config(num_epochs=2), workdir)
  assert results['epochs'] == 2


def test_unknown_names_in_config_are_clear_errors(tmp_path):
  for key, value, words in [('model.name', 'transformer', 'config.model.name'),
                            ('optimizer', 'lion', 'config.optimizer'),
                            ('data.preprocessing', 'sharpen', 'preprocessing'),
                            ('model.activation', 'swishy', 'activation')]:
    with pytest.raises(ValueError, match=words):
      _run(tiny_config(**{key: value}), tmp_path / key)


# ---------------------------------------------------------------- launcher
def _launch(*args, env=None):
  return subprocess.run(
      [sys.executable, '-m', 'launch.train', *args], cwd=REPO,
      capture_output=True, text=True, timeout=600,
      env={**os.environ, **(env or {})})


def test_launcher_rejects_unknown_config_key(tmp_path):
  result = _launch('--config=configs/default.py', f'--workdir={tmp_path}/w',
                   '--config.num_epoch=3')
  assert result.returncode != 0
  assert 'num_epoch' in result.stderr
  assert not (tmp_path / 'w').exists()


def test_launcher_missing_data_is_one_clear_error(tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  result = _launch('--config=configs/default.py', f'--workdir={tmp_path}/w',
                   f'--data_dir={empty}')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  [line] = result.stderr.strip().splitlines()
  assert line.startswith('launch.train: error: mnist: data files not found')
  assert 'train-images-idx3-ubyte' in line and '--data_dir' in line


def test_launcher_trains_on_real_mnist(tmp_path, mnist_dir):
  result = _launch('--config=configs/default.py', f'--workdir={tmp_path}/w',
                   '--config.num_epochs=1', '--config.data.train_subset=12800',
                   f'--config.data.dir={mnist_dir}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'epoch 1/1' in result.stderr  # the progress line
  # --config.data.dir, the older spelling of --data_dir, works with a note.
  assert '--config.data.dir is the older spelling of --data_dir' in (
      result.stderr)
  # Landmarks: before the compilation's silence, and the files at the end.
  assert result.stderr.index('Compiling model mlp_vae') < result.stderr.index(
      'compiled in')
  last = result.stderr.strip().splitlines()[-1]
  assert f'Wrote {tmp_path / "w"}: ' in last
  assert 'results.json' in last and 'checkpoints/' in last
  results = json.loads((tmp_path / 'w' / 'results.json').read_text())
  # One epoch on 12,800 images; the untrained model is at ~543 nats.
  assert results['test_loss'] < 200
  assert (tmp_path / 'w' / 'samples.png').stat().st_size > 10_000


@pytest.mark.slow
def test_default_config_reaches_pytorch_example_loss(tmp_path, mnist_dir):
  config = default.get_config()
  config.data.dir = str(mnist_dir)
  config.plots = False
  results = driver.train_and_evaluate(config, str(tmp_path / 'run'))
  assert results['epochs'] == 10
  assert results['test_loss'] <= 105.6


def test_a_model_field_the_model_does_not_use_does_not_block_resuming():
  saved = checkpoint.config_as_dict(tiny_config())
  current = checkpoint.config_as_dict(tiny_config())
  current['model']['hidden_size'] = saved['model']['hidden_size'] + 1
  assert checkpoint.config_differences(saved, current) == []  # mlp_vae
  saved['model']['name'] = current['model']['name'] = 'conv_fc_vae'
  assert checkpoint.config_differences(saved, current) == [
      f"model.hidden_size: {saved['model']['hidden_size']} -> "
      f"{current['model']['hidden_size']}"]


def test_run_saved_before_a_key_was_added_still_resumes(tmp_path):
  workdir = tmp_path / 'run'
  _run(tiny_config(num_epochs=1), workdir)
  saved = json.loads((workdir / 'config.json').read_text())
  del saved['loss']  # as written by a version without config.loss
  (workdir / 'config.json').write_text(json.dumps(saved))
  assert _run(tiny_config(num_epochs=2), workdir)['epochs'] == 2
  (workdir / 'config.json').write_text(json.dumps(saved))
  with pytest.raises(workdir_lib.WorkdirError, match="loss: '<absent>' -> 'mse'"):
    _run(tiny_config(num_epochs=2, loss='mse'), workdir)


def test_conv_vae_study_e_parameter_count_and_training(tmp_path):
  config = tiny_config(**{'model.name': 'conv_vae', 'loss': 'mse',
                          'num_epochs': 1})
  model = models.build_model(config.model, (28, 28))
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))['params']
  # Convs 320 + 18,496 + 2 * 36,928; heads 2 * (3136 * 2 + 2); decoder
  # dense 2 * 3136 + 3136, transposed convs 36,928 * 2 + 18,464 + 289.
  assert sum(x.size for x in jax.tree.leaves(params)) == 207_237
  results = _run(config, tmp_path / 'conv')
  assert np.isfinite(results['test_loss'])
  assert results['test_recon'] < 64  # MSE over 8x8 pixels in [0, 1]


def test_cvae_generates_the_requested_class(tmp_path):
  # Label 0: a bar in the top half; label 1: in the bottom half.
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 512).astype(np.int32)
  images = np.zeros((512, 8, 8), np.uint8)
  for i, label in enumerate(labels):
    row = rng.integers(0, 3) + 4 * label
    images[i, row:row + 2, 1:7] = 255
  dataset = data.Dataset('bars', images, labels, images[:64], labels[:64],
                         'synthetic')
  config = tiny_config(num_epochs=40, **{'model.num_classes': 2})
  driver.train_and_evaluate(config, str(tmp_path / 'cvae'), dataset=dataset)
  manager = checkpoint.RunCheckpoints(tmp_path / 'cvae')
  model, _, _, like = _parts(config, dataset)
  params = manager.restore(manager.latest_epoch(), like=like).params
  manager.close()
  z = jax.random.normal(jax.random.PRNGKey(0), (32, 2))
  for label in (0, 1):
    logits = model.apply({'params': params}, z, jnp.full(32, label),
                         method=model.decode)
    mass = np.asarray(jax.nn.sigmoid(logits)).sum(axis=(0, 2))
    top, bottom = mass[:4].sum(), mass[4:].sum()
    assert (top > 3 * bottom) if label == 0 else (bottom > 3 * top), (
        label, top, bottom)
  with pytest.raises(ValueError, match='needs labels'):
    model.apply({'params': params}, z, method=model.decode)


@pytest.mark.parametrize('model_name, loss', [('mlp_vae', 'bce'),
                                              ('conv_vae', 'mse')])
def test_usps_16x16_trains_end_to_end(tmp_path, usps_dir, model_name, loss):
  config = default.get_config()
  config.data.name = 'usps'
  config.data.dir = str(usps_dir)
  config.data.train_subset = 2048
  config.model.name = model_name
  config.model.latent_size = 2
  config.loss = loss
  config.num_epochs = 2
  config.batch_size = 64
  config.plots = True
  results = driver.train_and_evaluate(config, str(tmp_path / 'usps'))
  lines = [json.loads(l) for l in
           (tmp_path / 'usps' / 'metrics.jsonl').read_text().splitlines()]
  assert lines[1]['test_loss'] < lines[0]['test_loss']  # it learns
  assert np.isfinite(results['test_loss'])
  assert (tmp_path / 'usps' / 'latent_grid.png').stat().st_size > 5000


def test_progress_durations_read_as_seconds_minutes_or_hours():
  assert loop.format_duration(44.4) == '44 s'
  assert loop.format_duration(59.6) == '1 min 00 s'
  assert loop.format_duration(725) == '12 min 05 s'
  assert loop.format_duration(2 * 3600 + 7 * 60 + 29) == '2 h 07 min'


def test_tracked_reconstructions_append_resume_and_read_back(tmp_path):
  rng = np.random.default_rng(0)
  inputs = rng.uniform(size=(3, 4, 4)).astype(np.float32)
  outputs = rng.uniform(size=(4, 3, 4, 4)).astype(np.float32)
  path = tmp_path / 'tracked.npz'
  # A file written by an earlier version: float pixels, compressed.
  np.savez_compressed(path, inputs=inputs, epochs=np.array([1]),
                      outputs=outputs[:1])
  for epoch in (2, 3):
    loop.track_reconstructions(path, epoch, inputs, outputs[epoch - 1])
  # A resumed run writes epoch 3 again: the earlier epoch 3 is replaced.
  loop.track_reconstructions(path, 3, inputs, outputs[3])
  read_inputs, epochs, read_outputs = loop.read_tracked_reconstructions(path)
  assert epochs == [1, 2, 3]
  assert read_outputs.dtype == np.float32
  np.testing.assert_allclose(read_inputs, inputs, atol=0.5 / 255)
  np.testing.assert_allclose(read_outputs, outputs[[0, 1, 3]], atol=0.5 / 255)
  with np.load(path) as saved:  # stored as 8-bit pixels
    assert saved['outputs'].dtype == np.uint8
