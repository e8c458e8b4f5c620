"""Study C's conditional VAE on MNIST: the one-hot label joins the encoder input
and the latent; one hidden layer of 400; batch 256, Adam 1e-3 (their best).

  python -m launch.train --config=configs/study_c_cvae.py --workdir=workdirs/cvae
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.encoder_widths = (400,)
  config.model.latent_size = 2
  config.model.num_classes = 10
  config.batch_size = 256
  config.learning_rate = 1e-3
  config.num_epochs = 20
  return config
