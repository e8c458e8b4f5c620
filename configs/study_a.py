"""Study A: priors, reconstruction losses and initialisation for a conv VAE.

Study A's conv VAE (conv_fc_vae: two 3x3 stride-2 convs, a dense bottleneck
of 47, mirrored decoder; 210,301 parameters at latent 2, the report's
210,821), Adam 1e-4, 15 epochs, batch 64, as in the report's section 3.2.

How each member is read from the report (../shared/reports/study_a.txt):
  1. N(0, 1) prior, BCE, PyTorch's default initialisation (section 5.1).
  2. N(1, 2) prior, BCE, default initialisation (5.2). "N(1, 2)" is mean 1,
     standard deviation 2: the KL of its eq. (5) has sigma^2 / 4 and
     (1 - mu)^2 / 4, i.e. a prior variance of 4.
  3. Kaiming-normal initialisation, BCE, N(1, 2) (6.1): the report sets out
     to "improve generations from N(1, 2)", and after this section "the
     subsequent models are initialized this way".
  4-8. MSE, MAE, perceptual, perceptual + BCE, perceptual + MSE (6.2-6.6),
     each continuing from member 3: N(1, 2) prior and Kaiming init. The
     weighted forms give the perceptual term lambda = 0.01 (4.2).
  9. The 10-d latent BCE model (section 8), likewise N(1, 2) and Kaiming.
Members that differ only in prior or latent size share one program
(latent 2 is a mask on the 10-d model); the others form groups of their own.

The perceptual losses need the project's MNIST classifier:

  python -m launch.train_classifier --workdir=workdirs/classifier
  python -m launch.sweep --config=configs/study_a.py --workdir=workdirs/study_a \\
      --config.perceptual.classifier_dir=workdirs/classifier

`launch.reproduce --study=A` does both and evaluates every member;
`--config=configs/study_a.py:pixel` and `:perceptual` train the two halves
apart (MEMBERS). The
report's FIDs (10,000 prior samples vs the MNIST test set, Inception-v3
pool features) are in `reported`; `launch.evaluate --metrics=fid` computes
ours where the Inception weights are installed.
"""

from configs import default

N01 = (0.0, 1.0)
N12 = (1.0, 2.0)  # mean 1, standard deviation 2

# Study A's Table 1 (FID, lower is better), keyed by
# (loss, (prior mean, prior std), init, latent size).
REPORTED_FID = {
    ('bce', N01, 'torch_default', 2): 131.7012,
    ('bce', N12, 'torch_default', 2): 132.0186,
    ('bce', N12, 'kaiming_normal', 2): 150.64744,
    ('mse', N12, 'kaiming_normal', 2): 143.3465,
    ('mae', N12, 'kaiming_normal', 2): 98.2500,
    ('perceptual', N12, 'kaiming_normal', 2): 323.5575,
    ('perceptual+bce', N12, 'kaiming_normal', 2): 180.7325,
    ('perceptual+mse', N12, 'kaiming_normal', 2): 176.8897,
    ('bce', N12, 'kaiming_normal', 10): 79.7245,
}


def _settings(loss, prior, init, latent) -> dict:
  return {'loss': loss, 'prior_mean': prior[0], 'prior_std': prior[1],
          'model.init_scheme': init, 'model.latent_size': latent}


PERCEPTUAL = ('perceptual', 'perceptual+bce', 'perceptual+mse')
# Subsets that train apart (a whole study is hours on 2 CPU cores): 'pixel'
# the BCE, MSE and MAE members (about 20 minutes), 'perceptual' the three
# that run the classifier in every step (most of the study's time).
MEMBERS = ('all', 'pixel', 'perceptual')


def get_config(members: str = 'all'):
  """members: 'all', or one of the MEMBERS subsets."""
  if members not in MEMBERS:
    raise ValueError(f"Unknown members {members!r} for Study A's config; "
                     f'choose one of {MEMBERS} (configs/study_a.py:MEMBERS).')
  keys = [key for key in REPORTED_FID
          if members == 'all' or (key[0] in PERCEPTUAL) == (
              members == 'perceptual')]
  config = default.get_config()
  config.model.name = 'conv_fc_vae'
  config.model.latent_size = 2
  config.model.hidden_size = 47
  config.learning_rate = 1e-4
  config.batch_size = 64
  config.num_epochs = 15
  config.perceptual.weight = 0.01
  config.sweep = [_settings(*key) for key in keys]
  config.reported = [dict(_settings(*key), fid=fid)
                     for key, fid in REPORTED_FID.items()]
  return config
