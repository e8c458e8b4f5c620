"""The project's small MNIST CNN classifier (perceptual loss, Inception Score,
classifier-FID, confusion matrices of generated digits)."""

from __future__ import annotations

import jax
from flax import linen as nn

from vae_jax.models.conv import Conv
from vae_jax.models.initializers import dense

# Activations returned by `features`: after the 2nd and 4th ReLU (the layers
# Study A's perceptual loss used) and the penultimate dense layer.
FEATURE_LAYERS = ('relu2', 'relu4', 'penultimate')


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, H//2, W//2, C]; a reshape, whose gradient is cheap on CPU."""
  b, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class MNISTClassifier(nn.Module):
  """conv32-conv32-pool-conv64-conv64-pool-dense128-dense10, ReLU, 3x3 pad 1."""

  num_classes: int = 10
  conv_impl: str = 'auto'

  def setup(self):
    conv = lambda features: Conv(features, 3, 1, 1, 'torch_default',
                                 self.conv_impl)
    self.convs = [conv(32), conv(32), conv(64), conv(64)]
    self.hidden = dense(128, 64 * 7 * 7, 'torch_default', 'hidden')
    self.logits_head = dense(self.num_classes, 128, 'torch_default', 'logits')

  def features(self, images: jax.Array,
               layers: tuple[str, ...] = FEATURE_LAYERS + ('logits',)
               ) -> dict[str, jax.Array]:
    """[B, H, W] in [0, 1] -> the requested of {'relu2', 'relu4': [B, h, w, C],
    'penultimate': [B, 128], 'logits': [B, classes]}.

    The network stops at the last requested layer, so the conv features also
    work on images of other sizes (USPS 16x16), which the dense layers don't.
    """
    h = images[..., None]
    out = {}
    for i, layer in enumerate(self.convs):
      h = nn.relu(layer(h))
      if i in (1, 3):
        out[f'relu{i + 1}'] = h
        if set(layers) <= set(out):
          return out
        h = max_pool_2x2(h)
    h = nn.relu(self.hidden(h.reshape(h.shape[0], -1)))
    out['penultimate'] = h
    out['logits'] = self.logits_head(h)
    return out

  def __call__(self, images: jax.Array) -> jax.Array:
    """[B, H, W] in [0, 1] -> logits [B, classes]."""
    return self.features(images)['logits']
