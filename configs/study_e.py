"""Study E: the convolutional VAE benchmark over latent sizes (MSE loss).

Conv encoder 1->32->64->64->64 (3x3; strides 1, 2, 2, 1) with LeakyReLU,
dense to mean and log-variance; mirrored transposed-conv decoder cropped to
28x28. 10 epochs, Adam 5e-4, batch 256; latent sizes 2, 3, 4, 5, 10, 30 as
one sweep (the model is built at 30, smaller sizes are masks), and the
report's plain autoencoder for comparison (same conv net without sampling or
KL, latent 2, SGD lr 5e-5), a group of its own in the same sweep.

  python -m launch.sweep --config=configs/study_e.py --workdir=workdirs/study_e
"""

from configs import default
from vae_jax import grid


def get_config():
  config = default.get_config()
  config.model.name = 'conv_vae'
  config.model.latent_size = 30
  config.loss = 'mse'
  config.batch_size = 256
  config.learning_rate = 5e-4
  config.num_epochs = 10
  config.sweep = grid.concat(
      grid.product(model__latent_size=[2, 3, 4, 5, 10, 30]),
      grid.product(model__variational=[False], model__latent_size=[2],
                    optimizer=['sgd'], learning_rate=[5e-5]),
  )
  return config
