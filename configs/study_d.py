"""Study D: latent size and beta for the 784-256-256-latent MLP VAE, as one sweep.

Seven members (latent 1, 2, 64 at beta 1; beta 0.1, 0.5, 2, 10 at latent 64)
share one compiled program: the model is built at latent 64 and smaller
latent sizes are masks. 300 epochs, batch 256, Adam 1e-4, as in the report.

  python -m launch.sweep --config=configs/study_d.py --workdir=workdirs/study_d

`--config=configs/study_d.py:small_latents` trains only the latent-1 and
latent-2 rows (the two whose decoder input layer is not latent 64's);
`:latent1_seeds`, `:latent2_seeds` and `:latent64_seeds` train that row (at
beta 1) with four more seeds as one program (SEED_ROWS), to show how far
the seed alone moves it. `:beta_seeds` trains the four beta rows (latent
64) with seeds 1 and 2 as one 8-member program (BETA_SEEDS), `:beta01_seeds`
beta 0.1 with seeds 4-7 (BETA_01_SEEDS).
"""

from configs import default
from vae_jax import grid

# The report's test-set table (per image): latent, beta -> BCE, KL, total.
REPORTED = {
    (1, 1.0): (156.82, 4.22, 161.04),
    (2, 1.0): (137.70, 6.80, 144.49),
    (64, 1.0): (76.23, 23.80, 100.03),
    (64, 0.1): (59.18, 77.68, 66.94),
    (64, 0.5): (69.50, 34.30, 86.65),
    (64, 2.0): (87.29, 15.46, 118.20),
    (64, 10.0): (143.37, 3.69, 180.22),
}
# Row name -> (latent size, seeds beyond those already run: latent 64 had
# seed 1 in configs/study_d_seeds.py).
SEED_ROWS = {
    'latent1_seeds': (1, (1, 3, 4, 5)),
    'latent2_seeds': (2, (1, 3, 4, 5)),
    'latent64_seeds': (64, (2, 3, 4, 5)),
}
# The report's betas other than 1, all at latent 64.
BETAS = tuple(beta for (_, beta) in REPORTED if beta != 1.0)
# Seeds for the beta rows beyond the full sweep's (0, and 3 with --config.seed=3).
BETA_SEEDS = (1, 2)
# Beta 0.1, the one beta row above the report on the mean of seeds 0-3, with
# four more seeds as one program (beside the PyTorch twin's seeds 0-7).
BETA_01_SEEDS = (4, 5, 6, 7)
ROWS = ('all', 'small_latents', 'beta_seeds', 'beta01_seeds', *SEED_ROWS)


def get_config(rows: str = 'all'):
  """rows: 'all' (the report's seven), 'small_latents' (latent 1 and 2),
  'beta_seeds' (the four beta rows with BETA_SEEDS), 'beta01_seeds' (beta
  0.1 with BETA_01_SEEDS), or a SEED_ROWS name (one
  latent size at beta 1 with four more seeds)."""
  if rows not in ROWS:
    raise ValueError(f"Unknown rows {rows!r} for Study D's config; choose "
                     f"one of {ROWS} (configs/study_d.py:ROWS).")
  config = default.get_config()
  config.model.encoder_widths = (256, 256)
  config.model.latent_size = 64
  config.batch_size = 256
  config.learning_rate = 1e-4
  config.num_epochs = 300
  # Two steps per loop iteration: faster epochs for this MLP on CPU
  # (docs/cpu_kernels.md); the steps are the same (vae_jax/config_fields.py:
  # scan_unroll).
  config.scan_unroll = 2
  config.sweep = grid.concat(
      grid.product(model__latent_size=[1, 2, 64], beta=[1.0]),
      grid.product(model__latent_size=[64], beta=list(BETAS)),
  )
  if rows == 'small_latents':
    config.sweep = grid.product(model__latent_size=[1, 2], beta=[1.0])
  if rows == 'beta_seeds':
    config.sweep = grid.product(model__latent_size=[64], beta=list(BETAS),
                                 seed=list(BETA_SEEDS))
  if rows == 'beta01_seeds':
    config.sweep = grid.product(model__latent_size=[64], beta=[0.1],
                                 seed=list(BETA_01_SEEDS))
  if rows in SEED_ROWS:
    latent_size, seeds = SEED_ROWS[rows]
    config.sweep = grid.product(model__latent_size=[latent_size], beta=[1.0],
                                 seed=list(seeds))
  config.reported = [
      {'model.latent_size': latent, 'beta': beta, 'test_recon': r[0],
       'test_kl': r[1], 'test_loss': r[2]}
      for (latent, beta), r in REPORTED.items()]
  return config
