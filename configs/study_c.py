"""Study C: the conditional VAE tuned on MNIST and USPS, beside the VAE.

How each setting is read from the report (../shared/reports/study_c.txt):

- The sweeps are on the CVAE: "These values and plots are for the
  Conditional Variational Autoencoder that we trained for both the
  datasets." Batch size 64 / 128 / 256, learning rate 1e-4 / 1e-3 / 1e-2,
  latent size 2 / 10 / 20 and optimiser Adam / RMSProp / Adagrad, one axis
  at a time around the report's best (batch 256, lr 1e-3, Adam). The
  report names the axes but not the values tried; these bracket its best.
- 10 epochs: its tuning figures and "Reconstructed Images after Epoch 1
  (left) and Epoch 10 (right)".
- CVAE: the one-hot label joins the encoder's input (784 + 10, or 256 + 10
  for USPS) and the latent; "the size of hidden layer in encoder and
  decoder is 400 for MNIST and USPS".
- VAE (the comparison's baseline, at the same batch, lr and optimiser):
  encoder 512-256 and decoder 256-512 for MNIST, 128-64 and 64-128 for
  USPS.
- Latent 2 unless swept, so each class's latent space can be drawn.

Every member lists all the swept settings, so the base CVAE trains once and
joins every axis's curves (curves_by_<setting>.png). USPS:
configs/study_c_usps.py.

  python -m launch.sweep --config=configs/study_c.py --workdir=workdirs/study_c
"""

from configs import default

VAE_WIDTHS = {'mnist': ((512, 256), (256, 512)),
              'usps': ((128, 64), (64, 128))}
CVAE_WIDTH = 400
BASE = {'batch_size': 256, 'learning_rate': 1e-3, 'model.latent_size': 2,
        'optimizer': 'adam'}
AXES = {'batch_size': (64, 128, 256), 'learning_rate': (1e-4, 1e-3, 1e-2),
        'model.latent_size': (2, 10, 20),
        'optimizer': ('adam', 'rmsprop', 'adagrad')}


def cvae_members() -> list[dict]:
  """The CVAE sweeps, one axis at a time around BASE, each member once."""
  members = []
  for key, values in AXES.items():
    for value in values:
      member = dict(BASE, **{key: value}, **{'model.num_classes': 10})
      if member not in members:
        members.append(member)
  return members


def get_config(dataset: str = 'mnist'):
  config = default.get_config()
  config.data.name = dataset
  config.model.encoder_widths = (CVAE_WIDTH,)
  config.model.decoder_widths = (CVAE_WIDTH,)
  config.model.num_classes = 10
  config.model.latent_size = BASE['model.latent_size']
  config.batch_size = BASE['batch_size']
  config.learning_rate = BASE['learning_rate']
  config.optimizer = BASE['optimizer']
  config.num_epochs = 10
  encoder, decoder = VAE_WIDTHS[dataset]
  vae = dict(BASE, **{'model.num_classes': 0, 'model.encoder_widths': encoder,
                      'model.decoder_widths': decoder})
  config.sweep = [*cvae_members(), vae]
  return config
