"""CPU-fast convolutions against XLA's and against PyTorch's (independent reference)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.models import conv

torch = pytest.importorskip('torch', reason='torch is the reference here; '
                            'pip install torch==2.13.0')

CONV_CASES = [  # (H, Cin, Cout, k, stride, padding)
    (28, 1, 4, 3, 1, 1), (28, 3, 5, 3, 2, 1), (14, 4, 4, 3, 2, 1),
    (7, 4, 6, 3, 1, 1), (9, 2, 3, 5, 2, 0), (8, 2, 2, 4, 3, 2)]
TRANSPOSE_CASES = [  # (H, Cin, Cout, k, stride, padding, output_padding)
    (7, 4, 4, 3, 2, 1, 1), (14, 4, 2, 3, 2, 1, 1), (7, 3, 3, 3, 1, 1, 0),
    (7, 2, 3, 3, 2, 0, 0), (5, 2, 2, 4, 3, 1, 2), (6, 3, 1, 5, 2, 2, 1),
    (9, 4, 1, 3, 1, 0, 0), (6, 2, 5, 3, 1, 0, 0), (8, 2, 4, 3, 1, 3, 0)]
# Both paths of the matmul form, strides 1-3; the last stride-1 case has
# padding beyond k - 1 (the flipped-kernel convolution crops).


def _random(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize('h, cin, cout, k, stride, padding', CONV_CASES)
def test_conv2d_matches_torch(h, cin, cout, k, stride, padding):
  x = _random((2, h, h, cin), 0)
  w = _random((k, k, cin, cout), 1)
  expected = torch.nn.functional.conv2d(
      torch.from_numpy(x).permute(0, 3, 1, 2),
      torch.from_numpy(w).permute(3, 2, 0, 1), stride=stride,
      padding=padding).permute(0, 2, 3, 1).numpy()
  for impl in ('matmul', 'xla'):
    got = conv.conv2d(jnp.asarray(x), jnp.asarray(w), stride, padding, impl)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4,
                               err_msg=impl)


@pytest.mark.parametrize('h, cin, cout, k, stride, padding, output_padding',
                         TRANSPOSE_CASES)
def test_conv_transpose2d_matches_torch(h, cin, cout, k, stride, padding,
                                        output_padding):
  x = _random((2, h, h, cin), 2)
  w = _random((k, k, cin, cout), 3)
  expected = torch.nn.functional.conv_transpose2d(
      torch.from_numpy(x).permute(0, 3, 1, 2),
      torch.from_numpy(w).permute(2, 3, 0, 1), stride=stride, padding=padding,
      output_padding=output_padding).permute(0, 2, 3, 1).numpy()
  for impl in ('matmul', 'xla'):
    got = conv.conv_transpose2d(jnp.asarray(x), jnp.asarray(w), stride,
                                padding, output_padding, impl)
    assert got.shape == expected.shape, impl
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4,
                               err_msg=impl)


@pytest.mark.parametrize('transposed, stride, cout', [
    (False, 2, 5), (True, 2, 5), (True, 1, 5), (True, 1, 2)])
def test_gradients_match_between_implementations(transposed, stride, cout):
  x = jnp.asarray(_random((3, 7, 7, 4), 4))
  w = jnp.asarray(_random((3, 3, 4, cout), 5))
  if transposed:
    f = lambda impl: lambda x, w: jnp.sum(
        jnp.sin(conv.conv_transpose2d(x, w, stride, 1, stride - 1, impl)))
  else:
    f = lambda impl: lambda x, w: jnp.sum(
        jnp.sin(conv.conv2d(x, w, stride, 1, impl)))
  fast = jax.grad(f('matmul'), argnums=(0, 1))(x, w)
  reference = jax.grad(f('xla'), argnums=(0, 1))(x, w)
  for a, b in zip(fast, reference):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_auto_picks_matmul_on_cpu_and_rejects_unknown():
  assert conv._resolve('auto') == ('matmul' if jax.default_backend() == 'cpu'
                                   else 'xla')
  with pytest.raises(ValueError, match='convolution implementation'):
    conv.conv2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), impl='fft')


def test_torch_default_init_of_transposed_conv_uses_torch_fan_in():
  layer = conv.ConvTranspose(features=8, kernel_size=3, stride=2)
  params = layer.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 32)))['params']
  bound = 1 / np.sqrt(8 * 9)  # PyTorch: weight.size(1) * k * k
  kernel = np.asarray(params['kernel'])
  assert kernel.shape == (3, 3, 32, 8)
  assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.95 * bound


@pytest.mark.parametrize('layer, fan_in', [
    (conv.Conv(features=64, kernel_size=3, init_scheme='kaiming_normal'), 9 * 32),
    (conv.ConvTranspose(features=16, kernel_size=3, init_scheme='kaiming_normal'),
     9 * 16)])
def test_kaiming_normal_init_of_conv_layers(layer, fan_in):
  # torch.nn.init.kaiming_normal_(mode='fan_in', nonlinearity='relu'), with
  # PyTorch's fan-in for each layer kind; biases start at zero.
  params = layer.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 32)))['params']
  expected = np.sqrt(2 / fan_in)
  assert abs(np.asarray(params['kernel']).std() - expected) < 0.03 * expected
  assert np.all(np.asarray(params['bias']) == 0)
