"""Checks a config before anything is compiled or written.

Every error is one line naming the key, the value and what is allowed, so a
launcher can show it as a usage error (no traceback).
"""

from __future__ import annotations

import math
from typing import Any

import ml_collections

from vae_jax import classifier
from vae_jax import data
from vae_jax import objectives
from vae_jax import optimizers
from vae_jax import grid
from vae_jax import models
from vae_jax.models.initializers import INIT_SCHEMES
from vae_jax.models.mlp import ACTIVATIONS, POSTERIOR_SCALES

SOURCES = ('files', 'tfds')
PREPROCESSING_MODES = ('grey', 'dynamic_binarized', 'static_binarized')
OPTIMIZERS = optimizers.OPTIMIZERS
OUTPUT_BIASES = ('init', 'data_mean')


class ConfigError(ValueError):
  """A config value outside what vae_jax can train."""


def _number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _integer(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _widths(value: Any) -> bool:
  return (isinstance(value, (tuple, list))
          and all(_integer(v) and v >= 1 for v in value))


# key -> (test, what is allowed (or a function giving it)), in the order
# they are checked.
_RULES = (
    # Read when checked: a data set registered after this module loaded counts.
    ('data.name', lambda v: v in data.dataset_names(),
     lambda: f'a registered data set, one of {data.dataset_names()}'),
    ('data.source', lambda v: v in SOURCES, f'one of {SOURCES}'),
    ('data.preprocessing', lambda v: v in PREPROCESSING_MODES,
     f'one of {PREPROCESSING_MODES}'),
    ('data.train_subset', lambda v: v is None or (_integer(v) and v >= 1),
     'an integer >= 1, or None for all images'),
    ('data.test_subset', lambda v: v is None or (_integer(v) and v >= 1),
     'an integer >= 1, or None for all images'),
    ('data.shuffle', lambda v: isinstance(v, bool), 'True or False'),
    # Read when checked: a model registered after this module loaded counts.
    ('model.name', lambda v: v in models.model_names(),
     lambda: f'one of {models.model_names()}'),
    ('model.latent_size', lambda v: _integer(v) and v >= 1,
     'an integer >= 1'),
    ('model.init_scheme', lambda v: v in INIT_SCHEMES,
     f'one of {INIT_SCHEMES}'),
    ('model.activation', lambda v: v in ACTIVATIONS,
     f'one of {tuple(sorted(ACTIVATIONS))}'),
    ('model.num_classes', lambda v: _integer(v) and v >= 0,
     'an integer >= 0 (0: not conditional)'),
    ('model.encoder_widths', lambda v: _widths(v), 'a tuple of integers >= 1'),
    ('model.decoder_widths', lambda v: v is None or _widths(v),
     'a tuple of integers >= 1, or None to mirror the encoder'),
    ('model.encoder_conv_channels', lambda v: _widths(v),
     'a tuple of integers >= 1 (empty: no convolutions)'),
    ('model.hidden_size', lambda v: _integer(v) and v >= 1,
     'an integer >= 1'),
    ('model.first_latent_size', lambda v: _integer(v) and v >= 1,
     'an integer >= 1'),
    ('model.inner_widths', lambda v: _widths(v), 'a tuple of integers >= 1'),
    ('model.posterior_scale', lambda v: v in POSTERIOR_SCALES,
     f'one of {POSTERIOR_SCALES}'),
    ('model.output_bias', lambda v: v in OUTPUT_BIASES,
     f'one of {OUTPUT_BIASES}'),
    ('loss', lambda v: v in objectives.loss_names(),
     lambda: f'one of {objectives.loss_names()}'),
    ('objective', lambda v: v in objectives.objective_names(),
     lambda: f'one of {objectives.objective_names()}'),
    ('num_samples', lambda v: _integer(v) and v >= 1, 'an integer >= 1'),
    ('beta', lambda v: _number(v) and v >= 0, 'a finite number >= 0'),
    ('prior_mean', _number, 'a finite number'),
    ('prior_std', lambda v: _number(v) and v > 0, 'a finite number > 0'),
    ('optimizer', lambda v: v in OPTIMIZERS, f'one of {OPTIMIZERS}'),
    ('learning_rate', lambda v: _number(v) and v > 0, 'a finite number > 0'),
    ('lr_schedule', lambda v: v in optimizers.SCHEDULES,
     f'one of {optimizers.SCHEDULES}'),
    ('batch_size', lambda v: _integer(v) and v >= 1, 'an integer >= 1'),
    ('eval_batch_size', lambda v: _integer(v) and v >= 1, 'an integer >= 1'),
    ('num_epochs', lambda v: _integer(v) and v >= 1, 'an integer >= 1'),
    ('seed', lambda v: _integer(v) and 0 <= v < 2**32,
     'an integer from 0 to 2**32 - 1'),
    ('scan_unroll', lambda v: _integer(v) and v >= 1, 'an integer >= 1'),
    ('checkpoint.keep_latest', lambda v: _integer(v) and v >= 1,
     'an integer >= 1'),
)


def validate(config: ml_collections.ConfigDict, where: str = '') -> None:
  """Raises ConfigError on the first value vae_jax cannot train with.

  where: names the sweep member in the message ('' for a run).
  """
  for key, test, allowed in _RULES:
    try:
      value = grid.get_key(config, key)
    except KeyError:
      continue  # an older config without the key: its default applies
    if not test(value):
      allowed = allowed() if callable(allowed) else allowed
      raise ConfigError(f'config.{key} = {value!r}{where} is not allowed: it '
                        f'must be {allowed}. Set --config.{key}=...')
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
