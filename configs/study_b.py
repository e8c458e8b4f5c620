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
  is the one-layer baseline; the CNN replaces its first layer by 3x3
  stride-2 convolutions of 32 and 64 channels before the 400-unit layer.
  (The linked code's CNN, three 5x5 convolutions with batch norm, is not
  described in the report.)
- Beta 0.1, 0.5, 1, 2, 4 with the 3-layer encoder, latent 2.
- Their best: 3-layer encoder of width 2000, latent 100.

Every member lists all five settings, so a member shared by several
sweeps (3 layers, latent 2, beta 1 is in the latent, depth and beta
sweeps) trains once and appears on each sweep's curves. Members that differ
only in latent size or beta share one compiled program.

The report's "3002" for its best model is its code's test loss: the test
reconstruction BCE (without KL) summed over a batch of 40, i.e. 75.05 nats
per image.

  python -m launch.sweep --config=configs/study_b.py --workdir=workdirs/study_b
"""

from configs import default

BATCH_SIZE = 40  # the linked code's default; the report does not say
ONE, TWO, THREE = (400,), (400, 400), (400, 400, 400)
CNN_CHANNELS = (32, 64)


def _member(latent: int, encoder: tuple, conv: tuple = (),
            beta: float = 1.0) -> dict:
  return {'model.latent_size': latent, 'model.encoder_widths': encoder,
          'model.decoder_widths': (encoder[0],),
          'model.encoder_conv_channels': conv, 'beta': beta}


def members() -> list[dict]:
  """The sweeps' members, each once, in the report's order."""
  listed = [
      *[_member(latent, THREE) for latent in (1, 2, 3)],
      *[_member(2, encoder) for encoder in (ONE, TWO, THREE)],
      *[_member(20, (width,)) for width in (100, 400, 1000, 2000)],
      _member(1, ONE), _member(1, ONE, CNN_CHANNELS),
      *[_member(2, THREE, beta=beta) for beta in (0.1, 0.5, 1.0, 2.0, 4.0)],
      _member(100, (2000, 2000, 2000)),
  ]
  unique = []
  for member in listed:
    if member not in unique:
      unique.append(member)
  return unique


def get_config():
  config = default.get_config()
  config.model.encoder_widths = ONE
  config.model.decoder_widths = ONE
  config.model.latent_size = 2
  config.learning_rate = 1e-5
  config.batch_size = BATCH_SIZE
  config.num_epochs = 200
  config.sweep = members()
  return config
