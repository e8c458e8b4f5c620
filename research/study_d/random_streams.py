r"""vae_jax's numerics fed PyTorch's or JAX's random numbers, one stream at a time.

At Study D's full budget (latent 2, 300 epochs) vae_jax's seeds 0-3 landed
about a nat above its PyTorch twin's although the two compute the same steps
(see tests/test_benchmark.py::test_jax_training_steps_follow_the_pytorch_twin).
This trains S seeds of Study D's MLP as one vmapped JAX program whose three
random streams each come from either framework, to tell which of them moves
the result (results/study_d.md: the initial weights of those four seeds):

  init   the initial weights: torch.manual_seed(seed) and the twin's
         constructor, or vae_jax's init_params(seed);
  order  each epoch's shuffle: torch.randperm with a generator seeded by the
         seed (as the benchmark's PyTorch loop), or jax.random.permutation;
  noise  the posterior samples: torch.randn, or vae_jax's
         standard_normal_per_latent, or (with torch init and order) 'twin':
         the very numbers the twin of that seed draws, so that every random
         input equals the twin's and only the arithmetic differs.

  python -m research.study_d.random_streams --data_dir=../shared/data --latent_size=2 \
      --epochs=300 --seeds=4 --streams=torch,torch,torch

prints each seed's test loss (one fixed noise draw for every evaluation) at
the --report_every epochs. The JAX streams here are split from one key per
seed, not derived as vae_jax.train does; they are draws of the same
distributions. The 'torch' noise comes from one generator seeded 12345
whatever --first_seed is, so member i of every run sees the same noise
(the results in study_d.md were made so); 'twin' draws each seed's own.

With --numerics=torch it trains the PyTorch twin itself instead, seed after
seed, as the benchmark's quality mode does (its own random numbers), so the
twin's side of that comparison can be extended to more seeds alone:

  python -m research.study_d.random_streams --data_dir=../shared/data --latent_size=2 \
      --epochs=300 --seeds=4 --first_seed=4 --numerics=torch
"""

import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from configs import study_d
from launch import common
from vae_jax import data as data_lib
from vae_jax import models
from vae_jax import objectives
from vae_jax import optimizers
from vae_jax import train

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'Directory holding MNIST.',
                    required=True)
flags.DEFINE_integer('latent_size', 2, "Study D's latent size.")
flags.DEFINE_float('beta', 1.0, "Weight of the KL term (Study D's beta rows: "
                   '0.1, 0.5, 2, 10 at latent 64).')
flags.DEFINE_integer('epochs', 300, 'Epochs to train.')
flags.DEFINE_integer('report_every', 50, 'Print the test losses every N epochs.')
flags.DEFINE_integer('seeds', 4, 'How many seeds, trained as one program.')
flags.DEFINE_integer('first_seed', 0, 'The seeds are first_seed, first_seed + 1, ...')
flags.DEFINE_list('streams', ['torch', 'torch', 'torch'],
                  'Sources of the init, order and noise streams: each torch '
                  'or jax; the noise also twin (the twin\'s own draws).')
flags.DEFINE_enum('numerics', 'vae_jax', ['vae_jax', 'torch'],
                  "Whose steps: vae_jax's, fed the --streams, or the PyTorch "
                  'twin itself, trained one seed after another as '
                  'benchmarks.run --mode=quality trains it (with its own '
                  'random numbers: the twin of seed s draws from '
                  'torch.manual_seed(s); needs --streams=torch,torch,torch).')

SOURCES = ('torch', 'jax')
# 'twin': exactly the noise the PyTorch twin of each seed draws.
NOISE_SOURCES = (*SOURCES, 'twin')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if (len(FLAGS.streams) != 3 or set(FLAGS.streams[:2]) - set(SOURCES)
      or FLAGS.streams[2] not in NOISE_SOURCES):
    raise app.UsageError(f'--streams={",".join(FLAGS.streams)}: give three '
                         f'sources: init and order each one of {SOURCES}, '
                         f'noise one of {NOISE_SOURCES}.')
  if FLAGS.streams[2] == 'twin' and FLAGS.streams[:2] != ['torch', 'torch']:
    raise app.UsageError(
        "--streams=...,twin replays the twin's own noise, which follows its "
        'initialisation: give --streams=torch,torch,twin.')
  if FLAGS.numerics == 'torch' and set(FLAGS.streams) != {'torch'}:
    raise app.UsageError(
        f'--numerics=torch trains the twin with its own random numbers; '
        f'--streams={",".join(FLAGS.streams)} cannot change them (give '
        '--streams=torch,torch,torch).')
  import torch
  from benchmarks import torch_reference
  common.setup_logging()
  init_source, order_source, noise_source = FLAGS.streams
  latent, seeds = FLAGS.latent_size, FLAGS.seeds
  torch.set_num_threads(common.usable_cpus())
  dataset = data_lib.load_dataset('mnist', FLAGS.data_dir)
  config = study_d.get_config()
  config.model.latent_size = latent
  config.beta = FLAGS.beta
  if FLAGS.numerics == 'torch':
    train_twins(config, dataset)
    return
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer('adam')
  hparams = train.hyperparams_from_config(config)
  loss_fn = train.make_loss_fn(model)
  num_images = len(dataset.train_images)
  steps = num_images // config.batch_size
  rows = jnp.asarray(dataset.train_images.reshape(num_images, -1))

  def loss_with_noise(params, images, noise):
    # make_loss_fn draws z from its key; here the noise is given.
    posterior = model.apply({'params': params}, images, method=model.encode)
    z = posterior.mean + jnp.exp(0.5 * posterior.log_variance) * noise
    logits = model.apply({'params': params}, z, method=model.decode)
    terms = objectives.negative_elbo(
        objectives.bernoulli_nll_from_logits(logits, images), posterior,
        beta=hparams.beta)
    return jnp.mean(terms.loss)

  def epoch(params, opt_state, batches, noise):
    def body(carry, inputs):
      params, opt_state = carry
      indices, batch_noise = inputs
      images = (rows[indices].astype(jnp.float32) / 255).reshape(
          -1, *dataset.image_shape)
      grads = jax.grad(loss_with_noise)(params, images, batch_noise)
      return train.apply_gradients(optimizer, params, opt_state, grads,
                                   hparams.learning_rate), None
    return jax.lax.scan(body, (params, opt_state), (batches, noise))[0]

  epoch = jax.jit(jax.vmap(epoch))
  test = {'images': jnp.asarray(dataset.test_images.astype(np.float32) / 255),
          'labels': jnp.zeros(len(dataset.test_images), jnp.int32)}
  evaluate = jax.jit(jax.vmap(
      lambda params: loss_fn(params, test, hparams, jax.random.PRNGKey(99))[0]))

  initial, generators, keys, twin_noise_generators = [], [], [], []
  for seed in range(FLAGS.first_seed, FLAGS.first_seed + seeds):
    twin = torch_reference.build_twin(config, dataset.image_shape, seed)
    initial.append(torch_reference.mlp_params_for_jax(twin)
                   if init_source == 'torch' else
                   train.init_params(model, jnp.uint32(seed),
                                     dataset.image_shape))
    generators.append(torch.Generator().manual_seed(seed))
    # The twin's posterior noise: the global generator as its constructor
    # left it, drawn one [batch, latent] step at a time as its forward does.
    twin_noise = torch.Generator()
    twin_noise.set_state(torch.get_rng_state())
    twin_noise_generators.append(twin_noise)
    keys.append(jax.random.PRNGKey(seed + 1000))
  params = jax.tree.map(lambda *xs: jnp.stack(xs), *initial)
  opt_state = jax.vmap(optimizer.init)(params)
  torch.manual_seed(12345)  # the torch noise stream, after every init
  start = time.perf_counter()
  for epoch_index in range(1, FLAGS.epochs + 1):
    batches, noise = [], []
    for member in range(seeds):
      if order_source == 'torch':
        order = torch.randperm(num_images, generator=generators[member]).numpy()
      else:
        keys[member], key = jax.random.split(keys[member])
        order = np.asarray(jax.random.permutation(key, num_images))
      batches.append(order[:steps * config.batch_size].reshape(steps, -1))
      if noise_source == 'torch':
        noise.append(torch.randn(steps, config.batch_size, latent).numpy())
      elif noise_source == 'twin':
        noise.append(np.stack([
            torch.randn(config.batch_size, latent,
                        generator=twin_noise_generators[member]).numpy()
            for _ in range(steps)]))
      else:
        keys[member], key = jax.random.split(keys[member])
        noise.append(np.asarray(objectives.standard_normal_per_latent(
            key, (steps, config.batch_size, latent))))
    params, opt_state = epoch(params, opt_state, jnp.asarray(np.stack(batches)),
                              jnp.asarray(np.stack(noise)))
    if epoch_index % FLAGS.report_every == 0 or epoch_index == FLAGS.epochs:
      losses = np.asarray(evaluate(params))
      print(f'streams {",".join(FLAGS.streams)} beta {FLAGS.beta:g} '
            f'epoch {epoch_index}: test loss '
            f'{" ".join(f"{v:.2f}" for v in losses)}  mean {losses.mean():.2f}'
            f'  ({time.perf_counter() - start:.0f} s)', flush=True)


def train_twins(config, dataset: data_lib.Dataset) -> None:
  """--numerics=torch: the twin's seeds, one after another."""
  from benchmarks import torch_reference
  device = torch_reference.default_device()
  for seed in range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds):
    start = time.perf_counter()

    def progress(epoch, seconds, train_loss, seed=seed):
      if epoch % FLAGS.report_every == 0:
        print(f'twin seed {seed} epoch {epoch}: train loss {train_loss:.2f} '
              f'({seconds:.1f} s per epoch, ETA '
              f'{(FLAGS.epochs - epoch) * seconds:.0f} s for this seed)',
              flush=True)

    result = torch_reference.train_twin(
        config, dataset, seed, FLAGS.epochs, device,
        evaluate_every=FLAGS.report_every, on_epoch=progress)
    print(f'numerics torch, beta {FLAGS.beta:g}, twin seed {seed}: test loss '
          + ' '.join(f'{loss:.2f} (epoch {epoch})'
                     for epoch, loss in result['history'])
          + f'  ({time.perf_counter() - start:.0f} s)', flush=True)


if __name__ == '__main__':
  app.run(main)
