"""A sweep's results as tables (results.json, results.csv, results.md), and
the record of what launch.evaluate added to a workdir.

Training and evaluation both write a sweep's tables through
`write_results_table`; neither imports the other, and this module imports
neither. The columns of evaluation numbers come from the workdir's
evaluation.json (`record_evaluation`), which launch.evaluate writes from its
registry of metrics: a metric defined outside vae_jax keeps its column when
the sweep is resumed, and the HTML report can say what each number is,
in processes that never registered it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vae_jax import grid as grid_lib
from vae_jax import workdir as workdir_lib

# A sweep member's status while its group has not trained yet.
PENDING = 'pending'

# Training's numbers, the first columns of every table.
TRAINING_METRICS = ('test_recon', 'test_kl', 'test_loss')
# Parameters and speed: the compute side of a comparison (a VAE against a
# CVAE); results written before num_params existed lack it.
COST_KEYS = ('num_params', 'img_per_s')
# Keys of a result that training and the tables own; no metric may yield one.
RESERVED_KEYS = frozenset({
    'member', 'label', 'settings', 'group', 'status', 'epochs', 'reported',
    'evaluated', 'compile_seconds', 'group_train_seconds', 'best_test_loss',
    *TRAINING_METRICS, *COST_KEYS})
BETTER = ('lower', 'higher')


@dataclasses.dataclass(frozen=True)
class Output:
  """A number a metric adds to a result.

  description: what it is, one line (shown in the HTML report).
  format: the format spec of its results.md column ('.2f', 'd', ...); None
    keeps it in results.json only (sample counts, hashes, spreads).
  better: 'lower' or 'higher' if the report may judge it against a
    published number (green where ours is at least as good); None if not.
  """

  description: str
  format: str | None = '.2f'
  better: str | None = None

  def __post_init__(self):
    if not self.description:
      raise ValueError('Output: give a one-line description of the number.')
    if self.better not in (None, *BETTER):
      raise ValueError(f'Output.better={self.better!r}: give one of {BETTER}, '
                       'or None for a number that is not judged.')
    if self.format is not None:
      try:
        format(0, self.format)
      except ValueError:
        raise ValueError(f'Output.format={self.format!r} is not a format spec '
                         "for a number (e.g. '.2f', 'd'); None keeps it out "
                         'of the tables.') from None


# ----------------------------------------------------------- evaluation.json
def record_evaluation(directory: str | Path,
                      metrics: Mapping[str, tuple[str, Mapping[str, Output]]]
                      ) -> None:
  """Writes evaluation.json: per metric name, its description and the
  Outputs it yields, in the order given (the order of the tables' columns)."""
  workdir_lib.atomic_write_json(
      Path(directory) / workdir_lib.EVALUATION_FILE,
      {name: {'description': description,
              'yields': {key: dataclasses.asdict(output)
                         for key, output in yields.items()}}
       for name, (description, yields) in metrics.items()})


def recorded_evaluation(directory: str | Path
                        ) -> dict[str, tuple[str, dict[str, Output]]]:
  """evaluation.json as record_evaluation was given it ({} if none)."""
  path = Path(directory) / workdir_lib.EVALUATION_FILE
  if not path.exists():
    return {}
  return {name: (entry['description'],
                 {key: Output(**output)
                  for key, output in entry['yields'].items()})
          for name, entry in json.loads(path.read_text()).items()}


def recorded_outputs(directory: str | Path) -> dict[str, Output]:
  """Every number the recorded metrics yield, in column order."""
  return {key: output
          for _, yields in recorded_evaluation(directory).values()
          for key, output in yields.items()}


# ------------------------------------------------------------------ settings
def format_setting(value: Any) -> str:
  """A swept setting as a table cell: 0.0001 -> '0.0001', (512, 256) -> '512-256'."""
  if isinstance(value, float):
    return f'{value:g}'
  if isinstance(value, (list, tuple)):
    return '-'.join(str(v) for v in value) or '()'
  return str(value)


def setting_defaults(config: dict, keys) -> dict[str, Any]:
  """The base config's value of each dotted key (a member that does not
  override a key has this value); keys the config lacks are left out."""
  defaults = {}
  for key in keys:
    try:
      defaults[key] = grid_lib.get_key(config, key)
    except KeyError:
      pass
  return defaults


def _same_setting(a: Any, b: Any) -> bool:
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    return float(a) == float(b)
  return a == b


def reported_metrics(reported: Sequence[dict], base_config: dict) -> list[str]:
  """The published numbers' keys of `reported` rows: every key that is not a
  config key (those are the settings a row is matched on), in first-seen
  order with training's metrics first."""
  keys = dict.fromkeys(k for row in reported for k in row)
  settings = setting_defaults(base_config, keys)
  metrics = [k for k in keys if k not in settings]
  # In the order of our own columns: a saved config's rows come back sorted.
  return sorted(metrics, key=lambda k: TRAINING_METRICS.index(k)
                if k in TRAINING_METRICS else len(TRAINING_METRICS))


def reported_for(settings: dict, reported: Sequence[dict],
                 base_config: dict) -> dict | None:
  """The first published row whose settings (its config keys) equal the
  member's `settings`, if any."""
  metrics = set(reported_metrics(reported, base_config))
  for row in reported:
    if all(k in settings and _same_setting(settings[k], v)
           for k, v in row.items() if k not in metrics):
      return row
  return None


def _average_ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks, tied values sharing the mean of their ranks."""
  _, group, counts = np.unique(values, return_inverse=True,
                               return_counts=True)
  last_rank = np.cumsum(counts)
  return (last_rank - (counts - 1) / 2)[group.ravel()]


def rank_agreement(results: Sequence[dict]) -> dict[str, tuple[float, int]]:
  """Spearman's rank correlation between our numbers and a published
  study's, per number both give, over the members that have both.

  A published ranking of models (which is best, which worst) is usually the
  claim a reproduction is read for, and the two scales need not match (a
  FID from other features or another sample count): the ranks can agree
  where the values cannot. Returns {key: (rho, members)}; a key needs at
  least three such members and values that are not all equal on either
  side. Each result's `reported` is its matched published row
  (write_results_table sets it).
  """
  pairs: dict[str, list[tuple[float, float]]] = {}
  for r in results:
    for key, theirs in (r.get('reported') or {}).items():
      ours = r.get(key)
      if (isinstance(theirs, (int, float)) and isinstance(ours, (int, float))
          and not isinstance(ours, bool)):
        pairs.setdefault(key, []).append((float(ours), float(theirs)))
  agreement = {}
  for key, values in pairs.items():
    if len(values) < 3:
      continue
    ours, theirs = (_average_ranks(np.array(side)) for side in zip(*values))
    if ours.std() == 0 or theirs.std() == 0:
      continue
    rho = float(np.corrcoef(ours, theirs)[0, 1])
    agreement[key] = (rho, len(values))
  return agreement


def describe_rank_agreement(results: Sequence[dict]) -> str | None:
  """rank_agreement as the sentence the tables and the report print, or
  None where there is none."""
  agreement = rank_agreement(results)
  if not agreement:
    return None
  return ("Rank agreement with the published numbers (Spearman's rho over "
          'the members that have both): ' + ', '.join(
              f'{key} {rho:.2f} ({n} members)'
              for key, (rho, n) in agreement.items()) + '.')


# -------------------------------------------------------------------- tables
def _cell(value: Any, spec: str | None = None) -> str:
  if value is None:
    return '-'
  if spec is not None and isinstance(value, (int, float)):
    return format(value, spec)
  return f'{value:.2f}' if isinstance(value, float) else str(value)


def write_results_table(workdir: Path, results: list[dict],
                        reported: Sequence[dict] = (),
                        base_config: dict | None = None) -> None:
  """results.csv, results.md and results.json: settings and final test metrics.

  A setting a member does not override gets base_config's value (a nested
  dict, as config.json holds) in the CSV and Markdown tables; a `reported`
  row's config keys are its settings.

  `reported` rows (config.reported: settings plus numbers of a published
  study) are put beside the members they match. The numbers launch.evaluate
  added (those evaluation.json records with a format) get a column when any
  member has them.
  """
  if reported and base_config is None:
    raise ValueError('write_results_table: `reported` rows are matched on '
                     'their config keys; pass base_config (config.json\'s '
                     'dict) with them.')
  base_config = base_config or {}
  setting_keys = sorted({k for r in results for k in r['settings']})
  outputs = {k: o for k, o in recorded_outputs(workdir).items()
             if o.format is not None and any(k in r for r in results)}
  cost_keys = [k for k in COST_KEYS if all(k in r for r in results)]
  status_keys = (['status'] if any(r.get('status', 'finished') != 'finished'
                                   for r in results) else [])
  columns = ['member', *setting_keys, *status_keys, 'epochs',
             *TRAINING_METRICS, *outputs, *cost_keys]
  reported_keys = reported_metrics(reported, base_config)
  columns += [f'reported_{k.removeprefix("test_")}' for k in reported_keys]
  defaults = setting_defaults(base_config, setting_keys)
  rows = []
  for r in results:
    row = [r['member'],
           *[format_setting(r['settings'].get(k, defaults.get(k, '')))
             for k in setting_keys],
           *[r.get(k) for k in status_keys],
           r['epochs'], *[r[k] for k in TRAINING_METRICS],
           *[r.get(k, '') for k in outputs],
           *[r[k] for k in cost_keys]]
    if reported:
      match = reported_for(r['settings'], reported, base_config)
      r['reported'] = match
      row += [match.get(k, '') if match else '' for k in reported_keys]
    rows.append(row)
  with workdir_lib.atomic_path(workdir / workdir_lib.RESULTS_CSV) as tmp, \
      open(tmp, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows(rows)
  workdir_lib.atomic_write_json(workdir / workdir_lib.RESULTS_FILE, results)
  column_format = {
      'img_per_s': lambda v: '-' if v is None else f'{v:,.0f}',
      'num_params': lambda v: f'{v:,}',
      **{k: lambda v, spec=o.format: '' if v == '' else _cell(v, spec)
         for k, o in outputs.items()}}
  markdown = ['| ' + ' | '.join(columns) + ' |',
              '|' + '---:|' * len(columns)]
  markdown += ['| ' + ' | '.join(column_format.get(c, _cell)(v)
                                for c, v in zip(columns, row)) + ' |'
               for row in rows]
  agreement = describe_rank_agreement(results) if reported else None
  if agreement:
    markdown += ['', agreement]
  if 'img_per_s' in cost_keys:
    markdown += ['', 'img_per_s: the training rate of the member\'s compiled '
                 'group divided by its members, not the speed of that model '
                 'run alone (time it with launch.train).']
  workdir_lib.atomic_write_text(workdir / workdir_lib.RESULTS_MD,
                                '\n'.join(markdown) + '\n')
