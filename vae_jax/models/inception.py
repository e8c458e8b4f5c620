"""Inception-v3 as used by FID: a Flax port of pytorch-fid's `fid_inception_v3`.

pytorch-fid (0.3.0) builds torchvision's Inception3 with 1008 classes and
swaps in four FID-specific blocks that reproduce the TensorFlow graph of
2015-12-05 (the one TTUR's reference FID used):

* FIDInceptionA / C / E_1: the pooling branch averages over a 3x3 window
  *without* counting the zero padding (count_include_pad=False),
* FIDInceptionE_2 (Mixed_7c): the pooling branch max-pools instead.

This module is that network, layer for layer and with the same names, so a
checkpoint maps one to one (see vae_jax.evaluation.inception_names):
torch key `Mixed_6b.branch7x7_2.conv.weight` is params['Mixed_6b']
['branch7x7_2']['kernel']. Inference only: each BasicConv2d keeps its frozen
BatchNorm statistics as parameters and folds them into the convolution.

Layout NHWC. Input handling follows pytorch-fid's InceptionV3 with
resize_input=True and normalize_input=True: a bilinear resize to 299x299
equal to torch's F.interpolate(mode='bilinear', align_corners=False) (no
antialiasing, also when shrinking), then [0, 1] -> [-1, 1].
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from vae_jax.models.conv import conv2d

INPUT_SIZE = 299
NUM_CLASSES = 1008  # 1000 ImageNet classes + 8 unused, as in the TF graph
FEATURE_DIM = 2048
BN_EPS = 1e-3  # torchvision's BasicConv2d

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
  return (value, value) if isinstance(value, int) else tuple(value)


# --------------------------------------------------------------------------
# Input handling.
# --------------------------------------------------------------------------


def bilinear_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
  """Interpolation matrix of torch's bilinear resize along one axis.

  Row o holds the weights of the input samples for output o under
  F.interpolate(mode='bilinear', align_corners=False, antialias=False):
  source coordinate s = (o + 0.5) * in/out - 0.5, clamped below at 0, and
  weights 1 - frac(s), frac(s) on floor(s) and its right neighbour (which is
  floor(s) itself at the last input). Computed in float32 as torch's CPU
  kernel does, so the weights agree to the last bit.

  Returns:
    float32 [out_size, in_size].
  """
  scale = np.float32(in_size) / np.float32(out_size)
  out_index = np.arange(out_size, dtype=np.float32)
  source = np.maximum(scale * (out_index + np.float32(0.5)) - np.float32(0.5),
                      np.float32(0))
  lower = np.minimum(source.astype(np.int64), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  upper_weight = (source - lower.astype(np.float32)).astype(np.float32)
  matrix = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  np.add.at(matrix, (rows, lower), np.float32(1) - upper_weight)
  np.add.at(matrix, (rows, upper), upper_weight)
  return matrix


def preprocess(images: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
  """pytorch-fid's input handling: resize to size x size, scale to [-1, 1].

  Args:
    images: [B, H, W] or [B, H, W, 1] (grey, replicated to 3 channels) or
      [B, H, W, 3], floats in [0, 1], or uint8 in 0..255 (divided by 255, as
      torchvision's ToTensor does).
    size: output side.

  Returns:
    float32 [B, size, size, 3] in [-1, 1].
  """
  if images.dtype == jnp.uint8:
    images = images.astype(jnp.float32) / 255.0
  images = images.astype(jnp.float32)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError('images must be [B, H, W], [B, H, W, 1] or [B, H, W, 3];'
                     f' got shape {images.shape}.')
  rows = jnp.asarray(bilinear_resize_matrix(images.shape[1], size))
  cols = jnp.asarray(bilinear_resize_matrix(images.shape[2], size))
  # Resizing is linear per channel, so grey images are resized once and only
  # then replicated. HIGHEST: the weights must not be rounded to bf16 on
  # accelerators, or the resize would no longer match torch's.
  resized = jnp.einsum('oh,bhwc,pw->bopc', rows, images, cols,
                       precision=jax.lax.Precision.HIGHEST)
  resized = 2.0 * resized - 1.0
  return jnp.broadcast_to(resized, resized.shape[:3] + (3,))


# --------------------------------------------------------------------------
# Pooling (torch semantics on NHWC).
# --------------------------------------------------------------------------


def max_pool(x: jax.Array, window: int = 3, stride: int = 1,
             padding: int = 0) -> jax.Array:
  """F.max_pool2d on [B, H, W, C]; padding counts as -inf."""
  pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max,
                               (1, window, window, 1), (1, stride, stride, 1),
                               pads)


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """F.avg_pool2d(kernel 3, stride 1, padding 1, count_include_pad=False).

  [B, H, W, C] -> [B, H, W, C]: each output is the mean of the in-image
  samples of its 3x3 window (4 at corners, 6 on edges, 9 inside).
  """
  pads = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1),
                                (1, 1, 1, 1), pads)
  height, width = x.shape[1:3]
  counts = np.outer(_window_counts(height), _window_counts(width))
  return total * jnp.asarray(1.0 / counts, x.dtype)[None, :, :, None]


def _window_counts(size: int) -> np.ndarray:
  """How many of each position's 3 neighbours (itself included) lie inside."""
  counts = np.full(size, 3.0)
  counts[0] -= 1
  counts[-1] -= 1
  return np.maximum(counts, 1.0)


# --------------------------------------------------------------------------
# Layers.
# --------------------------------------------------------------------------


def cpu_conv_impl(kernel_size: IntPair, stride: int, in_features: int,
                  prefer_matmul: bool = False) -> str:
  """The faster of vae_jax.models.conv's implementations for a layer, on CPU:
  XLA's convolution for stride-1 spatial kernels and the 3-channel first
  layer, patches @ kernel otherwise and where prefer_matmul is set
  (docs/cpu_kernels.md has the per-layer timings)."""
  kh, kw = _pair(kernel_size)
  if in_features == 3 or (stride == 1 and kh * kw > 1 and not prefer_matmul):
    return 'xla'
  return 'matmul'


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm(eps=1e-3, frozen statistics) + ReLU.

  Parameters (torch names in brackets): kernel [kh, kw, Cin, Cout]
  (conv.weight, transposed from [Cout, Cin, kh, kw]); bn_scale (bn.weight),
  bn_bias (bn.bias), bn_mean (bn.running_mean), bn_var (bn.running_var),
  all [Cout].

  conv_impl 'auto' picks per layer on CPU (cpu_conv_impl; prefer_matmul is
  its override) and XLA's convolution elsewhere.
  """

  features: int
  kernel_size: IntPair = 1
  stride: int = 1
  padding: IntPair = 0
  conv_impl: str = 'auto'
  prefer_matmul: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, H, W, Cin] -> [B, H', W', features]."""
    kh, kw = _pair(self.kernel_size)
    cin = x.shape[-1]
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (kh, kw, cin, self.features))
    scale = self.param('bn_scale', nn.initializers.ones, (self.features,))
    bias = self.param('bn_bias', nn.initializers.zeros, (self.features,))
    mean = self.param('bn_mean', nn.initializers.zeros, (self.features,))
    var = self.param('bn_var', nn.initializers.ones, (self.features,))
    impl = self.conv_impl
    if impl == 'auto' and jax.default_backend() == 'cpu':
      impl = cpu_conv_impl((kh, kw), self.stride, cin, self.prefer_matmul)
    # Inference BatchNorm is an affine map per channel, so it folds into the
    # kernel: one pass over the activations instead of three.
    multiplier = scale * jax.lax.rsqrt(var + BN_EPS)
    return nn.relu(_conv(x, kernel * multiplier, self.stride, self.padding,
                         impl) + (bias - mean * multiplier))


def _conv(x: jax.Array, kernel: jax.Array, stride: int, padding: IntPair,
          impl: str) -> jax.Array:
  """torch conv2d with per-axis zero padding (ph, pw) on NHWC."""
  pad_h, pad_w = _pair(padding)
  if pad_h or pad_w:
    x = jnp.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
  return conv2d(x, kernel, stride, 0, impl)


class FIDInceptionA(nn.Module):
  """Mixed_5b/c/d: [B, 35, 35, Cin] -> [B, 35, 35, 224 + pool_features]."""

  pool_features: int
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    conv = lambda *a, **k: BasicConv2d(*a, **k, conv_impl=self.conv_impl)
    branch1x1 = conv(64, 1, name='branch1x1')(x)
    branch5x5 = conv(48, 1, name='branch5x5_1')(x)
    branch5x5 = conv(64, 5, padding=2, name='branch5x5_2')(branch5x5)
    branch3x3dbl = conv(64, 1, name='branch3x3dbl_1')(x)
    branch3x3dbl = conv(96, 3, padding=1, name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = conv(96, 3, padding=1, name='branch3x3dbl_3')(branch3x3dbl)
    branch_pool = conv(self.pool_features, 1, name='branch_pool')(
        avg_pool_exclude_pad(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool],
                           axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (torchvision's block): [B, 35, 35, 288] -> [B, 17, 17, 768]."""

  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    conv = lambda *a, **k: BasicConv2d(*a, **k, conv_impl=self.conv_impl)
    branch3x3 = conv(384, 3, stride=2, name='branch3x3')(x)
    branch3x3dbl = conv(64, 1, name='branch3x3dbl_1')(x)
    branch3x3dbl = conv(96, 3, padding=1, name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = conv(96, 3, stride=2, name='branch3x3dbl_3')(branch3x3dbl)
    branch_pool = max_pool(x, 3, 2)
    return jnp.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1)


class FIDInceptionC(nn.Module):
  """Mixed_6b..e: [B, 17, 17, 768] -> [B, 17, 17, 768]."""

  channels_7x7: int
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    conv = lambda *a, **k: BasicConv2d(*a, **k, conv_impl=self.conv_impl)
    c7 = self.channels_7x7
    branch1x1 = conv(192, 1, name='branch1x1')(x)
    branch7x7 = conv(c7, 1, name='branch7x7_1')(x)
    branch7x7 = conv(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(branch7x7)
    branch7x7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(branch7x7)
    dbl = conv(c7, 1, name='branch7x7dbl_1')(x)
    dbl = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(dbl)
    dbl = conv(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(dbl)
    dbl = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(dbl)
    dbl = conv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(dbl)
    branch_pool = conv(192, 1, name='branch_pool')(avg_pool_exclude_pad(x))
    return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (torchvision's block): [B, 17, 17, 768] -> [B, 8, 8, 1280]."""

  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    conv = lambda *a, **k: BasicConv2d(*a, **k, conv_impl=self.conv_impl)
    branch3x3 = conv(192, 1, name='branch3x3_1')(x)
    branch3x3 = conv(320, 3, stride=2, name='branch3x3_2')(branch3x3)
    branch7x7x3 = conv(192, 1, name='branch7x7x3_1')(x)
    branch7x7x3 = conv(192, (1, 7), padding=(0, 3),
                       name='branch7x7x3_2')(branch7x7x3)
    branch7x7x3 = conv(192, (7, 1), padding=(3, 0),
                       name='branch7x7x3_3')(branch7x7x3)
    branch7x7x3 = conv(192, 3, stride=2, name='branch7x7x3_4')(branch7x7x3)
    branch_pool = max_pool(x, 3, 2)
    return jnp.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1)


class FIDInceptionE(nn.Module):
  """Mixed_7b (pool='avg', FIDInceptionE_1) and Mixed_7c (pool='max',
  FIDInceptionE_2): [B, 8, 8, Cin] -> [B, 8, 8, 2048]."""

  pool: str
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x):
    conv = lambda *a, **k: BasicConv2d(*a, **k, conv_impl=self.conv_impl)
    branch1x1 = conv(320, 1, name='branch1x1')(x)
    branch3x3 = conv(384, 1, name='branch3x3_1')(x)
    branch3x3 = jnp.concatenate([
        conv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(branch3x3),
        conv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(branch3x3),
    ], axis=-1)
    dbl = conv(448, 1, name='branch3x3dbl_1')(x)
    dbl = conv(384, 3, padding=1, name='branch3x3dbl_2')(dbl)
    dbl = jnp.concatenate([
        conv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(dbl),
        conv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(dbl),
    ], axis=-1)
    if self.pool == 'avg':
      pooled = avg_pool_exclude_pad(x)
    elif self.pool == 'max':
      # The TF graph max-pools here, likely a bug in it; FID keeps it.
      pooled = max_pool(x, 3, 1, 1)
    else:
      raise ValueError(f"pool must be 'avg' or 'max', got {self.pool!r}.")
    branch_pool = conv(192, 1, name='branch_pool')(pooled)
    return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
  """The FID Inception-v3 (pytorch-fid's fid_inception_v3), pool features out.

  Attributes:
    num_classes: size of the (unused for FID) classifier `fc`, kept so that
      the released checkpoint maps one to one.
    conv_impl: 'auto', 'matmul' or 'xla' (see vae_jax.models.conv).
  """

  num_classes: int = NUM_CLASSES
  conv_impl: str = 'auto'

  def setup(self):
    conv = lambda *a, **k: BasicConv2d(*a, **k, conv_impl=self.conv_impl)
    impl = self.conv_impl
    self.Conv2d_1a_3x3 = conv(32, 3, stride=2)
    self.Conv2d_2a_3x3 = conv(32, 3)
    self.Conv2d_2b_3x3 = conv(64, 3, padding=1)
    self.Conv2d_3b_1x1 = conv(80, 1)
    self.Conv2d_4a_3x3 = conv(192, 3, prefer_matmul=True)
    self.Mixed_5b = FIDInceptionA(32, impl)
    self.Mixed_5c = FIDInceptionA(64, impl)
    self.Mixed_5d = FIDInceptionA(64, impl)
    self.Mixed_6a = InceptionB(impl)
    self.Mixed_6b = FIDInceptionC(128, impl)
    self.Mixed_6c = FIDInceptionC(160, impl)
    self.Mixed_6d = FIDInceptionC(160, impl)
    self.Mixed_6e = FIDInceptionC(192, impl)
    self.Mixed_7a = InceptionD(impl)
    self.Mixed_7b = FIDInceptionE('avg', impl)
    self.Mixed_7c = FIDInceptionE('max', impl)
    self.fc = nn.Dense(self.num_classes)

  def pool_features(self, x: jax.Array) -> jax.Array:
    """Preprocessed [B, H, W, 3] in [-1, 1] -> pool features [B, 2048].

    H, W >= 75 (the network's smallest input); 299 is what FID uses.
    """
    x = self.Conv2d_1a_3x3(x)
    x = self.Conv2d_2a_3x3(x)
    x = self.Conv2d_2b_3x3(x)
    x = max_pool(x, 3, 2)
    x = self.Conv2d_3b_1x1(x)
    x = self.Conv2d_4a_3x3(x)
    x = max_pool(x, 3, 2)
    for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                  self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                  self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
      x = block(x)
    return x.mean(axis=(1, 2))

  def logits(self, x: jax.Array) -> jax.Array:
    """Preprocessed [B, H, W, 3] -> logits [B, num_classes] (no dropout:
    inference)."""
    return self.fc(self.pool_features(x))

  def __call__(self, images: jax.Array) -> jax.Array:
    """Images [B, H, W(, 1 | 3)] in [0, 1] -> FID pool features [B, 2048].

    Resized to 299x299 and scaled to [-1, 1] first, as pytorch-fid does.
    """
    return self.pool_features(preprocess(images))

  def init_params(self, rng: jax.Array) -> dict:
    """Randomly initialised parameters (for tests and benchmarks)."""
    dummy = jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    return self.init(rng, dummy, method=FIDInceptionV3.logits)['params']


def parameter_shapes(num_classes: int = NUM_CLASSES) -> dict:
  """The parameter tree's shapes, without allocating it (jax.eval_shape)."""
  model = FIDInceptionV3(num_classes)
  return jax.eval_shape(model.init_params, jax.random.PRNGKey(0))


def fid_feature_fn(params, conv_impl: str = 'auto', chunk_size: int = 32):
  """A function images [B, H, W(, C)] in [0, 1] -> float32 [B, 2048].

  The resize and the network are jitted separately, so a new image size
  compiles only the (cheap) resize. The network always runs on chunks of
  `chunk_size` images, the last one zero-padded: it compiles once, whatever
  the batch sizes (a compilation costs more than a padded chunk on a CPU).

  Args:
    params: FIDInceptionV3's params tree (e.g. load_inception_params()).
    conv_impl: 'auto', 'matmul' or 'xla' (see vae_jax.models.conv).
    chunk_size: images per network call; bounds the memory held by
      activations (tens of MB per image).
  """
  model = FIDInceptionV3(conv_impl=conv_impl)
  params = jax.tree_util.tree_map(jnp.asarray, params)
  resize = jax.jit(preprocess)

  @jax.jit
  def network(params, x):
    # Full float32 products also where the default is lower (TF32 on recent
    # GPUs): FID is compared across implementations to a few decimals.
    with jax.default_matmul_precision('float32'):
      return model.apply({'params': params}, x,
                         method=FIDInceptionV3.pool_features)

  def features(images) -> jax.Array:
    images = jnp.asarray(images)
    outputs = []
    for start in range(0, images.shape[0], chunk_size):
      chunk = images[start:start + chunk_size]
      size = chunk.shape[0]
      if size < chunk_size:
        padding = jnp.zeros((chunk_size - size,) + chunk.shape[1:],
                            chunk.dtype)
        chunk = jnp.concatenate([chunk, padding])
      outputs.append(network(params, resize(chunk))[:size])
    if not outputs:
      return jnp.zeros((0, FEATURE_DIM), jnp.float32)
    return jnp.concatenate(outputs)

  return features


def flatten_names(tree: dict, prefix: Sequence[str] = ()) -> dict:
  """{('Mixed_5b', 'branch1x1', 'kernel'): leaf, ...} of a nested dict."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten_names(value, (*prefix, key)))
    else:
      flat[(*prefix, key)] = value
  return flat
