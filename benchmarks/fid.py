"""JAX FID feature extraction speed beside pytorch-fid's, on the same images.

Both sides run the same network with the same (random) weights on the same
grey 28x28 images, resized to 299x299 inside: vae_jax's jitted
`fid_feature_fn` and pytorch-fid's InceptionV3([3], resize_input=True,
normalize_input=True) in eval mode under torch.no_grad. Repeats alternate
JAX, PyTorch, JAX, PyTorch, ... so that both see the same machine load;
each side is warmed up (JAX compiled) first and its best repeat counts.

  from benchmarks import fid as fid_benchmark
  result = fid_benchmark.benchmark_feature_extraction(64, 32, 3)
  print(fid_benchmark.to_markdown(result))

Needs torch, torchvision and pytorch-fid (the `torch` extra); see
benchmarks.torch_fid_compat for torchvision on a CPU-only torch.
"""

from __future__ import annotations

import platform
import time

import jax
import numpy as np

from launch import common
from vae_jax.evaluation import inception_names
from vae_jax.models import inception

def benchmark_feature_extraction(num_images: int = 64, batch_size: int = 32,
                                 repeats: int = 3, image_size: int = 28,
                                 conv_impl: str = 'auto',
                                 seed: int = 0) -> dict:
  """Times FID feature extraction, JAX beside pytorch-fid, interleaved.

  Args:
    num_images: images per repeat (each side extracts features of all).
    batch_size: images per call on both sides.
    repeats: timed passes per side, after one untimed warm-up pass each.
    image_size: side of the random grey input images.
    conv_impl: vae_jax convolution implementation ('auto', 'matmul', 'xla').
    seed: for the weights and the images.

  Returns:
    {'jax_images_per_s', 'torch_images_per_s', 'ratio' (JAX / torch),
     'jax_seconds', 'torch_seconds' (every repeat), 'max_abs_diff' (between
     the two sides' features), 'feature_scale' (mean |feature|),
     'compile_seconds' (JAX warm-up), 'num_images', 'batch_size',
     'repeats', 'image_size', 'conv_impl', 'backend', 'torch_threads',
     'cpu_count', 'machine'}.
  """
  from benchmarks import torch_fid_compat as compat
  torch, _, _ = compat.import_pytorch_fid()
  state = inception_names.random_state_dict(seed)
  torch_model = compat.build_pytorch_fid_inception(
      {k: torch.from_numpy(v) for k, v in state.items()})
  feature_fn = inception.fid_feature_fn(
      inception_names.state_dict_to_params(state), conv_impl=conv_impl,
      chunk_size=batch_size)
  images = np.random.default_rng(seed).uniform(
      size=(num_images, image_size, image_size)).astype(np.float32)
  batches = [images[i:i + batch_size] for i in range(0, num_images,
                                                      batch_size)]
  torch_batches = [torch.from_numpy(b)[:, None].repeat(1, 3, 1, 1)
                   for b in batches]

  def run_jax():
    return np.concatenate([np.asarray(jax.block_until_ready(feature_fn(b)))
                           for b in batches])

  def run_torch():
    with torch.no_grad():
      return np.concatenate([torch_model(b)[0][:, :, 0, 0].numpy()
                             for b in torch_batches])

  start = time.perf_counter()
  jax_features = run_jax()
  compile_seconds = time.perf_counter() - start
  torch_features = run_torch()
  times = {'jax': [], 'torch': []}
  for _ in range(repeats):
    for name, fn in (('jax', run_jax), ('torch', run_torch)):
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  jax_rate = num_images / min(times['jax'])
  torch_rate = num_images / min(times['torch'])
  return {
      'jax_images_per_s': jax_rate,
      'torch_images_per_s': torch_rate,
      'ratio': jax_rate / torch_rate,
      'jax_seconds': times['jax'],
      'torch_seconds': times['torch'],
      'max_abs_diff': float(np.abs(jax_features - torch_features).max()),
      'feature_scale': float(np.abs(torch_features).mean()),
      'compile_seconds': compile_seconds,
      'num_images': num_images,
      'batch_size': batch_size,
      'repeats': repeats,
      'image_size': image_size,
      'conv_impl': conv_impl,
      'backend': jax.default_backend(),
      'torch_threads': torch.get_num_threads(),
      'cpu_count': common.usable_cpus(),
      'machine': f'{platform.machine()} {platform.processor()}'.strip(),
  }


def to_markdown(result: dict) -> str:
  """A Markdown table of benchmark_feature_extraction's result."""
  seconds = lambda values: ', '.join(f'{v:.2f}' for v in values)
  return '\n'.join([
      f'FID feature extraction: {result["num_images"]} random'
      f' {result["image_size"]}x{result["image_size"]} grey images resized to'
      f' 299x299, batch {result["batch_size"]}, best of {result["repeats"]}'
      f' interleaved repeats ({result["backend"]}, {result["cpu_count"]} CPUs,'
      f' torch threads {result["torch_threads"]}, conv {result["conv_impl"]}).',
      '',
      '| side | images/s | seconds per repeat |',
      '|---|---:|---|',
      f'| vae_jax (jit) | {result["jax_images_per_s"]:.2f} |'
      f' {seconds(result["jax_seconds"])} |',
      f'| pytorch-fid | {result["torch_images_per_s"]:.2f} |'
      f' {seconds(result["torch_seconds"])} |',
      '',
      f'Speed ratio vae_jax / pytorch-fid: **{result["ratio"]:.2f}x**.'
      f' JAX compile + first pass: {result["compile_seconds"]:.1f} s. Max'
      f' |feature difference|: {result["max_abs_diff"]:.2e} (mean |feature|'
      f' {result["feature_scale"]:.3f}).',
  ])


if __name__ == '__main__':
  print(to_markdown(benchmark_feature_extraction()))
