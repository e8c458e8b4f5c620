"""Burda, Grosse & Salakhutdinov (2016): MNIST test log-likelihoods of the VAE
and the IWAE, one and two stochastic layers (`../shared/reports/burda_iwae.md`).

The setup as the paper's code runs it (yburda/iwae): dynamically binarized
MNIST, the first 59,600 training images in file order (the last 400 are the
code's validation set), no shuffling; 784-200-200-50 tanh MLPs (two layers:
784-200-200-100 then 100-100-100-50, `two_layer_vae`), Glorot uniform
weights, sigma = exp(linear), the decoder's output bias at the logit of the
mean training pixel; batch 20; the code's Adam (beta1 0.99, beta2 0.999, eps
1e-4, second moments from one: `vae_jax.optimizers.burda_adam`) over eight
stages of 3^i epochs at 1e-3 * 10^(-i/7), 3,280 epochs in all.

Each member is an (objective, k, stochastic layers) triple; members differ
in k or in the model, which set array shapes, so every member is its own
group (trained one after another). `rows` picks them:

  'cpu' (default): VAE k = 1 and IWAE k = 5, one layer: the runs a 2-core
      CPU can finish (hours each; results/burda_iwae.md).
  'table': the paper's ten cells (VAE and IWAE at k = 1, 5, 50, one and two
      layers; the k = 1 cells are one objective, so eight members).
  'accelerator': what the CPU cannot finish: the one-layer k = 50 members
      and every two-layer member (benchmarks/burda_accelerator.sh).
  'vae_k<k>', 'iwae_k<k>', and with '_two_layer' after them: that one
      member (e.g. 'iwae_k5'), so that members can train side by side in
      separate processes.

  python -m launch.sweep --config=configs/burda_iwae.py --workdir=W \
      --config.data.dir=../shared/data
  python -m launch.sweep --config=configs/burda_iwae.py:iwae_k5 --workdir=W5 ...
  python -m launch.evaluate --workdir=W --metrics=iwae,active_units \
      --iwae_samples=5000 --iwae_batch=20
"""

from configs import default

# The paper's Table 1, MNIST: test NLL in nats, (objective, k, stochastic
# layers) -> NLL, from ../shared/reports/burda_iwae.md.
REPORTED = {
    ('vae', 1, 1): 86.76, ('vae', 5, 1): 86.47, ('vae', 50, 1): 86.35,
    ('iwae', 1, 1): 86.76, ('iwae', 5, 1): 85.54, ('iwae', 50, 1): 84.78,
    ('vae', 1, 2): 85.33, ('vae', 5, 2): 85.01, ('vae', 50, 2): 84.78,
    ('iwae', 1, 2): 85.33, ('iwae', 5, 2): 83.89, ('iwae', 50, 2): 82.90,
}
TRAIN_IMAGES = 59_600
_TABLE = tuple((objective, k, layers) for layers in (1, 2)
               for objective, k in (('vae', 1), ('vae', 5), ('vae', 50),
                                    ('iwae', 5), ('iwae', 50)))
ROWS = {
    'cpu': (('vae', 1, 1), ('iwae', 5, 1)),
    'table': _TABLE,
    'accelerator': (('vae', 50, 1), ('iwae', 50, 1),
                    *(m for m in _TABLE if m[2] == 2)),
}
def get_config(rows: str = 'cpu'):
  """rows: a key of ROWS, or one member's name (see the module docstring)."""
  members = ROWS.get(rows) or _one_member(rows)
  if not members:
    raise ValueError(f"Unknown rows {rows!r} for Burda et al.'s config; "
                     f'choose one of {tuple(ROWS)}, or vae_k<k> / iwae_k<k> '
                     "(with '_two_layer' after it) for one member "
                     '(configs/burda_iwae.py).')
  config = default.get_config()
  config.data.preprocessing = 'dynamic_binarized'
  config.data.train_subset = TRAIN_IMAGES
  config.data.shuffle = False
  config.model.latent_size = 50
  config.model.encoder_widths = (200, 200)
  config.model.first_latent_size = 100
  config.model.inner_widths = (100, 100)
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
  config.sweep = [_member(*member) for member in members]
  # Two-layer rows first: a one-layer row's settings are in theirs too.
  config.reported = [dict(_member(objective, k, n), iwae_nll=nll)
                     for (objective, k, n), nll in sorted(
                         REPORTED.items(), key=lambda item: -item[0][2])]
  return config


def _member(objective: str, k: int, layers: int) -> dict:
  """A member's overrides; the one-layer model is the config's own."""
  member = {'objective': objective, 'num_samples': k}
  if layers == 2:
    member['model.name'] = 'two_layer_vae'
  return member


def _one_member(rows: str) -> tuple[tuple[str, int, int], ...]:
  name, two_layer, rest = rows.partition('_two_layer')
  if rest:
    return ()
  objective, _, k = name.partition('_k')
  if objective in ('vae', 'iwae') and k.isdigit() and int(k) >= 1:
    return ((objective, int(k), 2 if two_layer else 1),)
  return ()
