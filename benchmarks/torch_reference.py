"""PyTorch implementations of vae_jax models, for side-by-side comparisons.

Optional: this module imports torch; nothing else in vae_jax imports it.
The models mirror vae_jax.models layer for layer (same widths, activations,
initialisation scheme, per-image summed BCE + KL), so a benchmark compares
the frameworks, not two different programs. VariantTrainer trains them in
the styles people write PyTorch loops in (VARIANTS: a DataLoader as in
pytorch/examples, pre-loaded tensors, fused Adam, torch.compile).
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks import peak_memory


def _init_layer(layer: nn.Module, scheme: str) -> None:
  if scheme == 'torch_default':
    return  # what the layer's constructor already did
  if scheme == 'kaiming_normal':
    nn.init.kaiming_normal_(layer.weight, mode='fan_in', nonlinearity='relu')
    nn.init.zeros_(layer.bias)
    return
  if scheme == 'lecun_normal':
    bound = 1.0 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(layer.weight)[0])
    nn.init.trunc_normal_(layer.weight, std=bound / 0.87962566103423978,
                          a=-2 * bound / 0.87962566103423978,
                          b=2 * bound / 0.87962566103423978)
    nn.init.zeros_(layer.bias)
    return
  raise ValueError(f'Unknown init scheme {scheme!r}.')


class MLPVAE(nn.Module):
  """The PyTorch twin of vae_jax.models.MLPVAE (ReLU activations)."""

  def __init__(self, pixels: int, latent_size: int,
               encoder_widths: Sequence[int] = (400,),
               decoder_widths: Sequence[int] | None = None,
               init_scheme: str = 'torch_default'):
    super().__init__()
    widths = [pixels, *encoder_widths]
    self.encoder = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.mean_head = nn.Linear(widths[-1], latent_size)
    self.log_variance_head = nn.Linear(widths[-1], latent_size)
    decoder_widths = (list(reversed(encoder_widths)) if decoder_widths is None
                      else list(decoder_widths))
    widths = [latent_size, *decoder_widths]
    self.decoder = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.logits_head = nn.Linear(widths[-1], pixels)
    for module in self.modules():
      if isinstance(module, nn.Linear):
        _init_layer(module, init_scheme)

  def encode(self, x: torch.Tensor):
    h = x.flatten(1)
    for layer in self.encoder:
      h = F.relu(layer(h))
    return self.mean_head(h), self.log_variance_head(h)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    h = z
    for layer in self.decoder:
      h = F.relu(layer(h))
    return self.logits_head(h)

  def forward(self, x: torch.Tensor):
    mean, log_variance = self.encode(x)
    z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
    return self.decode(z), mean, log_variance


def mlp_params_for_jax(twin: MLPVAE) -> dict[str, dict[str, np.ndarray]]:
  """The twin's weights as vae_jax.models.MLPVAE parameters (float32 numpy;
  kernels transposed to Flax's [in, out])."""
  layers = {f'enc_{i}': layer for i, layer in enumerate(twin.encoder)}
  layers.update({f'dec_{i}': layer for i, layer in enumerate(twin.decoder)})
  layers.update(enc_mean=twin.mean_head, enc_log_variance=twin.log_variance_head,
                dec_logits=twin.logits_head)
  return {name: {'kernel': layer.weight.detach().cpu().numpy().T.copy(),
                 'bias': layer.bias.detach().cpu().numpy().copy()}
          for name, layer in layers.items()}


class ConvVAE(nn.Module):
  """The PyTorch twin of vae_jax.models.ConvVAE (Study E), NCHW."""

  def __init__(self, image_shape: Sequence[int], latent_size: int,
               init_scheme: str = 'torch_default'):
    super().__init__()
    self.image_shape = tuple(image_shape)
    conv = lambda cin, cout, stride: nn.Conv2d(cin, cout, 3, stride, 1)
    self.encoder = nn.ModuleList([conv(1, 32, 1), conv(32, 64, 2),
                                  conv(64, 64, 2), conv(64, 64, 1)])
    height, width = (-(-s // 4) for s in self.image_shape)
    self.bottleneck = (64, height, width)
    flat = 64 * height * width
    self.mean_head = nn.Linear(flat, latent_size)
    self.log_variance_head = nn.Linear(flat, latent_size)
    self.decoder_input = nn.Linear(latent_size, flat)
    self.decoder = nn.ModuleList([
        nn.ConvTranspose2d(64, 64, 3, 1, 1), nn.ConvTranspose2d(64, 64, 3, 2, 1),
        nn.ConvTranspose2d(64, 32, 3, 2, 0), nn.ConvTranspose2d(32, 1, 3, 1, 0)])
    for module in self.modules():
      if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        _init_layer(module, init_scheme)

  def encode(self, x: torch.Tensor):
    h = x.unsqueeze(1)
    for layer in self.encoder:
      h = F.leaky_relu(layer(h))
    h = h.flatten(1)
    return self.mean_head(h), self.log_variance_head(h)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    h = self.decoder_input(z).view(z.shape[0], *self.bottleneck)
    for i, layer in enumerate(self.decoder):
      h = layer(h)
      if i < len(self.decoder) - 1:
        h = F.leaky_relu(h)
    height, width = self.image_shape
    return h[:, 0, :height, :width].flatten(1)

  forward = MLPVAE.forward


RECONSTRUCTION_LOSSES = {
    'bce': lambda logits, x: F.binary_cross_entropy_with_logits(
        logits, x, reduction='sum'),
    'mse': lambda logits, x: F.mse_loss(torch.sigmoid(logits), x,
                                        reduction='sum'),
    'mae': lambda logits, x: F.l1_loss(torch.sigmoid(logits), x,
                                       reduction='sum'),
}


def negative_elbo(logits, x, mean, log_variance, beta: float = 1.0,
                  loss: str = 'bce'):
  """Per-image means of (reconstruction, KL, loss) for a N(0, I) prior."""
  batch = x.shape[0]
  reconstruction = RECONSTRUCTION_LOSSES[loss](logits, x.flatten(1)) / batch
  kl = -0.5 * torch.sum(1 + log_variance - mean.pow(2) - log_variance.exp()
                        ) / batch
  return reconstruction, kl, reconstruction + beta * kl


# The data pipeline and compilation of each variant; VariantTrainer.description
# adds the Adam implementation used (fused for 'fused_adam' and 'compiled').
VARIANTS = {
    'dataloader': 'DataLoader over a uint8 TensorDataset (shuffle, '
                  'num_workers=0), converted per batch',
    'preloaded': 'pre-loaded float tensors, randperm batches',
    'fused_adam': 'pre-loaded float tensors, randperm batches',
    'compiled': 'pre-loaded float tensors, torch.compile(forward + loss)',
}


def default_device() -> torch.device:
  """CUDA where available (JAX takes its default backend), else CPU."""
  return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def build_model(name: str, image_shape: Sequence[int], latent_size: int,
                encoder_widths: Sequence[int] = (400,),
                decoder_widths: Sequence[int] | None = None,
                init_scheme: str = 'torch_default') -> nn.Module:
  """The twin of vae_jax.models.build_model for 'mlp_vae' and 'conv_vae'."""
  if name == 'mlp_vae':
    return MLPVAE(image_shape[0] * image_shape[1], latent_size,
                  encoder_widths, decoder_widths, init_scheme)
  if name == 'conv_vae':
    return ConvVAE(image_shape, latent_size, init_scheme)
  raise ValueError(f'No PyTorch twin of model {name!r}; there are mlp_vae '
                   'and conv_vae.')


def twin_kwargs(config, image_shape: Sequence[int]) -> dict:
  """build_model's arguments for the twin of a vae_jax config's model."""
  decoder_widths = config.model.decoder_widths
  return {'name': config.model.name, 'image_shape': list(image_shape),
          'latent_size': config.model.latent_size,
          'encoder_widths': list(config.model.encoder_widths),
          'decoder_widths': (None if decoder_widths is None
                             else list(decoder_widths)),
          'init_scheme': config.model.init_scheme}


def build_twin(config, image_shape: Sequence[int], seed: int) -> nn.Module:
  """The twin of config.model, with the weights torch.manual_seed(seed) draws."""
  torch.manual_seed(seed)
  return build_model(**twin_kwargs(config, image_shape))


def make_adam(parameters, learning_rate: float,
              fused: bool = False) -> tuple[torch.optim.Optimizer, str]:
  """Adam with PyTorch's defaults, and a label of the implementation used.

  fused=True asks for the single-kernel step; a build or device without one
  gets the multi-tensor (foreach) step instead, and the label says so.
  """
  parameters = list(parameters)
  if fused:
    try:
      return (torch.optim.Adam(parameters, lr=learning_rate, fused=True),
              'Adam(fused=True)')
    except RuntimeError as error:
      return (torch.optim.Adam(parameters, lr=learning_rate, foreach=True),
              f'Adam(foreach=True), fused unavailable: {error}')
  # PyTorch picks foreach only on accelerators; on CPU its default is a
  # Python loop over the parameters.
  default = 'foreach' if parameters[0].device.type != 'cpu' else 'for-loop'
  return (torch.optim.Adam(parameters, lr=learning_rate),
          f'Adam (default: {default})')


class _Permutation(torch.utils.data.Sampler):
  """Indices in the order of one torch.randperm(size, generator) per epoch."""

  def __init__(self, size: int, generator: torch.Generator):
    super().__init__()
    self.size, self.generator = size, generator

  def __iter__(self):
    return iter(torch.randperm(self.size, generator=self.generator).tolist())

  def __len__(self) -> int:
    return self.size


class VariantTrainer:
  """Trains a model epoch by epoch in the style of one of VARIANTS.

  Every variant shuffles with torch.randperm(N, generator) from its own
  generator seeded with `seed`, and skips the N % batch_size images left over
  (as the JAX loop does), so the eager variants given the same initial model
  and the same global RNG state (the posterior samples) train identically.
  """

  def __init__(self, variant: str, model: nn.Module, images: np.ndarray,
               batch_size: int, learning_rate: float, seed: int,
               loss: str = 'bce', beta: float = 1.0,
               device: torch.device | str | None = None,
               float_images: torch.Tensor | None = None):
    """Moves `model` to the device and prepares the variant's data pipeline.

    Args:
      variant: a key of VARIANTS.
      model: an MLPVAE or ConvVAE, already initialised.
      images: uint8 [N, H, W] training images.
      batch_size, learning_rate: as in the JAX config (Adam).
      seed: seeds the shuffle.
      loss, beta: the objective, as for negative_elbo.
      device: default_device() when None.
      float_images: `images` / 255 as float32 on the device; the pre-loaded
        variants use it instead of making their own copy (several can share
        one).
    """
    if variant not in VARIANTS:
      raise ValueError(f'Unknown PyTorch variant {variant!r}; choose from '
                       f'{sorted(VARIANTS)}.')
    self.variant = variant
    self.device = torch.device(device) if device else default_device()
    self.model = model.to(self.device)
    self.batch_size = batch_size
    self.steps = images.shape[0] // batch_size
    if self.steps == 0:
      raise ValueError(f'{images.shape[0]} training images are fewer than one '
                       f'batch of {batch_size}.')
    self.loss, self.beta = loss, beta
    self.generator = torch.Generator().manual_seed(seed)
    self.optimizer, optimizer_label = make_adam(
        model.parameters(), learning_rate,
        fused=variant in ('fused_adam', 'compiled'))
    self.description = f'{VARIANTS[variant]}; {optimizer_label}'
    # Compilation happens on the first call, inside the first epoch: a
    # failure (no C++ compiler, unsupported op) surfaces there.
    self.may_fail = variant == 'compiled'
    self._loss_fn = self._eager_loss
    if variant == 'compiled':
      self._loss_fn = torch.compile(self._eager_loss, dynamic=False)
    uint8 = torch.from_numpy(np.ascontiguousarray(images, np.uint8))
    self._loader = None
    self._images = None
    if variant == 'dataloader':
      dataset = torch.utils.data.TensorDataset(uint8)
      # shuffle=True's RandomSampler draws a second, empty-sliced randperm
      # per epoch; this sampler draws exactly the other variants' one. The
      # loader's own generator takes the per-epoch seed draw that would
      # otherwise consume the global RNG (the posterior samples).
      self._loader = torch.utils.data.DataLoader(
          dataset, batch_size=batch_size, drop_last=True, num_workers=0,
          sampler=_Permutation(len(dataset), self.generator),
          generator=torch.Generator().manual_seed(seed),
          pin_memory=self.device.type == 'cuda')
    elif float_images is not None:
      self._images = float_images
    else:
      # In place: no second float copy at the peak.
      self._images = uint8.to(self.device).float().div_(255)

  def _eager_loss(self, x: torch.Tensor) -> torch.Tensor:
    logits, mean, log_variance = self.model(x)
    return negative_elbo(logits, x, mean, log_variance, beta=self.beta,
                         loss=self.loss)[2]

  def _batches(self):
    if self._loader is not None:
      for (x,) in self._loader:
        yield x.to(self.device, non_blocking=True).float() / 255
      return
    order = torch.randperm(self._images.shape[0],
                           generator=self.generator).to(self.device)
    for i in range(self.steps):
      yield self._images[order[i * self.batch_size:(i + 1) * self.batch_size]]

  def train_epoch(self) -> tuple[float, float]:
    """Trains one epoch; returns (seconds, mean training loss per image)."""
    self.model.train()
    start = time.perf_counter()
    # Summed on the device so that no step waits for a host transfer.
    loss_sum = torch.zeros((), device=self.device)
    for x in self._batches():
      total = self._loss_fn(x)
      self.optimizer.zero_grad(set_to_none=True)
      total.backward()
      self.optimizer.step()
      loss_sum += total.detach()
    mean_loss = (loss_sum / self.steps).item()  # waits for the device
    return time.perf_counter() - start, mean_loss

@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray | torch.Tensor,
             batch_size: int = 1000, loss: str = 'bce',
             beta: float = 1.0) -> dict[str, float]:
  """Per-image test reconstruction, KL and loss (one posterior sample).

  images: uint8 [N, H, W] (rescaled to [0, 1] per batch) or float in [0, 1].
  """
  model.eval()
  device = next(model.parameters()).device
  totals = np.zeros(3)
  for i in range(0, images.shape[0], batch_size):
    x = torch.as_tensor(images[i:i + batch_size]).to(device)
    if x.dtype == torch.uint8:
      x = x.float() / 255
    logits, mean, log_variance = model(x)
    terms = negative_elbo(logits, x, mean, log_variance, beta=beta, loss=loss)
    totals += np.array([t.item() for t in terms]) * x.shape[0]
  totals /= images.shape[0]
  return {'recon': float(totals[0]), 'kl': float(totals[1]),
          'loss': float(totals[2])}


def train_twin(config, dataset, seed: int, epochs: int, device,
               evaluate_every: int = 0,
               on_epoch: Callable[[int, float, float], None] | None = None
               ) -> dict:
  """Trains the twin of a vae_jax config as benchmarks.run's quality mode.

  The twin starts from `build_twin(config, ..., seed)` and trains `epochs`
  epochs on pre-loaded tensors: shuffles from a generator seeded by `seed`,
  posterior noise from torch's global generator (which build_twin seeds).

  Args:
    config: a vae_jax experiment config (model, batch_size, learning_rate,
      loss, beta, eval_batch_size).
    dataset: a vae_jax.data.Dataset (uint8 images).
    evaluate_every: also take the test loss every this many epochs (0: only
      after the last). The evaluations draw their noise from the global
      generator too, so its state is put back after each: a run with them
      trains exactly as one without.
    on_epoch: called as on_epoch(epoch, seconds, train_loss) after each epoch.

  Returns:
    {'test_loss': after the last epoch, 'history': [(epoch, test loss)] of
     every evaluation, the last included}.
  """
  trainer = VariantTrainer(
      'preloaded', build_twin(config, dataset.image_shape, seed),
      dataset.train_images, config.batch_size, config.learning_rate, seed,
      config.loss, config.beta, device)
  history = []
  for epoch in range(1, epochs + 1):
    epoch_seconds, train_loss = trainer.train_epoch()
    if on_epoch is not None:
      on_epoch(epoch, epoch_seconds, train_loss)
    if epoch == epochs or (evaluate_every and epoch % evaluate_every == 0):
      noise_state = torch.get_rng_state()
      loss = evaluate(trainer.model, dataset.test_images,
                      config.eval_batch_size, config.loss, config.beta)['loss']
      torch.set_rng_state(noise_state)
      trainer.model.train()
      history.append((epoch, loss))
  return {'test_loss': history[-1][1], 'history': history}


def measure_memory(spec: dict) -> dict:
  """Peak memory of one variant's first epoch; run it in a fresh process.

  spec (JSON-able): 'variant'; 'model' (keyword arguments of build_model);
  'batch_size', 'learning_rate', 'loss', 'beta', 'seed'; 'data' (an .npz
  with uint8 'train_images'); optional 'threads' and 'device'. The uint8
  data is loaded before the measurement starts, as the JAX side's is, so the
  increase counts the variant's own copies (float images, batches), the
  model, Adam's state, activations and any compilation.

  Returns peak_memory.track's dict, plus 'device_peak_mib' on CUDA, or
  {'error': ...} where the variant cannot run here.
  """
  if spec.get('threads'):
    torch.set_num_threads(spec['threads'])
  device = torch.device(spec.get('device') or default_device())
  with np.load(spec['data']) as arrays:
    images = arrays['train_images']
  if device.type == 'cuda':
    # The CUDA context is runtime, like JAX's backend, which its worker
    # also starts before the baseline.
    torch.zeros(1, device=device)
    torch.cuda.reset_peak_memory_stats(device)
  try:
    with peak_memory.track() as memory:
      torch.manual_seed(spec['seed'])
      model = build_model(**spec['model'])
      trainer = VariantTrainer(
          spec['variant'], model, images, spec['batch_size'],
          spec['learning_rate'], spec['seed'], spec['loss'], spec['beta'],
          device)
      trainer.train_epoch()
  except Exception as error:  # e.g. torch.compile without a compiler
    return {'error': f'{type(error).__name__}: {error}'[:500]}
  if device.type == 'cuda':
    memory['device_peak_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
  return memory


if __name__ == '__main__':
  # python -m benchmarks.torch_reference SPEC_JSON: the benchmark's per-variant
  # memory measurement; prints one JSON line.
  print(json.dumps(measure_memory(json.loads(sys.argv[1]))))
