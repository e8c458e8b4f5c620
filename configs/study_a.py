"""Study A: priors, reconstruction losses and initialisation for a conv VAE.

Study A's conv VAE (conv_fc_vae: two 4x4 stride-2 convs and a dense
bottleneck, 207,989 parameters at latent 2), Adam 1e-4, 15 epochs, batch 64.
Nine members: BCE with priors N(0, 1) and N(1, 2); Kaiming-normal init; MSE;
MAE; perceptual; perceptual + BCE; perceptual + MSE (weight 0.01); and a 10-d
latent BCE model. Members that differ only in prior or latent size share one
program (latent 2 is a mask on the 10-d model); the others form groups of
their own.

The perceptual losses need the project's MNIST classifier:

  python -m launch.train_classifier --workdir=workdirs/classifier
  python -m launch.sweep --config=configs/study_a.py --workdir=workdirs/study_a \\
      --config.perceptual.classifier_dir=workdirs/classifier

The report's FIDs (10,000 prior samples vs the MNIST test set, Inception-v3
pool features) are in `reported`; `launch.evaluate --metrics=fid` computes ours.
"""

from configs import default
from vae_jax import sweep

# Study A's FIDs, lower is better: (loss, prior mean, prior std, init, latent).
REPORTED_FID = {
    ('bce', 0.0, 1.0, 'torch_default', 2): 131.7,
    ('bce', 1.0, 2.0, 'torch_default', 2): 132.0,
    ('bce', 0.0, 1.0, 'kaiming_normal', 2): 150.6,
    ('mse', 0.0, 1.0, 'torch_default', 2): 143.3,
    ('mae', 0.0, 1.0, 'torch_default', 2): 98.3,
    ('perceptual', 0.0, 1.0, 'torch_default', 2): 323.6,
    ('perceptual+bce', 0.0, 1.0, 'torch_default', 2): 180.7,
    ('perceptual+mse', 0.0, 1.0, 'torch_default', 2): 176.9,
    ('bce', 0.0, 1.0, 'torch_default', 10): 79.7,
}


def get_config():
  config = default.get_config()
  config.model.name = 'conv_fc_vae'
  config.model.latent_size = 2
  config.learning_rate = 1e-4
  config.batch_size = 64
  config.num_epochs = 15
  config.perceptual.weight = 0.01
  config.sweep = [
      {'loss': loss, 'prior_mean': mean, 'prior_std': std,
       'model.init_scheme': init, 'model.latent_size': latent}
      for loss, mean, std, init, latent in REPORTED_FID]
  config.reported = [
      {'loss': loss, 'prior_mean': mean, 'prior_std': std,
       'model.init_scheme': init, 'model.latent_size': latent, 'fid': fid}
      for (loss, mean, std, init, latent), fid in REPORTED_FID.items()]
  return config
