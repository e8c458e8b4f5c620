"""Study D's three rows that miss the report, again with other seeds.

The latent-1 and latent-2 models (and latent 64 at beta 1) land 1.7 and
0.07 nats above the report's totals with seed 0 (results/study_d.md). The
seed draws the initial weights, the shuffling and the reparameterisation
noise; this sweep measures how far those alone move the 300-epoch result.
Same budget as configs/study_d.py: 300 epochs, batch 256, Adam 1e-4.

  python -m launch.sweep --config=configs/study_d_seeds.py --workdir=workdirs/study_d_seeds
"""

from configs import study_d
from vae_jax import grid


def get_config():
  config = study_d.get_config()
  config.sweep = grid.concat(
      grid.product(model__latent_size=[1, 2], beta=[1.0], seed=[1, 2]),
      grid.product(model__latent_size=[64], beta=[1.0], seed=[1]),
  )
  return config
