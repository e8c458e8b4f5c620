"""Study B's code's VAE_cnn (cnn_bn_vae): its shapes against the PyTorch
module, and its BatchNorm state through training, evaluation, resume and
sweeps."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import study_b
from test_train import tiny_config, tiny_dataset
from vae_jax import checkpoint
from vae_jax import driver
from vae_jax import figure_data
from vae_jax import grid as grid_lib
from vae_jax import models
from vae_jax import optimizers
from vae_jax import restore
from vae_jax import sweep
from vae_jax import train
from vae_jax import workdir as workdir_lib
from vae_jax.data import pipeline
from vae_jax.evaluation import evaluate as evaluate_lib
from vae_jax.evaluation import likelihood
from vae_jax.evaluation import registry

SIDE = 12  # 12 -> 8 -> 4 pixels through two 5x5 convolutions


def bn_config(**overrides):
  """A small cnn_bn_vae (two convolutions) on SIDE x SIDE blobs: a few
  steps per epoch. XLA's convolutions compile in a third of the time of the
  CPU default's (patches @ kernel, which the PyTorch comparison runs); the
  BatchNorm state takes the same path."""
  return tiny_config(**{'model.name': 'cnn_bn_vae',
                        'model.encoder_conv_channels': (2, 3),
                        'model.encoder_widths': (16, 16),
                        'model.decoder_widths': (16,),
                        'model.conv_impl': 'xla', **overrides})


def bn_dataset():
  return tiny_dataset(num_train=64, num_test=32, side=SIDE)


def study_b_cnn_config():
  config = study_b.get_config('cnn')
  return grid_lib.member_config(config, config.sweep[0])


# --------------------------------------------------- the report code's shapes
def _torch_vae_cnn(torch, hid_dim=400, lat_dim=1):
  """VAE_cnn of Study B's linked code (../shared/reports/README.md), as a
  torch module (its reparameterisation left out: only shapes and the
  deterministic forward are compared)."""
  nn = torch.nn

  class VAECnn(nn.Module):

    def __init__(self):
      super().__init__()
      self.cnn = nn.Sequential(
          nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.LeakyReLU(.2),
          nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.LeakyReLU(.2),
          nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.LeakyReLU(.2))
      self.encoder = nn.Sequential(nn.Linear(8192, hid_dim), nn.ReLU(),
                                   nn.Linear(hid_dim, hid_dim), nn.ReLU())
      self.mu = nn.Linear(hid_dim, lat_dim)
      self.logvar2 = nn.Linear(hid_dim, lat_dim)
      self.decoder = nn.Sequential(nn.Linear(lat_dim, hid_dim), nn.ReLU(),
                                   nn.Linear(hid_dim, 784), nn.Sigmoid())

    def forward(self, x):  # x [B, 1, 28, 28]
      h = self.encoder(self.cnn(x).view(x.shape[0], -1))
      mu, logvar2 = self.mu(h), self.logvar2(h)
      return self.decoder(mu), mu, logvar2

  return VAECnn()


def test_parameter_count_is_the_report_codes():
  # By hand from the layer shapes: convolutions 1->6->16->32 (5x5, with
  # bias), BatchNorm scale and bias per channel, 8192->400->400, heads
  # 400->1 twice, decoder 1->400->784.
  by_hand = ((25 * 1 * 6 + 6) + (25 * 6 * 16 + 16) + (25 * 16 * 32 + 32)
             + 2 * (6 + 16 + 32)
             + (8192 * 400 + 400) + (400 * 400 + 400) + 2 * (400 * 1 + 1)
             + (1 * 400 + 400) + (400 * 784 + 784))
  assert by_hand == 3_769_098
  assert train.count_params(study_b_cnn_config().model, (28, 28)) == by_hand


def _flax_variables_from_torch(module, torch_model):
  """The torch model's weights (and running averages) as cnn_bn_vae's."""
  # Copies: torch updates its running averages in place.
  state = {k: v.detach().numpy().copy()
           for k, v in torch_model.state_dict().items()}
  linear = lambda name: {'kernel': state[f'{name}.weight'].T,
                         'bias': state[f'{name}.bias']}
  params = {}
  batch_stats = {}
  for i, (conv, norm) in enumerate(((0, 1), (3, 4), (6, 7))):
    params[f'encoder_convs_{i}'] = {
        'kernel': state[f'cnn.{conv}.weight'].transpose(2, 3, 1, 0),
        'bias': state[f'cnn.{conv}.bias']}
    params[f'encoder_norms_{i}'] = {'scale': state[f'cnn.{norm}.weight'],
                                    'bias': state[f'cnn.{norm}.bias']}
    batch_stats[f'encoder_norms_{i}'] = {
        'mean': state[f'cnn.{norm}.running_mean'],
        'var': state[f'cnn.{norm}.running_var']}
  first = linear('encoder.0')
  # torch flattens C, H, W; cnn_bn_vae flattens H, W, C.
  first['kernel'] = first['kernel'].reshape(32, 16, 16, -1).transpose(
      1, 2, 0, 3).reshape(8192, -1)
  params.update(enc_0=first, enc_1=linear('encoder.2'),
                enc_mean=linear('mu'), enc_log_variance=linear('logvar2'),
                dec_0=linear('decoder.0'), dec_logits=linear('decoder.2'))
  like = jax.eval_shape(lambda: train.init_variables(
      module, jnp.uint32(0), (28, 28)))
  variables = {'params': params, 'batch_stats': batch_stats}
  assert jax.tree.map(np.shape, variables) == jax.tree.map(
      lambda x: x.shape, like)
  return variables


def test_forward_pass_equals_the_pytorch_module_in_both_modes(one_torch_thread):
  torch = pytest.importorskip('torch')
  torch.manual_seed(0)
  torch_model = _torch_vae_cnn(torch)
  assert sum(p.numel() for p in torch_model.parameters()) == 3_769_098
  images = np.random.default_rng(0).uniform(size=(8, 28, 28)).astype(
      np.float32)
  torch_images = torch.from_numpy(images[:, None])
  torch_model.train()
  with torch.no_grad():  # running averages away from their start
    for _ in range(3):
      torch_model(torch_images * 0.5)
  module = models.build_model(study_b_cnn_config().model, (28, 28))
  variables = _flax_variables_from_torch(module, torch_model)

  def close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(),
                               rtol=2e-4, atol=2e-5)

  # Evaluation (model.eval()): the running averages.
  torch_model.eval()
  with torch.no_grad():
    output, mu, logvar2 = torch_model(torch_images)
  posterior = module.apply(variables, images, method=module.encode)
  close(posterior.mean, mu)
  close(posterior.log_variance, logvar2)
  close(jax.nn.sigmoid(module.apply(variables, posterior.mean,
                                    method=module.decode)).reshape(8, -1),
        output)

  # Training: the batch's statistics, and the averages moved as PyTorch
  # moves them (momentum 0.1, the unbiased variance).
  torch_model.train()
  with torch.no_grad():
    _, mu, _ = torch_model(torch_images)
  posterior, batch_stats = train.apply_model(
      module, variables['params'], variables['batch_stats'], images,
      method=module.encode, train=True)
  close(posterior.mean, mu)
  for i, norm in enumerate((1, 4, 7)):
    layer = torch_model.cnn[norm]
    close(batch_stats[f'encoder_norms_{i}']['mean'], layer.running_mean)
    close(batch_stats[f'encoder_norms_{i}']['var'], layer.running_var)


def test_batch_norm_momentum_and_epsilon_are_pytorchs():
  module = models.cnn_bn.BatchNorm()
  assert (module.momentum, module.epsilon) == (0.1, 1e-5)


# ----------------------------------------------------- BatchNorm state in use
@pytest.fixture(scope='module')
def straight_run(tmp_path_factory):
  """A 3-epoch run's workdir and results."""
  workdir = tmp_path_factory.mktemp('cnn_bn') / 'straight'
  results = driver.train_and_evaluate(bn_config(num_epochs=3), workdir,
                                      dataset=bn_dataset())
  return workdir, results


def test_running_averages_train_and_are_what_evaluation_uses(straight_run):
  workdir, results = straight_run
  config = bn_config()
  dataset = bn_dataset()
  [member] = restore.restore_members(workdir,
                                     restore.load_run_config(workdir),
                                     dataset.image_shape)
  model = member.model
  start = train.init_variables(model, jnp.uint32(config.seed),
                               dataset.image_shape)['batch_stats']
  for layer, stats in member.batch_stats.items():
    assert not np.allclose(stats['mean'], start[layer]['mean']), layer
    assert not np.allclose(stats['var'], start[layer]['var']), layer

  evaluate = jax.jit(train.make_evaluate(model, config.eval_batch_size,
                                         config.data.preprocessing))
  test_data = pipeline.device_data(dataset.test_images, dataset.test_labels)
  # The recorded test loss is the running averages' ...
  recorded = evaluate(member.params, member.hparams, test_data,
                      member.batch_stats)
  assert float(recorded['loss']) == pytest.approx(results['test_loss'],
                                                  rel=1e-6)
  assert abs(float(evaluate(member.params, member.hparams, test_data,
                            start)['loss']) - results['test_loss']) > 1e-3
  # ... and the encoder's output differs from normalising the test batch
  # with its own statistics, and from the starting averages.
  x = jnp.asarray(dataset.test_images / 255.0, jnp.float32)
  evaluated = model.apply(member.variables, x, method=model.encode)
  as_in_training, _ = train.apply_model(model, member.params,
                                        member.batch_stats, x,
                                        method=model.encode, train=True)
  at_start = model.apply(train.model_variables(member.params, start), x,
                         method=model.encode)
  for other in (as_in_training, at_start):
    assert np.abs(evaluated.mean - other.mean).max() > 1e-3

  # The reconstructions tracked every epoch and the figures' decode with
  # the running averages too.
  count = driver.TRACKED_IMAGES
  expected = jax.jit(train.make_reconstruct(model))(
      member.params, member.hparams, x[:count],
      jnp.asarray(dataset.test_labels[:count]), member.batch_stats)
  with np.load(workdir / workdir_lib.RECONSTRUCTIONS_BY_EPOCH) as tracked:
    grey = tracked['outputs'][-1].astype(int)  # stored as grey levels
  assert np.abs(grey - np.round(np.asarray(expected) * 255)).max() <= 1
  figures = figure_data.compute_run_figures(
      model, member.params, member.hparams, dataset,
      batch_stats=member.batch_stats)
  np.testing.assert_allclose(figures.reconstructions[:count], expected,
                             atol=1e-5)

  # launch.evaluate's metrics restore and use the running averages too.
  settings = registry.Settings(iwae_samples=8, iwae_chunk=4, iwae_batch=16)
  saved = evaluate_lib.evaluate_workdir(
      workdir, ['recon_at_mean', 'iwae', 'active_units'], settings=settings,
      dataset=dataset)
  at_mean = jax.jit(train.make_evaluate(
      model, settings.batch_size, config.data.preprocessing,
      decode_mean=True))(member.params, member.hparams, test_data,
                         member.batch_stats)
  assert saved['test_recon_at_mean'] == pytest.approx(float(at_mean['recon']),
                                                      rel=1e-6)
  iwae = lambda batch_stats: likelihood.iwae_nll(
      model, member.params, member.hparams, dataset.test_images,
      dataset.test_labels, jax.random.fold_in(jax.random.PRNGKey(0), 0), 8,
      4, config.data.preprocessing, batch_size=16, batch_stats=batch_stats)
  assert saved['iwae_nll'] == pytest.approx(iwae(member.batch_stats),
                                            rel=1e-6)
  assert abs(saved['iwae_nll'] - iwae(start)) > 1e-3
  assert 0 <= saved['active_units'] <= 2
  with pytest.raises(Exception, match='batch_stats'):
    model.apply({'params': member.params}, x, method=model.encode)


def test_resume_is_bit_identical_with_batch_norm(tmp_path, straight_run):
  straight, _ = straight_run
  dataset = bn_dataset()
  driver.train_and_evaluate(bn_config(num_epochs=1), tmp_path / 'resumed',
                            dataset=dataset)
  driver.train_and_evaluate(bn_config(num_epochs=3), tmp_path / 'resumed',
                            dataset=dataset)  # resumes at epoch 1

  config = bn_config()
  model = models.build_model(config.model, dataset.image_shape)
  like = train.create_train_state(
      model, optimizers.make_optimizer(config.optimizer),
      train.hyperparams_from_config(config), dataset.image_shape)

  def final_state(workdir):
    manager = checkpoint.RunCheckpoints(workdir)
    state = manager.restore(manager.latest_epoch(), like=like)
    manager.close()
    return state

  a, b = final_state(straight), final_state(tmp_path / 'resumed')
  assert a.batch_stats and jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  lines = lambda w: [{k: v for k, v in json.loads(l).items()
                      if k not in ('img_per_s', 'seconds')}
                     for l in (w / 'metrics.jsonl').read_text().splitlines()]
  assert lines(straight) == lines(tmp_path / 'resumed')


def test_a_sweep_of_batch_norm_members_equals_their_single_runs(tmp_path):
  # One program: latent 1 trains as a mask over latent 2; each member keeps
  # its own running averages. Plain SGD: a convolution's bias before
  # BatchNorm gets only rounding noise for a gradient (the normalisation
  # cancels it), which Adam scales up to steps of the learning rate, so
  # under Adam the running means of a vmapped and a single run part by
  # ~1e-3 (their test losses do not).
  grid = grid_lib.zipped(model__latent_size=[2, 1], seed=[0, 1], beta=[1.0, 0.5])
  config = bn_config(num_epochs=2, optimizer='sgd')
  config.sweep = grid
  dataset = bn_dataset()
  results = sweep.run_sweep(config, tmp_path / 'sweep', dataset=dataset)
  assert [r['group'] for r in results] == [0, 0]
  members = restore.restore_members(
      tmp_path / 'sweep', restore.load_run_config(tmp_path / 'sweep'),
      dataset.image_shape)
  assert not np.allclose(members[0].batch_stats['encoder_norms_0']['mean'],
                         members[1].batch_stats['encoder_norms_0']['mean'])
  for member, overrides in enumerate(grid):
    workdir = tmp_path / f'single{member}'
    single = driver.train_and_evaluate(
        grid_lib.member_config(config, overrides), workdir, dataset=dataset)
    assert results[member]['num_params'] == single['num_params']
    for key in ('test_recon', 'test_kl', 'test_loss'):
      assert results[member][key] == pytest.approx(single[key], rel=2e-5), (
          member, key)
    [alone] = restore.restore_members(
        workdir, restore.load_run_config(workdir), dataset.image_shape)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                         atol=1e-6),
                 members[member].batch_stats, alone.batch_stats)
