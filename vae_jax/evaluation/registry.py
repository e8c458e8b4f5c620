"""The metrics launch.evaluate computes, each registered by name from its module.

A metric is a function of one trained model's `MemberEvaluation` that
returns its numbers, registered with what it needs, what it yields and which
`Settings` change its numbers:

  from vae_jax.evaluation import registry

  @registry.register(
      'posterior_mean_norm', 'Mean L2 norm of the test posterior means.',
      needs=('test_set',),
      yields={'posterior_mean_norm': registry.Output('mean |E[z|x]|', '.3f')})
  def evaluate(evaluation: registry.MemberEvaluation) -> dict:
    ...

The built-in metrics live in vae_jax.evaluation.metrics, one module each; a
metric defined elsewhere is registered the same way before
`evaluate.evaluate_workdir` is called (docs/extending.md, "A metric").
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from vae_jax import results_table
from vae_jax.registry import Registry

# What a metric module needs besides `register`, importable from here.
from vae_jax.evaluation.member_evaluation import MemberEvaluation, Settings
from vae_jax.results_table import Output

__all__ = ['EVALUATORS', 'Evaluator', 'MemberEvaluation', 'NEEDS', 'Need',
           'Output', 'Settings', 'register']


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings))


class Need(NamedTuple):
  """Something the driver provides an evaluator through MemberEvaluation."""

  description: str
  settings: tuple[str, ...] = ()  # Settings that change what it provides
  tuning: tuple[str, ...] = ()  # Settings that change only speed and memory


NEEDS = {
    'test_set': Need('the test images as the model was trained on them '
                     '(MemberEvaluation.test)'),
    'classifier': Need('the MNIST classifier (MemberEvaluation.judge); the '
                       'numbers record its SHA-256',
                       tuning=('batch_size', 'min_classifier_accuracy')),
    'inception': Need("pytorch-fid's Inception-v3 and the test images' "
                      'statistics (MemberEvaluation.inception)',
                      tuning=('batch_size',)),
    'prior': Need('prior samples (MemberEvaluation.samples); a plain '
                  'autoencoder has none and is skipped',
                  settings=('num_samples', 'seed'), tuning=('batch_size',)),
    'likelihood': Need('a decoder likelihood (config.loss bce); other '
                       'models are skipped'),
}


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """A registered metric (see `register` for the fields)."""

  name: str
  description: str
  evaluate: Callable[[MemberEvaluation], dict]
  needs: frozenset[str]
  yields: Mapping[str, Output]
  settings: tuple[str, ...]
  tuning: tuple[str, ...]

  def reads(self) -> tuple[str, ...]:
    """Every Settings field it reads, its needs' included."""
    names = [*self.settings, *self.tuning]
    for need in sorted(self.needs):
      names += [*NEEDS[need].settings, *NEEDS[need].tuning]
    return tuple(name for name in SETTING_NAMES if name in names)

  def computed_from(self, settings: Settings, classifier_sha256: str | None,
                    epochs: int | None, checkpoint_epoch: int) -> dict:
    """What its numbers depend on besides the code: the checkpoint (its
    epoch), the Settings that change their value and the classifier.
    Numbers recorded with the same facts are not computed again."""
    facts: dict[str, Any] = {'epochs': epochs,
                             'checkpoint_epoch': checkpoint_epoch}
    names = list(self.settings)
    for need in sorted(self.needs):
      names += NEEDS[need].settings
    facts.update({name: getattr(settings, name) for name in names})
    if 'classifier' in self.needs:
      facts['classifier_sha256'] = classifier_sha256
    return facts


EVALUATORS: Registry[Evaluator] = Registry('metric', '--metrics')


def register(name: str, description: str, *, yields: Mapping[str, Output],
             needs: Iterable[str] = (), settings: Iterable[str] = (),
             tuning: Iterable[str] = ()):
  """Registers the decorated `evaluate(MemberEvaluation) -> dict` as `name`.

  Args:
    name: what --metrics calls it.
    description: what it measures, one line (launch.evaluate's --help, the
      HTML report).
    yields: every key its dict may hold, with what it is and how results
      tables show it (Output.format None: results.json only).
    needs: any of NEEDS, provided through MemberEvaluation.
    settings: Settings fields that change its numbers (its needs' come on
      top): they are recorded beside the numbers, and numbers recorded with
      other values are computed again.
    tuning: Settings fields it reads that change only speed and memory.
  """
  needs, settings, tuning = frozenset(needs), tuple(settings), tuple(tuning)
  yields = dict(yields)
  where = f'Metric {name!r}'
  if unknown := sorted(needs - set(NEEDS)):
    raise ValueError(f'{where} needs {unknown}; choose from {sorted(NEEDS)}.')
  if unknown := sorted(set(settings + tuning) - set(SETTING_NAMES)):
    raise ValueError(f'{where} reads settings {unknown}; the Settings fields '
                     f'are {SETTING_NAMES}.')
  if not yields:
    raise ValueError(f'{where} yields nothing: declare each key it returns.')
  if reserved := sorted(set(yields) & results_table.RESERVED_KEYS):
    raise ValueError(f'{where} yields {reserved}, which training writes; '
                     'give its numbers names of their own.')
  if bad := [k for k, o in yields.items() if not isinstance(o, Output)]:
    raise ValueError(f'{where}: yields[{bad[0]!r}] is not a registry.Output.')

  def function_name(evaluator: Evaluator) -> str:
    return (f'{evaluator.evaluate.__module__}.'
            f'{evaluator.evaluate.__qualname__}')

  def add(evaluate: Callable[[MemberEvaluation], dict]):
    # A module imported again registers the same function again.
    EVALUATORS.add(name, Evaluator(name, description, evaluate, needs, yields,
                                   settings, tuning),
                   same=lambda a, b: function_name(a) == function_name(b),
                   describe=lambda e: f'by {function_name(e)}')
    return evaluate
  return add


def get(name: str) -> Evaluator:
  """The evaluator registered as `name`; an unknown name lists the others."""
  return EVALUATORS.lookup(name)


class MetricError(ValueError):
  """A metric that is not registered, or that the run cannot give (the IWAE
  bound of a run trained with a distance): a user's --metrics."""


def check_metrics(metrics: Iterable[str]) -> None:
  unknown = sorted(set(metrics) - set(EVALUATORS))
  if unknown:
    raise MetricError(f'Unknown metrics {unknown} (--metrics); choose from '
                      f'{tuple(EVALUATORS)}.')


def needing(need: str, metrics: Iterable[str]) -> list[str]:
  """Those of `metrics` that need `need` (one of NEEDS)."""
  return [m for m in metrics if need in get(m).needs]


def readers(setting: str) -> list[str]:
  """The registered metrics that read Settings field `setting`."""
  return [name for name, e in EVALUATORS.items() if setting in e.reads()]


def setting_values(metric: str, settings: Settings) -> dict[str, Any]:
  """The values of the Settings that change `metric`'s numbers."""
  evaluator = get(metric)
  facts = evaluator.computed_from(settings, None, None, 0)
  return {k: v for k, v in facts.items() if k in SETTING_NAMES}
