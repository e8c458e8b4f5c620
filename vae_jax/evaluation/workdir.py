"""Evaluates a trained run or sweep workdir from its checkpoint; writes the numbers.

The library side of `python -m launch.evaluate` (see it for the command
line); `launch.reproduce` calls it too.

  results = workdir.evaluate_workdir('workdirs/study_d', ['iwae'],
                                     settings=workdir.Settings(iwae_samples=1000))

Metrics (METRICS, each an evaluator registered in EVALUATORS by name: a
function of one trained model's `MemberEvaluation` that returns its numbers):

  iwae             IWAE estimate of the test NLL -log p(x) in nats
                   (Bernoulli decoders), Settings.iwae_samples samples.
  active_units     Latent units whose posterior mean varies over 500
                   training images by more than 0.01 (Burda et al., 2016).
  recon_at_mean    Test reconstruction loss (config.loss, per image) of the
                   decoded posterior mean, as test_recon_at_mean; test_recon
                   decodes a sample.
  inception_score  Inception Score of prior samples, the MNIST classifier in
                   Inception's place.
  classifier_fid   Frechet distance of the classifier's penultimate features,
                   prior samples against the test images.
  confusion        CVAE: requested against predicted class of prior samples;
                   VAE: histogram of predicted classes. Saved as
                   confusion.json (in member_NNN/ for a sweep).
  reconstruction_confusion
                   True digit of each test image against the classifier's
                   digit for its reconstruction (decoded posterior mean), and
                   recon_class_accuracy; saved as
                   reconstruction_confusion.json and .png.
  fid              Inception FID (pytorch-fid's network and weights) of prior
                   samples against the test images; needs the weights (see
                   vae_jax.evaluation.inception_weights).

The numbers join results.json (a run) or every member's entry of results.json
and the results.csv / results.md table (a sweep), written after each member;
numbers already there stay unless recomputed. Each entry's `evaluated`
records what its numbers were computed from (`computed_from`: the
checkpoint's epoch, the settings that change them, the classifier), so evaluating again
computes only what is missing or stale: an interrupted evaluation resumes,
and a finished study re-run by launch.reproduce is not evaluated twice
(recompute=True, launch.evaluate's --recompute, forces it).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import ml_collections
import numpy as np

from vae_jax import checkpoint as checkpoint_lib
from vae_jax import classifier as classifier_lib
from vae_jax import data as data_lib
from vae_jax.data import pipeline
from vae_jax import driver
from vae_jax.evaluation import classifier_metrics
from vae_jax.evaluation import fid
from vae_jax.evaluation import likelihood
from vae_jax import grid as grid_lib
from vae_jax import group as group_lib
from vae_jax import models
from vae_jax import optimizers
from vae_jax import sweep as sweep_lib
from vae_jax import train
from vae_jax import workdir as workdir_lib

log = logging.getLogger('vae_jax.evaluate')

CONFUSION_FILE = workdir_lib.CONFUSION_FILE
RECONSTRUCTION_CONFUSION_FILE = workdir_lib.RECONSTRUCTION_CONFUSION_FILE
RESULTS_FILE = workdir_lib.RESULTS_FILE


@dataclasses.dataclass(frozen=True)
class Settings:
  """How the metrics are computed (the launcher's flags)."""

  iwae_samples: int = 5000
  iwae_chunk: int = 100  # importance samples evaluated at once
  iwae_batch: int = 100  # test images per IWAE call
  num_images: int | None = None  # first test images for IWAE (None: all)
  num_samples: int = 10_000  # prior samples for the sample metrics
  batch_size: int = 1000  # images per classifier / decoder call
  seed: int = 0
  # The classifier metrics refuse a classifier recorded as less accurate.
  min_classifier_accuracy: float = classifier_lib.MIN_TEST_ACCURACY

  def __post_init__(self):
    for name in ('iwae_samples', 'iwae_chunk', 'iwae_batch', 'num_samples',
                 'batch_size'):
      value = getattr(self, name)
      if not (isinstance(value, int) and value >= 1):
        raise ValueError(f'--{name}={value!r}: give an integer >= 1.')
    if self.num_images is not None and not (
        isinstance(self.num_images, int) and self.num_images >= 1):
      raise ValueError(f'--num_images={self.num_images!r}: give an integer '
                       '>= 1, or leave it out for all test images.')
    if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
      raise ValueError(f'--seed={self.seed!r}: give 0 to 2**32 - 1.')
    if not 0.0 <= self.min_classifier_accuracy <= 1.0:
      raise ValueError('--min_classifier_accuracy='
                       f'{self.min_classifier_accuracy!r}: give 0 to 1.')


class Member(NamedTuple):
  """A trained model to evaluate: a run, or one member of a sweep."""

  index: int | None  # the sweep member's number; None for a run
  directory: Path  # where its confusion.json goes
  config: ml_collections.ConfigDict
  model: Any
  params: Any
  hparams: train.Hyperparams
  epoch: int  # the checkpoint's: the epoch its results.json was written at


class Judge(NamedTuple):
  """The classifier and what it needs only once per workdir."""

  model: Any
  params: Any
  sha256: str
  reference: tuple[np.ndarray, np.ndarray]  # classifier-FID statistics


class InceptionReference(NamedTuple):
  """Inception features and the FID statistics of the real test images."""

  feature_fn: Callable[[np.ndarray], np.ndarray]  # [b, H, W] -> [b, 2048]
  statistics: tuple[np.ndarray, np.ndarray]  # mean [2048], cov [2048, 2048]


# ------------------------------------------------------------------ loading
def default_classifier_dir() -> Path:
  """$VAE_JAX_CACHE_DIR/classifier, else ~/.cache/vae_jax/classifier."""
  return data_lib.cache_root(None) / 'classifier'


def load_run_config(workdir: Path) -> ml_collections.ConfigDict:
  """The config.json of a run or sweep, with keys added since it was saved."""
  path = workdir / workdir_lib.CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(
        f'{workdir} holds no vae_jax run or sweep ({path.name} missing); pass '
        'the --workdir given to launch.train or launch.sweep.')
  saved = json.loads(path.read_text())
  flat = checkpoint_lib.flatten_config(saved)
  for key, value in checkpoint_lib.ADDED_KEYS_DEFAULTS.items():
    if key not in flat:
      node = saved
      *parents, leaf = key.split('.')
      for parent in parents:
        node = node.setdefault(parent, {})
      node[leaf] = value
  return ml_collections.ConfigDict(saved)


def restore_members(workdir: Path, config: ml_collections.ConfigDict,
                    image_shape: tuple[int, int],
                    skip: frozenset[int] = frozenset()) -> list[Member]:
  """The parameters of the run, or of every sweep member but those in
  `skip`, from the checkpoint of the epoch its results.json was written at
  (a group all of whose members are skipped is not restored: it may not
  have trained yet).

  Raises:
    FileNotFoundError: that checkpoint is not there (training went on past
      the results and has not finished): finish training first.
  """
  results = json.loads((workdir / RESULTS_FILE).read_text())
  if 'sweep' not in config:
    model = models.build_model(config.model, image_shape)
    hparams = train.hyperparams_from_config(config)
    like = train.create_train_state(model, optimizers.make_optimizer(
        config.optimizer), hparams, image_shape)
    epoch = results['epochs']
    state = _restore_epoch(workdir, like, epoch)
    return [Member(None, workdir, config, model, state.params, hparams, epoch)]

  grid = list(config.sweep)
  configs = [grid_lib.member_config(config, overrides) for overrides in grid]
  epochs = {r['member']: r.get('epochs') for r in results}
  mesh = group_lib.sweep_mesh()
  members = []
  for group_index, indices in enumerate(group_lib.group_members(configs)):
    if set(indices) <= skip:
      continue
    group = group_lib.SweepGroup([configs[i] for i in indices], image_shape,
                                 mesh)
    # A diverged member stopped earlier; the group trained on to the others'.
    epoch = max(epochs[i] or 0 for i in indices)
    state = _restore_epoch(workdir / f'group_{group_index}',
                           group.abstract_state(), epoch)
    params = group.unstack(state.params)
    hparams = group.unstack(group.hparams)
    for k, member in enumerate(indices):
      members.append(Member(member, workdir / f'member_{member:03d}',
                            configs[member], group.model, params[k],
                            hparams[k], epoch))
  return sorted(members, key=lambda m: m.index)


def _restore_epoch(directory: Path, like, epoch: int):
  """The checkpoint of `epoch`, the one results.json was written from."""
  checkpoints = checkpoint_lib.RunCheckpoints(directory)
  try:
    if epoch not in checkpoints.epochs():
      latest = checkpoints.latest_epoch()
      raise FileNotFoundError(
          f'{directory}: results.json was written at epoch {epoch}, whose '
          f'checkpoint is gone (the newest is epoch {latest}): training went '
          'on past those results. Run the same launch.train / launch.sweep '
          'command again to finish it, then evaluate.')
    return checkpoints.restore(epoch, like=like)
  finally:
    checkpoints.close()


def load_classifier(classifier_dir: Path, min_accuracy: float):
  """(model, params, info) of the classifier; a missing one says what to
  do, one below `min_accuracy` is refused (classifier_lib.check_accuracy)."""
  try:
    classifier = classifier_lib.load_classifier(classifier_dir)
  except FileNotFoundError as error:
    raise FileNotFoundError(
        f'{error} Or pass --classifier_dir=DIR of a trained classifier '
        f'(default location: {default_classifier_dir()}).') from None
  classifier_lib.check_accuracy(classifier[2], classifier_dir, min_accuracy)
  return classifier


def make_judge(classifier, test_images: np.ndarray, cache_name: str | None,
               batch_size: int) -> Judge:
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
  return Judge(model, params, info['sha256'], reference)


# --------------------------------------------------------------- inception
def load_inception_weights(download: bool):
  """pytorch-fid's Inception-v3 weights; their absence is a clear error."""
  # Imported here: the Inception code is needed by 'fid' alone.
  from vae_jax.evaluation import inception_weights
  return inception_weights.load_inception_weights(download=download)


def inception_reference(weights, config: ml_collections.ConfigDict,
                        dataset: data_lib.Dataset | None,
                        batch_size: int) -> InceptionReference:
  """Inception features and the statistics of the configured test images.

  The statistics of the configured data are cached (fid.reference_statistics);
  those of a `dataset` given instead are computed.
  """
  feature_fn = fid.inception_fid_features(weights.params)
  if dataset is not None:
    statistics = fid.accumulate_statistics(feature_fn, dataset.test_images,
                                           batch_size)
  else:
    statistics = fid.reference_statistics(
        config.data.name, 'test', weights, cache_dir=config.data.cache_dir,
        data_dir=config.data.dir, batch_size=batch_size,
        download=config.data.download)
  return InceptionReference(feature_fn, statistics)


def inception_fid(images: np.ndarray, inception: InceptionReference,
                  batch_size: int) -> float:
  """Inception FID of images [N, H, W] in [0, 1] against the test images."""
  statistics = fid.accumulate_statistics(inception.feature_fn, images,
                                         batch_size)
  return fid.frechet_distance(*statistics, *inception.statistics)


# --------------------------------------------------------------- evaluation
# --------------------------------------------------------------- evaluators
class MemberEvaluation:
  """What the evaluators of one trained model share, each made once: its
  test set, the classifier, Inception, the settings and its prior samples."""

  def __init__(self, member: Member, test_set: Callable[[], data_lib.Dataset],
               judge: Judge | None, inception: InceptionReference | None,
               settings: Settings):
    self.member = member
    self._test_set = test_set
    self.judge = judge
    self.inception = inception
    self.settings = settings

  @functools.cached_property
  def test(self) -> data_lib.Dataset:
    """The test images as the member was trained on them."""
    return self._test_set()

  @functools.cached_property
  def samples(self) -> tuple[np.ndarray, np.ndarray | None]:
    """(images [S, H, W], the requested classes [S] of a CVAE, else None):
    Settings.num_samples prior samples (a CVAE's balanced over classes)."""
    model, settings = self.member.model, self.settings
    num_classes = getattr(model, 'num_classes', 0)
    labels, num = None, settings.num_samples
    if num_classes:
      labels = classifier_metrics.balanced_labels(num_classes,
                                                  num // num_classes)
      num = len(labels)
    images = classifier_metrics.prior_samples(
        model, self.member.params, self.member.hparams, num,
        jax.random.fold_in(jax.random.PRNGKey(settings.seed), 1), labels,
        settings.batch_size)
    return images, labels

  @functools.cached_property
  def sample_probabilities(self) -> np.ndarray:
    """The classifier's class probabilities of the prior samples."""
    return classifier_metrics.classifier_probabilities(
        self.judge.model, self.judge.params, self.samples[0],
        self.settings.batch_size)

  def sample_facts(self, classifier: bool = True) -> dict:
    facts = {'sample_count': len(self.samples[0])}
    if classifier:
      facts['classifier_sha256'] = self.judge.sha256
    return facts


class Evaluator(NamedTuple):
  """A metric: `evaluate(MemberEvaluation) -> numbers`, and what it needs:
  'test_set', 'classifier', 'inception', 'prior' (prior samples: not for a
  plain autoencoder) or 'likelihood' (a Bernoulli decoder: BCE loss)."""

  name: str
  evaluate: Callable[[MemberEvaluation], dict]
  needs: frozenset


EVALUATORS: dict[str, Evaluator] = {}


def register(name: str, needs: tuple[str, ...] = ()):
  """Adds the decorated `evaluate(MemberEvaluation) -> dict` as metric `name`."""
  def add(evaluate: Callable[[MemberEvaluation], dict]):
    EVALUATORS[name] = Evaluator(name, evaluate, frozenset(needs))
    return evaluate
  return add


def metrics_needing(need: str) -> frozenset:
  return frozenset(n for n, e in EVALUATORS.items() if need in e.needs)


def check_metrics(metrics: list[str]) -> None:
  unknown = sorted(set(metrics) - set(EVALUATORS))
  if unknown:
    raise ValueError(f'Unknown metrics {unknown}; choose from {METRICS}.')


@register('iwae', needs=('test_set', 'likelihood'))
def evaluate_iwae(evaluation: MemberEvaluation) -> dict:
  """{'iwae_nll', 'iwae_samples', 'iwae_num_images'} of the test images used."""
  member, test, settings = (evaluation.member, evaluation.test,
                            evaluation.settings)
  count = settings.num_images or len(test.test_images)
  nll = likelihood.iwae_nll(
      member.model, member.params, member.hparams, test.test_images[:count],
      test.test_labels[:count],
      jax.random.fold_in(jax.random.PRNGKey(settings.seed), 0),
      settings.iwae_samples, settings.iwae_chunk,
      member.config.data.preprocessing, member.config.loss,
      settings.iwae_batch)
  return {'iwae_nll': nll, 'iwae_samples': settings.iwae_samples,
          'iwae_num_images': count}


# Burda et al. (2016), section 5.2: a latent unit is active when the
# variance over 500 training images of its posterior mean exceeds 0.01.
ACTIVE_UNIT_IMAGES = 500
ACTIVE_UNIT_THRESHOLD = 1e-2


@register('active_units', needs=('test_set',))
def evaluate_active_units(evaluation: MemberEvaluation) -> dict:
  """{'active_units'}: latent units whose posterior mean varies over the
  first ACTIVE_UNIT_IMAGES training images (binarised as trained, from the
  seed) by more than ACTIVE_UNIT_THRESHOLD; masked units never count."""
  member, data = evaluation.member, evaluation.test
  images = data.train_images[:ACTIVE_UNIT_IMAGES]
  x = pipeline.to_model_input(
      jax.numpy.asarray(images), member.config.data.preprocessing,
      jax.random.fold_in(jax.random.PRNGKey(evaluation.settings.seed), 3))
  posterior = member.model.apply(
      {'params': member.params}, x,
      jax.numpy.asarray(data.train_labels[:ACTIVE_UNIT_IMAGES]),
      method=member.model.encode)
  variance = np.var(np.asarray(posterior.mean, np.float64), axis=0)
  active = (variance > ACTIVE_UNIT_THRESHOLD) & (
      np.asarray(member.hparams.latent_mask) > 0)
  return {'active_units': int(np.sum(active))}


@register('recon_at_mean', needs=('test_set',))
def evaluate_recon_at_mean(evaluation: MemberEvaluation) -> dict:
  """{'test_recon_at_mean'}: per-image test reconstruction loss of the decoded
  posterior mean; next to test_recon (a decoded sample) it shows how much of
  that term the posterior's spread costs."""
  member, test = evaluation.member, evaluation.test
  evaluate = jax.jit(train.make_evaluate(
      member.model, evaluation.settings.batch_size,
      member.config.data.preprocessing,
      train.reconstruction_loss_for(member.config), decode_mean=True))
  metrics = evaluate(member.params, member.hparams,
                     pipeline.device_data(test.test_images, test.test_labels))
  return {'test_recon_at_mean': float(metrics['recon'])}


@register('inception_score', needs=('prior', 'classifier'))
def evaluate_inception_score(evaluation: MemberEvaluation) -> dict:
  score, std = classifier_metrics.inception_score(
      evaluation.sample_probabilities)
  return {**evaluation.sample_facts(), 'inception_score': score,
          'inception_score_std': std}


@register('classifier_fid', needs=('prior', 'classifier'))
def evaluate_classifier_fid(evaluation: MemberEvaluation) -> dict:
  judge = evaluation.judge
  return {**evaluation.sample_facts(),
          'classifier_fid': classifier_metrics.classifier_fid(
              judge.model, judge.params, evaluation.samples[0],
              judge.reference, evaluation.settings.batch_size)}


@register('confusion', needs=('prior', 'classifier'))
def evaluate_confusion(evaluation: MemberEvaluation) -> dict:
  """CVAE: requested against predicted class (sample_class_accuracy); VAE:
  the histogram of predicted classes. Writes confusion.json and its figure."""
  probabilities = evaluation.sample_probabilities
  _, labels = evaluation.samples
  predicted = np.argmax(probabilities, axis=-1)
  classes = probabilities.shape[-1]
  numbers = evaluation.sample_facts()
  record = {'classifier_sha256': evaluation.judge.sha256,
            'num_samples': len(predicted), 'seed': evaluation.settings.seed}
  if labels is not None:
    matrix = classifier_metrics.confusion_matrix(labels, predicted, classes)
    accuracy = float(np.trace(matrix) / len(predicted))
    record.update(kind='requested_vs_predicted', matrix=matrix.tolist(),
                  accuracy=accuracy)
    numbers['sample_class_accuracy'] = accuracy
  else:
    record.update(kind='predicted_histogram', histogram=
                  classifier_metrics.class_histogram(predicted,
                                                     classes).tolist())
  _write_confusion(record, evaluation.member.directory, CONFUSION_FILE)
  return numbers


@register('reconstruction_confusion', needs=('test_set', 'classifier'))
def evaluate_reconstruction_confusion(evaluation: MemberEvaluation) -> dict:
  """{'recon_class_accuracy'}: true digit of every test image against the
  classifier's digit for its reconstruction; writes
  reconstruction_confusion.json and its figure."""
  member, test, judge = evaluation.member, evaluation.test, evaluation.judge
  batch_size = evaluation.settings.batch_size
  images = test.test_images.astype(np.float32) / 255
  conditional = getattr(member.model, 'num_classes', 0)
  reconstructed = classifier_metrics.reconstructions(
      member.model, member.params, member.hparams, images,
      test.test_labels if conditional else None, batch_size)
  predicted = np.argmax(classifier_metrics.classifier_probabilities(
      judge.model, judge.params, reconstructed, batch_size), axis=-1)
  matrix = classifier_metrics.confusion_matrix(test.test_labels, predicted)
  accuracy = float(np.trace(matrix) / len(predicted))
  _write_confusion({'kind': 'true_vs_reconstruction',
                    'matrix': matrix.tolist(), 'accuracy': accuracy,
                    'num_images': len(predicted),
                    'classifier_sha256': judge.sha256},
                   member.directory, RECONSTRUCTION_CONFUSION_FILE)
  return {'recon_class_accuracy': accuracy, 'classifier_sha256': judge.sha256}


@register('fid', needs=('prior', 'inception'))
def evaluate_fid(evaluation: MemberEvaluation) -> dict:
  return {**evaluation.sample_facts(classifier=False),
          'fid': inception_fid(evaluation.samples[0], evaluation.inception,
                               evaluation.settings.batch_size)}


METRICS = tuple(EVALUATORS)
TEST_SET_METRICS = metrics_needing('test_set')
CLASSIFIER_METRICS = metrics_needing('classifier')
SAMPLE_METRICS = metrics_needing('prior')


def plot_confusion(confusion: dict, directory: Path) -> Path:
  """confusion_matrix.png (CVAE: requested vs predicted digit),
  class_histogram.png (VAE: predicted digits of prior samples) or
  reconstruction_confusion.png (true digit vs digit read in the
  reconstruction)."""
  from vae_jax import plots  # matplotlib only when figures are drawn
  if confusion['kind'] == 'true_vs_reconstruction':
    return plots.plot_confusion_matrix(
        np.asarray(confusion['matrix']),
        directory / 'reconstruction_confusion.png',
        f'{confusion["num_images"]:,} test reconstructions: '
        f'{confusion["accuracy"]:.1%} read as their digit',
        row_label='true digit of the test image', count_label='test images')
  count = confusion['num_samples']
  if confusion['kind'] == 'requested_vs_predicted':
    return plots.plot_confusion_matrix(
        np.asarray(confusion['matrix']), directory / 'confusion_matrix.png',
        f'{count:,} class-conditional samples: '
        f'{confusion["accuracy"]:.1%} classified as requested')
  return plots.plot_class_histogram(
      np.asarray(confusion['histogram']), directory / 'class_histogram.png',
      f'What the classifier sees in {count:,} prior samples')


def _write_confusion(record: dict, directory: Path, name: str) -> None:
  directory.mkdir(exist_ok=True)
  workdir_lib.atomic_write_json(directory / name, record)
  plot_confusion(record, directory)


def evaluate_workdir(workdir: str | Path, metrics: list[str],
                     classifier_dir: str | Path | None = None,
                     settings: Settings = Settings(),
                     data_dir: str | None = None,
                     dataset: data_lib.Dataset | None = None,
                     recompute: bool = False) -> dict | list[dict]:
  """Computes `metrics` of the run or sweep in workdir and writes them there.

  Args:
    workdir: a train_and_evaluate or run_sweep workdir with results.json.
    metrics: names from METRICS.
    classifier_dir: the trained classifier (default_classifier_dir() if
      None); needed by CLASSIFIER_METRICS only.
    settings: sample counts, batch sizes and the seed.
    data_dir: replaces the saved config.data.dir (data moved since); by
      default the directory the run recorded in data.json.
    dataset: replaces the configured data (tests pass small arrays).
    recompute: compute every metric again, even where results.json holds
      its numbers for the same checkpoint and settings.

  Returns:
    The updated results: a dict (run) or one dict per member (sweep). The
    members of a sweep still training are evaluated group by group: those
    results.json lists as pending are left out until they have trained.
  """
  workdir = Path(workdir)
  check_metrics(metrics)
  kind = workdir_lib.marked_kind(workdir)
  if kind not in ('run', 'sweep'):
    raise workdir_lib.WorkdirError(
        f'{workdir} is not a vae_jax run or sweep; pass the --workdir given '
        'to launch.train or launch.sweep.')
  with workdir_lib.WorkdirLock(workdir):
    return _evaluate_workdir(workdir, metrics, classifier_dir, settings,
                             data_dir, dataset, recompute)


def computed_from(metric: str, result: dict, settings: Settings,
                  judge: Judge | None, checkpoint_epoch: int) -> dict:
  """What a metric's numbers depend on besides the code: the checkpoint
  (its epoch), the settings that change their value and
  the classifier. Numbers recorded with the same facts are not recomputed."""
  needs = EVALUATORS[metric].needs
  facts: dict[str, Any] = {'epochs': result.get('epochs'),
                           'checkpoint_epoch': checkpoint_epoch}
  if metric == 'iwae':
    facts.update(iwae_samples=settings.iwae_samples,
                 num_images=settings.num_images, seed=settings.seed)
  if metric == 'active_units':
    facts.update(seed=settings.seed)
  if 'prior' in needs:
    facts.update(num_samples=settings.num_samples, seed=settings.seed)
  if 'classifier' in needs:
    facts['classifier_sha256'] = judge.sha256
  return facts


# Per result: {metric: computed_from(...)} of the numbers it holds.
EVALUATED_KEY = 'evaluated'


def _evaluate_workdir(workdir: Path, metrics: list[str], classifier_dir,
                      settings: Settings, data_dir, dataset, recompute: bool):
  metrics_set = set(metrics)
  config = load_run_config(workdir)
  results_path = workdir / RESULTS_FILE
  if not results_path.exists():
    raise FileNotFoundError(f'{results_path} is missing: the run has not '
                            'finished; train it to the end first.')
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
  classifier = inception_weights = None
  if metrics_set & CLASSIFIER_METRICS:
    classifier = load_classifier(
        Path(classifier_dir or default_classifier_dir()),
        settings.min_classifier_accuracy)
  if 'fid' in metrics_set:
    inception_weights = load_inception_weights(base.data.download)

  raw = dataset or data_lib.load_dataset(
      base.data.name, data_dir=base.data.dir, cache_dir=base.data.cache_dir,
      download_if_missing=base.data.download, source=base.data.source)
  # Sweep members not to evaluate: diverged, or pending (not trained yet).
  unfinished = {r['member']: r['status'] for r in (
      results if isinstance(results, list) else [])
                if r.get('status', 'finished') != 'finished'}
  pending = frozenset(m for m, status in unfinished.items()
                      if status == sweep_lib.PENDING)
  if pending:
    log.warning('Not evaluating member(s) %s: the sweep has not trained them '
                'yet (run it again to resume it, then evaluate).',
                ', '.join(map(str, sorted(pending))))
  members = restore_members(workdir, config, raw.image_shape, pending)

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
  if 'iwae' in metrics_set and all(m.config.loss != 'bce' for m in members):
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

    evaluation = MemberEvaluation(member, test_set, judge, inception, settings)
    entry = (results if member.index is None else
             next(r for r in results if r['member'] == member.index))
    evaluated = entry.setdefault(EVALUATED_KEY, {})
    numbers: dict[str, Any] = {}
    kept = []
    variational = member.config.model.variational
    if metrics_set & SAMPLE_METRICS and not variational:
      log.info('%s is a plain autoencoder (no prior): no metrics of prior '
               'samples.', name)
    for metric in METRICS:
      needs = EVALUATORS[metric].needs
      if metric not in metrics_set or ('prior' in needs and not variational):
        continue
      if 'likelihood' in needs and member.config.loss != 'bce':
        log.info('No %s for %s: its loss %r is not a likelihood.', metric,
                 name, member.config.loss)
        continue
      facts = computed_from(metric, entry, settings, judge, member.epoch)
      if not recompute and evaluated.get(metric) == facts:
        kept.append(metric)
        continue
      numbers.update(EVALUATORS[metric].evaluate(evaluation))
      evaluated[metric] = facts
    entry.update(numbers)
    log.info('Evaluated %s in %.1f s: %s%s', name, time.perf_counter() - start,
             ', '.join(f'{k} {v:.4g}' for k, v in numbers.items()
                       if isinstance(v, float)) or 'nothing new',
             f' (kept from an earlier evaluation of the same checkpoint and '
             f'settings: {", ".join(kept)})' if kept else '')
    # Written after every member: an interrupted evaluation resumes.
    _write_results(workdir, config, results)
  return results


def _write_results(workdir: Path, config, results) -> None:
  if 'sweep' in config:
    sweep_lib.write_results_table(workdir, results, config.get('reported', ()),
                                  checkpoint_lib.config_as_dict(config))
  else:
    workdir_lib.atomic_write_json(workdir / RESULTS_FILE, results)
