"""Train state, the pure train step, a compiled epoch, evaluation.

Reads top to bottom: hyperparameters as arrays, optimiser, state, one step,
one epoch (a `lax.scan` over batches of the on-device uint8 data, shuffled
inside the program from (seed, epoch)), evaluation. vae_jax.driver runs
them epoch by epoch (`train_and_evaluate`).

Everything a sweep varies is in `Hyperparams` (arrays), so
`jax.vmap(make_train_epoch(...), in_axes=(0, 0, None, None))` trains a stack of
configurations as one program.

A model with BatchNorm (vae_jax.models.cnn_bn) has a second collection of
variables besides its parameters, 'batch_stats' (the running averages):
`TrainState.batch_stats` carries it ({} for every other model), the train
step normalises with each batch's statistics and returns the updated
averages, and everything that evaluates a model (make_evaluate,
make_reconstruct, the figures, the metrics) takes them as `batch_stats` and
normalises with them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from vae_jax import config_fields
from vae_jax.data import pipeline
from vae_jax import models
from vae_jax.models.classifier import FEATURE_LAYERS
from vae_jax import objectives
from vae_jax import optimizers

log = logging.getLogger(__name__)


# ----------------------------------------------------------------- hyperparameters
class Hyperparams(NamedTuple):
  """Per-run values a sweep may vary; each is an array (scalar unless noted)."""

  beta: jax.Array  # float32 [], weight of the KL term
  prior_mean: jax.Array  # float32 [], m of the prior N(m, s^2)
  prior_std: jax.Array  # float32 [], s of the prior
  learning_rate: jax.Array  # float32 []
  latent_mask: jax.Array  # float32 [latent], 1 for used dimensions
  seed: jax.Array  # uint32 [], source of every random number of the run


def hyperparams_from_config(config: ml_collections.ConfigDict,
                            latent_capacity: int | None = None) -> Hyperparams:
  """The config's swept values as arrays.

  latent_capacity: latent size of the model actually built (a sweep builds
  its largest); the mask switches on the first config.model.latent_size
  dimensions of it.
  """
  latent_size = config.model.latent_size
  latent_capacity = latent_capacity or latent_size
  if latent_size > latent_capacity:
    raise ValueError(f'latent_size {latent_size} exceeds the model\'s '
                     f'{latent_capacity} dimensions.')
  return Hyperparams(
      beta=jnp.float32(config.beta),
      prior_mean=jnp.float32(config.prior_mean),
      prior_std=jnp.float32(config.prior_std),
      learning_rate=jnp.float32(config.learning_rate),
      latent_mask=(jnp.arange(latent_capacity) < latent_size).astype(
          jnp.float32),
      seed=jnp.uint32(config.seed),
  )


def _run_key(seed: jax.Array, purpose: int) -> jax.Array:
  # One stream per purpose (0 init, 1 train epochs, 2 evaluation), all from
  # the seed, so that resuming at any epoch redraws the same numbers.
  return jax.random.fold_in(jax.random.PRNGKey(seed), purpose)


# ----------------------------------------------------------------------- optimiser
def apply_gradients(optimizer: optax.GradientTransformation, params,
                    opt_state, grads, learning_rate: jax.Array):
  """One update of `make_optimizer`'s optimiser -> (params, opt_state).

  learning_rate: float32 [], an array (so vmap gives each sweep member its
  own); it replaces the rate held in opt_state's injected hyperparameters.
  """
  hyperparams = dict(opt_state.hyperparams, learning_rate=learning_rate)
  updates, opt_state = optimizer.update(
      grads, opt_state._replace(hyperparams=hyperparams), params)
  return optax.apply_updates(params, updates), opt_state


# --------------------------------------------------------------------------- state
class TrainState(struct.PyTreeNode):
  step: jax.Array  # int32 [], optimiser steps taken
  params: Any
  opt_state: Any
  # The model's BatchNorm running averages (its 'batch_stats' collection);
  # {} for a model without BatchNorm. Not trained by the optimiser.
  batch_stats: Any = struct.field(default_factory=dict)


def model_variables(params, batch_stats=None) -> dict:
  """What model.apply takes: {'params': params}, with a BatchNorm model's
  running averages under 'batch_stats' (None or {}: a model without)."""
  if batch_stats:
    return {'params': params, 'batch_stats': batch_stats}
  return {'params': params}


def apply_model(model, params, batch_stats, *args, method, train: bool):
  """model.apply(..., method=method) -> (output, batch_stats after it).

  train: a BatchNorm model normalises with the batch's statistics and
  updates its running averages (the collection applied mutable); otherwise,
  and for models without batch_stats, the averages are used and returned
  as they came.
  """
  variables = model_variables(params, batch_stats)
  if train and batch_stats:
    output, updates = model.apply(variables, *args, method=method,
                                  mutable=['batch_stats'])
    return output, updates['batch_stats']
  return model.apply(variables, *args, method=method), batch_stats


def count_params(model_config: ml_collections.ConfigDict,
                 image_shape: tuple[int, int]) -> int:
  """Parameters of the model a config builds (shapes only; nothing runs)."""
  model = models.build_model(model_config, image_shape)
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0),
                         jnp.zeros((1, *image_shape), jnp.float32),
                         jnp.zeros((1,), jnp.int32)))
  return int(sum(x.size for x in jax.tree.leaves(shapes['params'])))


def init_variables(model, seed: jax.Array, image_shape: tuple[int, int],
                   output_bias: jax.Array | None = None) -> dict:
  """The model's initial variables drawn from a run's seed (uint32 [];
  pure: vmappable over seeds): {'params': ...}, and for a model with
  BatchNorm 'batch_stats' (its starting running averages).

  output_bias: if given ([H * W], see `initial_output_bias`), the decoder's
  output-layer bias starts at it instead of the init scheme's.
  """
  dummy = jnp.zeros((1, *image_shape), jnp.float32)
  variables = dict(model.init(_run_key(seed, 0), dummy,
                              jnp.zeros((1,), jnp.int32)))
  if output_bias is not None:
    params = variables['params']
    variables['params'] = dict(params, dec_logits=dict(
        params['dec_logits'], bias=jnp.asarray(output_bias)))
  return variables


def init_params(model, seed: jax.Array, image_shape: tuple[int, int],
                output_bias: jax.Array | None = None):
  """The 'params' of init_variables (the trained parameters)."""
  return init_variables(model, seed, image_shape, output_bias)['params']


# Burda et al.'s code clips the mean pixel to [0.001, 0.999] before the logit.
_OUTPUT_BIAS_CLIP = 1e-3


def initial_output_bias(model_config: ml_collections.ConfigDict,
                        train_images: np.ndarray) -> np.ndarray | None:
  """The decoder's starting output bias config.model.output_bias asks for.

  'init': None (the init scheme's). 'data_mean': logit of each pixel's mean
  grey level over the training images, the mean clipped to [0.001, 0.999]:
  the decoder then starts at the data's mean image (Burda et al., 2016).

  Args:
    train_images: uint8 [N, H, W].

  Returns:
    float32 [H * W], or None.
  """
  if model_config.output_bias == 'init':
    return None
  mean = np.mean(train_images, axis=0, dtype=np.float64) / 255.0
  mean = np.clip(mean, _OUTPUT_BIAS_CLIP, 1.0 - _OUTPUT_BIAS_CLIP)
  return np.log(mean / (1.0 - mean)).reshape(-1).astype(np.float32)


def state_from_params(params, optimizer: optax.GradientTransformation,
                      batch_stats=None) -> TrainState:
  """Step 0 with fresh optimiser state; batch_stats: a BatchNorm model's
  starting running averages (None: a model without)."""
  # The learning rate in opt_state is a placeholder until the first step
  # sets hparams.learning_rate (sharing that buffer would break donation).
  return TrainState(step=jnp.int32(0), params=params,
                    opt_state=optimizer.init(params),
                    batch_stats=batch_stats if batch_stats else {})


def create_train_state(model, optimizer: optax.GradientTransformation,
                       hparams: Hyperparams, image_shape: tuple[int, int],
                       output_bias: jax.Array | None = None) -> TrainState:
  """Initialises the variables from hparams.seed (pure: vmappable over
  seeds); output_bias as for init_variables."""
  variables = init_variables(model, hparams.seed, image_shape, output_bias)
  return state_from_params(variables['params'], optimizer,
                           variables.get('batch_stats'))


# ---------------------------------------------------------------------------- step
def importance_sampled_terms(model, variables, images: jax.Array,
                             labels: jax.Array,
                             posterior: objectives.GaussianPosterior | None,
                             hparams: Hyperparams, sample_keys: jax.Array,
                             reconstruction_fn: Callable,
                             beta: jax.Array | float = 1.0):
  """One z ~ q(z|x) per key and image, decoded in one batch.

  A model with several stochastic layers computes its weights itself
  (its `log_importance_weights`, e.g. TwoStochasticLayerVAE).

  Args:
    model, variables: the VAE and model_variables(params, batch_stats).
    images: model input [B, H, W]; labels: int32 [B].
    posterior: q(z|x) of the images, each [B, latent] (None: encoded here).
    hparams: the prior and latent_mask (masked dimensions enter neither
      density).
    sample_keys: PRNG keys [S]; key s draws z_s for every image
      (objectives.sample_posterior).
    reconstruction_fn: per-image -log p(x|z), (logits, images) -> [B].
    beta: weight of the sampled KL in log w (1: the bound on log p(x)).

  Returns:
    (log w [S, B], reconstruction [S, B], sampled KL [S, B]).
  """
  if hasattr(model, 'log_importance_weights'):
    return model.apply(variables, images, sample_keys, hparams.prior_mean,
                       hparams.prior_std, beta,
                       method=model.log_importance_weights)
  if posterior is None:
    posterior = model.apply(variables, images, labels, method=model.encode)
  z = jax.vmap(objectives.sample_posterior, in_axes=(0, None, None))(
      sample_keys, posterior, hparams.latent_mask)  # [S, B, latent]
  num_samples, batch = z.shape[:2]
  logits = model.apply(variables, z.reshape(num_samples * batch, -1),
                       jnp.tile(labels, num_samples), method=model.decode)
  targets = jnp.broadcast_to(images, (num_samples, *images.shape))
  reconstruction = reconstruction_fn(
      logits, targets.reshape(logits.shape)).reshape(num_samples, batch)
  log_weights, sampled_kl = objectives.log_importance_weights(
      -reconstruction, z, posterior, hparams.prior_mean, hparams.prior_std,
      hparams.latent_mask, beta)
  return log_weights, reconstruction, sampled_kl


def make_loss_fn(model, loss: str | Callable = 'bce', decode_mean: bool = False,
                 objective: str = 'elbo', num_samples: int = 1):
  """Returns loss_fn(params, batch, hparams, rng, batch_stats=None) ->
  (mean loss, ElboTerms [B]).

  batch: {'images': float32 [B, H, W] in [0, 1], 'labels': int32 [B]}; the
  labels reach the model (conditional models use them, others ignore them).
  loss: the reconstruction term: a name of objectives.loss_names(),
    or a per-image function (logits [B, H, W], images [B, H, W]) -> [B] such
    as `reconstruction_loss_for(config)` builds for the perceptual losses.
  A model with `variational=False` (a plain autoencoder) decodes the
  posterior mean and has no KL term.
  decode_mean: decode the posterior mean instead of a sample (the KL term
    stays; the reconstruction is then not the ELBO's, and rng is unused).
  objective: 'elbo' (one sample, closed-form KL) or a k-sample bound of
    objectives.get_bound ('vae', 'iwae', ...) over num_samples draws, the
    loss being minus the bound and the terms' reconstruction and KL the
    means over the draws (the KL sampled). decode_mean uses the 'elbo'.
  batch_stats: a BatchNorm model's running averages, which it normalises
    with (evaluation mode; make_train_step trains with the batch's own
    statistics).
  """
  loss_fn = _make_loss_fn(model, loss, decode_mean, objective, num_samples,
                          train=False)

  def evaluation_loss_fn(params, batch, hparams: Hyperparams, rng,
                         batch_stats=None):
    mean_loss, (terms, _) = loss_fn(params, batch_stats, batch, hparams, rng)
    return mean_loss, terms

  return evaluation_loss_fn


def _make_loss_fn(model, loss, decode_mean: bool, objective: str,
                  num_samples: int, train: bool):
  """make_loss_fn's loss as loss_fn(params, batch_stats, batch, hparams,
  rng) -> (mean loss, (ElboTerms [B], batch_stats after it)).

  train: a BatchNorm model normalises with each batch's statistics and
  updates its running averages (apply_model); the k-sample bounds decode
  the samples with the averages, so its BatchNorm belongs in the encoder.
  """
  reconstruction_fn = loss if callable(loss) else objectives.reconstruction_loss(
      loss)
  variational = getattr(model, 'variational', True)
  sample = variational and not decode_mean
  bound = (None if objective == 'elbo'
           else objectives.get_bound(objective).bound)  # a bad name fails here
  if not sample:
    bound = None

  def loss_fn(params, batch_stats, batch, hparams: Hyperparams, rng):
    images, labels = batch['images'], batch['labels']
    if bound is not None:
      posterior = None
      if batch_stats:  # encoded here, so that training updates the averages
        posterior, batch_stats = apply_model(
            model, params, batch_stats, images, labels, method=model.encode,
            train=train)
      log_weights, reconstruction, sampled_kl = importance_sampled_terms(
          model, model_variables(params, batch_stats), images, labels,
          posterior, hparams, jax.random.split(rng, num_samples),
          reconstruction_fn, hparams.beta)
      terms = objectives.ElboTerms(jnp.mean(reconstruction, axis=0),
                                   jnp.mean(sampled_kl, axis=0),
                                   -bound(log_weights))
      return jnp.mean(terms.loss), (terms, batch_stats)
    posterior, batch_stats = apply_model(model, params, batch_stats, images,
                                         labels, method=model.encode,
                                         train=train)
    if sample:
      z = objectives.sample_posterior(rng, posterior, hparams.latent_mask)
    else:
      z = posterior.mean * hparams.latent_mask
    logits, batch_stats = apply_model(model, params, batch_stats, z, labels,
                                      method=model.decode, train=train)
    reconstruction = reconstruction_fn(logits, images)
    if variational:
      terms = objectives.negative_elbo(
          reconstruction, posterior, hparams.beta, hparams.prior_mean,
          hparams.prior_std, hparams.latent_mask)
    else:
      terms = objectives.ElboTerms(reconstruction, jnp.zeros_like(reconstruction),
                                   reconstruction)
    return jnp.mean(terms.loss), (terms, batch_stats)

  return loss_fn


def reconstruction_loss_for(config: ml_collections.ConfigDict):
  """config.loss as a per-image function; the perceptual losses load the
  classifier from config.perceptual.classifier_dir (hash-verified)."""
  if config.loss not in objectives.PERCEPTUAL_LOSSES:
    return objectives.reconstruction_loss(config.loss)
  # Imported here: vae_jax.classifier builds on this module.
  from vae_jax import classifier as classifier_lib
  if not config.perceptual.classifier_dir:
    raise classifier_lib.ClassifierError(
        f'config.loss={config.loss!r} needs a trained MNIST classifier: pass '
        '--classifier_dir=DIR (config.perceptual.classifier_dir) of one that '
        '`python -m launch.train_classifier --workdir=DIR --data_dir=...` '
        'trained (about 10 minutes on 2 CPU cores).')
  classifier_model, classifier_params, _ = classifier_lib.load_classifier(
      config.perceptual.classifier_dir)
  layers = tuple(config.perceptual.layers)
  unknown = sorted(set(layers) - set(FEATURE_LAYERS))
  if unknown:
    raise ValueError(f'config.perceptual.layers names unknown layers {unknown};'
                     f' choose from {FEATURE_LAYERS}.')

  def feature_fn(images):
    features = classifier_model.apply({'params': classifier_params}, images,
                                      layers, method=classifier_model.features)
    return [features[name] for name in layers]

  return objectives.reconstruction_loss(config.loss, feature_fn,
                                        config.perceptual.weight)


def objective_options(config: ml_collections.ConfigDict) -> dict:
  """config's objective as make_loss_fn's / make_evaluate's keywords."""
  return {'objective': config.objective, 'num_samples': config.num_samples}


def epoch_options(config: ml_collections.ConfigDict) -> dict:
  """config's training-loop settings as make_train_epoch's keywords."""
  return {**objective_options(config), 'lr_schedule': config.lr_schedule,
          'shuffle': config.data.shuffle}


def _mean_terms(terms: objectives.ElboTerms) -> dict[str, jax.Array]:
  return {'recon': jnp.mean(terms.reconstruction), 'kl': jnp.mean(terms.kl),
          'loss': jnp.mean(terms.loss)}


def make_train_step(model, optimizer: optax.GradientTransformation,
                    loss: str | Callable = 'bce', objective: str = 'elbo',
                    num_samples: int = 1,
                    learning_rate_scale: optax.Schedule | None = None):
  """Returns the pure step (state, batch, hparams, rng) -> (state, metrics).

  batch as for make_loss_fn; metrics: batch means of 'recon', 'kl', 'loss'.
  objective, num_samples: as for make_loss_fn.
  learning_rate_scale: step count -> factor of hparams.learning_rate
    (optimizers.learning_rate_scale); None: a constant rate.
  A BatchNorm model normalises with the batch's statistics, and the step
  moves state.batch_stats (the running averages) as the model's BatchNorm
  says; the gradient does not reach them.
  """
  loss_fn = _make_loss_fn(model, loss, False, objective, num_samples,
                          train=True)

  def train_step(state: TrainState, batch, hparams: Hyperparams, rng):
    grads, (terms, batch_stats) = jax.grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, batch, hparams, rng)
    learning_rate = hparams.learning_rate
    if learning_rate_scale is not None:
      learning_rate = learning_rate * learning_rate_scale(state.step)
    params, opt_state = apply_gradients(optimizer, state.params,
                                        state.opt_state, grads, learning_rate)
    new_state = state.replace(step=state.step + 1, params=params,
                              opt_state=opt_state, batch_stats=batch_stats)
    return new_state, _mean_terms(terms)

  return train_step


# --------------------------------------------------------------------------- epoch
def make_train_epoch(model, optimizer, batch_size: int, preprocessing: str,
                     loss: str | Callable = 'bce', unroll: int = 1, *,
                     objective: str = 'elbo', num_samples: int = 1,
                     lr_schedule: str = 'constant', shuffle: bool = True):
  """Returns train_epoch(state, hparams, data, epoch) -> (state, metrics).

  data: {'images': uint8 [N, H, W], 'labels': int32 [N]} on the device (see
  `device_data`); epoch: int32 []. The epoch's shuffle
  is a permutation drawn from (hparams.seed, epoch); the N % batch_size
  images left over by it are skipped this epoch (a different set each epoch).
  shuffle=False keeps the data's order every epoch (Burda et al.'s code), so
  the same N % batch_size images at the end are never trained on.
  metrics: per-image means of 'recon', 'kl', 'loss' over the epoch.
  unroll: training steps per iteration of the epoch's loop (jax.lax.scan's
  unroll), a speed setting (config.scan_unroll): the steps are the same.
  objective, num_samples: as for make_loss_fn.
  lr_schedule: a name of optimizers.SCHEDULES; its stages count epochs of
  N // batch_size steps.
  """
  if preprocessing not in config_fields.PREPROCESSING_MODES:
    raise ValueError(f'Unknown preprocessing {preprocessing!r}; choose one of '
                     f'{config_fields.PREPROCESSING_MODES}.')
  if not isinstance(unroll, int) or unroll < 1:
    raise ValueError(f'config.scan_unroll={unroll!r}: give a whole number of '
                     'training steps per loop iteration, 1 or more.')
  optimizers.learning_rate_scale(lr_schedule, 1)  # a bad name fails here

  def train_epoch(state: TrainState, hparams: Hyperparams, data: dict,
                  epoch: jax.Array):
    num_images = data['images'].shape[0]
    num_steps = num_images // batch_size
    if num_steps == 0:
      raise ValueError(f'{num_images} training images are fewer than one '
                       f'batch of {batch_size}; lower config.batch_size.')
    train_step = make_train_step(
        model, optimizer, loss, objective, num_samples,
        None if lr_schedule == 'constant'
        else optimizers.learning_rate_scale(lr_schedule, num_steps))
    epoch_key = jax.random.fold_in(_run_key(hparams.seed, 1), epoch)
    shuffle_key, steps_key = jax.random.split(epoch_key)
    order = (jax.random.permutation(shuffle_key, num_images) if shuffle
             else jnp.arange(num_images))
    batches = order[:num_steps * batch_size].reshape(num_steps, batch_size)

    # Batches are gathered (and rescaled) as rows of H * W pixels: XLA CPU
    # copies whole rows faster than [H, W] slices (docs/cpu_kernels.md).
    image_rows = data['images'].reshape(num_images, -1)
    image_shape = data['images'].shape[1:]

    def body(state, inputs):
      batch_indices, (binarize_key, sample_key) = inputs
      images = pipeline.to_model_input(image_rows[batch_indices],
                                       preprocessing, binarize_key)
      batch = {'images': images.reshape(batch_size, *image_shape),
               'labels': data['labels'][batch_indices]}
      return train_step(state, batch, hparams, sample_key)

    # Every step's keys in one split: a split inside the step is a threefry
    # loop of small kernels per step on CPU.
    step_keys = jax.random.split(steps_key, (num_steps, 2))
    state, metrics = jax.lax.scan(
        body, state, (batches, (step_keys[:, 0], step_keys[:, 1])),
        unroll=unroll)
    return state, jax.tree.map(jnp.mean, metrics)

  return train_epoch


def _scan_evaluation_batches(loss_fn, batch_size: int, preprocessing: str,
                             params, hparams: Hyperparams, data: dict,
                             carry, update: Callable, batch_stats=None):
  """Runs loss_fn over `data` in batches of batch_size, the last padded
  (a BatchNorm model normalising with its running averages, batch_stats).

  Each batch has its own key from the seed's evaluation stream, split into
  the binarisation key and the posterior sample's, so the same images in
  the same batches draw the same numbers in every epoch and every caller.
  update(carry, terms, weights) -> (carry, output): terms the batch's
  ElboTerms [batch_size], weights [batch_size] 1 for images, 0 for padding.
  Returns lax.scan's (carry, outputs stacked over the batches).
  """
  num_images = data['images'].shape[0]
  num_batches = -(-num_images // batch_size)
  padding = num_batches * batch_size - num_images
  batched = jax.tree.map(
      lambda a: jnp.pad(a, [(0, padding)] + [(0, 0)] * (a.ndim - 1)).reshape(
          num_batches, batch_size, *a.shape[1:]), data)
  weights = (jnp.arange(num_batches * batch_size) < num_images).astype(
      jnp.float32)
  keys = jax.random.split(_run_key(hparams.seed, 2), num_batches)

  def body(carry, inputs):
    batch, batch_weights, key = inputs
    binarize_key, sample_key = jax.random.split(key)
    images = pipeline.to_model_input(batch['images'], preprocessing,
                                     binarize_key)
    _, terms = loss_fn(params, dict(batch, images=images), hparams,
                       sample_key, batch_stats)
    return update(carry, terms, batch_weights)

  return jax.lax.scan(
      body, carry, (batched, weights.reshape(num_batches, batch_size), keys))


def make_evaluate(model, batch_size: int, preprocessing: str,
                  loss: str | Callable = 'bce', decode_mean: bool = False, *,
                  objective: str = 'elbo', num_samples: int = 1):
  """Returns evaluate(params, hparams, data, batch_stats=None) -> per-image
  mean metrics (batch_stats: a BatchNorm model's running averages, which it
  normalises with).

  objective, num_samples: as for make_loss_fn (the test loss is minus the
  trained bound).

  data: {'images': uint8 [N, H, W], 'labels': int32 [N]}.

  Every image counts once: the last batch is padded and the padding masked.
  One posterior sample per image, from a fixed key, so epochs compare
  (decode_mean: the posterior mean instead, as in make_loss_fn).
  `make_evaluate_terms` gives the same numbers image by image.
  """
  loss_fn = make_loss_fn(model, loss, decode_mean, objective, num_samples)

  def evaluate(params, hparams: Hyperparams, data: dict, batch_stats=None):
    def add(totals, terms, weights):
      sums = {'recon': terms.reconstruction, 'kl': terms.kl,
              'loss': terms.loss}
      return jax.tree.map(lambda t, v: t + jnp.sum(v * weights), totals,
                          sums), None

    zeros = {'recon': jnp.float32(0), 'kl': jnp.float32(0),
             'loss': jnp.float32(0)}
    totals, _ = _scan_evaluation_batches(loss_fn, batch_size, preprocessing,
                                         params, hparams, data, zeros, add,
                                         batch_stats)
    return jax.tree.map(lambda t: t / data['images'].shape[0], totals)

  return evaluate


def make_evaluate_terms(model, batch_size: int, preprocessing: str,
                        loss: str | Callable = 'bce', *,
                        objective: str = 'elbo', num_samples: int = 1):
  """Returns terms(params, hparams, data) -> objectives.ElboTerms, each [N].

  Each image's terms as `make_evaluate` (same arguments) averages them: the
  same batches and random draws, so their means over a run's test set are
  its test metrics.

  data: {'images': [N, H, W] uint8 grey levels or floats in [0, 1],
  'labels': int32 [N]}.
  """
  loss_fn = make_loss_fn(model, loss, False, objective, num_samples)

  def terms(params, hparams: Hyperparams, data: dict,
            batch_stats=None) -> objectives.ElboTerms:
    _, per_batch = _scan_evaluation_batches(
        loss_fn, batch_size, preprocessing, params, hparams, data, None,
        lambda carry, batch_terms, weights: (carry, batch_terms), batch_stats)
    num_images = data['images'].shape[0]
    return jax.tree.map(lambda t: t.reshape(-1)[:num_images], per_batch)

  return terms


def make_reconstruct(model):
  """Returns reconstruct(params, hparams, images, labels, batch_stats=None)
  -> [B, H, W] in [0, 1].

  images: float32 [B, H, W] in [0, 1]; decodes the posterior mean (masked).
  batch_stats: a BatchNorm model's running averages.
  """
  def reconstruct(params, hparams: Hyperparams, images, labels,
                  batch_stats=None):
    variables = model_variables(params, batch_stats)
    posterior = model.apply(variables, images, labels, method=model.encode)
    z = posterior.mean * hparams.latent_mask
    return jax.nn.sigmoid(model.apply(variables, z, labels, method=model.decode))

  return reconstruct
