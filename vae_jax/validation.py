"""Checks a config before anything is compiled or written: each field
against what its declaration allows (vae_jax.config_fields), then the
combinations of values that are each allowed but not together.

Every error is one line naming the key, the value and what is allowed, so a
launcher can show it as a usage error (no traceback).
"""

from __future__ import annotations

import ml_collections

from vae_jax import classifier
from vae_jax import config_fields
from vae_jax import data
from vae_jax import grid
from vae_jax import models
from vae_jax import objectives


class ConfigError(ValueError):
  """A config value outside what vae_jax can train."""


def validate(config: ml_collections.ConfigDict, where: str = '') -> None:
  """Raises ConfigError on the first value vae_jax cannot train with.

  where: names the sweep member in the message ('' for a run).
  """
  for field in config_fields.FIELDS.values():
    if field.check is None:
      continue
    try:
      value = grid.get_key(config, field.key)
    except KeyError:
      continue  # an older config without the key: its default applies
    if not field.check(value):
      raise ConfigError(
          f'config.{field.key} = {value!r}{where} is not allowed: it must be '
          f'{field.allowed_text()}. Set --config.{field.key}=...')
  _check_combinations(config, where)


def _check_combinations(config: ml_collections.ConfigDict, where: str) -> None:
  """Values that are each allowed but not together."""
  if config.loss in objectives.PERCEPTUAL_LOSSES:
    try:
      spec = data.dataset_spec(config.data.name)
      classifier.check_judges(spec.name, spec.image_shape,
                              f'config.loss = {config.loss!r}{where} would')
    except classifier.ClassifierError as error:
      raise ConfigError(f'{error} Choose a loss without "perceptual".') from None
  objective = config.get('objective', 'elbo')
  if objective != 'elbo':
    if not objectives.is_likelihood(config.loss):
      raise ConfigError(
          f'config.objective = {objective!r}{where} needs a decoder '
          f'likelihood, and config.loss = {config.loss!r} is a distance: set '
          "--config.loss=bce or --config.objective=elbo.")
    if not config.model.get('variational', True):
      raise ConfigError(
          f'config.objective = {objective!r}{where} needs q(z|x), and '
          'config.model.variational is False: set --config.objective=elbo.')
  message = models.get_model(config.model.name).check(config, where)
  if message:
    raise ConfigError(message)


def validate_with_data(config: ml_collections.ConfigDict, num_train: int,
                       where: str = '') -> None:
  """The checks that need the loaded data: one batch must fit in it.

  num_train: training images after config.data.train_subset.
  """
  if config.batch_size > num_train:
    raise ConfigError(
        f'config.batch_size = {config.batch_size}{where} is more than the '
        f'{num_train} training images: an epoch would have no step. Set '
        f'--config.batch_size to at most {num_train}.')


def validate_epochs(config: ml_collections.ConfigDict,
                    trained_epochs: int | None) -> None:
  """A resumed run may extend its epochs, not take them back."""
  if trained_epochs is not None and config.num_epochs < trained_epochs:
    raise ConfigError(
        f'config.num_epochs = {config.num_epochs} is fewer than the '
        f'{trained_epochs} epochs this workdir has trained. Set '
        f'--config.num_epochs={trained_epochs} or more to go on, or choose '
        'a new --workdir.')
