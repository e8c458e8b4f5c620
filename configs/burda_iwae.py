"""Burda, Grosse & Salakhutdinov (2016): MNIST test log-likelihoods of the VAE
and the IWAE, one stochastic layer (`../shared/reports/burda_iwae.md`).

The setup as the paper's code runs it (yburda/iwae): dynamically binarized
MNIST, the first 59,600 training images in file order (the last 400 are the
code's validation set), no shuffling; 784-200-200-50 tanh MLPs, Glorot
uniform weights, sigma = exp(linear), the decoder's output bias at the logit
of the mean training pixel; batch 20; the code's Adam (beta1 0.99, beta2
0.999, eps 1e-4, second moments from one: `vae_jax.optimizers.burda_adam`)
over eight stages of 3^i epochs at 1e-3 * 10^(-i/7), 3,280 epochs in all.

Each member is a (objective, k) pair; members differ in k, which sets array
shapes, so every member is its own group (trained one after another).
`rows` picks them:

  'cpu' (default): VAE k = 1 and IWAE k = 5, the runs a 2-core CPU can
      finish (hours each; results/burda_iwae.md).
  'table': the paper's six one-layer cells (VAE and IWAE at k = 1, 5, 50;
      the k = 1 cells are the same objective, so five members).
  'accelerator': the k = 50 members (VAE and IWAE), for a GPU or TPU
      (benchmarks/accelerator_check.sh).
  'vae_k<k>', 'iwae_k<k>': that one member (e.g. 'iwae_k5'), so that
      members can train side by side in separate processes.

  python -m launch.sweep --config=configs/burda_iwae.py --workdir=W \
      --config.data.dir=../shared/data
  python -m launch.sweep --config=configs/burda_iwae.py:iwae_k5 --workdir=W5 ...
  python -m launch.evaluate --workdir=W --metrics=iwae,active_units \
      --iwae_samples=5000 --iwae_batch=20

The two-stochastic-layer model (latents 100 then 50) is not built yet.
"""

from configs import default
from vae_jax import grid

# The paper's Table 1, MNIST, one stochastic layer: test NLL in nats
# (objective, k) -> NLL, from ../shared/reports/burda_iwae.md.
REPORTED = {
    ('vae', 1): 86.76, ('vae', 5): 86.47, ('vae', 50): 86.35,
    ('iwae', 1): 86.76, ('iwae', 5): 85.54, ('iwae', 50): 84.78,
}
# Other reproductions of the same table (same source): the TensorFlow 2
# one's IWAE and pythae's VAE (200 importance samples).
OTHER_REPRODUCTIONS = {
    ('iwae', 1): ('TensorFlow 2 (nbip/IWAE)', 86.35),
    ('iwae', 5): ('TensorFlow 2 (nbip/IWAE)', 85.18),
    ('iwae', 50): ('TensorFlow 2 (nbip/IWAE)', 84.59),
    ('vae', 1): ('pythae', 89.78),
}
TRAIN_IMAGES = 59_600
ROWS = {
    'cpu': (('vae', 1), ('iwae', 5)),
    'table': (('vae', 1), ('vae', 5), ('vae', 50), ('iwae', 5), ('iwae', 50)),
    'accelerator': (('vae', 50), ('iwae', 50)),
}


def get_config(rows: str = 'cpu'):
  """rows: a key of ROWS, or 'vae_k<k>' / 'iwae_k<k>' for one member."""
  members = ROWS.get(rows) or _one_member(rows)
  if not members:
    raise ValueError(f"Unknown rows {rows!r} for Burda et al.'s config; "
                     f'choose one of {tuple(ROWS)}, or vae_k<k> / iwae_k<k> '
                     'for one member (configs/burda_iwae.py).')
  config = default.get_config()
  config.data.preprocessing = 'dynamic_binarized'
  config.data.train_subset = TRAIN_IMAGES
  config.data.shuffle = False
  config.model.latent_size = 50
  config.model.encoder_widths = (200, 200)
  config.model.activation = 'tanh'
  config.model.init_scheme = 'glorot_uniform'
  config.model.posterior_scale = 'log_std'
  config.model.output_bias = 'data_mean'
  config.objective = 'iwae'
  config.num_samples = 5
  config.optimizer = 'burda_adam'
  config.learning_rate = 1e-3
  config.lr_schedule = 'burda'
  config.batch_size = 20
  config.num_epochs = 3280
  objectives, samples = zip(*members)
  config.sweep = grid.zipped(objective=list(objectives),
                             num_samples=list(samples))
  config.reported = [{'objective': objective, 'num_samples': k,
                      'iwae_nll': nll}
                     for (objective, k), nll in REPORTED.items()]
  return config


def _one_member(rows: str) -> tuple[tuple[str, int], ...]:
  objective, _, k = rows.partition('_k')
  if objective in ('vae', 'iwae') and k.isdigit() and int(k) >= 1:
    return ((objective, int(k)),)
  return ()
