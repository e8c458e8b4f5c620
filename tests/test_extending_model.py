"""A new model is one file: registered here, it trains, sweeps, evaluates and
reports through vae_jax's own entry points (docs/extending.md)."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from test_train import tiny_config, tiny_dataset
from vae_jax import config_fields
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import group as group_lib
from vae_jax import models
from vae_jax import report
from vae_jax import sweep
from vae_jax import validation
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry
from vae_jax.models import conv_vae
from vae_jax.objectives import GaussianPosterior


# ------------------------------------------------------------ the new model
class LinearGaussianVAE(nn.Module):
  """x -> one dense layer -> (mean, log-variance); z -> dense -> logits:
  the smallest VAE with vae_jax's model interface."""

  image_shape: tuple[int, int]
  latent_size: int
  hidden: int
  variational: bool = True

  def setup(self):
    self.enc_hidden = nn.Dense(self.hidden)
    self.enc_mean = nn.Dense(self.latent_size)
    self.enc_log_variance = nn.Dense(self.latent_size)
    self.dec_logits = nn.Dense(int(np.prod(self.image_shape)))

  def encode(self, images, labels=None) -> GaussianPosterior:
    h = jnp.tanh(self.enc_hidden(images.reshape(images.shape[0], -1)))
    return GaussianPosterior(self.enc_mean(h), self.enc_log_variance(h))

  def decode(self, z, labels=None):
    return self.dec_logits(z).reshape(z.shape[0], *self.image_shape)

  def __call__(self, images, labels=None):
    posterior = self.encode(images, labels)
    return self.decode(posterior.mean, labels), posterior


def _check(config, where):
  if config.model.num_classes:
    return (f'config.model.num_classes = {config.model.num_classes}{where}: '
            'linear_vae is not conditional; set --config.model.num_classes=0.')
  return None


SPEC = models.register_model(models.ModelSpec(
    name='linear_vae',
    build=lambda model_config, image_shape: LinearGaussianVAE(
        image_shape, model_config.latent_size, model_config.hidden),
    fields=frozenset({'name', 'latent_size', 'hidden'}),
    # Its decoder's first layer is dense in z: masked latent dimensions
    # contribute nothing, so latent sizes share a program.
    maskable_latent=True, check=_check,
    description='a linear-Gaussian VAE, registered by a test',
    # Its own field: in the default config from here on, checked, a flag.
    config_fields=(config_fields.Field(
        'model.hidden', 12, "Width of linear_vae's hidden layer.",
        config_fields.is_positive_integer, 'an integer >= 1'),)))


def linear_config(**overrides):
  config = tiny_config(**overrides)
  config.model.name = 'linear_vae'
  return config


# -------------------------------------------------------------------- tests
def test_the_registry_knows_the_new_model_and_refuses_a_second_of_its_name():
  assert 'linear_vae' in models.model_names()
  assert models.get_model('linear_vae') is SPEC
  built = models.build_model(linear_config().model, (8, 8))
  assert isinstance(built, LinearGaussianVAE) and built.hidden == 12
  with pytest.raises(ValueError, match="'linear_vae' is already registered"):
    models.register_model(models.ModelSpec(
        name='linear_vae', build=SPEC.build, fields=SPEC.fields))
  with pytest.raises(ValueError, match='linear_vae'):
    models.get_model('no_such_model')  # the message lists every model


def test_validation_reads_the_new_models_name_and_its_own_rule():
  validation.validate(linear_config())
  config = linear_config(**{'model.num_classes': 10})
  with pytest.raises(validation.ConfigError,
                     match='linear_vae is not conditional'):
    validation.validate(config)
  config = tiny_config(**{'model.name': 'linear_vea'})
  with pytest.raises(validation.ConfigError, match="'linear_vae'"):
    validation.validate(config)


def test_the_new_models_own_field_has_its_default_and_its_rule():
  assert linear_config().model.hidden == 12
  with pytest.raises(validation.ConfigError,
                     match=r'config.model.hidden = 0 .* an integer >= 1'):
    validation.validate(linear_config(**{'model.hidden': 0}))


def test_a_built_in_models_rule_comes_from_its_own_module():
  config = tiny_config(**{'model.name': 'conv_vae', 'model.num_classes': 10})
  with pytest.raises(validation.ConfigError,
                     match='conv_vae has no conditional form'):
    validation.validate(config)
  assert models.get_model('conv_vae').check is conv_vae._check  # pylint: disable=protected-access


def test_the_new_model_trains_sweeps_evaluates_and_reports(tmp_path):
  dataset = tiny_dataset()
  run = driver.train_and_evaluate(linear_config(num_epochs=3),
                                  tmp_path / 'run', dataset=dataset)
  hidden, latent, pixels = 12, 2, 64
  assert run['num_params'] == (pixels * hidden + hidden
                               + 2 * (hidden * latent + latent)
                               + latent * pixels + pixels)
  losses = [json.loads(line)['test_loss'] for line in
            (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  assert losses[-1] < losses[0]  # it learns

  # A resumed run may change a field the model does not read, not its own.
  driver.train_and_evaluate(linear_config(num_epochs=4,
                                          **{'model.hidden_size': 3}),
                            tmp_path / 'run', dataset=dataset)
  with pytest.raises(Exception, match='model.hidden: 12 -> 5'):
    config = linear_config(num_epochs=5)
    config.model.hidden = 5
    driver.train_and_evaluate(config, tmp_path / 'run', dataset=dataset)

  # Latent sizes 1 and 2 share one program (maskable), and the latent-1
  # member trains as its own run does.
  config = linear_config()
  config.sweep = grid_lib.product(model__latent_size=[1, 2])
  assert group_lib.group_members(
      [grid_lib.member_config(config, m) for m in config.sweep]) == [[0, 1]]
  members = sweep.run_sweep(config, tmp_path / 'sweep', dataset=dataset)
  alone = driver.train_and_evaluate(
      grid_lib.member_config(config, {'model.latent_size': 1}),
      tmp_path / 'alone', dataset=dataset)
  assert members[0]['test_loss'] == pytest.approx(alone['test_loss'],
                                                  rel=2e-5)

  settings = registry.Settings(iwae_samples=20, iwae_chunk=8, iwae_batch=16)
  results = evaluate.evaluate_workdir(tmp_path / 'sweep', ['iwae'],
                                      settings=settings, dataset=dataset)
  for member in results:
    # More importance samples tighten the one-sample bound.
    assert np.isfinite(member['iwae_nll'])
    assert member['iwae_nll'] < member['test_loss']
  html = report.write_report(tmp_path / 'sweep').read_text()
  assert 'linear_vae' in html and 'iwae_nll' in html
