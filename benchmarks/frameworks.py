r"""Training speed of vae_jax beside equivalent PyTorch loops, in one run.

  python -m benchmarks.run --config=configs/default.py \
      --data_dir=../shared/data --epochs=4 --workdir=/tmp/bench
  python -m benchmarks.run --config=configs/study_d.py \
      --data_dir=../shared/data --epochs=10   # the 10-epoch loss check
  python -m benchmarks.run --mode=quality --config=configs/study_d.py \
      --data_dir=../shared/data --epochs=10 --quality_seeds=5

Both sides train the same model (widths, initialisation scheme, batch size,
Adam, per-image BCE + KL) on the same MNIST for --epochs epochs. PyTorch runs
in several styles (--torch_variants): a DataLoader loop as in
pytorch/examples, pre-loaded tensors, fused Adam and torch.compile; epochs
alternate JAX, variant 1, variant 2, ... so ratios are measured back to back.
The first epoch of every side is a warm-up (JAX's program is compiled
before it, but torch.compile compiles inside it), so at least two epochs are
needed and only the later ones are timed. Prints and writes (with
--workdir) JSON and Markdown: images/s of each side,
JAX's speed-up over each variant and over the fastest, the machine's float32
matmul rate (the higher of JAX's and PyTorch's for a 2048^3 product, timed
before the first epoch and again after every round, so that the fractions
compare epochs and products under the same load) and each side's fraction
of it, compile and first-epoch times, each side's peak
memory (measured in a process of its own, see measure_memory) and the test
loss after the last epoch. For the MLP it also times each matrix product of
one training step on its own in both frameworks (products_only_rates), so the
table says how close each epoch comes to what its products alone allow. On a
GPU PyTorch uses CUDA and JAX its default backend.
"""


from __future__ import annotations

import collections
import copy
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from absl import app
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import peak_memory
from benchmarks.common import (REPO, TORCH_VARIANTS, MatmulClock,
                               round_matmul_summary, torch_synchronizer)
from launch import common
from vae_jax import data as data_lib
from vae_jax.data import pipeline
from vae_jax import models
from vae_jax import optimizers
from vae_jax import train

# What the config may vary while the PyTorch twin still trains the same thing.
_TORCH_MODELS = ('mlp_vae', 'conv_vae')
_TORCH_LOSSES = ('bce', 'mse', 'mae')


def dense_train_flops_per_image(params) -> float:
  """Matmul FLOPs of one training image through the dense layers.

  Forward 2*in*out per layer; backward 2*in*out for the weight gradient and
  2*in*out for the input gradient, except for the first encoder layer, whose
  input (the data) needs none.
  """
  total = 0.0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if leaf.ndim != 2:
      continue
    fan_in, fan_out = leaf.shape
    first_layer = 'enc_0' in jax.tree_util.keystr(path)
    total += (4.0 if first_layer else 6.0) * fan_in * fan_out
  return total



def xla_train_flops_per_image(model, params, hparams, dataset, config) -> float:
  """FLOPs of one training image as XLA's cost analysis counts a step's gradient."""
  batch = {'images': jnp.zeros((config.batch_size, *dataset.image_shape)),
           'labels': jnp.zeros((config.batch_size,), jnp.int32)}
  loss_fn = train.make_loss_fn(model, config.loss)
  grad = jax.jit(jax.grad(lambda p: loss_fn(p, batch, hparams,
                                            jax.random.PRNGKey(0))[0]))
  cost = grad.lower(params).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops']) / config.batch_size


def check_comparable(config) -> None:
  """Raises app.UsageError where the PyTorch twin would train something else."""
  model = config.model
  problems = []
  if config.optimizer != 'adam':
    problems.append(f'config.optimizer={config.optimizer!r} (the comparison '
                    'trains with Adam)')
  if model.name not in _TORCH_MODELS:
    problems.append(f'config.model.name={model.name!r} (PyTorch twins: '
                    f'{_TORCH_MODELS})')
  if config.loss not in _TORCH_LOSSES:
    problems.append(f'config.loss={config.loss!r} (PyTorch twin: '
                    f'{_TORCH_LOSSES})')
  if model.get('num_classes', 0):
    problems.append('a conditional model (config.model.num_classes > 0)')
  if not model.get('variational', True):
    problems.append('config.model.variational=False')
  if model.get('encoder_conv_channels', ()):
    problems.append('config.model.encoder_conv_channels')
  if model.name == 'mlp_vae' and model.get('activation', 'relu') != 'relu':
    problems.append(f'config.model.activation={model.activation!r} (the '
                    'PyTorch MLP uses ReLU)')
  if config.data.preprocessing == 'dynamic_binarized':
    problems.append('dynamic binarisation (the PyTorch loops train on grey '
                    'levels)')
  if config.prior_mean != 0.0 or config.prior_std != 1.0:
    problems.append('a prior other than N(0, I)')
  if problems:
    raise app.UsageError('The PyTorch comparison does not support '
                         + '; '.join(problems) + '.')


def jax_training(config, dataset: data_lib.Dataset):
  """JAX's side: (model, hparams, initial state, device data, jitted epoch)."""
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = optimizers.make_optimizer(config.optimizer)
  hparams = train.hyperparams_from_config(config)
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  train_data = pipeline.device_data(dataset.train_images, dataset.train_labels)
  epoch = jax.jit(
      train.make_train_epoch(model, optimizer, config.batch_size,
                             config.data.preprocessing, config.loss,
                             config.scan_unroll),
      donate_argnums=0)
  return model, hparams, state, train_data, epoch


class Product(NamedTuple):
  """One matrix product of a training step: [m, k] x [k, n].

  lhs_transposed: the left operand is stored [k, m] (a weight gradient's
  activations); rhs_transposed: the right one is stored [n, k] (a weight read
  in the backward pass).
  """
  m: int
  k: int
  n: int
  lhs_transposed: bool
  rhs_transposed: bool

  @property
  def flops(self) -> float:
    return 2.0 * self.m * self.k * self.n


def training_products(model, params, hparams, config,
                      image_shape) -> list[Product]:
  """The 2-d matrix products of one training step's gradient, in order.

  Read from the jaxpr of the gradient of one batch's loss, so they are the
  products the step asks for (the encoder's two heads as one, the first
  layer without an input gradient), before XLA picks layouts.
  """
  batch = {'images': jnp.zeros((config.batch_size, *image_shape)),
           'labels': jnp.zeros((config.batch_size,), jnp.int32)}
  loss_fn = train.make_loss_fn(model, config.loss)
  jaxpr = jax.make_jaxpr(jax.grad(lambda p: loss_fn(
      p, batch, hparams, jax.random.PRNGKey(0))[0]))(params)
  products = []

  def visit(jaxpr):
    for equation in jaxpr.eqns:
      if equation.primitive.name == 'dot_general':
        lhs, rhs = (v.aval.shape for v in equation.invars)
        (lhs_contract, rhs_contract), batch_dims = equation.params[
            'dimension_numbers']
        if (len(lhs) != 2 or len(rhs) != 2 or len(lhs_contract) != 1
            or batch_dims != ((), ())):
          raise ValueError(f'Not a plain matrix product: {lhs} x {rhs} '
                           f'({equation.params["dimension_numbers"]}).')
        (lhs_k,), (rhs_k,) = lhs_contract, rhs_contract
        products.append(Product(m=lhs[1 - lhs_k], k=lhs[lhs_k],
                                n=rhs[1 - rhs_k], lhs_transposed=lhs_k == 0,
                                rhs_transposed=rhs_k == 1))
      for value in equation.params.values():
        inner = getattr(value, 'jaxpr', None)
        if inner is not None:
          visit(getattr(inner, 'jaxpr', inner))

  visit(jaxpr.jaxpr)
  return products


def products_only_rates(products: list[Product], batch_size: int,
                        torch_device=None, seconds_per_product: float = 0.2,
                        rounds: int = 5) -> dict[str, float]:
  """Images/s of each framework if a step were only its matrix products.

  Each distinct product runs back to back, as many times as take about
  `seconds_per_product` at 100 GFLOP/s, on random operands in the layout the
  step uses (a transposed operand as a transposed view on PyTorch's side,
  a transposing dot_general on JAX's); the best of `rounds` rounds, JAX and
  PyTorch alternating, is summed over the step's products. (Shorter runs
  read JAX's products slower, PyTorch's not: a start-up cost per call,
  which an epoch pays once, is the likely reason; docs/cpu_kernels.md.)

  Returns:
    {'jax': images/s, 'torch': images/s, 'products': count}.
  """
  import torch
  device = torch_device or torch.device('cpu')
  sync = torch_synchronizer(device)
  rng = np.random.default_rng(0)
  seconds = {'jax': 0.0, 'torch': 0.0}
  distinct = collections.Counter(products)
  logging.warning('Timing the %d distinct matrix products of one training '
                  'step alone, %d rounds each side (seconds per product; a '
                  'line after each).', len(distinct), rounds)
  for index, (product, count) in enumerate(distinct.items(), 1):
    lhs_shape = ((product.k, product.m) if product.lhs_transposed
                 else (product.m, product.k))
    rhs_shape = ((product.n, product.k) if product.rhs_transposed
                 else (product.k, product.n))
    lhs_np, rhs_np = (rng.random(shape, np.float32)
                      for shape in (lhs_shape, rhs_shape))
    repeats = int(np.clip(seconds_per_product * 100e9 / product.flops, 5, 5000))
    dimensions = (((0 if product.lhs_transposed else 1,),
                   (1 if product.rhs_transposed else 0,)), ((), ()))

    @jax.jit
    def repeated(lhs, rhs):
      def body(_, carry):
        lhs, rhs, total = carry
        # The barrier keeps XLA from hoisting the loop-invariant product.
        lhs, rhs = jax.lax.optimization_barrier((lhs, rhs))
        out = jax.lax.dot_general(lhs, rhs, dimensions)
        return lhs, rhs, total + out[0, 0]
      return jax.lax.fori_loop(0, repeats, body, (lhs, rhs, jnp.float32(0)))[2]

    lhs, rhs = jnp.asarray(lhs_np), jnp.asarray(rhs_np)
    repeated(lhs, rhs).block_until_ready()
    torch_lhs = torch.from_numpy(lhs_np).to(device)
    torch_rhs = torch.from_numpy(rhs_np).to(device)
    torch_lhs = torch_lhs.t() if product.lhs_transposed else torch_lhs
    torch_rhs = torch_rhs.t() if product.rhs_transposed else torch_rhs
    out = torch.mm(torch_lhs, torch_rhs)
    best = {'jax': float('inf'), 'torch': float('inf')}
    for _ in range(rounds):
      start = time.perf_counter()
      repeated(lhs, rhs).block_until_ready()
      best['jax'] = min(best['jax'], time.perf_counter() - start)
      sync()
      start = time.perf_counter()
      for _ in range(repeats):
        torch.mm(torch_lhs, torch_rhs, out=out)
      sync()
      best['torch'] = min(best['torch'], time.perf_counter() - start)
    for side in seconds:
      seconds[side] += count * best[side] / repeats
    logging.warning('  product %d/%d (%dx%dx%d): JAX %.2f ms, PyTorch %.2f '
                    'ms', index, len(distinct), product.m, product.k,
                    product.n, 1e3 * best['jax'] / repeats,
                    1e3 * best['torch'] / repeats)
  return {'jax': batch_size / seconds['jax'],
          'torch': batch_size / seconds['torch'], 'products': len(products)}


def benchmark_frameworks(config, *, epochs: int,
                         variants=TORCH_VARIANTS, matmul_size: int = 2048,
                         dataset: data_lib.Dataset | None = None,
                         memory_flags: list[str] | None = None,
                         torch_threads: int | None = None) -> dict:
  """Trains JAX and each PyTorch variant `epochs` epochs, interleaved.

  Args:
    config: an experiment config that check_comparable accepts.
    epochs: epochs per side, at least 2: the first is a warm-up (it
      includes torch.compile's compilation), the others are timed, and the
      test loss is taken after the last.
    variants: names from torch_reference.VARIANTS.
    matmul_size: side of the matmul for the machine's peak rate.
    dataset: replaces the configured data (tests pass small arrays).
    memory_flags: command-line flags that rebuild `config` in a fresh
      process (see measure_memory); None skips the memory measurement.
    torch_threads: PyTorch's CPU threads; None: one per CPU, as XLA uses.

  Returns:
    The result dict to_markdown formats ('jax', 'torch': {variant: ...},
    'best_torch_variant', 'speedup', 'targets', ...).
  """
  check_comparable(config)
  if epochs < 2:
    raise ValueError(f'epochs={epochs}: the first epoch is a warm-up that '
                     'includes compilation, so at least 2 are needed for a '
                     'timed epoch.')
  import torch
  from benchmarks import torch_reference
  unknown = sorted(set(variants) - set(torch_reference.VARIANTS))
  if unknown or not variants:
    raise app.UsageError(f'Unknown or no PyTorch variants {unknown}; choose '
                         f'from {sorted(torch_reference.VARIANTS)}.')
  torch_device = torch_reference.default_device()
  torch_threads = torch_threads or common.usable_cpus()
  if torch_device.type == 'cpu':
    torch.set_num_threads(torch_threads)
  else:
    # JAX multiplies float32 on recent GPUs in TF32 by default; PyTorch
    # does the same only when asked, so ask: both sides then do the same
    # arithmetic.
    torch.set_float32_matmul_precision('high')
  logging.warning('Timing a float32 %d^3 matmul in JAX and PyTorch (the '
                  'machine\'s peak rate; a few seconds).', matmul_size)
  matmul_clock = MatmulClock(matmul_size, torch_device)
  rates = matmul_clock.rates()
  logging.warning('float32 matmul %d^3: JAX %.1f, PyTorch %.1f GFLOP/s',
                  matmul_size, rates['jax'], rates['torch'])

  if dataset is None:
    dataset = pipeline.load_data(config)
  batch_size = config.batch_size
  images_per_epoch = len(dataset.train_images) // batch_size * batch_size

  # JAX: compile ahead of time so compilation is reported on its own.
  model, hparams, state, train_data, jax_epoch = jax_training(config, dataset)
  products_only = None
  if config.model.name == 'mlp_vae':
    flops_per_image = dense_train_flops_per_image(state.params)
    products_only = products_only_rates(
        training_products(model, state.params, hparams, config,
                          dataset.image_shape), batch_size, torch_device)
    logging.warning('Matrix products alone: JAX %.0f, PyTorch %.0f images/s',
                    products_only['jax'], products_only['torch'])
  else:
    flops_per_image = xla_train_flops_per_image(model, state.params, hparams,
                                                dataset, config)
  logging.warning('Compiling the JAX epoch ...')
  start = time.perf_counter()
  jax_epoch = jax_epoch.lower(state, hparams, train_data,
                              jnp.int32(1)).compile()
  jax_compile_seconds = time.perf_counter() - start
  logging.warning('Compiled in %.1f s. Epoch 1 of every side is a warm-up '
                  '(torch.compile compiles in it); epochs 2-%d are timed.',
                  jax_compile_seconds, epochs)
  evaluate = jax.jit(train.make_evaluate(model, config.eval_batch_size,
                                         config.data.preprocessing,
                                         config.loss))
  test_data = pipeline.device_data(dataset.test_images, dataset.test_labels)

  # PyTorch: every variant starts from one initialisation (seeded like the
  # JAX side by config.seed) and shuffles with its own generator from it.
  template = torch_reference.build_twin(config, dataset.image_shape,
                                        config.seed)
  float_images = None
  if set(variants) - {'dataloader'}:
    # One float copy shared by the pre-loaded variants, as each would hold.
    float_images = torch.from_numpy(dataset.train_images).to(
        torch_device).float().div_(255)
  trainers = {
      variant: torch_reference.VariantTrainer(
          variant, copy.deepcopy(template), dataset.train_images, batch_size,
          config.learning_rate, config.seed, config.loss, config.beta,
          torch_device, float_images=float_images)
      for variant in variants}

  seconds = {side: [] for side in ['jax', *trainers]}
  round_matmul_gflops = []
  first_epoch, train_loss, unavailable = {}, {}, {}

  def record(side, epoch, epoch_seconds, loss):
    if epoch == 1:
      first_epoch[side] = epoch_seconds
    if epoch > 1:  # the first includes torch.compile's compilation
      seconds[side].append(epoch_seconds)
    train_loss[side] = loss

  for epoch in range(1, epochs + 1):
    start = time.perf_counter()
    state, metrics = jax_epoch(state, hparams, train_data, jnp.int32(epoch))
    jax.block_until_ready(metrics)
    record('jax', epoch, time.perf_counter() - start, float(metrics['loss']))
    for variant, trainer in list(trainers.items()):
      try:
        record(variant, epoch, *trainer.train_epoch())
      except Exception as error:
        # torch.compile needs a working C++ (or Triton) toolchain; without
        # one that variant is reported as unavailable, not fatal.
        if not trainer.may_fail:
          raise
        unavailable[variant] = f'{type(error).__name__}: {error}'[:300]
        logging.warning('PyTorch %s unavailable: %s', variant,
                        unavailable[variant])
        del trainers[variant]
    matmul_text = ''
    if epoch > 1:
      round_matmul_gflops.append(matmul_clock.rates())
      matmul_text = (f'; matmul {max(round_matmul_gflops[-1].values()):.0f} '
                     'GFLOP/s')
    logging.warning('epoch %d%s: %s%s', epoch,
                    ' (warm-up, not timed)' if epoch == 1 else '', ', '.join(
        f'{side} {(seconds[side] or [first_epoch[side]])[-1]:.2f} s'
        for side in ['jax', *trainers]), matmul_text)

  test = {'jax': {k: float(v) for k, v in
                  evaluate(state.params, hparams, test_data).items()}}
  for variant, trainer in trainers.items():
    test[variant] = torch_reference.evaluate(
        trainer.model, dataset.test_images, config.eval_batch_size,
        config.loss, config.beta)

  memory = {}
  if memory_flags is not None:
    memory = measure_memory(config, dataset, list(trainers), memory_flags,
                            torch_threads)

  round_matmul = round_matmul_summary(round_matmul_gflops, seconds['jax'],
                                     images_per_epoch, flops_per_image)
  peak = round_matmul['peak'] if round_matmul else max(rates.values())

  def side_result(side):
    img_per_s = images_per_epoch / float(np.median(seconds[side]))
    return {
        'img_per_s': img_per_s, 'epoch_seconds': seconds[side],
        'first_epoch_seconds': first_epoch[side],
        'gflops': img_per_s * flops_per_image / 1e9,
        'fraction_of_peak': img_per_s * flops_per_image / 1e9 / peak,
        'train_loss': train_loss[side], 'test': test[side],
        'memory': memory.get(side),
    }

  jax_result = dict(side_result('jax'), compile_seconds=jax_compile_seconds,
                    description='jit-compiled epoch (lax.scan over batches), '
                                'optax Adam')
  torch_results = {}
  for variant, trainer in trainers.items():
    r = dict(side_result(variant), description=trainer.description)
    r['speedup'] = jax_result['img_per_s'] / r['img_per_s']
    r['paired_speedup'] = paired_speedup(seconds['jax'], seconds[variant])
    r['test_loss_difference'] = test['jax']['loss'] - r['test']['loss']
    torch_results[variant] = r
  result = {
      'config': config.model.name, 'loss': config.loss,
      'model': {'latent_size': config.model.latent_size,
                'encoder_widths': list(config.model.encoder_widths),
                'batch_size': batch_size, 'learning_rate': config.learning_rate,
                'train_flops_per_image': flops_per_image},
      'machine': {'platform': platform.platform(),
                  'processor': platform.processor() or platform.machine(),
                  'cpu_count': common.usable_cpus(),
                  'jax': jax.__version__, 'jax_backend': jax.default_backend(),
                  'torch': torch.__version__,
                  'torch_device': str(torch_device),
                  'torch_threads': torch.get_num_threads(),
                  'torch_float32_matmul_precision':
                      torch.get_float32_matmul_precision()},
      'matmul_size': matmul_size, 'matmul_gflops': rates,
      'matmul_gflops_rounds': round_matmul_gflops,
      'round_matmul': round_matmul, 'peak_gflops': peak,
      'products_only': products_only,
      'epochs': epochs, 'epochs_timed': len(seconds['jax']),
      'images_per_epoch': images_per_epoch,
      'train_images': len(dataset.train_images),
      'test_images': len(dataset.test_images),
      'jax': jax_result, 'torch': torch_results,
      'torch_unavailable': unavailable,
  }
  best = best_torch_variant(result)
  result['best_torch_variant'] = best
  result['speedup'] = None if best is None else torch_results[best]['speedup']
  result['targets'] = targets(result)
  return result


def paired_speedup(jax_seconds, variant_seconds) -> dict[str, float] | None:
  """JAX's speed-up over a variant from epochs timed back to back.

  jax_seconds, variant_seconds: [epochs] times of the same interleaved
  rounds (a variant dropped part-way has fewer; its rounds are the first).
  Each round's ratio variant / JAX shares that round's machine load, so
  their spread says how far load moved the headline ratio of medians.

  Returns:
    {'median', 'low', 'high'}: the median and quartiles of the per-round
    ratios; None without a round.
  """
  rounds = min(len(jax_seconds), len(variant_seconds))
  if rounds == 0:
    return None
  ratios = (np.asarray(variant_seconds[:rounds], float)
            / np.asarray(jax_seconds[:rounds], float))
  low, median, high = np.percentile(ratios, [25, 50, 75])
  return {'median': float(median), 'low': float(low), 'high': float(high)}


def best_torch_variant(result: dict) -> str | None:
  """The PyTorch variant with the most images/s (None if none ran)."""
  if not result['torch']:
    return None
  return max(result['torch'], key=lambda v: result['torch'][v]['img_per_s'])


# The goals: JAX / fastest PyTorch, JAX's fraction of the matmul
# rate, and |JAX - PyTorch| test loss in nats per image (after 10 epochs).
GOALS = {'speedup': 1.5, 'fraction_of_peak': 0.55, 'test_loss_difference': 0.5}


def targets(result: dict) -> dict:
  """Each goal in GOALS with the measured value and whether it is met."""
  differences = [abs(r['test_loss_difference'])
                 for r in result['torch'].values()]
  values = {'speedup': result['speedup'],
            'fraction_of_peak': result['jax']['fraction_of_peak'],
            'test_loss_difference': max(differences) if differences else None}
  out = {}
  for name, goal in GOALS.items():
    value = values[name]
    met = None if value is None else bool(
        value <= goal if name == 'test_loss_difference' else value >= goal)
    out[name] = {'goal': goal, 'value': value, 'met': met}
  out['test_loss_difference']['epochs'] = result['epochs']
  return out


def measure_memory(config, dataset: data_lib.Dataset, variants,
                   memory_flags: list[str], torch_threads: int | None = None,
                   timeout_s: int = 1200) -> dict:
  """Peak memory of one training epoch per side, each in a fresh process.

  In one process the frameworks' allocations pile up (and each keeps its
  pools), so per-side peaks there mean little. Here every side starts from
  a process that has imported only its framework and loaded the uint8
  training data; the peak RSS is reset, one epoch is trained (compilation
  included), and the peak over that baseline is reported, with the GPU's
  own peak where there is one.

  Args:
    config: the benchmarked config.
    dataset: its data (written to a temporary .npz for the workers).
    variants: PyTorch variants to measure.
    memory_flags: flags that rebuild `config` for `python -m benchmarks.run`
      (the JAX worker); main passes its own command line.
    torch_threads: PyTorch's CPU threads (None: one per CPU).
    timeout_s: per worker.

  Returns:
    {'jax' | variant: peak_memory.track's dict (+ 'device_peak_mib'), or
    {'error': ...}}.
  """
  from benchmarks import torch_reference
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(REPO), *filter(None, [env.get('PYTHONPATH')])])

  def run_worker(command):
    try:
      done = subprocess.run(command, capture_output=True, text=True, env=env,
                            timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
      return {'error': f'timed out after {timeout_s} s'}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
      return {'error': f'exit {done.returncode}: {done.stderr[-500:]}'}
    return json.loads(lines[-1])

  results = {}
  with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / 'train.npz'
    np.savez(path, train_images=dataset.train_images,
             train_labels=dataset.train_labels)
    results['jax'] = run_worker([sys.executable, '-m', 'benchmarks.run',
                                 *memory_flags, f'--memory_worker={path}'])
    base_spec = {'model': torch_reference.twin_kwargs(config,
                                                      dataset.image_shape),
                 'batch_size': config.batch_size,
                 'learning_rate': config.learning_rate, 'loss': config.loss,
                 'beta': config.beta, 'seed': config.seed,
                 'threads': torch_threads or common.usable_cpus(),
                 'data': str(path)}
    for variant in variants:
      results[variant] = run_worker(
          [sys.executable, '-m', 'benchmarks.torch_reference',
           json.dumps(dict(base_spec, variant=variant))])
  for side, memory in results.items():
    logging.warning('peak memory %s: %s', side, memory)
  return results


def jax_memory_worker(config, data_path: str) -> dict:
  """measure_memory's JAX side: one epoch on the .npz's training data."""
  with np.load(data_path) as arrays:
    images, labels = arrays['train_images'], arrays['train_labels']
  dataset = data_lib.Dataset(config.data.name, images, labels, images[:1],
                             labels[:1], source=data_path)
  # Starting the backend is JAX's counterpart of what `import torch` does
  # before the PyTorch worker's baseline; it stays out of the measurement.
  jax.devices()
  with peak_memory.track() as memory:
    _, hparams, state, train_data, epoch = jax_training(config, dataset)
    state, metrics = epoch(state, hparams, train_data, jnp.int32(1))
    jax.block_until_ready(metrics)
  if jax.default_backend() != 'cpu':
    stats = jax.devices()[0].memory_stats() or {}
    if 'peak_bytes_in_use' in stats:
      memory['device_peak_mib'] = stats['peak_bytes_in_use'] / 2 ** 20
  return memory


def _number(value, spec: str) -> str:
  return '—' if value is None else format(value, spec)


def _floored(value, decimals: int, percent: bool = False) -> str:
  """A goal's value rounded down, so one just short never prints as met."""
  if value is None:
    return '—'
  floored = math.floor(value * 10 ** decimals) / 10 ** decimals
  return (f'{floored:.{decimals - 2}%}' if percent
          else f'{floored:.{decimals}f}')


def _memory_cell(memory: dict | None, key: str = 'increase_mib') -> str:
  if not memory:
    return 'not measured'
  if 'error' in memory:
    return 'failed'
  if key == 'increase_mib':
    return f"{memory['increase_mib']:,.0f} ({memory['peak_rss_mib']:,.0f})"
  return _number(memory.get(key), ',.0f')


def matmul_note(result: dict) -> str:
  """The machine's matmul rates: before the first epoch and after each round."""
  size, before = result['matmul_size'], result['matmul_gflops']
  precision = result['machine']['torch_float32_matmul_precision']
  before_text = (f"JAX {before['jax']:.1f}, PyTorch {before['torch']:.1f} "
                 'GFLOP/s')
  rounds = result.get('round_matmul')
  if not rounds:
    return (f'float32 {size}^3 matmul: {before_text} (peak = the higher; '
            f"PyTorch float32 matmul precision '{precision}').")
  fraction = rounds['jax_fraction']
  jax_before = result['jax']['gflops'] / max(before.values())
  return (
      f'float32 {size}^3 matmul, timed again after every round (median): JAX '
      f"{rounds['jax']:.1f}, PyTorch {rounds['torch']:.1f} GFLOP/s; the peak "
      f"is the median of each round's higher rate, {rounds['peak']:.0f} "
      'GFLOP/s, and the fractions above use it. JAX per round (its epoch '
      'against the matmul timed right after it): median '
      f"{fraction['median']:.0%} ({fraction['low']:.0%}-"
      f"{fraction['high']:.0%}). Before the first epoch: {before_text}, "
      f'JAX\'s epochs {jax_before:.0%} of the higher. PyTorch float32 matmul '
      f"precision '{precision}'.")


def to_markdown(result: dict) -> str:
  """The frameworks result as a headline, one table row per side, and notes."""
  epochs = result['epochs']
  timed = (f"median of {result['epochs_timed']} epoch(s) after a warm-up "
           "epoch (which includes torch.compile's compilation)")
  jax_result, torch_results = result['jax'], result['torch']
  sides = [('JAX (vae_jax)', jax_result)] + [
      (f'PyTorch {variant}', r) for variant, r in torch_results.items()]
  on_device = any((r.get('memory') or {}).get('device_peak_mib') is not None
                  for _, r in sides)
  header = ['', 'implementation', 'images/s', 'JAX speed-up',
            'matmul GFLOP/s', f"of peak ({result['peak_gflops']:.0f} GFLOP/s)",
            'compile, s', 'first epoch, s',
            'peak RSS increase (process peak), MiB']
  if on_device:
    header.append('device peak, MiB')
  header += [f'test loss after {epochs} epoch(s)', 'JAX − this']
  rows = ['| ' + ' | '.join(header) + ' |',
          '|' + '|'.join(['---', '---'] + ['---:'] * (len(header) - 2)) + '|']
  for name, r in sides:
    is_jax = r is jax_result
    compile_cell = (f"{r['compile_seconds']:.2f}" if is_jax else
                    'in 1st epoch' if name.endswith('compiled') else '—')
    cells = [name, r['description'], f"{r['img_per_s']:,.0f}",
             '—' if is_jax else f"{r['speedup']:.2f}x",
             f"{r['gflops']:.1f}", f"{r['fraction_of_peak']:.0%}",
             compile_cell, f"{r['first_epoch_seconds']:.2f}",
             _memory_cell(r.get('memory'))]
    if on_device:
      cells.append(_memory_cell(r.get('memory'), 'device_peak_mib'))
    cells += [f"{r['test']['loss']:.2f}",
              '—' if is_jax else f"{r['test_loss_difference']:+.2f}"]
    rows.append('| ' + ' | '.join(cells) + ' |')
  for variant, reason in result['torch_unavailable'].items():
    cells = [f'PyTorch {variant}', f'unavailable: {reason}'.replace('|', '/')]
    rows.append('| ' + ' | '.join(cells + ['—'] * (len(header) - 2)) + ' |')

  machine = result['machine']
  best = result['best_torch_variant']
  headline = (f"Speed-up JAX / fastest PyTorch ({best}): "
              f"**{result['speedup']:.2f}x**" if best else
              'No PyTorch variant ran.')
  goals = result['targets']
  met = lambda goal: {True: 'met', False: 'not met', None: '—'}[goal['met']]
  failed_memory = {side: r['memory']['error']
                   for side, r in [('jax', jax_result), *torch_results.items()]
                   if r.get('memory') and 'error' in r['memory']}
  notes = [
      f"Images/s: {timed}, of {result['images_per_epoch']:,} training images "
      f"per epoch; epochs interleaved JAX, "
      f"{', '.join(torch_results) or '-'}, JAX, .... Matmul GFLOP/s count "
      f"{result['model']['train_flops_per_image'] / 1e6:.2f} MFLOP per "
      "training image. Memory: one epoch per side in a process of its own, "
      "peak resident memory over the process after its framework's imports "
      "and the uint8 data.",
      '',
      matmul_note(result),
      '',
      f"Goals: JAX >= {goals['speedup']['goal']}x the fastest PyTorch: "
      f"{_floored(goals['speedup']['value'], 3)}x, "
      f"{met(goals['speedup'])}; JAX >= "
      f"{goals['fraction_of_peak']['goal']:.0%} of the matmul rate: "
      f"{_floored(goals['fraction_of_peak']['value'], 3, percent=True)}, "
      f"{met(goals['fraction_of_peak'])}; test loss within "
      f"{goals['test_loss_difference']['goal']} nats of every PyTorch "
      f"variant after 10 epochs (here {epochs}): largest difference "
      f"{_number(goals['test_loss_difference']['value'], '.2f')}, "
      f"{met(goals['test_loss_difference'])} (one seed per side; "
      "--mode=quality compares the means over several).",
  ]
  paired = {variant: r['paired_speedup'] for variant, r in torch_results.items()
            if r.get('paired_speedup')}
  if paired and epochs > 2:
    notes += ['', 'JAX speed-up per interleaved round (median, middle half of '
              'the rounds): ' + '; '.join(
                  f"{variant} {p['median']:.2f}x ({p['low']:.2f}-"
                  f"{p['high']:.2f})" for variant, p in paired.items())
              + '.']
  products_only = result.get('products_only')
  if products_only and best:
    best_rate = torch_results[best]['img_per_s']
    notes += ['', (
        f"Matrix products alone (the {products_only['products']} products of "
        "one training step, each timed on its own at its shape and "
        f"transposition): JAX {products_only['jax']:,.0f}, PyTorch "
        f"{products_only['torch']:,.0f} images/s. JAX's epoch runs at "
        f"{jax_result['img_per_s'] / products_only['jax']:.0%} of its "
        f"products-only rate, PyTorch {best} at "
        f"{best_rate / products_only['torch']:.0%} of its own. An epoch of "
        "nothing but JAX's products would be "
        f"{products_only['jax'] / best_rate:.2f}x the fastest PyTorch.")]
  if failed_memory:
    notes += ['', 'Memory measurement failed for ' + '; '.join(
        f'{side}: {error}' for side, error in failed_memory.items())]
  return '\n'.join([
      f"{headline} ({machine['cpu_count']} CPUs, {machine['processor']}, "
      f"jax {machine['jax']} on {machine['jax_backend']}, "
      f"torch {machine['torch']} on {machine['torch_device']})",
      '', *rows, '', *notes]) + '\n'


