"""Study B: capacity and beta sweeps of the MLP VAE (784-400-latent-400-784).

Every sweep of the report as one command, BCE + KL to N(0, I), Adam 1e-3,
batch 128 (the pytorch/examples settings the report starts from; it gives no
budget, so 10 epochs):
  - latent size 1, 2, 3 (one 400-unit encoder layer);
  - encoder depth 1, 2, 3 layers of 400 (latent 2; the decoder stays 400);
  - hidden width 100, 400, 1000, 2000 (one layer, latent 20);
  - CNN encoder (3x3 stride-2 convs 32, 64, then 400) vs MLP, latent 1;
  - beta 0.1, 0.5, 1, 2, 4 (3-layer encoder, latent 2);
  - their best: 3-layer encoder of width 2000, latent 100.
Members that differ only in latent size or beta share a compiled program.

  python -m launch.sweep --config=configs/study_b.py --workdir=workdirs/study_b
"""

from configs import default
from vae_jax import sweep


def _members() -> list[dict]:
  one_layer, three_layers = (400,), (400, 400, 400)
  grid = sweep.concat(
      sweep.product(model__latent_size=[1, 2, 3]),
      sweep.product(model__latent_size=[2],
                    model__encoder_widths=[(400, 400), three_layers]),
      sweep.product(model__latent_size=[20],
                    model__encoder_widths=[(100,), one_layer, (1000,), (2000,)],
                    model__decoder_widths=[None]),
      sweep.product(model__latent_size=[1],
                    model__encoder_conv_channels=[(32, 64)]),
      sweep.product(model__latent_size=[2], model__encoder_widths=[three_layers],
                    beta=[0.1, 0.5, 2.0, 4.0]),
      sweep.product(model__latent_size=[100],
                    model__encoder_widths=[(2000, 2000, 2000)],
                    model__decoder_widths=[(2000,)]),
  )
  return grid


def get_config():
  config = default.get_config()
  config.model.encoder_widths = (400,)
  # The decoder is latent-400-784 whatever the encoder's depth ...
  config.model.decoder_widths = (400,)
  config.model.latent_size = 2
  config.num_epochs = 10
  config.sweep = _members()
  return config
