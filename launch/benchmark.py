r"""Training speed of vae_jax beside an equivalent PyTorch loop, measured in one run.

  python -m launch.benchmark --config=configs/default.py \
      --config.data.dir=../shared/data --epochs=3 --output=/tmp/bench

Both sides train the same model (widths, initialisation scheme, batch size,
Adam, per-image BCE + KL) on the same pre-loaded MNIST; epochs alternate
JAX, PyTorch, JAX, PyTorch, ... so ratios are measured back to back.
Prints and writes (with --output) JSON and Markdown: images/s of each side
and their ratio, the machine's float32 matmul rate (the higher of JAX's and
PyTorch's for a 2048^3 product) and each side's fraction of it, JAX's
compile time and PyTorch's first epoch, and the test loss after the timed
epochs.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from launch import common
from vae_jax import models
from vae_jax import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'configs/default.py',
                                'Experiment config to benchmark.')
flags.DEFINE_integer('epochs', 3, 'Timed epochs per framework.')
flags.DEFINE_integer('matmul_size', 2048, 'Side of the matmul for the peak rate.')
flags.DEFINE_string('output', None, 'Directory for benchmark.json and .md.')
flags.DEFINE_enum('mode', 'frameworks', ['frameworks', 'sweep'],
                  'frameworks: vae_jax beside PyTorch. sweep: a K-member '
                  'vmapped sweep beside the same K runs one after another.')
flags.DEFINE_integer('sweep_members', 8, 'K for --mode=sweep (seeds 0..K-1).')


def matmul_rates(size: int, repeats: int = 5) -> dict[str, float]:
  """Best-of-3 float32 GFLOP/s of a size^3 matmul in JAX and in PyTorch."""
  import torch
  rng = np.random.default_rng(0)
  a_np, b_np = (rng.random((size, size), np.float32) for _ in range(2))
  flops = 2.0 * size ** 3 * repeats
  a, b = jnp.asarray(a_np), jnp.asarray(b_np)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  ta, tb = torch.from_numpy(a_np), torch.from_numpy(b_np)
  torch.matmul(ta, tb)
  best = {'jax': 0.0, 'torch': 0.0}
  for _ in range(3):
    start = time.perf_counter()
    for _ in range(repeats):
      matmul(a, b).block_until_ready()
    best['jax'] = max(best['jax'], flops / (time.perf_counter() - start) / 1e9)
    start = time.perf_counter()
    for _ in range(repeats):
      torch.matmul(ta, tb)
    best['torch'] = max(best['torch'],
                        flops / (time.perf_counter() - start) / 1e9)
  return best


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


def benchmark_sweep(config, members: int, epochs: int) -> dict:
  """Wall time (compile included) of K runs one after another vs one K-member sweep."""
  import tempfile
  from vae_jax import sweep
  config.num_epochs = epochs
  config.plots = False
  dataset = train.load_data(config)
  grid = sweep.product(seed=list(range(members)))
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    sequential = [train.train_and_evaluate(sweep.member_config(config, m),
                                           f'{tmp}/run{i}', dataset=dataset)
                  for i, m in enumerate(grid)]
    sequential_seconds = time.perf_counter() - start
    sweep_config = config.copy_and_resolve_references()
    with sweep_config.unlocked():
      sweep_config.sweep = grid
    start = time.perf_counter()
    swept = sweep.run_sweep(sweep_config, f'{tmp}/sweep', dataset=dataset)
    sweep_seconds = time.perf_counter() - start
  single_img_per_s = float(np.median([r['img_per_s'] for r in sequential]))
  sweep_img_per_s = float(np.median([r['img_per_s'] for r in swept])) * members
  return {
      'members': members, 'epochs': epochs,
      'sequential_seconds': sequential_seconds, 'sweep_seconds': sweep_seconds,
      'wall_time_ratio': sequential_seconds / sweep_seconds,
      'single_run_img_per_s': single_img_per_s,
      'sweep_aggregate_img_per_s': sweep_img_per_s,
      # K runs one after another train at one run's rate.
      'aggregate_vs_sequential': sweep_img_per_s / single_img_per_s,
      'sequential_test_loss': [r['test_loss'] for r in sequential],
      'sweep_test_loss': [r['test_loss'] for r in swept],
  }


def sweep_markdown(result: dict) -> str:
  k = result['members']
  return '\n'.join([
      f"| {k} runs of {result['epochs']} epoch(s), compile included | "
      f"one after another | one {k}-member sweep |",
      '|---|---:|---:|',
      f"| wall time, s | {result['sequential_seconds']:.1f} | "
      f"{result['sweep_seconds']:.1f} |",
      f"| training images/s, all members together | "
      f"{result['single_run_img_per_s']:,.0f} | "
      f"{result['sweep_aggregate_img_per_s']:,.0f} |",
      '',
      f"The sweep takes {1 / result['wall_time_ratio']:.2f}x the wall time of "
      f"{k} runs one after another ({result['wall_time_ratio']:.2f}x faster); "
      f"its aggregate training throughput is "
      f"{result['aggregate_vs_sequential']:.2f}x theirs (training "
      f"{k * result['epochs']} member-epochs at "
      f"{result['sweep_aggregate_img_per_s'] / k:,.0f} images/s each).",
  ]) + '\n'


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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  if FLAGS.mode == 'sweep':
    result = benchmark_sweep(FLAGS.config, FLAGS.sweep_members, FLAGS.epochs)
    report(result, sweep_markdown(result), 'benchmark_sweep')
    return
  import torch
  from vae_jax import torch_reference

  config = FLAGS.config
  if config.optimizer != 'adam':
    raise app.UsageError('The benchmark compares training with Adam; got '
                         f'config.optimizer={config.optimizer}.')
  torch.set_num_threads(os.cpu_count() or 1)
  rates = matmul_rates(FLAGS.matmul_size)
  peak = max(rates.values())
  logging.warning('float32 matmul %d^3: JAX %.1f, PyTorch %.1f GFLOP/s',
                  FLAGS.matmul_size, rates['jax'], rates['torch'])

  dataset = train.load_data(config)
  batch_size = config.batch_size
  images_per_epoch = len(dataset.train_images) // batch_size * batch_size

  # JAX: compile ahead of time so compilation is reported on its own.
  model = models.build_model(config.model, dataset.image_shape)
  optimizer = train.make_optimizer(config.optimizer)
  hparams = train.hyperparams_from_config(config)
  state = train.create_train_state(model, optimizer, hparams,
                                   dataset.image_shape)
  if config.model.name == 'mlp_vae':
    flops_per_image = dense_train_flops_per_image(state.params)
  else:
    flops_per_image = xla_train_flops_per_image(model, state.params, hparams,
                                                dataset, config)
  train_data = train.device_data(dataset.train_images, dataset.train_labels)
  test_data = train.device_data(dataset.test_images, dataset.test_labels)
  start = time.perf_counter()
  jax_epoch = jax.jit(
      train.make_train_epoch(model, optimizer, batch_size,
                             config.data.preprocessing, config.loss),
      donate_argnums=0).lower(state, hparams, train_data,
                              jnp.int32(1)).compile()
  jax_compile_seconds = time.perf_counter() - start
  evaluate = jax.jit(train.make_evaluate(model, config.eval_batch_size,
                                         config.data.preprocessing,
                                         config.loss))

  torch.manual_seed(config.seed)
  if config.model.name == 'mlp_vae':
    torch_model = torch_reference.MLPVAE(
        dataset.image_shape[0] * dataset.image_shape[1],
        config.model.latent_size, config.model.encoder_widths,
        config.model.decoder_widths, config.model.init_scheme)
  elif config.model.name == 'conv_vae':
    torch_model = torch_reference.ConvVAE(dataset.image_shape,
                                          config.model.latent_size,
                                          config.model.init_scheme)
  else:
    raise app.UsageError(f'No PyTorch twin of {config.model.name}.')
  torch_optimizer = torch.optim.Adam(torch_model.parameters(),
                                     lr=config.learning_rate)
  torch_train = torch.from_numpy(dataset.train_images.astype(np.float32) / 255)
  torch_test = torch.from_numpy(dataset.test_images.astype(np.float32) / 255)
  generator = torch.Generator().manual_seed(config.seed)

  seconds = {'jax': [], 'torch': []}
  torch_first_epoch = None
  for epoch in range(1, FLAGS.epochs + 2):
    start = time.perf_counter()
    state, metrics = jax_epoch(state, hparams, train_data, jnp.int32(epoch))
    jax.block_until_ready(metrics)
    jax_seconds = time.perf_counter() - start
    torch_seconds = torch_reference.train_epoch(
        torch_model, torch_optimizer, torch_train, batch_size, generator,
        config.loss)
    if epoch == 1:  # warm-up for both; PyTorch's first epoch is reported
      torch_first_epoch = torch_seconds
      continue
    seconds['jax'].append(jax_seconds)
    seconds['torch'].append(torch_seconds)
    logging.warning('epoch %d: JAX %.2f s, PyTorch %.2f s', epoch, jax_seconds,
                    torch_seconds)

  jax_test = {k: float(v) for k, v in
              evaluate(state.params, hparams, test_data).items()}
  torch_test_metrics = torch_reference.evaluate(torch_model, torch_test,
                                                loss=config.loss)
  result = {
      'config': config.model.name, 'loss': config.loss,
      'model': {'latent_size': config.model.latent_size,
                'encoder_widths': list(config.model.encoder_widths),
                'batch_size': batch_size,
                'train_flops_per_image': flops_per_image},
      'machine': {'platform': platform.platform(),
                  'processor': platform.processor() or platform.machine(),
                  'cpu_count': os.cpu_count(),
                  'jax': jax.__version__, 'jax_backend': jax.default_backend(),
                  'torch': torch.__version__,
                  'torch_threads': torch.get_num_threads()},
      'matmul_gflops': rates, 'matmul_size': FLAGS.matmul_size,
      'peak_gflops': peak,
      'epochs_timed': FLAGS.epochs,
      'jax_compile_seconds': jax_compile_seconds,
      'torch_first_epoch_seconds': torch_first_epoch,
  }
  for side in ('jax', 'torch'):
    img_per_s = images_per_epoch / float(np.median(seconds[side]))
    result[side] = {
        'img_per_s': img_per_s,
        'epoch_seconds': seconds[side],
        'gflops': img_per_s * flops_per_image / 1e9,
        'fraction_of_peak': img_per_s * flops_per_image / 1e9 / peak,
    }
  result['jax']['test'] = jax_test
  result['torch']['test'] = torch_test_metrics
  result['speedup'] = result['jax']['img_per_s'] / result['torch']['img_per_s']

  report(result, to_markdown(result), 'benchmark')


def report(result: dict, markdown: str, name: str) -> None:
  """Prints the table; with --output also writes NAME.json and NAME.md."""
  print(markdown)
  if FLAGS.output:
    out = Path(FLAGS.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / f'{name}.json').write_text(json.dumps(result, indent=2))
    (out / f'{name}.md').write_text(markdown)


def to_markdown(result: dict) -> str:
  epochs = result['epochs_timed'] + 1
  rows = [
      '| | JAX (vae_jax) | PyTorch (pre-loaded tensors, Adam) |',
      '|---|---:|---:|',
      f"| images/s (median of {result['epochs_timed']} epochs) | "
      f"{result['jax']['img_per_s']:,.0f} | {result['torch']['img_per_s']:,.0f} |",
      f"| matmul GFLOP/s in training | {result['jax']['gflops']:.1f} | "
      f"{result['torch']['gflops']:.1f} |",
      f"| fraction of peak float32 matmul ({result['peak_gflops']:.1f} GFLOP/s) | "
      f"{result['jax']['fraction_of_peak']:.0%} | "
      f"{result['torch']['fraction_of_peak']:.0%} |",
      f"| compile (JAX) / first epoch (PyTorch), s | "
      f"{result['jax_compile_seconds']:.2f} | "
      f"{result['torch_first_epoch_seconds']:.2f} |",
      f"| test loss after {epochs} epochs (nats/image) | "
      f"{result['jax']['test']['loss']:.2f} | "
      f"{result['torch']['test']['loss']:.2f} |",
  ]
  machine = result['machine']
  return '\n'.join([
      f"Speed-up JAX / PyTorch: **{result['speedup']:.2f}x** "
      f"({machine['cpu_count']} CPUs, {machine['processor']}, "
      f"jax {machine['jax']} on {machine['jax_backend']}, "
      f"torch {machine['torch']})",
      '',
      *rows,
      '',
      f"float32 {result['matmul_size']}^3 matmul: JAX "
      f"{result['matmul_gflops']['jax']:.1f}, PyTorch "
      f"{result['matmul_gflops']['torch']:.1f} GFLOP/s (peak = the higher).",
  ]) + '\n'


if __name__ == '__main__':
  app.run(main)
