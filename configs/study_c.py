"""Study C: VAE vs conditional VAE on MNIST, with the report's sweeps.

VAE: MLP encoder 784-512-256-(mean, log-variance), decoder 256-512-784.
CVAE: the one-hot label joins the encoder input and the latent; one hidden
layer of 400. Base settings are the report's best (batch 256, Adam 1e-3),
latent 2 so the latent space can be drawn per class, 20 epochs (their
budget is not given; 20 is the CVAE's). Sweeps around the base: batch size
64 / 128 / 256, learning rate 1e-4 / 1e-3 / 1e-2, latent size 2 / 10 / 20,
optimiser Adam / RMSProp / Adagrad. USPS: configs/study_c_usps.py.

  python -m launch.sweep --config=configs/study_c.py --workdir=workdirs/study_c
"""

from configs import default
from vae_jax import sweep

VAE_WIDTHS = {'mnist': ((512, 256), (256, 512)),
              'usps': ((128, 64), (64, 128))}


def get_config(dataset: str = 'mnist'):
  config = default.get_config()
  config.data.name = dataset
  encoder, decoder = VAE_WIDTHS[dataset]
  config.model.encoder_widths = encoder
  config.model.decoder_widths = decoder
  config.model.latent_size = 2
  config.batch_size = 256
  config.learning_rate = 1e-3
  config.num_epochs = 20
  config.sweep = sweep.concat(
      sweep.product(learning_rate=[1e-4, 1e-3, 1e-2]),
      sweep.product(batch_size=[64, 128]),
      sweep.product(model__latent_size=[10, 20]),
      sweep.product(optimizer=['rmsprop', 'adagrad']),
      # The CVAE: one hidden layer of 400, mirrored.
      sweep.product(model__num_classes=[10], model__encoder_widths=[(400,)],
                    model__decoder_widths=[(400,)]),
  )
  return config
