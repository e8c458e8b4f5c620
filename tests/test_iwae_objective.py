"""Burda et al.'s setup: the k-sample objectives, the code's Adam, the staged
schedule, the model's parameterisation and the data order."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

from configs import burda_iwae
from test_train import tiny_config, tiny_dataset
from vae_jax.data import pipeline
from vae_jax import models
from vae_jax import objectives
from vae_jax import optimizers
from vae_jax import train
from vae_jax import validation


def _batch(dataset, count=16):
  images = dataset.train_images[:count].astype(np.float32) / 255
  return {'images': jnp.asarray(images),
          'labels': jnp.zeros(count, jnp.int32)}


def _model(config, dataset):
  model = models.build_model(config.model, dataset.image_shape)
  params = train.init_params(model, jnp.uint32(0), dataset.image_shape)
  return model, params, train.hyperparams_from_config(config)


def _train_iwae(model, config, dataset, num_samples: int):
  """15 epochs of the IWAE objective at Adam 3e-3 on the tiny blobs;
  returns (state, hparams), after checking the loss fell."""
  optimizer = optimizers.make_optimizer('adam')
  hparams = train.hyperparams_from_config(config)._replace(
      learning_rate=jnp.float32(3e-3))
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  epoch = jax.jit(train.make_train_epoch(
      model, optimizer, 16, 'dynamic_binarized', objective='iwae',
      num_samples=num_samples))
  data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  losses = []
  for e in range(1, 16):
    state, metrics = epoch(state, hparams, data, jnp.int32(e))
    losses.append(float(metrics['loss']))
  assert losses[-1] < losses[0] - 1.0  # it trained
  return state, hparams


def test_bounds_against_a_float64_reference_and_far_from_one():
  rng = np.random.default_rng(0)
  # Log weights of -500 nats and a spread of 300: exp() underflows in float32.
  log_w = rng.normal(-500.0, 100.0, size=(7, 5)).astype(np.float32)
  log_w[:, 0] = [-2000, -1000, -1500, -3000, -900, -2500, -1200]
  expected_iwae = special.logsumexp(log_w.astype(np.float64), axis=0) - np.log(7)
  np.testing.assert_allclose(objectives.iwae_bound(jnp.asarray(log_w)),
                             expected_iwae, rtol=1e-6)
  np.testing.assert_allclose(objectives.vae_bound(jnp.asarray(log_w)),
                             log_w.astype(np.float64).mean(axis=0), rtol=1e-6)
  # Jensen: log of the mean weight is at least the mean of the log weights.
  assert np.all(np.asarray(objectives.iwae_bound(jnp.asarray(log_w)))
                >= np.asarray(objectives.vae_bound(jnp.asarray(log_w))))
  # The gradient is the normalised weights, finite however small they are.
  grad = jax.grad(lambda w: jnp.sum(objectives.iwae_bound(w)))(
      jnp.asarray(log_w))
  np.testing.assert_allclose(grad, special.softmax(log_w.astype(np.float64),
                                                   axis=0), atol=1e-6)


def test_one_sample_iwae_equals_one_sample_vae_and_the_elbo_on_average():
  config = tiny_config(**{'model.latent_size': 3})
  dataset = tiny_dataset()
  model, params, hparams = _model(config, dataset)
  hparams = hparams._replace(prior_mean=jnp.float32(0.3),
                             prior_std=jnp.float32(1.4),
                             latent_mask=jnp.array([1.0, 1.0, 0.0]))
  batch = _batch(dataset)
  rng = jax.random.PRNGKey(3)
  iwae_loss, iwae_terms = train.make_loss_fn(
      model, objective='iwae', num_samples=1)(params, batch, hparams, rng)
  vae_loss, vae_terms = train.make_loss_fn(
      model, objective='vae', num_samples=1)(params, batch, hparams, rng)
  np.testing.assert_array_equal(iwae_terms.loss, vae_terms.loss)
  np.testing.assert_allclose(vae_terms.loss,
                             vae_terms.reconstruction + vae_terms.kl,
                             rtol=1e-6)
  # Over many draws the one-sample bound is the closed-form ELBO: the
  # k-sample VAE bound averages k one-sample bounds.
  _, many = train.make_loss_fn(model, objective='vae', num_samples=20_000)(
      params, batch, hparams, rng)
  _, elbo = train.make_loss_fn(model)(params, batch, hparams, rng)
  np.testing.assert_allclose(many.kl, elbo.kl, rtol=0.02, atol=0.01)
  np.testing.assert_allclose(many.reconstruction + many.kl, many.loss,
                             rtol=1e-5)
  # The closed-form ELBO's reconstruction is one draw; compare expectations.
  _, elbo_many = jax.vmap(
      lambda key: train.make_loss_fn(model)(params, batch, hparams, key))(
          jax.random.split(rng, 2000))
  np.testing.assert_allclose(many.loss, elbo_many.loss.mean(axis=0),
                             rtol=0.01)


def test_the_bound_rises_with_k_on_a_trained_model_and_its_gradients_are_finite():
  config = tiny_config(**{'model.latent_size': 2, 'objective': 'iwae',
                          'num_samples': 5})
  config.data.preprocessing = 'dynamic_binarized'
  dataset = tiny_dataset(num_train=256)
  model = models.build_model(config.model, dataset.image_shape)
  state, hparams = _train_iwae(model, config, dataset, num_samples=5)
  batch = _batch(dataset, 64)
  bounds = {}
  for k in (1, 5, 50):
    loss_fn = train.make_loss_fn(model, objective='iwae', num_samples=k)
    # The mean of 200 independent estimates of each bound.
    losses_k = jax.vmap(lambda key: loss_fn(state.params, batch, hparams,
                                            key)[0])(
        jax.random.split(jax.random.PRNGKey(1), 200))
    bounds[k] = -float(jnp.mean(losses_k))
    grads = jax.grad(lambda p: loss_fn(p, batch, hparams,
                                       jax.random.PRNGKey(2))[0])(state.params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert bounds[1] < bounds[5] < bounds[50], bounds


def test_burda_adam_follows_its_formula_with_the_one_step_lag():
  b1, b2, eps, lr = 0.99, 0.999, 1e-4, 1e-3
  rng = np.random.default_rng(0)
  grads = rng.normal(size=(6, 3)) * np.array([1e-3, 1.0, 30.0])
  optimizer = optimizers.burda_adam(lr)
  params = jnp.zeros(3)
  state = optimizer.init(params)
  expected, m, v = np.zeros(3), np.zeros(3), np.ones(3)
  for t, g in enumerate(grads, start=1):
    updates, state = optimizer.update(jnp.asarray(g, jnp.float32), state,
                                      params)
    params = optax.apply_updates(params, updates)
    # The code: theta += alpha_t * m_{t-1} / (sqrt(v_{t-1}) + eps) on the
    # bound (a descent step on its negative), then the moments take g_t.
    alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
    expected = expected - alpha * m / (np.sqrt(v) + eps)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    np.testing.assert_allclose(params, expected, rtol=1e-5, atol=1e-9)
  assert np.any(expected != 0)


def test_burda_adam_through_make_optimizer_takes_the_steps_learning_rate():
  optimizer = optimizers.make_optimizer('burda_adam')
  params = {'w': jnp.zeros(2)}
  state = optimizer.init(params)
  grads = {'w': jnp.array([1.0, -2.0])}
  for learning_rate in (1e-3, 5e-4):
    before = params
    params, state = train.apply_gradients(optimizer, params, state, grads,
                                          jnp.float32(learning_rate))
  # The second step moves by the second rate times the lagged direction.
  t = 2.0
  m = 0.01 * np.array([1.0, -2.0])
  v = 0.999 + 0.001 * np.array([1.0, 4.0])
  step = 5e-4 * np.sqrt(1 - 0.999**t) / (1 - 0.99**t) * m / (np.sqrt(v) + 1e-4)
  np.testing.assert_allclose(before['w'] - params['w'], step, rtol=1e-5)


def test_burda_schedule_stages():
  steps_per_epoch = 2980
  scale = optimizers.learning_rate_scale('burda', steps_per_epoch)
  # The code's rates: 1e-4 * round(10 ** (1 - i / 7), 1).
  rates = [1e-3, 7.2e-4, 5.2e-4, 3.7e-4, 2.7e-4, 1.9e-4, 1.4e-4, 1e-4]
  assert sum(optimizers.BURDA_STAGE_EPOCHS) == 3280
  first_epoch = 0
  for stage, epochs in enumerate(optimizers.BURDA_STAGE_EPOCHS):
    first_step = first_epoch * steps_per_epoch
    last_step = (first_epoch + epochs) * steps_per_epoch - 1
    for step in (first_step, last_step):
      np.testing.assert_allclose(1e-3 * float(scale(step)), rates[stage],
                                 rtol=1e-6)
    first_epoch += epochs
  np.testing.assert_allclose(float(scale(10**8)), 0.1, rtol=1e-6)
  assert float(optimizers.learning_rate_scale('constant', 5)(10**6)) == 1.0
  with pytest.raises(ValueError, match='config.lr_schedule'):
    optimizers.learning_rate_scale('cosine', 5)


def test_scheduled_epochs_use_the_stage_of_the_state_step():
  """An epoch resumed from a checkpoint continues the stage its step is in."""
  config = tiny_config()
  dataset = tiny_dataset(num_train=32)  # 2 steps of 16 per epoch
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer('sgd')
  hparams = train.hyperparams_from_config(config)._replace(
      learning_rate=jnp.float32(0.1))
  data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  staged = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey',
                                          lr_schedule='burda', shuffle=False))
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  # Epochs 2-4 are stage 1 (scale 0.72): the same as a constant rate of 0.072
  # from the same state.
  state, _ = staged(state, hparams, data, jnp.int32(1))
  constant = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey',
                                            shuffle=False))
  after_staged, _ = staged(state, hparams, data, jnp.int32(2))
  after_constant, _ = constant(
      state, hparams._replace(learning_rate=jnp.float32(0.072)), data,
      jnp.int32(2))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                       atol=1e-7),
               after_staged.params, after_constant.params)


def test_unshuffled_epochs_visit_the_images_in_file_order():
  config = tiny_config()
  dataset = tiny_dataset(num_train=40)
  model, optimizer, hparams = (models.build_model(config.model,
                                                  dataset.image_shape),
                               optimizers.make_optimizer('sgd'),
                               train.hyperparams_from_config(config))
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey',
                                         shuffle=False))
  # 40 images, batches of 16: in file order the last 8 are never seen, so
  # changing them changes nothing; shuffled, they are trained on.
  changed = dict(data, images=data['images'].at[32:].set(255))
  a, _ = epoch(state, hparams, data, jnp.int32(1))
  b, _ = epoch(state, hparams, changed, jnp.int32(1))
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
  shuffled = jax.jit(train.make_train_epoch(model, optimizer, 16, 'grey'))
  c, _ = shuffled(state, hparams, data, jnp.int32(1))
  d, _ = shuffled(state, hparams, changed, jnp.int32(1))
  assert any(np.any(x != y) for x, y in zip(jax.tree.leaves(c.params),
                                            jax.tree.leaves(d.params)))


def test_burda_model_shapes_init_and_parameterisation():
  config = burda_iwae.get_config()
  model = models.build_model(config.model, (28, 28))
  images = np.random.default_rng(0).integers(0, 256, (50, 28, 28), np.uint8)
  bias = train.initial_output_bias(config.model, images)
  params = train.init_params(model, jnp.uint32(0), (28, 28), bias)
  shapes = {name: {k: v.shape for k, v in layer.items()}
            for name, layer in params.items()}
  assert shapes['enc_0']['kernel'] == (784, 200)
  assert shapes['enc_1']['kernel'] == (200, 200)
  assert shapes['enc_mean']['kernel'] == (200, 50)
  assert shapes['dec_0']['kernel'] == (50, 200)
  assert shapes['dec_logits']['kernel'] == (200, 784)
  # 784-200-200-(50, 50) and 50-200-200-784, weights and biases.
  assert sum(x.size for x in jax.tree.leaves(params)) == (
      784 * 200 + 200 + 200 * 200 + 200 + 2 * (200 * 50 + 50)
      + 50 * 200 + 200 + 200 * 200 + 200 + 200 * 784 + 784)
  # Glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out)), zero biases.
  kernel = np.asarray(params['enc_0']['kernel'])
  bound = np.sqrt(6 / (784 + 200))
  assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.95 * bound
  assert not np.any(np.asarray(params['enc_0']['bias']))
  # The output bias: logit of each pixel's clipped mean grey level.
  mean = np.clip(images.mean(axis=0).reshape(-1) / 255, 1e-3, 1 - 1e-3)
  np.testing.assert_allclose(params['dec_logits']['bias'],
                             np.log(mean / (1 - mean)), rtol=1e-5)
  black = np.zeros((3, 28, 28), np.uint8)
  np.testing.assert_allclose(train.initial_output_bias(config.model, black),
                             np.log(1e-3 / (1 - 1e-3)), rtol=1e-5)
  # sigma = exp(linear): the posterior's log-variance is twice the head.
  x = jnp.asarray(images[:4].astype(np.float32) / 255)
  posterior = model.apply({'params': params}, x, method=model.encode)
  hidden = x.reshape(4, -1)
  for layer in ('enc_0', 'enc_1'):
    hidden = jnp.tanh(hidden @ params[layer]['kernel'] + params[layer]['bias'])
  head = params['enc_log_variance']
  np.testing.assert_allclose(posterior.log_variance,
                             2 * (hidden @ head['kernel'] + head['bias']),
                             rtol=1e-5, atol=1e-6)


def test_dynamic_binarization_is_fresh_every_epoch_and_fixed_by_the_seed():
  config = tiny_config()
  dataset = tiny_dataset(num_train=32)
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer('sgd')
  hparams = train.hyperparams_from_config(config)
  data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  epoch = jax.jit(train.make_train_epoch(model, optimizer, 16,
                                         'dynamic_binarized', shuffle=False,
                                         objective='vae'))
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  # sgd at rate 0: the loss differs between epochs only through the data's
  # binarisation and the posterior draws, which come from (seed, epoch).
  frozen = hparams._replace(learning_rate=jnp.float32(0.0))
  _, first = epoch(state, frozen, data, jnp.int32(1))
  _, again = epoch(state, frozen, data, jnp.int32(1))
  _, second = epoch(state, frozen, data, jnp.int32(2))
  _, other_seed = epoch(state, frozen._replace(seed=jnp.uint32(9)), data,
                        jnp.int32(1))
  assert float(first['loss']) == float(again['loss'])
  assert float(first['loss']) != float(second['loss'])
  assert float(first['loss']) != float(other_seed['loss'])
  # Each pixel is 1 with probability grey / 255, drawn per batch.
  x = pipeline.to_model_input(jnp.full((20000,), 64, jnp.uint8),
                              'dynamic_binarized', jax.random.PRNGKey(0))
  assert set(np.unique(np.asarray(x))) == {0.0, 1.0}
  assert abs(float(x.mean()) - 64 / 255) < 0.01


@pytest.mark.parametrize('override, message', [
    ({'loss': 'mse'}, 'needs a decoder likelihood'),
    ({'model.variational': False}, 'needs q'),
    ({'num_samples': 0}, 'num_samples'),
    ({'lr_schedule': 'cosine'}, 'lr_schedule'),
    ({'optimizer': 'adamw'}, 'optimizer'),
    ({'model.posterior_scale': 'std'}, 'posterior_scale'),
])
def test_invalid_objective_settings_are_refused(override, message):
  config = tiny_config(**{'objective': 'iwae', 'num_samples': 5, **override})
  with pytest.raises(validation.ConfigError, match=message):
    validation.validate(config)


def test_model_settings_of_mlp_vae_only_are_refused_for_conv_models():
  config = tiny_config(**{'model.name': 'conv_vae',
                          'model.output_bias': 'data_mean'})
  with pytest.raises(validation.ConfigError, match='is for mlp_vae and'):
    validation.validate(config)


def test_burda_config_members():
  config = burda_iwae.get_config()
  validation.validate(config)
  assert [(m['objective'], m['num_samples']) for m in config.sweep] == [
      ('vae', 1), ('iwae', 5)]
  assert config.batch_size == 20 and config.num_epochs == 3280
  assert config.data.train_subset == 59_600 and not config.data.shuffle
  one = burda_iwae.get_config('iwae_k50')
  assert list(one.sweep) == [{'objective': 'iwae', 'num_samples': 50}]
  for rows in ('two_layer', 'iwae_k0', 'elbo_k5', 'vae_kx'):
    with pytest.raises(ValueError, match='Unknown rows'):
      burda_iwae.get_config(rows)


def test_active_units_count_the_posterior_means_that_vary():
  from vae_jax import restore
  from vae_jax.evaluation import registry
  from vae_jax.evaluation.metrics import active_units
  config = tiny_config(**{'model.latent_size': 3})
  dataset = tiny_dataset(num_train=600)
  model, params, hparams = _model(config, dataset)
  # Unit 1's mean is a constant; unit 2 is masked off (a latent-2 member).
  head = params['enc_mean']
  # Units 0 and 2 vary: their weights are scaled up from the initial draw.
  params = dict(params, enc_mean={
      'kernel': (head['kernel'] * 20).at[:, 1].set(0.0),
      'bias': head['bias'].at[1].set(0.3)})
  hparams = hparams._replace(latent_mask=jnp.array([1.0, 1.0, 0.0]))
  member = restore.Member(None, None, config, model, params, hparams, 1)
  got = active_units.evaluate(registry.MemberEvaluation(
      member, lambda: dataset, None, None, registry.Settings()))
  # Reference: the variance of each unit's mean over the first 500 images.
  x = dataset.train_images[:500].astype(np.float32) / 255
  means = np.asarray(model.apply({'params': params}, jnp.asarray(x),
                                 method=model.encode).mean)
  variance = means.var(axis=0)
  assert variance[0] > 0.01 and variance[1] < 1e-9 and variance[2] > 0.01
  assert got == {'active_units': 1}


# ------------------------------------------------------- two stochastic layers
def _two_layer(image_shape=(8, 8)):
  config = tiny_config(**{'model.name': 'two_layer_vae',
                          'model.latent_size': 3,
                          'model.first_latent_size': 4,
                          'model.encoder_widths': (12, 10),
                          'model.inner_widths': (6,),
                          'model.activation': 'tanh',
                          'model.posterior_scale': 'log_std',
                          'objective': 'iwae', 'num_samples': 3})
  model = models.build_model(config.model, image_shape)
  params = train.init_params(model, jnp.uint32(0), image_shape)
  return config, model, params


def _numpy_gaussian_layer(layer, h):
  for i in range(len([k for k in layer if k.startswith('hidden_')])):
    h = np.tanh(h @ layer[f'hidden_{i}']['kernel'] + layer[f'hidden_{i}']['bias'])
  mean = h @ layer['mean']['kernel'] + layer['mean']['bias']
  log_std = h @ layer['scale']['kernel'] + layer['scale']['bias']
  return mean, log_std


def test_two_layer_log_weights_against_scipy_densities():
  from scipy import stats
  config, model, params = _two_layer()
  params = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
  images = (tiny_dataset().test_images[:5] > 100).astype(np.float32)
  keys = jax.random.split(jax.random.PRNGKey(4), 3)
  log_w, recon, kl = model.apply(
      {'params': jax.tree.map(jnp.float32, params)}, jnp.asarray(images),
      keys, 0.2, 1.3, 1.0, method=model.log_importance_weights)
  # The same noise, drawn as the model draws it: key s -> (h1 key, h2 key).
  x = images.reshape(5, -1).astype(np.float64)
  q1_mean, q1_log_std = _numpy_gaussian_layer(params['q_h1'], x)
  for s, key in enumerate(keys):
    k1, k2 = jax.random.split(key)
    h1 = q1_mean + np.exp(q1_log_std) * np.asarray(
        jax.random.normal(k1, q1_mean.shape))
    q2_mean, q2_log_std = _numpy_gaussian_layer(params['q_h2'], h1)
    h2 = q2_mean + np.exp(q2_log_std) * np.asarray(
        jax.random.normal(k2, q2_mean.shape))
    p1_mean, p1_log_std = _numpy_gaussian_layer(params['p_h1'], h2)
    h = h1
    for i in range(2):
      h = np.tanh(h @ params[f'dec_{i}']['kernel'] + params[f'dec_{i}']['bias'])
    logits = h @ params['dec_logits']['kernel'] + params['dec_logits']['bias']
    log_px = np.sum(x * -np.logaddexp(0, -logits)
                    + (1 - x) * -np.logaddexp(0, logits), axis=1)
    expected_kl = (
        stats.norm.logpdf(h1, q1_mean, np.exp(q1_log_std)).sum(1)
        + stats.norm.logpdf(h2, q2_mean, np.exp(q2_log_std)).sum(1)
        - stats.norm.logpdf(h1, p1_mean, np.exp(p1_log_std)).sum(1)
        - stats.norm.logpdf(h2, 0.2, 1.3).sum(1))
    np.testing.assert_allclose(recon[s], -log_px, rtol=1e-4)
    np.testing.assert_allclose(kl[s], expected_kl, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(log_w[s], log_px - expected_kl, rtol=1e-4,
                               atol=1e-3)


def test_two_layer_model_trains_and_its_bound_rises_with_k():
  config, model, _ = _two_layer()
  dataset = tiny_dataset(num_train=256)
  state, hparams = _train_iwae(model, config, dataset, num_samples=3)
  batch = _batch(dataset, 64)
  bounds = {}
  for k in (1, 5, 50):
    loss_fn = train.make_loss_fn(model, objective='iwae', num_samples=k)
    estimates = jax.vmap(lambda key: loss_fn(state.params, batch, hparams,
                                             key)[0])(
        jax.random.split(jax.random.PRNGKey(1), 100))
    bounds[k] = -float(jnp.mean(estimates))
  assert bounds[1] < bounds[5] < bounds[50], bounds
  # The evaluation's k-sample estimate is the same bound.
  from vae_jax.evaluation import likelihood
  log_px = likelihood.iwae_log_likelihood(
      model, state.params, hparams, dataset.test_images[:20],
      jnp.zeros(20, jnp.int32), jax.random.PRNGKey(0), num_samples=500,
      chunk_size=100, preprocessing='dynamic_binarized')
  assert np.all(np.isfinite(np.asarray(log_px)))
  assert -float(np.mean(log_px)) < -bounds[50] + 5.0


def test_burda_two_layer_model_has_the_papers_shapes():
  config = burda_iwae.get_config('iwae_k5_two_layer')
  member = dict(config.sweep[0])
  assert member == {'objective': 'iwae', 'num_samples': 5,
                    'model.name': 'two_layer_vae'}
  config.model.name = 'two_layer_vae'
  validation.validate(config)
  assert train.count_params(config.model, (28, 28)) == (
      # q(h1|x): 784-200-200-(100, 100); q(h2|h1): 100-100-100-(50, 50)
      784 * 200 + 200 + 200 * 200 + 200 + 2 * (200 * 100 + 100)
      + 100 * 100 + 100 + 100 * 100 + 100 + 2 * (100 * 50 + 50)
      # p(h1|h2): 50-100-100-(100, 100); p(x|h1): 100-200-200-784
      + 50 * 100 + 100 + 100 * 100 + 100 + 2 * (100 * 100 + 100)
      + 100 * 200 + 200 + 200 * 200 + 200 + 200 * 784 + 784)
  config.objective = 'elbo'
  with pytest.raises(validation.ConfigError, match='k-sample bound'):
    validation.validate(config)


def test_a_sweep_of_both_models_trains_draws_and_evaluates(tmp_path):
  from vae_jax import sweep
  from vae_jax.evaluation import evaluate
  from vae_jax.evaluation import registry
  config, _, _ = _two_layer()
  config.plots = True
  config.sweep = [{'objective': 'iwae', 'num_samples': 3},
                  {'objective': 'vae', 'num_samples': 2,
                   'model.name': 'mlp_vae'}]
  dataset = tiny_dataset(side=28)
  sweep.run_sweep(config, tmp_path, dataset=dataset)
  results = evaluate.evaluate_workdir(
      tmp_path, ['iwae', 'active_units'],
      settings=registry.Settings(iwae_samples=10, iwae_batch=20),
      dataset=dataset)
  assert [r['settings'].get('model.name') for r in results] == [
      None, 'mlp_vae']
  assert all(np.isfinite(r['iwae_nll']) and r['active_units'] >= 0
             for r in results)
  assert (tmp_path / 'member_000' / 'samples.png').stat().st_size > 0
