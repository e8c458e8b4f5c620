"""Every config field is declared once (vae_jax.config_fields), and the
default config, validation, resume compatibility and sweep groups read it."""

import copy
import json

import pytest

import vae_jax
from vae_jax import checkpoint as checkpoint_lib
from vae_jax import config_fields
from vae_jax import group as group_lib
from vae_jax import restore
from vae_jax import train
from vae_jax import validation
from vae_jax import workdir as workdir_lib


def _flat(config):
  return checkpoint_lib.flatten_config(checkpoint_lib.config_as_dict(config))


def test_the_default_config_holds_exactly_the_declared_fields():
  declared = {f.key: f.default for f in config_fields.FIELDS.values()
              if not f.optional}
  assert _flat(vae_jax.default_config()) == checkpoint_lib.flatten_config(
      declared)
  # A model's own field is declared by its module, not the run-wide table.
  assert 'model.first_latent_size' in declared
  assert 'model.hidden_size' in declared


def test_each_declared_rule_refuses_a_bad_value_naming_the_flag():
  bad = {'data.preprocessing': 'binary', 'model.latent_size': 0,
         'model.first_latent_size': -1, 'model.hidden_size': 0,
         'model.conv_impl': 'cudnn', 'prior_std': 0.0, 'seed': -1,
         'checkpoint.keep_latest': 0}
  for key, value in bad.items():
    config = vae_jax.default_config()
    vae_jax.grid.set_key(config, key, value)
    with pytest.raises(validation.ConfigError,
                       match=rf'config\.{key} = .* --config\.{key}='):
      validation.validate(config)


def test_a_field_a_saved_config_lacks_counts_at_its_default():
  current = checkpoint_lib.config_as_dict(vae_jax.default_config())
  saved = copy.deepcopy(current)
  del saved['model']['inner_widths'], saved['objective']
  assert checkpoint_lib.config_differences(saved, current) == []
  changed = copy.deepcopy(current)
  changed['objective'] = 'iwae'
  assert checkpoint_lib.config_differences(saved, changed) == [
      "objective: '<absent>' -> 'iwae'"]
  # Resumable fields may change; what is trained may not.
  longer = copy.deepcopy(current)
  longer['num_epochs'], longer['data']['dir'] = 99, '/elsewhere'
  assert checkpoint_lib.config_differences(current, longer) == []


def test_a_saved_config_is_loaded_with_the_fields_it_lacks(tmp_path):
  saved = checkpoint_lib.config_as_dict(vae_jax.default_config())
  del saved['model']['output_bias'], saved['lr_schedule']
  (tmp_path / workdir_lib.CONFIG_FILE).write_text(json.dumps(saved))
  loaded = restore.load_run_config(tmp_path)
  assert loaded.model.output_bias == 'init'
  assert loaded.lr_schedule == 'constant'
  assert 'reported' not in loaded  # optional fields stay absent


def test_the_sweep_array_fields_are_the_steps_hyperparameter_arrays():
  arrays = {key.split('.')[-1] for key in config_fields.sweep_array_keys()}
  steps = set(train.Hyperparams._fields) - {'latent_mask'} | {'latent_size'}
  assert arrays == steps
  # Members differing only in array fields share one group.
  base = vae_jax.default_config()
  other = copy.deepcopy(base)
  other.beta, other.seed, other.learning_rate = 4.0, 3, 1e-4
  wider = copy.deepcopy(base)
  wider.batch_size = 64
  assert group_lib.group_members([base, other, wider]) == [[0, 1], [2]]


def test_a_field_is_declared_once():
  with pytest.raises(ValueError, match="'beta' is already registered"):
    config_fields.declare(config_fields.Field('beta', 2.0, 'another beta'))
