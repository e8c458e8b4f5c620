r"""Reproduces a study: one of the five of the README ("The five studies",
A-E), or IWAE (Burda et al.'s MNIST likelihoods, configs/burda_iwae.py):
trains, evaluates, reports.

  python -m launch.reproduce --study=D --workdir=workdirs/study_d_full \
      --data_dir=../shared/data
  python -m launch.reproduce --study=A --workdir=/tmp/a --quick   # minutes
  python -m launch.reproduce --study=B --workdir=/tmp/b --data_dir=../shared/data \
      --figures_dir=results/figures --figures_only   # the report's figures

Every experiment of the study runs as a sweep (one compiled program per
group of members), then `launch.evaluate`'s metrics that apply to the study,
then `launch.report` writes DIR/report.html with the report's numbers beside
ours. --quick trains each experiment on its quick budget (Experiment.quick:
the smallest number of epochs and training images whose prior samples are
digits at the study's own optimiser settings, where minutes allow) and the
classifier 1 epoch on 10,000 images; the full mode uses each study's own
budget. results/quick_mode.md gives each study's quick time and samples.
Studies that judge generated digits (A, C, E, and A's perceptual losses) use
the project's MNIST classifier: --classifier_dir, else one is trained into
DIR/classifier first. It ends by naming the report and the files it wrote.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from pathlib import Path
from typing import Callable

from absl import app
from absl import flags

from configs import burda_iwae
from configs import study_a, study_b, study_c, study_c_usps, study_d, study_e
from launch import common
from vae_jax import classifier as classifier_lib
from vae_jax import data as data_lib
from vae_jax import grid as grid_lib
from vae_jax import loop
from vae_jax import report
from vae_jax import restore
from vae_jax import sweep
from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry

log = logging.getLogger('vae_jax.reproduce')


@dataclasses.dataclass(frozen=True)
class Budget:
  """A shortened training budget: the first `train_images` training and
  `test_images` test images, `epochs` epochs."""

  epochs: int
  train_images: int
  test_images: int = 500


# The whole pipeline in seconds per experiment, no digits expected.
SMOKE = Budget(epochs=2, train_images=1024)
ALL_MNIST = 60_000


@dataclasses.dataclass(frozen=True)
class Figure:
  """A figure the study's report shows, kept by --figures_dir.

  file: the PNG vae_jax draws, in the member's directory (or, with member
    None, the sweep's); name: the kept copy's, after the study's prefix;
    member: config values that pick exactly one member of the sweep
    (dotted keys, compared with the member's whole config); shows: which
    figure of the report it answers.
  """

  file: str
  name: str
  shows: str
  member: tuple[tuple[str, object], ...] | None = None


@dataclasses.dataclass(frozen=True)
class Experiment:
  """One sweep of a study and the metrics evaluated on it afterwards."""

  name: str  # its subdirectory of the study's workdir
  get_config: Callable
  metrics: tuple[str, ...] = ()
  needs_classifier_in_training: bool = False  # the perceptual losses
  # --quick: the smallest budget whose prior samples are recognisable
  # digits at the study's own optimiser settings, where minutes allow.
  quick: Budget = SMOKE
  # Full mode: how its metrics are computed when its report says (else the
  # launcher's --iwae_samples / --iwae_images).
  settings: registry.Settings | None = None


def _member(**values) -> tuple[tuple[str, object], ...]:
  """Figure.member from keyword arguments, '__' standing for '.'."""
  return tuple((k.replace('__', '.'), v) for k, v in values.items())


_STUDY_A_LOSSES = (('baseline_n01', dict(prior_mean=0.0)),
                   ('baseline_n12', dict(prior_mean=1.0,
                                         model__init_scheme='torch_default')),
                   ('bce', dict(loss='bce', model__init_scheme='kaiming_normal',
                                model__latent_size=2)),
                   ('mse', dict(loss='mse')), ('mae', dict(loss='mae')),
                   ('perceptual', dict(loss='perceptual')),
                   ('perceptual_bce', dict(loss='perceptual+bce')),
                   ('perceptual_mse', dict(loss='perceptual+mse')))
# Per experiment (by name), the figures of its report that --figures_dir
# keeps, as <study>_<experiment name>_<Figure.name>.png for C's two.
FIGURES = {
    'study_a': tuple(Figure('latent_scatter.png', f'latent2_{name}_scatter',
                      'Figs. 15-22: the 2-d latent space of each model',
                      _member(**values))
               for name, values in _STUDY_A_LOSSES),
    'study_b': (*(Figure('reconstructions.png', f'latent{size}_reconstructions',
                   'Fig. 2b: reconstructions at latent 1, 2 and 3',
                   _member(model__latent_size=size,
                           model__encoder_widths=(400, 400, 400), beta=1.0))
            for size in (1, 2, 3)),
          Figure('latent_traversal.png', 'latent1_strip',
                 'Fig. 3a: the 1-d latent decoded along its axis',
                 _member(model__latent_size=1,
                         model__encoder_widths=(400, 400, 400))),
          Figure('reconstructions.png', 'cnn_reconstructions',
                 "Fig. 6b: the CNN's reconstructions (the linked code's "
                 'VAE_cnn)', _member(model__name='cnn_bn_vae')),
          Figure('samples.png', 'cnn_samples',
                 "Fig. 6c: the CNN's prior samples",
                 _member(model__name='cnn_bn_vae'))),
    'usps': (Figure('curves_by_batch_size.png', 'curves_by_batch_size',
                    'Fig. 6: USPS losses per batch size'),
             Figure('latent_by_class.png', 'latent_by_class',
                    'Fig. 7 (right): the USPS latent space per class',
                    _member(batch_size=256, learning_rate=1e-3,
                            model__latent_size=2, optimizer='adam',
                            model__num_classes=10))),
    'mnist': (Figure('reconstructions.png', 'vae_reconstructions',
                     'Fig. 10: the VAE\'s reconstructions',
                     _member(model__num_classes=0)),),
    'study_d': (Figure('latent_traversal.png', 'latent1_strip',
                 'Fig. 3 (left): the 1-d latent decoded along its axis',
                 _member(model__latent_size=1)),
          Figure('latent_scatter.png', 'latent1_scatter',
                 'Fig. 3 (middle): the 1-d latent of the test set per class',
                 _member(model__latent_size=1)),
          Figure('latent_grid.png', 'latent2_grid',
                 'Fig. 4 (left): the 2-d latent space decoded on a grid',
                 _member(model__latent_size=2)),
          Figure('latent_scatter.png', 'latent2_scatter',
                 'Fig. 4 (middle): the 2-d latent space of the test set',
                 _member(model__latent_size=2)),
          Figure('reconstructions.png', 'latent64_reconstructions',
                 'Fig. 5 (left): reconstructions at latent 64',
                 _member(model__latent_size=64, beta=1.0)),
          Figure('latent_scatter.png', 'latent64_tsne',
                 'Fig. 5 (middle): the 64-d latent space of the test set '
                 '(t-SNE)',
                 _member(model__latent_size=64, beta=1.0)),
          *(Figure('loss_curves.png', f'latent{size}_curves',
                   'Figs. 3-5 (right): train and test curves per member',
                   _member(model__latent_size=size, beta=1.0))
            for size in (1, 2, 64)),
          Figure('curves_by_beta.png', 'curves_by_beta',
                 'train and test curves per member (latent 64, each beta)')),
    'study_e': (Figure('latent_scatter.png', 'latent2_scatter',
                 'Fig. 9: the 2-d latent space',
                 _member(model__latent_size=2, model__variational=True)),
          *(Figure('reconstructions.png', f'latent{size}_reconstructions',
                   'Fig. 10 and across latent sizes: reconstructions',
                   _member(model__latent_size=size, model__variational=True))
            for size in (2, 5, 30)),
          *(Figure('samples.png', f'latent{size}_samples',
                   f'Fig. {figure}: prior samples at latent {size}',
                   _member(model__latent_size=size))
            for size, figure in ((3, 14), (4, 15), (10, 17)))),
}


# Study A's FID needs Inception weights (see vae_jax.evaluation.fid); where
# they are missing the classifier-feature FID still runs, and the Inception
# FID is reported as unavailable rather than stopping the study.
# Quick budgets (results/quick_mode.md): Adam's steps turn blobs into
# digits, and the study's learning rate sets their size. C (1e-3) draws
# clear digits after 2 epochs, E (5e-4) blurred ones after 1, D's MLP
# (1e-4) after 10. Study A's conv VAEs at 1e-4 still draw noise after an
# epoch (10 minutes here, most of it the perceptual members) and Study B's
# 1e-5 needs tens of epochs, so their quick runs only check the pipeline.
STUDIES: dict[str, tuple[Experiment, ...]] = {
    'A': (Experiment('study_a', study_a.get_config,
                     ('classifier_fid', 'inception_score', 'iwae', 'fid'),
                     needs_classifier_in_training=True),),
    'B': (Experiment('study_b', study_b.get_config, ('iwae',)),),
    'C': (Experiment('mnist', study_c.get_config,
                     ('confusion', 'inception_score'),
                     quick=Budget(epochs=2, train_images=ALL_MNIST)),
          Experiment('usps', study_c_usps.get_config, (),
                     quick=Budget(epochs=5, train_images=7291)),),
    'D': (Experiment('study_d', study_d.get_config, ('iwae',),
                     quick=Budget(epochs=10, train_images=ALL_MNIST)),),
    'E': (Experiment('study_e', study_e.get_config,
                     ('inception_score', 'confusion',
                      'reconstruction_confusion', 'classifier_fid'),
                     quick=Budget(epochs=1, train_images=ALL_MNIST)),),
    # Burda et al. (2016): every test image, k = 5000, batches of 20.
    'IWAE': (Experiment('burda_iwae', burda_iwae.get_config,
                        ('iwae', 'active_units'),
                        settings=registry.Settings(iwae_samples=5000,
                                                   iwae_batch=20)),),
}

QUICK_CLASSIFIER_IMAGES = 10_000
# Quick mode's classifier trains one epoch on QUICK_CLASSIFIER_IMAGES
# digits, which lands near the full threshold; 90% still reads digits.
QUICK_SETTINGS = registry.Settings(iwae_samples=20, num_images=100,
                                   num_samples=500,
                                   min_classifier_accuracy=0.9)

FLAGS = flags.FLAGS
flags.DEFINE_enum('study', None, sorted(STUDIES), 'Which study: A-E (the '
                  'README\'s "The five studies"), or IWAE (Burda et al., '
                  '2016).',
                  required=True)
flags.DEFINE_string('workdir', None, 'Directory of the study: one '
                    'subdirectory per experiment, the report at the top.',
                    required=True)
flags.DEFINE_bool('quick', False, 'Each experiment\'s quick budget: a few '
                  'epochs on part of the training set, enough for digits.')
common.define_data_dir()
common.define_inception_weights()
common.define_classifier_dir('A classifier trained by '
                             'launch.train_classifier (else one is trained '
                             'into WORKDIR/classifier).')
flags.DEFINE_integer('iwae_samples', 1000, 'Full mode: importance samples '
                     'per test image for the IWAE bound (launch.evaluate '
                     'uses 5000).')
flags.DEFINE_integer('num_images', 2000, 'Full mode: IWAE on the first N '
                     'test images (0: all 10,000; about 1 CPU-minute per '
                     'member per 1000 images at k=1000).', lower_bound=0)
common.define_old_spelling('iwae_images', 'num_images', flags.DEFINE_integer,
                           lower_bound=0)
flags.DEFINE_bool('overwrite', False, 'Replace experiments of a different '
                  'config in the workdir instead of refusing.')
flags.DEFINE_string('figures_dir', None, 'Also keep the figures each '
                    'report shows (launch.reproduce.FIGURES) there as small '
                    'PNGs, e.g. results/figures.')
flags.DEFINE_bool('figures_only', False, 'With --figures_dir: train only the '
                  'members those figures are drawn from (all of an '
                  'experiment with a figure of its whole sweep) and compute '
                  'no metrics; for the figures of a study whose workdir is '
                  'gone.')


def experiment_config(experiment: Experiment, quick: bool | Budget,
                      data_dir: str | None, classifier_dir: Path | None):
  """The experiment's config with the run's data location and budget.

  quick: False for the study's full budget, True for the experiment's own
  quick budget, or a Budget to use instead (the tests' smoke runs).
  """
  config = experiment.get_config()
  config.data.dir = data_dir
  if classifier_dir is not None:
    config.perceptual.classifier_dir = str(classifier_dir)
  if quick:
    budget = experiment.quick if quick is True else quick
    config.num_epochs = budget.epochs
    config.data.train_subset = budget.train_images
    config.data.test_subset = budget.test_images
    # The published numbers were measured at the full budget: beside a
    # quick run's they would only ever read as worse.
    if 'reported' in config:
      config.reported = []
  return config


def ensure_classifier(workdir: Path, classifier_dir: str | None,
                      quick: bool | Budget,
                      data_dir: str | None) -> Path:
  """The classifier to use: the given one, one trained earlier into
  workdir/classifier, or a new one trained there (1 epoch when quick)."""
  if classifier_dir:
    classifier_lib.load_classifier(classifier_dir)  # verified before use
    return Path(classifier_dir)
  directory = workdir / workdir_lib.CLASSIFIER_DIR
  if (directory / classifier_lib.INFO_FILE).exists():
    return directory
  dataset = data_lib.load_dataset('mnist', data_dir=data_dir)
  epochs = 1 if quick else 5
  if quick:
    dataset = dataclasses.replace(
        dataset, train_images=dataset.train_images[:QUICK_CLASSIFIER_IMAGES],
        train_labels=dataset.train_labels[:QUICK_CLASSIFIER_IMAGES])
  log.info('Training the MNIST classifier (%d epoch(s)) into %s.', epochs,
           directory)
  classifier_lib.train_into(directory, dataset, epochs=epochs)
  return directory


def reproduce(study: str, workdir: str | Path, quick: bool | Budget = False,
              data_dir: str | None = None, classifier_dir: str | None = None,
              overwrite: bool = False,
              settings: registry.Settings | None = None,
              figures_only: bool = False,
              inception_weights: str | None = None) -> Path:
  """Trains, evaluates and reports every experiment of `study`; returns the
  report's path.

  settings: how the metrics are computed; default QUICK_SETTINGS when quick,
  else registry.Settings().
  figures_only: train only the members FIGURES are drawn from (every member
    of an experiment with a figure of the whole sweep; none of one without
    figures) and compute no metrics: the report's figures for a study whose
    workdir is gone, at a fraction of its training.
  inception_weights: the FID Inception weights file, checked before any
    training (default: found as inception_weights.load_inception_weights
    says; where none is found the FID is left out with a warning).
  """
  if settings is None:
    settings = QUICK_SETTINGS if quick else registry.Settings()
  if inception_weights is not None:
    # A file the user named is verified before hours of training, and its
    # absence is an error, not a metric left out.
    evaluate.load_inception_weights(download=False, path=inception_weights)
  workdir = Path(workdir)
  lock, _ = workdir_lib.claim(workdir, 'study')
  try:
    return _reproduce(study, workdir, quick, data_dir, classifier_dir,
                      overwrite, settings, figures_only, inception_weights)
  finally:
    lock.release()


def _reproduce(study: str, workdir: Path, quick: bool | Budget, data_dir: str | None,
               classifier_dir: str | None, overwrite: bool,
               settings: registry.Settings, figures_only: bool,
               inception_weights: str | None) -> Path:
  experiments = STUDIES[study]
  if figures_only:
    experiments = tuple(e for e in experiments if FIGURES.get(e.name))
  wants_classifier = any(e.needs_classifier_in_training or
                         (registry.needing('classifier', e.metrics)
                          and not figures_only)
                         for e in experiments)
  classifier = (ensure_classifier(workdir, classifier_dir, quick, data_dir)
                if wants_classifier else None)
  timings = {}
  picked_notes = []
  for experiment in experiments:
    config = experiment_config(experiment, quick, data_dir, classifier)
    if figures_only and (needed := figure_members(experiment)) is not None:
      picked_notes.append(f'{experiment.name}: members {needed} of '
                          f'{len(config.sweep)}')
      config.sweep = [config.sweep[index] for index in needed]
    directory = workdir / experiment.name
    log.info('Study %s: experiment %s, %d member(s), %d epoch(s).', study,
             experiment.name, len(config.sweep), config.num_epochs)
    start = time.perf_counter()
    results = sweep.run_sweep(config, directory, overwrite=overwrite)
    timings[experiment.name] = (time.perf_counter() - start,
                                training_seconds(results))
    metrics = [] if figures_only else list(experiment.metrics)
    # A quick run never waits on a download.
    inception = registry.needing('inception', metrics)
    if (inception and inception_weights is None
        and not _inception_weights_available(not quick)):
      log.warning('Inception weights not found: skipping %s (see '
                  'vae_jax.evaluation.inception_weights for how to provide '
                  'them); the other metrics still run.', ', '.join(inception))
      metrics = [m for m in metrics if m not in inception]
    if metrics:
      evaluate.evaluate_workdir(
          directory, metrics, classifier_dir=classifier,
          settings=(experiment.settings
                    if experiment.settings and not quick else settings),
          data_dir=data_dir, inception_weights=inception_weights)
  notes = [f'Study {study} ({"quick" if quick else "full"} mode).' +
           (' The report\'s published numbers, measured at its full '
            'budget, are not shown beside a quick run\'s.' if quick else ''),
           'Training time per experiment, every epoch of every call that '
           'trained it (the groups\' training steps, without evaluation, '
           'compilation and figures): ' +
           ', '.join(f'{k} {loop.format_duration(t)}'
                     for k, (_, t) in timings.items()) + '.',
           'Wall time of this call per experiment (training, compilation, '
           'figures; a sweep resumed from its checkpoints counts only what '
           'this call did): ' +
           ', '.join(f'{k} {loop.format_duration(w)}'
                     for k, (w, _) in timings.items()) + '.']
  if figures_only:
    notes.append('Figures only: each experiment trained the members its '
                 'report figures are drawn from (' +
                 ('; '.join(picked_notes) or 'all of them') +
                 '; member numbers are those of this workdir), and no '
                 'metrics were computed.')
  for experiment in () if figures_only else experiments:
    used = (experiment.settings if experiment.settings and not quick
            else settings)
    # The settings that change each metric's numbers (num_images None: all).
    described = [f'{metric} ({", ".join(f"{k}={v}" for k, v in values.items())})'
                 for metric in experiment.metrics
                 if (values := registry.setting_values(metric, used))]
    if described:
      notes.append(f'Metrics of {experiment.name}: {"; ".join(described)}.')
  workdir_lib.atomic_write_text(workdir / workdir_lib.NOTES_FILE,
                                '\n'.join(notes) + '\n')
  return report.write_report(workdir, f'vae_jax: Study {study}')


def figure_member(experiment: Experiment, figure: Figure,
                  config=None) -> int | None:
  """The index of the one sweep member `figure` is drawn from (None for the
  sweep's own figures), in `config`'s sweep (default: the experiment's
  whole sweep; a workdir's saved config when it trained only some members).

  Raises:
    ValueError: Figure.member picks no member, or several.
  """
  if figure.member is None:
    return None
  config = experiment.get_config() if config is None else config
  normal = lambda value: json.loads(json.dumps(value))  # tuples as lists
  picked = [index for index, overrides in enumerate(config.sweep)
            if all(normal(grid_lib.get_key(grid_lib.member_config(
                config, overrides), key)) == normal(value)
                   for key, value in figure.member)]
  if len(picked) != 1:
    raise ValueError(f'Figure {figure.name!r} of {experiment.name} picks '
                     f'members {picked} with {dict(figure.member)}; it must '
                     'pick exactly one.')
  return picked[0]


def figure_members(experiment: Experiment) -> list[int] | None:
  """The members of the experiment's sweep its kept figures are drawn from,
  in sweep order; None when one of them shows the whole sweep."""
  figures = FIGURES.get(experiment.name, ())
  if any(figure.member is None for figure in figures):
    return None
  config = experiment.get_config()
  return sorted({figure_member(experiment, figure, config)
                 for figure in figures})


def _trained_config(experiment: Experiment, directory: Path):
  """The config an experiment's directory trained (its sweep may hold only
  the figures' members), else the experiment's own."""
  if (directory / workdir_lib.CONFIG_FILE).exists():
    return restore.load_run_config(directory)
  return experiment.get_config()


def keep_figures(study: str, workdir: Path, figures_dir: Path,
                 overwrite: bool = False) -> list[Path]:
  """Copies the study's FIGURES from its workdir into figures_dir, as small
  256-colour PNGs named <study>[_<experiment>]_<name>.png.

  Raises:
    workdir_lib.WorkdirError: a copy would replace an existing file and
      overwrite is False (nothing is copied).
  """
  from PIL import Image  # matplotlib's own dependency; only when keeping
  experiments = STUDIES[study]
  copies = []
  for experiment in experiments:
    prefix = f'study_{study.lower()}' + (
        f'_{experiment.name}' if len(experiments) > 1 else '')
    directory = workdir / experiment.name
    trained = _trained_config(experiment, directory)
    for figure in FIGURES.get(experiment.name, ()):
      index = figure_member(experiment, figure, trained)
      source = (directory if index is None else
                workdir_lib.member_dir(directory, index)) / figure.file
      copies.append((figure, source, figures_dir / f'{prefix}_{figure.name}.png'))
  existing = [str(target) for _, _, target in copies if target.exists()]
  if existing and not overwrite:
    raise workdir_lib.WorkdirError(
        f'--figures_dir holds {len(existing)} of these figures already '
        f'({", ".join(existing[:3])}{", ..." if len(existing) > 3 else ""}); '
        'pass --overwrite to replace them, or another --figures_dir.')
  figures_dir.mkdir(parents=True, exist_ok=True)
  kept = []
  for figure, source, target in copies:
    if not source.exists():
      log.warning('No %s to keep as %s (%s): the member diverged, or this '
                  'budget does not draw it.', source, target.name,
                  figure.shows)
      continue
    small = io.BytesIO()
    with Image.open(source) as image:
      image.convert('RGB').quantize(256).save(small, format='PNG',
                                              optimize=True)
    workdir_lib.atomic_write_bytes(target, small.getvalue())
    log.info('Kept %s (%s).', target, figure.shows)
    kept.append(target)
  return kept


def training_seconds(results: list[dict]) -> float:
  """A sweep's training time: its groups' training seconds, each once."""
  by_group = {r['group']: r['group_train_seconds'] for r in results
              if r is not None and 'group_train_seconds' in r}
  return sum(by_group.values())


def _inception_weights_available(download: bool) -> bool:
  """Whether the Inception weights are at hand (fetching them if allowed)."""
  from vae_jax.evaluation import inception_weights
  try:
    inception_weights.load_inception_weights(download=download)
  except (FileNotFoundError, data_lib.DataError) as error:
    log.warning('%s', error)
    return False
  return True


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  if FLAGS.figures_only and not FLAGS.figures_dir:
    raise app.UsageError('--figures_only keeps the figures in --figures_dir: '
                         'give --figures_dir=DIR too (e.g. results/figures).')
  start = common.now()
  settings = None if FLAGS.quick else registry.Settings(
      iwae_samples=FLAGS.iwae_samples, num_images=FLAGS.num_images or None)
  path = reproduce(FLAGS.study, FLAGS.workdir, FLAGS.quick, FLAGS.data_dir,
                   FLAGS.classifier_dir, FLAGS.overwrite, settings,
                   FLAGS.figures_only, FLAGS.inception_weights)
  if FLAGS.figures_dir:
    keep_figures(FLAGS.study, Path(FLAGS.workdir), Path(FLAGS.figures_dir),
                 FLAGS.overwrite)
  print(path)
  print(json.dumps({'report': str(path)}))
  common.report_outputs(FLAGS.workdir, start)
  log.info('The report: %s (open it in a browser).', path)


if __name__ == '__main__':
  common.run(main)
