"""Every config field, declared once: its default, meaning and allowed values.

A field is declared by the module that reads it: the run-wide fields here,
a model's own fields by its model module (`ModelSpec.config_fields`). Every
other place that knows about fields reads this registry: the default config
(vae_jax.defaults), validation, resume compatibility (which fields may
change when a run is resumed, and what a saved config that lacks a field
trained with) and sweep groups (which fields are arrays in the step).

A field's default is also what a run saved before the field existed trained
with, so a saved config that lacks it resumes and evaluates at the default.
A field whose default would change must therefore get a new name instead.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable

from vae_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field.

  key: its dotted name ('model.latent_size').
  default: its value in the default config (None with `value_type` for an
    unset optional value).
  doc: what it means, for a reader of the default config.
  check: value -> whether vae_jax can train with it (None: any value).
  allowed: what `check` accepts, for the error message (a function for a
    list read when checked, such as the registered models).
  value_type: the type of a None default (ml_collections' placeholder), so a
    flag can set it.
  resumable: a run may be resumed with another value (where data lives, how
    long or how fast to train, what to compare with: not what is trained).
  sweep_array: an array in the training step (train.Hyperparams), so sweep
    members differing in it share one compiled program.
  optional: not in the default config; a config may add it (a study's
    published numbers).
  """

  key: str
  default: Any
  doc: str
  check: Callable[[Any], bool] | None = None
  allowed: str | Callable[[], str] = ''
  value_type: type | None = None
  resumable: bool = False
  sweep_array: bool = False
  optional: bool = False

  def allowed_text(self) -> str:
    return self.allowed() if callable(self.allowed) else self.allowed


FIELDS: Registry[Field] = Registry('config field')


def _same_declaration(known: Field, field: Field) -> bool:
  # A module imported again declares equal fields with new check functions.
  return (known.key, known.default, known.doc) == (field.key, field.default,
                                                   field.doc)


def declare(*fields: Field) -> None:
  """Registers config fields (a module's own), in the order given."""
  for field in fields:
    FIELDS.add(field.key, field, same=_same_declaration,
               describe=lambda known: f'default {known.default!r}')


def resumable_keys() -> frozenset[str]:
  return frozenset(f.key for f in FIELDS.values() if f.resumable)


def sweep_array_keys() -> frozenset[str]:
  return frozenset(f.key for f in FIELDS.values() if f.sweep_array)


def defaults_for_absent_keys() -> dict[str, Any]:
  """key -> the value a saved config without the key trained with."""
  return {f.key: f.default for f in FIELDS.values() if not f.optional}


# Value tests, for the checks below and a model module's own fields.
def is_number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def is_integer(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def is_positive_integer(value: Any) -> bool:
  return is_integer(value) and value >= 1


def is_widths(value: Any) -> bool:
  return (isinstance(value, (tuple, list))
          and all(is_positive_integer(v) for v in value))


def one_of(choices) -> tuple[Callable[[Any], bool], str]:
  """(check, allowed) for a field taking one of fixed `choices`."""
  choices = tuple(choices)
  return (lambda value: value in choices), f'one of {choices}'


def _one_of_when_checked(choices: Callable[[], Any]
                         ) -> tuple[Callable[[Any], bool], Callable[[], str]]:
  """(check, allowed) for a field taking one of `choices()`, read when
  checked: an entry registered after this module loaded counts, and the
  modules holding the choices load after this one."""
  return (lambda value: value in tuple(choices())), (
      lambda: f'one of {tuple(choices())}')


def registered(module: str, names: str) -> tuple[Callable[[Any], bool],
                                                 Callable[[], str]]:
  """(check, allowed) for a field naming an entry of a registry: `names` is
  the function of `module` listing the entries."""
  return _one_of_when_checked(
      lambda: getattr(importlib.import_module(module), names)())


# Choices of fields whose values no registry holds.
SOURCES = ('files', 'tfds')
PREPROCESSING_MODES = ('grey', 'dynamic_binarized', 'static_binarized')
OUTPUT_BIASES = ('init', 'data_mean')
CONV_IMPLS = ('auto', 'matmul', 'xla')
_SUBSET = (lambda v: v is None or is_positive_integer(v),
           'an integer >= 1, or None for all images')
_POSITIVE_INTEGER = (is_positive_integer, 'an integer >= 1')
_WIDTHS = (is_widths, 'a tuple of integers >= 1')


def _choices_of(module: str, name: str) -> tuple[Callable[[Any], bool],
                                                 Callable[[], str]]:
  """(check, allowed) for one of the fixed choices `module.name`."""
  return _one_of_when_checked(
      lambda: getattr(importlib.import_module(module), name))


declare(
    # The data.
    Field('data.name', 'mnist',
          'A registered data set (vae_jax/data/catalog/; `python -m '
          'vae_jax.data` lists them).',
          *registered('vae_jax.data', 'dataset_names')),
    Field('data.source', 'files', "'files' (IDX / LIBSVM) or 'tfds'.",
          *one_of(SOURCES)),
    Field('data.dir', None,
          'Where the files are; None looks in $VAE_JAX_DATA_DIR, then the '
          'cache, then where a system package installs them.',
          value_type=str, resumable=True),
    Field('data.cache_dir', None, 'Where downloads are kept (None: the '
          'default cache).', value_type=str, resumable=True),
    Field('data.download', True, 'Whether to download missing files.',
          resumable=True),
    Field('data.preprocessing', 'grey',
          "'grey' (intensities in [0, 1]), 'dynamic_binarized' (resampled "
          "every epoch) or 'static_binarized' (one fixed binarisation).",
          *one_of(PREPROCESSING_MODES)),
    Field('data.train_subset', None, 'Use only the first N training images '
          '(None: all); for quick runs.', *_SUBSET, value_type=int),
    Field('data.test_subset', None, 'Evaluate on only the first N test '
          'images (None: all); for quick runs.', *_SUBSET, value_type=int),
    Field('data.shuffle', True,
          'False: every epoch visits the training images in file order.',
          lambda v: isinstance(v, bool), 'True or False'),

    # The model; a model's own fields are declared by its module.
    Field('model.name', 'mlp_vae', 'A registered model (vae_jax.models).',
          *registered('vae_jax.models', 'model_names')),
    Field('model.latent_size', 20, 'Dimensions of z.', *_POSITIVE_INTEGER,
          sweep_array=True),
    Field('model.encoder_widths', (400,), 'Hidden widths of the encoder.',
          *_WIDTHS),
    Field('model.decoder_widths', None,
          "Hidden widths of the decoder; None mirrors the encoder's.",
          lambda v: v is None or is_widths(v),
          'a tuple of integers >= 1, or None to mirror the encoder',
          value_type=tuple),
    Field('model.activation', 'relu', 'Of the hidden layers.',
          *_choices_of('vae_jax.models.mlp', 'ACTIVATIONS')),
    Field('model.init_scheme', 'torch_default',
          'How weights start (vae_jax.models.initializers).',
          *_choices_of('vae_jax.models.initializers', 'INIT_SCHEMES')),
    Field('model.num_classes', 0,
          "> 0 makes a conditional VAE: the one-hot label joins the "
          "encoder's input and the latent (mlp_vae).",
          lambda v: is_integer(v) and v >= 0,
          'an integer >= 0 (0: not conditional)'),
    Field('model.conv_impl', 'auto',
          "Convolutions: 'auto' (patches @ kernel on CPU, XLA's elsewhere), "
          "'matmul' or 'xla'. Used by conv models only.", *one_of(CONV_IMPLS)),
    Field('model.encoder_conv_channels', (),
          "Channels of the encoder's convolutions before its dense layers "
          "(mlp_vae: 3x3 stride 2, Study B's CNN; cnn_bn_vae: 5x5 with "
          'BatchNorm); () for a pure MLP.',
          is_widths, 'a tuple of integers >= 1 (empty: no convolutions)'),
    Field('model.variational', True,
          'False: a plain autoencoder (decodes the code, no KL term).',
          lambda v: isinstance(v, bool), 'True or False'),
    Field('model.posterior_scale', 'log_variance',
          "mlp_vae and two_layer_vae: what the second Gaussian head gives, "
          "'log_variance' or 'log_std'.",
          *_choices_of('vae_jax.models.mlp', 'POSTERIOR_SCALES')),
    Field('model.output_bias', 'init',
          "The decoder's starting output bias: 'init' (the init scheme's) or "
          "'data_mean' (logit of the mean training pixel).",
          *one_of(OUTPUT_BIASES)),

    # The objective.
    Field('loss', 'bce',
          "The reconstruction term: 'bce' | 'mse' | 'mae' (summed over "
          "pixels), or 'perceptual', 'perceptual+bce', 'perceptual+mse' "
          '(see perceptual.*); vae_jax.objectives registers them.',
          *registered('vae_jax.objectives', 'loss_names')),
    Field('objective', 'elbo',
          "'elbo' (one sample, closed-form KL), or a bound over num_samples "
          "= k draws of z (Burda et al., 2016; needs a likelihood loss): "
          "'vae', the mean of the k log weights, or 'iwae', log of the mean "
          'of the k weights.',
          *registered('vae_jax.objectives', 'objective_names')),
    Field('num_samples', 1, 'k, the draws of z of a k-sample objective.',
          *_POSITIVE_INTEGER),
    Field('beta', 1.0, 'The weight of the KL term.',
          lambda v: is_number(v) and v >= 0, 'a finite number >= 0',
          sweep_array=True),
    Field('prior_mean', 0.0, 'The prior is N(prior_mean, prior_std^2) per '
          'dimension.', is_number, 'a finite number', sweep_array=True),
    Field('prior_std', 1.0, 'See prior_mean.',
          lambda v: is_number(v) and v > 0, 'a finite number > 0',
          sweep_array=True),
    Field('perceptual.classifier_dir', None,
          "The MNIST classifier whose features the perceptual loss compares "
          '(None: the default location).', value_type=str),
    Field('perceptual.layers', ('relu2', 'relu4'),
          "The classifier's activations compared: summed squared "
          'differences between reconstruction and input.'),
    Field('perceptual.weight', 0.01,
          "Of the perceptual term in 'perceptual+X'."),

    # The optimisation.
    Field('optimizer', 'adam',
          "'adam' | 'rmsprop' | 'adagrad' | 'sgd' | 'burda_adam' (the IWAE "
          "code's).", *_choices_of('vae_jax.optimizers', 'OPTIMIZERS')),
    Field('learning_rate', 1e-3, 'The (first) learning rate.',
          lambda v: is_number(v) and v > 0, 'a finite number > 0',
          sweep_array=True),
    Field('lr_schedule', 'constant',
          "'constant', or 'burda': 8 stages of 3^i epochs at learning_rate * "
          '10^(-i/7) (vae_jax.optimizers).',
          *_choices_of('vae_jax.optimizers', 'SCHEDULES')),
    Field('batch_size', 128, 'Training images per step.', *_POSITIVE_INTEGER),
    Field('eval_batch_size', 1000, 'Test images per evaluation batch.',
          *_POSITIVE_INTEGER),
    Field('num_epochs', 10, 'Epochs to train (a resumed run may extend '
          'them).', *_POSITIVE_INTEGER, resumable=True),
    Field('seed', 0, 'Of the initialisation, the shuffles and the draws.',
          lambda v: is_integer(v) and 0 <= v < 2**32,
          'an integer from 0 to 2**32 - 1', sweep_array=True),
    Field('scan_unroll', 1,
          "Training steps per iteration of the compiled epoch's loop "
          "(lax.scan's unroll). Speed only: the steps are the same. 2 lets "
          "XLA overlap one step's small kernels with the next's on CPU; it "
          'pays for some models (configs/study_d.py) and not for the '
          'default (docs/cpu_kernels.md).', *_POSITIVE_INTEGER,
          resumable=True),

    # What is kept.
    Field('checkpoint.keep_latest', 2, 'Checkpoints kept (the newest).',
          *_POSITIVE_INTEGER, resumable=True),
    Field('plots', True, 'Whether to draw the figures.', resumable=True),
    Field('reported', None,
          "A study's published numbers, shown beside ours in its results "
          'table.', resumable=True, optional=True),
)
