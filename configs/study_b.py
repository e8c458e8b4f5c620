"""Study B: capacity and beta sweeps of the MLP VAE, as the report ran them.

How each setting is read from the report (../shared/reports/study_b.txt)
and, where it is silent, from the code it links
(github.com/wolfball/Intellisense-Cognitive-Practice, VAE/example.py,
models.py, tools.py):

- Every model: 200 epochs, Adam 1e-5 ("We train all the models for 200
  epochs"), BCE summed over pixels + beta * KL to N(0, I). The batch size
  is not in the text; the linked code's default is 40, used here.
- Encoder: `depth` fully connected layers of `width` with ReLU, then two
  linear heads. Decoder: "a two-layer-MLP followed by a Sigmoid",
  latent -> width -> 784, the same width as the encoder (the code's
  hid_dim serves both).
- Latent size 1, 2, 3 with a 3-layer encoder of 400 ("We use 3 layers in
  encoder").
- Encoder depth 1, 2, 3 at latent 2, width 400.
- Hidden width 100, 400, 1000, 2000 with a one-layer encoder, latent 20.
- CNN vs MLP at latent 1, "both networks use one layer encoder": the MLP
  is the one-layer baseline; the CNN is the linked code's `VAE_cnn`
  (cnn_bn_vae, vae_jax/models/cnn_bn.py): three unpadded 5x5 convolutions
  of 6, 16 and 32 channels, each with BatchNorm (PyTorch's momentum 0.1
  and eps 1e-5) and LeakyReLU(0.2), then two dense layers of hid_dim with
  ReLU, the heads, and the baseline's decoder (latent -> hid_dim -> 784).
  The code ignores `en_layers` for it; hid_dim is the baseline's 400 (the
  report does not give the CNN run's command). Its test loss uses the
  running averages (the code's test calls model.eval()). 3,769,098
  parameters. (Until this member, the CNN here was mlp_vae with 3x3
  stride-2 convolutions of 32 and 64 channels before the 400-unit layer;
  results/study_b.md's member 10 is that one.)
- Beta 0.1, 0.5, 1, 2, 4 with the 3-layer encoder, latent 2.
- Their best: 3-layer encoder of width 2000, latent 100.

Every member lists all five settings (the CNN its model too), so a member
shared by several sweeps (3 layers, latent 2, beta 1 is in the latent,
depth and beta sweeps) trains once and appears on each sweep's curves. Members that differ
only in latent size or beta share one compiled program.

The report's "3002" for its best model is its code's test loss: the test
reconstruction BCE (without KL) summed over a batch of 40, i.e. 75.05 nats
per image.

  python -m launch.sweep --config=configs/study_b.py --workdir=workdirs/study_b
  # The CNN member alone (a sweep of one):
  python -m launch.sweep --config=configs/study_b.py:cnn --workdir=workdirs/study_b_cnn
"""

from configs import default

BATCH_SIZE = 40  # the linked code's default; the report does not say
ONE, TWO, THREE = (400,), (400, 400), (400, 400, 400)
# The linked code's VAE_cnn at hid_dim 400: its convolutions' channels, its
# two dense encoder layers and its decoder's one.
CNN = {'model.name': 'cnn_bn_vae', 'model.latent_size': 1,
       'model.encoder_widths': (400, 400), 'model.decoder_widths': (400,),
       'model.encoder_conv_channels': (6, 16, 32), 'beta': 1.0}
MEMBERS = ('all', 'cnn')


def _member(latent: int, encoder: tuple, beta: float = 1.0) -> dict:
  return {'model.latent_size': latent, 'model.encoder_widths': encoder,
          'model.decoder_widths': (encoder[0],),
          'model.encoder_conv_channels': (), 'beta': beta}


def members() -> list[dict]:
  """The sweeps' members, each once, in the report's order."""
  listed = [
      *[_member(latent, THREE) for latent in (1, 2, 3)],
      *[_member(2, encoder) for encoder in (ONE, TWO, THREE)],
      *[_member(20, (width,)) for width in (100, 400, 1000, 2000)],
      _member(1, ONE), dict(CNN),
      *[_member(2, THREE, beta=beta) for beta in (0.1, 0.5, 1.0, 2.0, 4.0)],
      _member(100, (2000, 2000, 2000)),
  ]
  unique = []
  for member in listed:
    if member not in unique:
      unique.append(member)
  return unique


def get_config(which: str = 'all'):
  """which: 'all' (the study's members), or 'cnn' (the CNN member alone)."""
  if which not in MEMBERS:
    raise ValueError(f"Unknown members {which!r} for Study B's config; "
                     f'choose one of {MEMBERS} (configs/study_b.py:MEMBERS).')
  config = default.get_config()
  config.model.encoder_widths = ONE
  config.model.decoder_widths = ONE
  config.model.latent_size = 2
  config.learning_rate = 1e-5
  config.batch_size = BATCH_SIZE
  config.num_epochs = 200
  config.sweep = members() if which == 'all' else [dict(CNN)]
  return config
