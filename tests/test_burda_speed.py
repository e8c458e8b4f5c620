"""benchmarks.burda_speed: its PyTorch twin computes vae_jax's IWAE loss and
gradients, and the script runs end to end (fast: about half a minute)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from absl import app

torch = pytest.importorskip(
    'torch', reason='the PyTorch comparison needs torch (pip install '
    'torch==2.13.0, the CPU or CUDA build you want)')

from benchmarks import burda_speed
from vae_jax import models
from vae_jax import objectives
from vae_jax import train

REPO = Path(__file__).resolve().parents[1]
IMAGE_SHAPE = (28, 28)
BATCH = 20


def _jax_side(num_samples: int, seed: int):
  """vae_jax's Burda model with perturbed initial weights (every bias
  nonzero, so that every path carries a gradient) and a binary batch."""
  config = burda_speed.burda_config(num_samples)
  model = models.build_model(config.model, IMAGE_SHAPE)
  hparams = train.hyperparams_from_config(config)
  rng = np.random.default_rng(seed)
  grey = rng.random((BATCH, *IMAGE_SHAPE)) ** 2
  params = train.init_params(
      model, hparams.seed, IMAGE_SHAPE,
      train.initial_output_bias(config.model, (grey * 255).astype(np.uint8)))
  params = jax.tree.map(
      lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32),
      params)
  images = (rng.random(grey.shape) < grey).astype(np.float32)
  batch = {'images': images, 'labels': np.zeros(BATCH, np.int32)}
  return config, model, hparams, params, batch


def _noise_of(rng_key, num_samples: int, latent_size: int) -> np.ndarray:
  """The eps [k, B, latent] vae_jax's loss draws from `rng_key`: one key per
  sample (make_loss_fn splits it), each drawing standard_normal_per_latent
  of the batch (objectives.sample_posterior)."""
  return np.stack([
      np.asarray(objectives.standard_normal_per_latent(
          key, (BATCH, latent_size)))
      for key in jax.random.split(rng_key, num_samples)])


def _torch_loss_and_grads(params, images, eps):
  twin = burda_speed.BurdaTwin()
  burda_speed.load_flax_params(twin, params)
  x = torch.from_numpy(images.reshape(BATCH, -1))
  eps = torch.from_numpy(eps)
  per_image = -(torch.logsumexp(
      burda_speed.log_importance_weights(twin, x, eps), dim=0)
                - math.log(eps.shape[0]))
  loss = burda_speed.iwae_loss(twin, x, eps)
  loss.backward()
  return (loss.item(), per_image.detach().numpy(),
          burda_speed.flax_layout_grads(twin))


@pytest.mark.parametrize('num_samples', [1, 5])
def test_torch_twin_matches_vae_jax_iwae_loss_and_gradients(num_samples,
                                                           one_torch_thread):
  # The timing compares two programs only if they compute the same thing:
  # from the same weights, binary batch and noise, the twin's IWAE loss,
  # per-image bounds and every gradient equal vae_jax's training loss
  # (make_loss_fn, the one its compiled epoch differentiates).
  config, model, hparams, params, batch = _jax_side(num_samples, num_samples)
  loss_fn = train.make_loss_fn(model, config.loss, objective=config.objective,
                               num_samples=num_samples)
  key = jax.random.PRNGKey(11)
  (jax_loss, terms), jax_grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params, batch, hparams, key)
  eps = _noise_of(key, num_samples, config.model.latent_size)

  torch_loss, torch_per_image, torch_grads = _torch_loss_and_grads(
      params, batch['images'], eps)

  np.testing.assert_allclose(torch_loss, float(jax_loss), rtol=1e-5)
  np.testing.assert_allclose(torch_per_image, np.asarray(terms.loss),
                             rtol=1e-5)
  assert set(torch_grads) == set(jax_grads)
  for name, grads in jax_grads.items():
    for kind, jax_grad in grads.items():
      jax_grad = np.asarray(jax_grad)
      assert torch_grads[name][kind].shape == jax_grad.shape, (name, kind)
      np.testing.assert_allclose(
          torch_grads[name][kind], jax_grad, rtol=1e-4,
          atol=1e-4 * np.abs(jax_grad).max(), err_msg=f'{name}/{kind}')

  # ... and the check can fail: other noise is another loss.
  shifted_loss, _, _ = _torch_loss_and_grads(params, batch['images'],
                                             eps + 0.1)
  assert abs(shifted_loss - float(jax_loss)) > 1e-3 * abs(float(jax_loss))


def test_fewer_than_two_epochs_is_refused_before_any_work():
  with pytest.raises(app.UsageError, match='at least 2 epochs'):
    burda_speed.run_benchmark(ks=[1], epochs=1, data_dir='/nonexistent')
  # The command line says so too, without a traceback.
  done = subprocess.run(
      [sys.executable, '-m', 'benchmarks.burda_speed', '--epochs=1',
       '--ks=1'], cwd=REPO, capture_output=True, text=True, timeout=120,
      env=_env(), check=False)
  assert done.returncode != 0
  assert 'at least 2 epochs' in done.stderr
  assert 'Traceback' not in done.stderr


def test_bad_ks_and_variants_are_refused():
  with pytest.raises(app.UsageError, match='--ks'):
    burda_speed.parse_ks(['1', '0'])
  with pytest.raises(app.UsageError, match='--ks'):
    burda_speed.parse_ks(['five'])
  assert burda_speed.parse_ks(['5', '1', '5']) == [5, 1]
  with pytest.raises(app.UsageError, match='--torch_variants'):
    burda_speed.check_variants(['eager', 'jit'])


def _env() -> dict:
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(REPO), *filter(None, [env.get('PYTHONPATH')])])
  return env


def test_script_writes_the_table_and_raw_seconds(mnist_dir, tmp_path):
  output = tmp_path / 'out'
  done = subprocess.run(
      [sys.executable, '-m', 'benchmarks.burda_speed',
       f'--data_dir={mnist_dir.parent}', '--ks=1,2', '--epochs=2',
       '--train_subset=200', '--torch_variants=eager', '--torch_threads=1',
       f'--workdir={output}'],
      cwd=REPO, capture_output=True, text=True, timeout=170, env=_env(),
      check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  # Progress lines with images/s and an ETA.
  assert 'img/s' in done.stderr and 'ETA' in done.stderr

  result = json.loads((output / 'burda_speed.json').read_text())
  markdown = (output / 'burda_speed.md').read_text()
  assert markdown in done.stdout  # what is printed is what is written
  assert [row['k'] for row in result['rows']] == [1, 2]
  assert result['epochs'] == 2 and result['epochs_timed'] == 1
  assert result['setup']['batch_size'] == 20
  assert result['setup']['train_images'] == 200
  for key in ('processor', 'cpu_count', 'jax', 'torch'):
    assert result['machine'][key]
  assert result['date'] and '--ks=1,2' in result['command']
  for row in result['rows']:
    assert row['images_per_epoch'] == 200 and row['steps_per_epoch'] == 10
    assert row['torch_unavailable'] == {}
    jax_side, eager = row['jax'], row['torch']['eager']
    for side in (jax_side, eager):
      # The first epoch is kept apart: one timed epoch remains.
      assert len(side['epoch_seconds']) == 1
      assert side['first_epoch_seconds'] > 0
      assert len(side['train_loss']) == 2
      assert all(math.isfinite(loss) for loss in side['train_loss'])
    assert jax_side['first_epoch_seconds'] >= jax_side['compile_seconds']
    ratio = eager['ratio_torch_over_jax']
    assert math.isfinite(ratio) and ratio > 0
    np.testing.assert_allclose(
        ratio, eager['epoch_seconds'][0] / jax_side['epoch_seconds'][0])
    np.testing.assert_allclose(eager['img_per_s'],
                               200 / eager['epoch_seconds'][0])
    assert f"| {row['k']} | eager | " in markdown
  assert 'ratio PyTorch/JAX' in markdown
