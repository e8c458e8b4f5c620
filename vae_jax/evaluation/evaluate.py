"""Evaluates a trained run or sweep workdir from its checkpoint; writes the numbers.

The library side of `python -m launch.evaluate` (see it for the command
line); `launch.reproduce` calls it too.

  results = evaluate.evaluate_workdir(
      'workdirs/study_d', ['iwae'],
      settings=registry.Settings(iwae_samples=1000))

The metrics are the evaluators registered by name in
vae_jax.evaluation.registry: the built-in ones of vae_jax.evaluation.metrics
(`python -m launch.evaluate --help` lists them), and any registered before
the call. The driver restores each trained model (vae_jax.restore), gives
every metric what it needs once per model (MemberEvaluation) and records
what it computed.

The numbers join results.json (a run) or every member's entry of results.json
and the results.csv / results.md table (a sweep), written after each member;
numbers already there stay unless recomputed. Each entry's `evaluated`
records what its numbers were computed from (`Evaluator.computed_from`: the
checkpoint's epoch, the settings that change them, the classifier), so
evaluating again computes only what is missing or stale: an interrupted
evaluation resumes, and a finished study re-run by launch.reproduce is not
evaluated twice (recompute=True, launch.evaluate's --recompute, forces it).
evaluation.json records what each metric is and yields, for the tables and
the report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable

import ml_collections
import numpy as np

from vae_jax import checkpoint as checkpoint_lib
from vae_jax import classifier as classifier_lib
from vae_jax import data as data_lib
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import objectives
from vae_jax import restore
from vae_jax import results_table
from vae_jax import workdir as workdir_lib
from vae_jax.data import pipeline
from vae_jax.evaluation import classifier_metrics
from vae_jax.evaluation import fid
from vae_jax.evaluation import likelihood
from vae_jax.evaluation import member_evaluation
from vae_jax.evaluation import registry
# The built-in metrics register themselves when imported.
import vae_jax.evaluation.metrics  # pylint: disable=unused-import

log = logging.getLogger('vae_jax.evaluate')

# Per result: {metric: Evaluator.computed_from(...)} of the numbers it holds.
EVALUATED_KEY = 'evaluated'


# ------------------------------------------------------------------ loading
def default_classifier_dir() -> Path:
  """$VAE_JAX_CACHE_DIR/classifier, else ~/.cache/vae_jax/classifier."""
  return data_lib.cache_root(None) / 'classifier'


def load_classifier(classifier_dir: Path, min_accuracy: float,
                    metrics: Iterable[str] = (), data_dir: str | None = None):
  """(model, params, info) of the classifier; a missing one says what to
  do, one below `min_accuracy` is refused (classifier_lib.check_accuracy).

  metrics: the metrics that need it; data_dir: where MNIST is, for the
  command a missing classifier's message gives (else $VAE_JAX_DATA_DIR).
  """
  try:
    classifier = classifier_lib.load_classifier(classifier_dir)
  except classifier_lib.ClassifierNotFoundError as error:
    data_dir = data_dir or os.environ.get(data_lib.DATA_DIR_ENV) or None
    needing = ', '.join(metrics) or 'The classifier metrics'
    raise classifier_lib.ClassifierNotFoundError(
        f'{needing} need the project\'s MNIST classifier (trained by '
        f'launch.train_classifier), and {error.directory} holds none '
        f'({classifier_lib.INFO_FILE} missing). Pass --classifier_dir=DIR of '
        'a trained one, or train it once (about 10 minutes on 2 CPU cores) '
        'and run this again: '
        f'{classifier_lib.train_command(error.directory, data_dir)}',
        error.directory) from None
  classifier_lib.check_accuracy(classifier[2], classifier_dir, min_accuracy)
  return classifier


def make_judge(classifier, test_images: np.ndarray, cache_name: str | None,
               batch_size: int) -> member_evaluation.Judge:
  """The classifier with the classifier-FID statistics of test_images.

  classifier: (model, params, info) from load_classifier.
  cache_name: the statistics are cached under this name for the classifier's
  weights (see fid.cached_statistics); None computes them.
  """
  model, params, info = classifier
  feature_fn = classifier_metrics.classifier_feature_fn(model, params)
  compute = lambda: fid.accumulate_statistics(feature_fn, test_images,
                                              batch_size)
  if cache_name is None:
    reference = compute()
  else:
    reference = fid.cached_statistics(cache_name, info['sha256'], compute,
                                      num_images=len(test_images))
  return member_evaluation.Judge(model, params, info['sha256'], reference)


def load_inception_weights(download: bool, path: str | Path | None = None):
  """pytorch-fid's Inception-v3 weights (from `path` when given, else found
  as inception_weights.load_inception_weights says); their absence is a
  clear error."""
  # Imported here: the Inception code is needed by the 'inception' metrics alone.
  from vae_jax.evaluation import inception_weights
  return inception_weights.load_inception_weights(path, download=download)


def inception_reference(weights, config: ml_collections.ConfigDict,
                        dataset: data_lib.Dataset | None,
                        batch_size: int
                        ) -> member_evaluation.InceptionReference:
  """Inception features and the statistics of the configured test images.

  The statistics of the configured data are cached (fid.reference_statistics);
  those of a `dataset` given instead are computed.
  """
  feature_fn = fid.inception_fid_features(weights.params)
  if dataset is not None:
    statistics = fid.accumulate_statistics(
        feature_fn, dataset.test_images, batch_size,
        progress='Inception statistics of the test images')
  else:
    statistics = fid.reference_statistics(
        config.data.name, 'test', weights, cache_dir=config.data.cache_dir,
        data_dir=config.data.dir, batch_size=batch_size,
        download=config.data.download)
  return member_evaluation.InceptionReference(feature_fn, statistics)


# ------------------------------------------------------------------- driver
def evaluate_workdir(workdir: str | Path, metrics: list[str],
                     classifier_dir: str | Path | None = None,
                     settings: registry.Settings = registry.Settings(),
                     data_dir: str | None = None,
                     dataset: data_lib.Dataset | None = None,
                     recompute: bool = False,
                     inception_weights: str | Path | None = None
                     ) -> dict | list[dict]:
  """Computes `metrics` of the run or sweep in workdir and writes them there.

  Args:
    workdir: a train_and_evaluate or run_sweep workdir with results.json.
    metrics: names of registered metrics (registry.EVALUATORS).
    classifier_dir: the trained classifier (default_classifier_dir() if
      None); needed by the metrics that need 'classifier' only.
    settings: sample counts, batch sizes and the seed.
    data_dir: replaces the saved config.data.dir (data moved since); by
      default the directory the run recorded in data.json.
    dataset: replaces the configured data (tests pass small arrays).
    recompute: compute every metric again, even where results.json holds
      its numbers for the same checkpoint and settings.
    inception_weights: the FID Inception weights file (default: found as
      inception_weights.load_inception_weights says); needed by the
      metrics that need 'inception' only.

  Returns:
    The updated results: a dict (run) or one dict per member (sweep). The
    members of a sweep still training are evaluated group by group: those
    results.json lists as pending are left out until they have trained.
  """
  workdir = Path(workdir)
  registry.check_metrics(metrics)
  kind = workdir_lib.marked_kind(workdir)
  if kind not in ('run', 'sweep'):
    raise workdir_lib.WorkdirError(
        f'{workdir} is not a vae_jax run or sweep; pass the --workdir given '
        'to launch.train or launch.sweep.')
  with workdir_lib.WorkdirLock(workdir):
    return _evaluate_workdir(workdir, metrics, classifier_dir, settings,
                             data_dir, dataset, recompute, inception_weights)


def _evaluate_workdir(workdir: Path, metrics: list[str], classifier_dir,
                      settings: registry.Settings, data_dir, dataset,
                      recompute: bool, inception_weights_path):
  # In the registry's order: the order of the tables' columns.
  evaluators = [e for name, e in registry.EVALUATORS.items()
                if name in set(metrics)]
  config = restore.load_run_config(workdir)
  results_path = workdir / workdir_lib.RESULTS_FILE
  if not results_path.exists():
    raise workdir_lib.WorkdirError(
        f'{results_path} is missing: the run has not finished; train it to '
        'the end first (the same launch.train or launch.sweep command again '
        'resumes it).')
  results = json.loads(results_path.read_text())
  if isinstance(results, dict) and results.get('status') == 'diverged':
    raise driver.DivergedError(
        f'{workdir} diverged at epoch {results["diverged_epoch"]}: its '
        'checkpoint is not a trained model, so it is not evaluated. '
        + results.get('message', ''))
  if data_dir is None and config.data.dir is None:
    # Where the run found its data (through $VAE_JAX_DATA_DIR or the cache).
    data_dir = workdir_lib.recorded_data_dir(workdir)
  if data_dir is not None:
    config.data.dir = data_dir
  base = (grid_lib.member_config(config, config.sweep[0])
          if 'sweep' in config else config)
  # What is missing fails here, before data, models and the first metrics.
  needs = {need for e in evaluators for need in e.needs}
  classifier = inception_weights = None
  if 'classifier' in needs:
    # Where the classifier's MNIST is: the run's own, when it trained on it.
    mnist_dir = (base.data.dir if base.data.name == classifier_lib.TRAINED_ON
                 and base.data.source == 'files' else None)
    classifier = load_classifier(
        Path(classifier_dir or default_classifier_dir()),
        settings.min_classifier_accuracy,
        [e.name for e in evaluators if 'classifier' in e.needs], mnist_dir)
  if 'inception' in needs:
    inception_weights = load_inception_weights(base.data.download,
                                               inception_weights_path)

  raw = dataset or data_lib.load_dataset(
      base.data.name, data_dir=base.data.dir, cache_dir=base.data.cache_dir,
      download_if_missing=base.data.download, source=base.data.source)
  # Sweep members not to evaluate: diverged, or pending (not trained yet).
  unfinished = {r['member']: r['status'] for r in (
      results if isinstance(results, list) else [])
                if r.get('status', 'finished') != 'finished'}
  pending = frozenset(m for m, status in unfinished.items()
                      if status == results_table.PENDING)
  if pending:
    log.warning('Not evaluating member(s) %s: the sweep has not trained them '
                'yet (run it again to resume it, then evaluate).',
                ', '.join(map(str, sorted(pending))))
  members = restore.restore_members(workdir, config, raw.image_shape, pending)
  log.info('Evaluating %s of %d model(s) in %s (a line after each) ...',
           ', '.join(e.name for e in evaluators), len(members), workdir)

  judge = inception = None
  if classifier is not None:
    classifier_lib.check_judges(raw.name, raw.image_shape,
                                'The classifier metrics')
    cache_name = (None if dataset is not None
                  else f'{raw.name}_test_{len(raw.test_images)}_classifier')
    judge = make_judge(classifier, raw.test_images, cache_name,
                       settings.batch_size)
  if inception_weights is not None:
    inception = inception_reference(inception_weights, base, dataset,
                                    settings.batch_size)

  test_sets: dict[str, data_lib.Dataset] = {}
  if 'likelihood' in needs and not any(
      objectives.is_likelihood(m.config.loss) for m in members):
    likelihood.check_likelihood_loss(members[0].config.loss)  # the error
  for member in members:
    start = time.perf_counter()
    name = workdir if member.index is None else f'member {member.index}'
    if member.index in unfinished:
      log.warning('Not evaluating %s: its training diverged (%s).', name,
                  unfinished[member.index])
      continue
    # The test images as the member was trained on them (static binarised
    # copies depend on its seed), loaded once per distinct data and seed.
    key = json.dumps([member.config.data.to_dict(), member.config.seed],
                     default=str)

    def test_set(key=key, member=member):
      if key not in test_sets:
        test_sets[key] = dataset or pipeline.load_data(member.config)
      return test_sets[key]

    evaluation = registry.MemberEvaluation(member, test_set, judge, inception,
                                           settings)
    entry = (results if member.index is None else
             next(r for r in results if r['member'] == member.index))
    evaluated = entry.setdefault(EVALUATED_KEY, {})
    numbers: dict[str, Any] = {}
    kept = []
    variational = member.config.model.variational
    if 'prior' in needs and not variational:
      log.info('%s is a plain autoencoder (no prior): no metrics of prior '
               'samples.', name)
    for evaluator in evaluators:
      if 'prior' in evaluator.needs and not variational:
        continue
      if ('likelihood' in evaluator.needs
          and not objectives.is_likelihood(member.config.loss)):
        log.info('No %s for %s: its loss %r is not a likelihood.',
                 evaluator.name, name, member.config.loss)
        continue
      facts = evaluator.computed_from(
          settings, judge.sha256 if judge else None, entry.get('epochs'),
          member.epoch)
      if not recompute and evaluated.get(evaluator.name) == facts:
        kept.append(evaluator.name)
        continue
      numbers.update(_checked(evaluator, evaluator.evaluate(evaluation)))
      evaluated[evaluator.name] = facts
    entry.update(numbers)
    log.info('Evaluated %s in %.1f s: %s%s', name, time.perf_counter() - start,
             ', '.join(f'{k} {v:.4g}' for k, v in numbers.items()
                       if isinstance(v, float)) or 'nothing new',
             f' (kept from an earlier evaluation of the same checkpoint and '
             f'settings: {", ".join(kept)})' if kept else '')
    # Written after every member: an interrupted evaluation resumes.
    _write_results(workdir, config, results)
  return results


def _checked(evaluator: registry.Evaluator, numbers: dict) -> dict:
  """numbers, if they are what the evaluator declared it yields."""
  undeclared = sorted(set(numbers) - set(evaluator.yields))
  if undeclared:
    raise ValueError(
        f'Metric {evaluator.name!r} returned {undeclared}, which its '
        f'registration does not declare (it yields '
        f'{sorted(evaluator.yields)}); add them to its `yields`.')
  for key, value in numbers.items():
    spec = evaluator.yields[key].format
    if spec is not None and value is not None:
      try:
        format(value, spec)
      except (TypeError, ValueError):
        raise ValueError(
            f'Metric {evaluator.name!r} returned {key}={value!r}, which its '
            f'declared table format {spec!r} cannot show; return a number '
            'of that kind or change Output.format.') from None
  return numbers


def _write_results(workdir: Path, config, results) -> None:
  """evaluation.json, then the results (a number's column is recorded
  before the number): what every metric with numbers here is, the
  registered ones as registered now."""
  entries = results if isinstance(results, list) else [results]
  names = {name for r in entries for name in r.get(EVALUATED_KEY, {})}
  recorded = results_table.recorded_evaluation(workdir)
  record = {name: (e.description, e.yields)
            for name, e in registry.EVALUATORS.items() if name in names}
  record.update({name: recorded[name] for name in recorded
                 if name not in registry.EVALUATORS})
  results_table.record_evaluation(workdir, record)
  if 'sweep' in config:
    results_table.write_results_table(
        workdir, results, config.get('reported', ()),
        checkpoint_lib.config_as_dict(config))
  else:
    workdir_lib.atomic_write_json(workdir / workdir_lib.RESULTS_FILE, results)
