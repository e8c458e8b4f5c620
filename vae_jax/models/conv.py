"""2-d convolutions that are fast on CPU, and equal to XLA's everywhere.

XLA's CPU convolutions, and above all the gradients of strided and transposed
convolutions, are slow. On CPU these layers therefore compute a convolution
as patches @ kernel (one matmul over [B*H'*W', kh*kw*Cin]) and a transposed
convolution as x @ kernel for every tap at once, each tap's result added into
its output phase (sub-pixel form: no multiplications by inserted zeros, no
scatter); elsewhere they call
`lax.conv_general_dilated`. Both give the same numbers (tests).

Layout: images NHWC; kernels [kh, kw, Cin, Cout]. Padding and output padding
follow torch.nn.Conv2d / ConvTranspose2d, so models port one to one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from vae_jax.models.initializers import kernel_init, torch_default_bias_init

IMPLEMENTATIONS = ('auto', 'matmul', 'xla')


def _resolve(impl: str) -> str:
  # On CPU every layer takes the matmul form, stride 1 included: XLA's own
  # CPU convolution is slow inside an epoch's lax.scan (docs/cpu_kernels.md).
  if impl not in IMPLEMENTATIONS:
    raise ValueError(f'Unknown convolution implementation {impl!r}; choose one '
                     f'of {IMPLEMENTATIONS}.')
  if impl == 'auto':
    return 'matmul' if jax.default_backend() == 'cpu' else 'xla'
  return impl


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int = 0,
           impl: str = 'auto') -> jax.Array:
  """torch.nn.functional.conv2d semantics on NHWC.

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout].
    stride, padding: as in PyTorch (symmetric zero padding).
    impl: 'matmul' (patches @ kernel), 'xla', or 'auto' (matmul on CPU).

  Returns:
    [B, (H + 2p - kh) // s + 1, (W + 2p - kw) // s + 1, Cout].
  """
  if _resolve(impl) == 'xla':
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding)] * 2,
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  return _patches_matmul(x, kernel, stride)


def _patches_matmul(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  # Unpadded convolution of x (already padded) as one matmul:
  # [B, out_h, out_w, kh*kw*Cin] patches @ [kh*kw*Cin, Cout].
  kh, kw, cin, cout = kernel.shape
  out_h = (x.shape[1] - kh) // stride + 1
  out_w = (x.shape[2] - kw) // stride + 1
  patches = [x[:, dy:dy + stride * (out_h - 1) + 1:stride,
               dx:dx + stride * (out_w - 1) + 1:stride, :]
             for dy in range(kh) for dx in range(kw)]
  patches = jnp.concatenate(patches, axis=-1)
  return patches @ kernel.reshape(kh * kw * cin, cout)


def _phase_taps(kernel_size: int, stride: int, padding: int, phase: int
                ) -> list[tuple[int, int]]:
  # Output o = stride*m + phase receives x[i] * w[k] when o = stride*i -
  # padding + k, i.e. i = m + (phase + padding - k) / stride for integer i.
  taps = []
  for k in range(kernel_size):
    shift, remainder = divmod(phase + padding - k, stride)
    if remainder == 0:
      taps.append((k, shift))
  return taps


def _conv_transpose_by_phases(x: jax.Array, kernel: jax.Array, stride: int,
                              padding: int, out_h: int, out_w: int
                              ) -> jax.Array:
  # One matmul gives every tap's contribution at every input position,
  # x @ [Cin, kh*kw*Cout]. Each tap feeds exactly one output phase (rows
  # o = stride*m + r), as a shifted window of its own slice; a phase is the
  # sum of its taps' windows, and the phases interleave into the output. No
  # scatter (XLA's CPU scatter is a serial loop), and the backward pass is
  # the same windows read the other way.
  kh, kw, cin, cout = kernel.shape
  batch, height, width, _ = x.shape
  columns = (x.reshape(-1, cin)
             @ kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout))
  columns = columns.reshape(batch, height, width, kh * kw, cout)
  phase_h = -(-out_h // stride)  # rows per phase; the excess is cropped
  phase_w = -(-out_w // stride)

  def window(tap: jax.Array, shift_y: int, shift_x: int) -> jax.Array:
    # Phase row m reads input row m + shift_y; rows outside the input are 0.
    before_y, before_x = max(0, -shift_y), max(0, -shift_x)
    start_y, start_x = max(0, shift_y), max(0, shift_x)
    part = tap[:, start_y:start_y + phase_h - before_y,
               start_x:start_x + phase_w - before_x, :]
    return jnp.pad(part, ((0, 0),
                          (before_y, phase_h - before_y - part.shape[1]),
                          (before_x, phase_w - before_x - part.shape[2]),
                          (0, 0)))

  rows = []
  for r in range(stride):
    row = []
    for c in range(stride):
      phase = jnp.zeros((batch, phase_h, phase_w, cout), x.dtype)
      for ky, shift_y in _phase_taps(kh, stride, padding, r):
        for kx, shift_x in _phase_taps(kw, stride, padding, c):
          phase = phase + window(columns[:, :, :, ky * kw + kx, :], shift_y,
                                 shift_x)
      row.append(phase)
    rows.append(jnp.stack(row, axis=3))  # [B, ph, pw, stride_w, Cout]
  out = jnp.stack(rows, axis=2)  # [B, ph, stride_h, pw, stride_w, Cout]
  out = out.reshape(batch, phase_h * stride, phase_w * stride, cout)
  return out[:, :out_h, :out_w, :]


def conv_transpose2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
                     padding: int = 0, output_padding: int = 0,
                     impl: str = 'auto') -> jax.Array:
  """torch.nn.functional.conv_transpose2d semantics on NHWC.

  out[s*i - p + k] += x[i] @ kernel[k] along each spatial axis.

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout] (PyTorch's weight [Cin, Cout, kh, kw]
      transposed to (2, 3, 0, 1)).
    stride, padding, output_padding: as in PyTorch.
    impl: 'matmul' (one matmul x @ kernel for every tap, summed into the
      output's stride x stride phases; for stride 1 without fewer output
      channels, patches of the padded x @ the flipped kernel), 'xla', or
      'auto' (matmul on CPU).

  Returns:
    [B, (H-1)*s - 2p + kh + op, (W-1)*s - 2p + kw + op, Cout].
  """
  kh, kw, cin, cout = kernel.shape
  out_h = (x.shape[1] - 1) * stride - 2 * padding + kh + output_padding
  out_w = (x.shape[2] - 1) * stride - 2 * padding + kw + output_padding
  if _resolve(impl) == 'xla':
    flipped = kernel[::-1, ::-1]
    pads = [(k - 1 - padding, k - 1 - padding + output_padding)
            for k in (kh, kw)]
    return jax.lax.conv_general_dilated(
        x, flipped, (1, 1), pads, lhs_dilation=(stride, stride),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  if stride > 1 or cout < cin:
    return _conv_transpose_by_phases(x, kernel, stride, padding, out_h, out_w)
  # Stride 1 with as many output channels as input: an ordinary convolution
  # of x, padded by k - 1 - p (plus the output padding after), with the
  # flipped kernel. Negative padding crops.
  pads = [(k - 1 - padding, k - 1 - padding + output_padding, 0)
          for k in (kh, kw)]
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *pads, (0, 0, 0)])
  return _patches_matmul(x, kernel[::-1, ::-1], stride=1)


class Conv(nn.Module):
  """torch.nn.Conv2d on NHWC, with the implementation picked per backend."""

  features: int
  kernel_size: int = 3
  stride: int = 1
  padding: int = 0
  init_scheme: str = 'torch_default'
  impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    fan_in = cin * self.kernel_size ** 2
    kernel = self.param('kernel', kernel_init(self.init_scheme),
                        (self.kernel_size, self.kernel_size, cin,
                         self.features))
    bias = self.param('bias', _bias_init(self.init_scheme, fan_in),
                      (self.features,))
    return conv2d(x, kernel, self.stride, self.padding, self.impl) + bias


class ConvTranspose(nn.Module):
  """torch.nn.ConvTranspose2d on NHWC, with the implementation picked per backend."""

  features: int
  kernel_size: int = 3
  stride: int = 1
  padding: int = 0
  output_padding: int = 0
  init_scheme: str = 'torch_default'
  impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    # PyTorch's weight is [Cin, Cout, k, k] and its init takes fan_in from
    # dim 1: Cout * k * k.
    fan_in = self.features * self.kernel_size ** 2
    shape = (self.kernel_size, self.kernel_size, cin, self.features)
    kernel = self.param('kernel', _transposed_kernel_init(self.init_scheme,
                                                          fan_in), shape)
    bias = self.param('bias', _bias_init(self.init_scheme, fan_in),
                      (self.features,))
    return conv_transpose2d(x, kernel, self.stride, self.padding,
                            self.output_padding, self.impl) + bias


def _bias_init(scheme: str, fan_in: int):
  return (torch_default_bias_init(fan_in) if scheme == 'torch_default'
          else nn.initializers.zeros_init())


def _transposed_kernel_init(scheme: str, fan_in: int):
  """Kernel init with PyTorch's fan-in for a transposed convolution."""
  if scheme == 'torch_default':
    return torch_default_bias_init(fan_in)
  if scheme == 'kaiming_normal':
    def init(rng, shape, dtype=jnp.float32):
      return jax.random.normal(rng, shape, dtype) * jnp.sqrt(2.0 / fan_in)
    return init
  return kernel_init(scheme)
