r"""Epoch time of Burda et al.'s IWAE setup: vae_jax's compiled epoch beside
a PyTorch training loop, at batch 20 and k = 1, 5, 50 importance samples.

  python -m benchmarks.burda_speed --data_dir=/work/shared/data \
      --ks=1,5,50 --epochs=4 --output=/tmp/burda_speed
  python -m benchmarks.burda_speed --data_dir=/work/shared/data --ks=1,5 \
      --epochs=2 --train_subset=2000 --torch_variants=eager   # a smoke run

Why a separate benchmark: benchmarks.run compares the default VAE (grey
pixels, Adam, ReLU, shuffled batches of 128); Burda et al.'s runs
(configs/burda_iwae.py) take 20 images per step and decode k samples each,
so per-step overheads and the k-wide decoder decide the speed there, and
what takes 3,280 epochs needs its own number.

Both sides train the same model and objective for each k: the 784-200-200-50
tanh MLPs of configs/burda_iwae.py (sigma = exp of the second encoder head,
Bernoulli decoder, N(0, I) prior), the IWAE loss -(logsumexp_s log w_s -
log k) averaged over the batch, on dynamically binarized MNIST (a fresh
Bernoulli draw of every batch), 20 images per step in file order (no
shuffling), the configured training images (59,600; --train_subset fewer).
The PyTorch twin (BurdaTwin, iwae_loss) starts from the JAX side's initial
weights (Glorot, decoder bias at the data mean's logit), holds the training
images as a pre-loaded float tensor and slices batches from it, and follows
the same learning-rate stages (optimizers.learning_rate_scale('burda')).

The optimisers differ, honestly stated: vae_jax runs the IWAE code's Adam
(optimizers.burda_adam: second moments start at one, epsilon after the bias
correction, each step uses the moments before its gradient), which
torch.optim has no form of; PyTorch runs torch.optim.Adam (fused on CPU
where the build has it, else foreach) with the same beta1 0.99, beta2 0.999
and eps 1e-4. Both are a few elementwise passes over the ~0.4 M parameters
per step, the same cost, so the update rule does not move the epoch time;
it does make the two training losses drift apart after the first steps.

Timing: for each k the epochs alternate JAX, each PyTorch variant, JAX, ...
in one process. The first epoch of each side holds compilation (XLA's, or
torch.compile's) and is reported on its own, never in the ratio; the ratio
is the median PyTorch epoch over the median JAX epoch of the other epochs
(so --epochs >= 2), above 1 where JAX is faster. JAX's timers stop after
jax.block_until_ready; PyTorch's after the epoch's loss is read (.item()).
Prints a Markdown table and, with --output, writes burda_speed.md and
burda_speed.json (every epoch's seconds and training loss, the machine,
the versions, the date and the command line).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks import torch_reference
from benchmarks.frameworks import dense_train_flops_per_image, paired_speedup
from configs import burda_iwae
from launch import common
from vae_jax import data as data_lib
from vae_jax.data import pipeline
from vae_jax import loop
from vae_jax import models
from vae_jax import optimizers
from vae_jax import train
from vae_jax import validation

# How PyTorch trains, by --torch_variants name; the Adam actually used is
# appended (TorchEpochs.description).
TORCH_VARIANTS = {
    'eager': 'eager; pre-loaded float tensor, batches sliced in order, '
             'torch.bernoulli per batch',
    'compile': 'torch.compile(binarize + noise + forward + IWAE loss, '
               'dynamic=False; AOTAutograd compiles its backward); '
               'pre-loaded float tensor',
}
# The IWAE code's Adam constants (optimizers.burda_adam), given to
# torch.optim.Adam too.
BURDA_ADAM_BETAS = (0.99, 0.999)
BURDA_ADAM_EPS = 1e-4
REPORT_NAME = 'burda_speed'
_LOG_2PI = math.log(2.0 * math.pi)

FLAGS = flags.FLAGS


# ------------------------------------------------------------------ the twin
class BurdaTwin(nn.Module):
  """The PyTorch twin of configs/burda_iwae.py's model (vae_jax MLPVAE with
  tanh, posterior_scale='log_std'): x -> (mean, log sigma), z -> logits.

  Its layers map one to one onto the Flax parameters (flax_layers), so the
  JAX side's weights can be loaded and gradients compared.
  """

  def __init__(self, pixels: int = 784,
               hidden_widths: Sequence[int] = (200, 200),
               latent_size: int = 50):
    super().__init__()
    widths = [pixels, *hidden_widths]
    self.encoder_hidden = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.mean_head = nn.Linear(widths[-1], latent_size)
    self.log_std_head = nn.Linear(widths[-1], latent_size)
    widths = [latent_size, *reversed(hidden_widths)]
    self.decoder_hidden = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.logits_head = nn.Linear(widths[-1], pixels)
    # Glorot uniform weights and zero biases, as vae_jax's 'glorot_uniform'
    # (the benchmark overwrites them with the JAX side's draw).
    for layer in self.modules():
      if isinstance(layer, nn.Linear):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)

  def flax_layers(self) -> dict[str, nn.Linear]:
    """Each Flax parameter group's name -> the layer holding it here.

    vae_jax keeps the name 'enc_log_variance' for the second head whatever
    it outputs; with posterior_scale='log_std' it is log sigma, as here.
    """
    layers = {f'enc_{i}': layer for i, layer in enumerate(self.encoder_hidden)}
    layers.update({f'dec_{i}': layer
                   for i, layer in enumerate(self.decoder_hidden)})
    layers.update(enc_mean=self.mean_head, enc_log_variance=self.log_std_head,
                  dec_logits=self.logits_head)
    return layers

  def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, pixels] -> (mean, log sigma), each [B, latent]."""
    h = x
    for layer in self.encoder_hidden:
      h = torch.tanh(layer(h))
    return self.mean_head(h), self.log_std_head(h)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    """[..., latent] -> Bernoulli logits [..., pixels]."""
    h = z
    for layer in self.decoder_hidden:
      h = torch.tanh(layer(h))
    return self.logits_head(h)


def load_flax_params(twin: BurdaTwin, params) -> None:
  """Copies vae_jax MLPVAE parameters into the twin (Flax kernels are
  [in, out], torch weights [out, in])."""
  layers = twin.flax_layers()
  if set(params) != set(layers):
    raise ValueError(f'Flax parameters {sorted(params)} do not match the '
                     f'twin\'s layers {sorted(layers)}.')
  with torch.no_grad():
    for name, layer in layers.items():
      kernel = np.asarray(params[name]['kernel'], np.float32)
      bias = np.asarray(params[name]['bias'], np.float32)
      layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
      layer.bias.copy_(torch.from_numpy(bias.copy()))


def flax_layout_grads(twin: BurdaTwin) -> dict[str, dict[str, np.ndarray]]:
  """The twin's .grad in the Flax parameters' names and layout."""
  return {name: {'kernel': layer.weight.grad.detach().cpu().numpy().T,
                 'bias': layer.bias.grad.detach().cpu().numpy()}
          for name, layer in twin.flax_layers().items()}


def log_importance_weights(twin: BurdaTwin, x: torch.Tensor,
                           eps: torch.Tensor) -> torch.Tensor:
  """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x), z_s = mu + sigma eps_s.

  Args:
    x: binary images [B, pixels].
    eps: the standard-normal noise [k, B, latent], passed in so that a test
      can give both frameworks the same draws.

  Returns:
    [k, B].
  """
  mean, log_std = twin.encode(x)
  z = mean + torch.exp(log_std) * eps
  logits = twin.decode(z)
  log_likelihood = -F.binary_cross_entropy_with_logits(
      logits, x.expand_as(logits), reduction='none').sum(-1)
  log_prior = -0.5 * (z.square() + _LOG_2PI).sum(-1)
  # (z - mean) / sigma is eps: the posterior density needs no division.
  log_posterior = -(0.5 * (eps.square() + _LOG_2PI) + log_std).sum(-1)
  return log_likelihood + log_prior - log_posterior


def iwae_loss(twin: BurdaTwin, x: torch.Tensor,
              eps: torch.Tensor) -> torch.Tensor:
  """Minus the IWAE bound, log (1/k) sum_s w_s, averaged over the batch
  (k = eps.shape[0]; k = 1 is the ELBO with a sampled KL)."""
  log_weights = log_importance_weights(twin, x, eps)
  bound = torch.logsumexp(log_weights, dim=0) - math.log(eps.shape[0])
  return -bound.mean()


def burda_config(num_samples: int, data_dir: str | None = None,
                 train_subset: int | None = None) -> ml_collections.ConfigDict:
  """configs/burda_iwae.py's IWAE member with k = num_samples."""
  config = burda_iwae.get_config(f'iwae_k{num_samples}')
  config.num_samples = num_samples
  if data_dir is not None:
    config.data.dir = data_dir
  if train_subset is not None:
    config.data.train_subset = train_subset
  return config


def train_flops_per_image(params, num_samples: int) -> float:
  """Dense-layer FLOPs of one training image: the encoder once, the decoder
  k times (forward and backward, as frameworks.dense_train_flops_per_image
  counts them); the progress lines scale their ETAs by it."""
  encoder = {name: p for name, p in params.items() if name.startswith('enc')}
  decoder = {name: p for name, p in params.items() if name.startswith('dec')}
  return (dense_train_flops_per_image(encoder)
          + num_samples * dense_train_flops_per_image(decoder))


# ------------------------------------------------------------------ the sides
class JaxEpochs:
  """vae_jax's side: train.make_train_epoch of the config, jit-compiled with
  the state donated, exactly as launch.train runs it."""

  description = ('jit-compiled epoch (lax.scan over the batches, '
                 'binarization inside); optimizers.burda_adam')

  def __init__(self, config: ml_collections.ConfigDict,
               dataset: data_lib.Dataset):
    model = models.build_model(config.model, dataset.image_shape)
    optimizer = optimizers.make_optimizer(config.optimizer)
    self.hparams = train.hyperparams_from_config(config)
    self.state = train.create_train_state(
        model, optimizer, self.hparams, dataset.image_shape,
        train.initial_output_bias(config.model, dataset.train_images))
    # Copied now: the first epoch donates the state's buffers.
    self.initial_params = jax.tree.map(np.array, self.state.params)
    self.data = pipeline.device_data(dataset.train_images,
                                     dataset.train_labels)
    self._epoch = jax.jit(
        train.make_train_epoch(model, optimizer, config.batch_size,
                               config.data.preprocessing, config.loss,
                               config.scan_unroll,
                               **train.epoch_options(config)),
        donate_argnums=0)

  def compile(self) -> float:
    """Compiles the epoch ahead of time; returns the seconds it took."""
    start = time.perf_counter()
    self._epoch = self._epoch.lower(self.state, self.hparams, self.data,
                                    jnp.int32(1)).compile()
    return time.perf_counter() - start

  def train_epoch(self, epoch: int) -> tuple[float, float]:
    """Trains epoch `epoch` (1, 2, ...); returns (seconds, mean loss)."""
    start = time.perf_counter()
    self.state, metrics = self._epoch(self.state, self.hparams, self.data,
                                      jnp.int32(epoch))
    jax.block_until_ready((self.state, metrics))
    seconds = time.perf_counter() - start
    return seconds, float(metrics['loss'])


class TorchEpochs:
  """A PyTorch loop over the pre-loaded images in file order, as one writes
  it for speed: no DataLoader, a batch is a slice of one float tensor,
  binarized with torch.bernoulli, the noise drawn with torch.randn."""

  def __init__(self, variant: str, twin: BurdaTwin, float_images: torch.Tensor,
               batch_size: int, num_samples: int, learning_rate: float,
               lr_schedule: str):
    """
    Args:
      variant: a key of TORCH_VARIANTS.
      twin: the model, on the device the images are on.
      float_images: [N, pixels] grey levels in [0, 1], shared between
        variants.
      batch_size, num_samples, learning_rate, lr_schedule: the config's.
    """
    if variant not in TORCH_VARIANTS:
      raise ValueError(f'Unknown PyTorch variant {variant!r}; choose from '
                       f'{tuple(TORCH_VARIANTS)}.')
    self.variant, self.twin, self.images = variant, twin, float_images
    self.batch_size, self.num_samples = batch_size, num_samples
    self.steps = float_images.shape[0] // batch_size
    if self.steps == 0:
      raise ValueError(f'{float_images.shape[0]} training images are fewer '
                       f'than one batch of {batch_size}.')
    self.learning_rate = learning_rate
    self.lr_scale = optimizers.learning_rate_scale(lr_schedule, self.steps)
    self.optimizer, adam_label = torch_reference.make_adam(
        twin.parameters(), learning_rate, fused=True)
    for group in self.optimizer.param_groups:
      group.update(betas=BURDA_ADAM_BETAS, eps=BURDA_ADAM_EPS)
    self.description = (f'{TORCH_VARIANTS[variant]}; {adam_label}, betas '
                        f'{BURDA_ADAM_BETAS}, eps {BURDA_ADAM_EPS:g}')
    self._loss = (torch.compile(self._sampled_loss, dynamic=False)
                  if variant == 'compile' else self._sampled_loss)

  def _sampled_loss(self, grey: torch.Tensor) -> torch.Tensor:
    x = torch.bernoulli(grey)
    eps = torch.randn(
        (self.num_samples, grey.shape[0], self.twin.mean_head.out_features),
        device=grey.device)
    return iwae_loss(self.twin, x, eps)

  def train_epoch(self, epoch: int) -> tuple[float, float]:
    """Trains epoch `epoch` (1, 2, ...); returns (seconds, mean loss)."""
    # The config's stages, as the JAX step reads them from its step count.
    learning_rate = self.learning_rate * float(
        self.lr_scale((epoch - 1) * self.steps))
    for group in self.optimizer.param_groups:
      group['lr'] = learning_rate
    self.twin.train()
    start = time.perf_counter()
    # Summed on the device so that no step waits for a host transfer.
    loss_sum = torch.zeros((), device=self.images.device)
    for step in range(self.steps):
      grey = self.images[step * self.batch_size:(step + 1) * self.batch_size]
      loss = self._loss(grey)
      self.optimizer.zero_grad(set_to_none=True)
      loss.backward()
      self.optimizer.step()
      loss_sum += loss.detach()
    mean_loss = (loss_sum / self.steps).item()  # waits for the device
    return time.perf_counter() - start, mean_loss


# ----------------------------------------------------------------- benchmark
def check_epochs(epochs: int) -> None:
  """Refuses fewer than 2 epochs: the first holds compilation and is never
  timed, so with one there would be nothing to compare."""
  if epochs < 2:
    raise app.UsageError(
        f'--epochs={epochs}: the first epoch of each side holds compilation '
        'and is reported apart, never in the ratio, so at least 2 epochs are '
        'needed (--epochs=2 times one epoch per side; more give a steadier '
        'median).')


def parse_ks(values: Sequence[str | int]) -> list[int]:
  """--ks as whole numbers >= 1, in the order given, each once."""
  ks = []
  for value in values:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
      raise app.UsageError(f'--ks: {value!r} is not a whole number of '
                           'importance samples (1 or more).')
    if int(text) not in ks:
      ks.append(int(text))
  if not ks:
    raise app.UsageError('--ks: give at least one k, e.g. --ks=1,5,50.')
  return ks


def check_variants(variants: Sequence[str]) -> list[str]:
  """--torch_variants, each once; an unknown name fails before any work."""
  variants = list(dict.fromkeys(variants))
  unknown = sorted(set(variants) - set(TORCH_VARIANTS))
  if unknown or not variants:
    raise app.UsageError(f'--torch_variants: unknown or none {unknown}; '
                         f'choose from {tuple(TORCH_VARIANTS)}.')
  return variants


def _median_seconds_and_rate(seconds: list[float],
                             images_per_epoch: int) -> dict:
  median = float(np.median(seconds))
  return {'median_epoch_seconds': median,
          'img_per_s': images_per_epoch / median}


def benchmark_one_k(config: ml_collections.ConfigDict,
                    dataset: data_lib.Dataset, float_images: torch.Tensor,
                    variants: Sequence[str], epochs: int,
                    later_ks: Sequence[int] = ()) -> dict:
  """JAX and each PyTorch variant, `epochs` epochs each, interleaved.

  Args:
    config: burda_config(k, ...).
    dataset: the training images (uint8 [N, H, W]).
    float_images: the same images as a [N, H * W] float tensor in [0, 1],
      on PyTorch's device.
    variants: keys of TORCH_VARIANTS.
    epochs: >= 2; the first is compilation and warm-up.
    later_ks: the k still to run after this one, for the ETA.

  Returns:
    The row of this k (see run_benchmark).
  """
  k = config.num_samples
  images_per_epoch = (len(dataset.train_images) // config.batch_size
                      * config.batch_size)
  jax_side = JaxEpochs(config, dataset)
  flops_per_image = train_flops_per_image(jax_side.initial_params, k)
  compile_seconds = jax_side.compile()
  logging.warning('k=%d: JAX epoch compiled in %.1f s', k, compile_seconds)

  torch.manual_seed(config.seed)  # the binarization and the noise
  sides: dict[str, TorchEpochs] = {}
  for variant in variants:
    twin = BurdaTwin(dataset.image_shape[0] * dataset.image_shape[1],
                     config.model.encoder_widths, config.model.latent_size)
    load_flax_params(twin, jax_side.initial_params)
    sides[variant] = TorchEpochs(
        variant, twin.to(float_images.device), float_images,
        config.batch_size, k, config.learning_rate, config.lr_schedule)

  names = ['jax', *variants]
  seconds = {name: [] for name in names}
  losses = {name: [] for name in names}
  unavailable = {}
  round_seconds = []
  for epoch in range(1, epochs + 1):
    round_start = time.perf_counter()
    epoch_seconds, loss = jax_side.train_epoch(epoch)
    if epoch == 1:
      epoch_seconds += compile_seconds
    seconds['jax'].append(epoch_seconds)
    losses['jax'].append(loss)
    for variant, side in list(sides.items()):
      try:
        epoch_seconds, loss = side.train_epoch(epoch)
      except Exception as error:
        # torch.compile needs a working C++ (or Triton) toolchain; without
        # one that variant is reported as unavailable, not fatal.
        if variant != 'compile':
          raise
        unavailable[variant] = f'{type(error).__name__}: {error}'[:300]
        logging.warning('k=%d: PyTorch %s unavailable: %s', k, variant,
                        unavailable[variant])
        del sides[variant]
        continue
      seconds[variant].append(epoch_seconds)
      losses[variant].append(loss)
    round_seconds.append(time.perf_counter() - round_start)
    _log_progress(k, epoch, epochs, images_per_epoch, seconds,
                  [n for n in names if n not in unavailable], round_seconds,
                  flops_per_image,
                  [train_flops_per_image(jax_side.initial_params, later)
                   for later in later_ks])

  jax_timed = seconds['jax'][1:]
  jax_result = {
      'description': JaxEpochs.description,
      'compile_seconds': compile_seconds,
      'first_epoch_seconds': seconds['jax'][0],
      'epoch_seconds': jax_timed, 'train_loss': losses['jax'],
      **_median_seconds_and_rate(jax_timed, images_per_epoch)}
  torch_results = {}
  for variant, side in sides.items():
    timed = seconds[variant][1:]
    r = {'description': side.description,
         'first_epoch_seconds': seconds[variant][0], 'epoch_seconds': timed,
         'train_loss': losses[variant],
         **_median_seconds_and_rate(timed, images_per_epoch)}
    r['ratio_torch_over_jax'] = (r['median_epoch_seconds']
                                 / jax_result['median_epoch_seconds'])
    # Each round's own ratio shares that round's machine load; their
    # quartiles say how far the load moved the ratio of medians.
    r['paired_ratio'] = paired_speedup(jax_timed, timed)
    torch_results[variant] = r
  return {'k': k, 'images_per_epoch': images_per_epoch,
          'steps_per_epoch': images_per_epoch // config.batch_size,
          'train_flops_per_image': flops_per_image,
          'jax': jax_result, 'torch': torch_results,
          'torch_unavailable': unavailable}


def _log_progress(k: int, epoch: int, epochs: int, images_per_epoch: int,
                  seconds: dict[str, list[float]], names: list[str],
                  round_seconds: list[float], flops_per_image: float,
                  later_flops: list[float]) -> None:
  """One line per round: each side's epoch and images/s, and the ETA.

  The ETA takes the last round's seconds for this k's remaining rounds and,
  for the k still to come, scales them by the dense FLOPs per image (the
  decoder runs k times), which is rough where per-step overheads dominate.
  """
  last = round_seconds[-1]
  this_k = (epochs - epoch) * last
  later = sum(epochs * last * flops / flops_per_image for flops in later_flops)
  sides = ', '.join(
      f'{name} {seconds[name][-1]:.2f} s '
      f'({images_per_epoch / seconds[name][-1]:,.0f} img/s)'
      for name in names)
  warm = ' (compilation included)' if epoch == 1 else ''
  eta = f'ETA {loop.format_duration(this_k + later)}'
  if later_flops:
    eta += f' (about; this k {loop.format_duration(this_k)})'
  logging.warning('k=%d epoch %d/%d%s: %s; %s', k, epoch, epochs, warm, sides,
                  eta)


def run_benchmark(*, ks: Sequence[int], epochs: int,
                  variants: Sequence[str] = tuple(TORCH_VARIANTS),
                  data_dir: str | None = None,
                  train_subset: int | None = None,
                  dataset: data_lib.Dataset | None = None,
                  torch_threads: int | None = None,
                  command: str | None = None) -> dict:
  """Benchmarks every k in turn (benchmark_one_k) on one loaded data set.

  Args:
    ks: importance samples, one row each.
    epochs: epochs per side and k (>= 2, see check_epochs).
    variants: keys of TORCH_VARIANTS.
    data_dir, train_subset: as the flags.
    dataset: replaces the loaded MNIST (its training images are used as
      they are; train_subset still applies when loading).
    torch_threads: PyTorch's CPU threads; None: one per usable CPU, as XLA
      uses.
    command: the command line, recorded in the result.

  Returns:
    {'rows': [one dict per k], 'setup', 'machine', 'epochs', 'date',
     'command'}.
  """
  check_epochs(epochs)
  ks = parse_ks(ks)
  variants = check_variants(variants)
  configs = [burda_config(k, data_dir, train_subset) for k in ks]
  if dataset is None:
    dataset = pipeline.load_data(configs[0])
  for config in configs:
    validation.validate(config)
    validation.validate_with_data(config, len(dataset.train_images))

  torch_device = torch_reference.default_device()
  if torch_device.type == 'cpu':
    torch.set_num_threads(torch_threads or common.usable_cpus())
  else:
    # JAX multiplies float32 in TF32 on recent GPUs by default; PyTorch only
    # when asked (as benchmarks.frameworks does).
    torch.set_float32_matmul_precision('high')
  pixels = dataset.image_shape[0] * dataset.image_shape[1]
  # One float copy shared by the variants, as each would hold.
  float_images = torch.from_numpy(
      np.ascontiguousarray(dataset.train_images, np.uint8).reshape(-1, pixels)
  ).to(torch_device).float().div_(255)

  rows = []
  for index, config in enumerate(configs):
    rows.append(benchmark_one_k(config, dataset, float_images, variants,
                                epochs, later_ks=ks[index + 1:]))
  first = configs[0]
  return {
      'setup': {
          'config': 'configs/burda_iwae.py', 'objective': 'iwae',
          'model': {'pixels': pixels,
                    'encoder_widths': list(first.model.encoder_widths),
                    'latent_size': first.model.latent_size,
                    'activation': first.model.activation,
                    'posterior_scale': first.model.posterior_scale},
          'batch_size': first.batch_size,
          'preprocessing': first.data.preprocessing,
          'shuffle': first.data.shuffle,
          'train_images': len(dataset.train_images),
          'jax_optimizer': first.optimizer, 'lr_schedule': first.lr_schedule,
          'learning_rate': first.learning_rate,
          'torch_variants': list(variants)},
      'machine': {
          'processor': platform.processor() or platform.machine(),
          'platform': platform.platform(), 'cpu_count': os.cpu_count(),
          'usable_cpus': common.usable_cpus(),
          'jax': jax.__version__, 'jax_backend': jax.default_backend(),
          'torch': torch.__version__, 'torch_device': str(torch_device),
          'torch_threads': torch.get_num_threads()},
      'epochs': epochs, 'epochs_timed': epochs - 1,
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'command': command,
      'rows': rows,
  }


# -------------------------------------------------------------------- report
def to_markdown(result: dict) -> str:
  """The table (a row per k and PyTorch variant) and what it rests on."""
  header = ['k', 'PyTorch variant', 'JAX s/epoch', 'PyTorch s/epoch',
            'ratio PyTorch/JAX', 'per-round ratio (quartiles)',
            'JAX images/s', 'PyTorch images/s',
            'first epoch s: JAX (compile) / PyTorch']
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join(['---:', '---'] + ['---:'] * (len(header) - 2)) + '|']
  descriptions, losses = {}, []
  for row in result['rows']:
    jax_result = row['jax']
    for variant, r in row['torch'].items():
      descriptions[variant] = r['description']
      paired = r['paired_ratio']
      cells = [
          str(row['k']), variant,
          f"{jax_result['median_epoch_seconds']:.2f}",
          f"{r['median_epoch_seconds']:.2f}",
          f"**{r['ratio_torch_over_jax']:.2f}**",
          (f"{paired['low']:.2f}-{paired['high']:.2f}"
           if paired and result['epochs_timed'] > 1 else '—'),
          f"{jax_result['img_per_s']:,.0f}", f"{r['img_per_s']:,.0f}",
          f"{jax_result['first_epoch_seconds']:.1f} "
          f"({jax_result['compile_seconds']:.1f}) / "
          f"{r['first_epoch_seconds']:.1f}"]
      lines.append('| ' + ' | '.join(cells) + ' |')
      losses.append(f"k={row['k']} JAX {jax_result['train_loss'][-1]:.2f}, "
                    f"{variant} {r['train_loss'][-1]:.2f}")
    for variant, reason in row['torch_unavailable'].items():
      cells = [str(row['k']), variant,
               f'unavailable: {reason}'.replace('|', '/')]
      lines.append('| ' + ' | '.join(cells + ['—'] * (len(header) - 3))
                   + ' |')

  setup, machine = result['setup'], result['machine']
  first_row = result['rows'][0]
  model = setup['model']
  widths = '-'.join(str(width) for width in [
      model['pixels'], *model['encoder_widths'], model['latent_size']])
  notes = [
      f"Burda et al.'s IWAE setup (configs/burda_iwae.py): {widths} "
      f"{model['activation']} MLPs, batch {setup['batch_size']}, "
      f"dynamic binarization, no shuffling, "
      f"{first_row['images_per_epoch']:,} images "
      f"({first_row['steps_per_epoch']:,} steps) per epoch.",
      '',
      f"Seconds per epoch: the median of {result['epochs_timed']} epoch(s) "
      f"per side after the first, epochs interleaved JAX, "
      f"{', '.join(setup['torch_variants'])}, JAX, ... The first epoch "
      "(compilation included) is shown apart and never enters the ratio. "
      "Ratio > 1: JAX's epoch is faster.",
      '',
      f'JAX: {JaxEpochs.description}.',
      *[f'PyTorch {variant}: {text}.'
        for variant, text in descriptions.items()],
      'The optimisers differ in their update rule (vae_jax: the IWAE code\'s '
      'Adam, second moments from one; PyTorch: torch.optim.Adam), not in its '
      'cost: both are elementwise passes over the parameters.',
      '',
      'Training loss (nats/image) of the last epoch: ' + '; '.join(losses)
      + '.',
      '',
      f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs "
      f"({machine['usable_cpus']} usable), jax {machine['jax']} on "
      f"{machine['jax_backend']}, torch {machine['torch']} on "
      f"{machine['torch_device']} (torch threads: {machine['torch_threads']}); "
      f"{result['date']}.",
      f"Command: `{result['command']}`" if result['command'] else '',
  ]
  return '\n'.join(lines + [''] + notes).rstrip() + '\n'


def write_report(result: dict, markdown: str, output: str | Path) -> None:
  """Writes REPORT_NAME.json and REPORT_NAME.md into `output`."""
  out = Path(output)
  out.mkdir(parents=True, exist_ok=True)
  (out / f'{REPORT_NAME}.json').write_text(json.dumps(result, indent=2))
  (out / f'{REPORT_NAME}.md').write_text(markdown)


def define_flags() -> None:
  """The command line's flags, defined only when it runs: the test suite
  imports this module beside launchers whose flags share these names."""
  flags.DEFINE_string('data_dir', None, 'Directory holding mnist/ (None: '
                      "vae_jax's usual search: $VAE_JAX_DATA_DIR, the cache).")
  flags.DEFINE_list('ks', ['1', '5', '50'], 'Importance samples k, one row '
                    'each.')
  flags.DEFINE_integer('epochs', 4, 'Epochs per side and k, interleaved; the '
                       'first (compilation) is reported apart, the others are '
                       'timed: at least 2.')
  flags.DEFINE_integer('train_subset', None, 'Train on the first N images '
                       '(None: the config\'s 59,600); shortens epochs for tests '
                       'and smoke runs.')
  flags.DEFINE_list('torch_variants', list(TORCH_VARIANTS),
                    f'PyTorch loops to time beside JAX, from '
                    f'{tuple(TORCH_VARIANTS)}.')
  flags.DEFINE_integer(
      'torch_threads', None, "PyTorch's CPU threads (None: one per usable CPU, "
      'as XLA uses). On a machine other work keeps busy, threads waiting at '
      "each small operation's barrier can slow PyTorch's steps many times over "
      '(seen here: 300 ms a step at 2 threads under load, 4 ms at 1): time on '
      'an idle machine, or say which setting a number used.')
  flags.DEFINE_string('workdir', None, f'Directory for {REPORT_NAME}.json '
                      f'and {REPORT_NAME}.md.')
  common.define_old_spelling('output', 'workdir')


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  check_epochs(FLAGS.epochs)
  command = ' '.join([os.path.basename(sys.executable), '-m',
                      'benchmarks.burda_speed', *sys.argv[1:]])
  result = run_benchmark(ks=FLAGS.ks, epochs=FLAGS.epochs,
                         variants=FLAGS.torch_variants,
                         data_dir=FLAGS.data_dir,
                         train_subset=FLAGS.train_subset,
                         torch_threads=FLAGS.torch_threads, command=command)
  markdown = to_markdown(result)
  print(markdown)
  if FLAGS.workdir:
    write_report(result, markdown, FLAGS.workdir)


if __name__ == '__main__':
  define_flags()
  common.run(main)
