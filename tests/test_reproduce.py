"""launch.reproduce for every study at a smoke budget: trains, evaluates, reports (real data)."""

import json
import math
import re
from pathlib import Path

import pytest
from PIL import Image

from launch import reproduce
from vae_jax import classifier as classifier_lib
from vae_jax import data
from vae_jax import loop
from vae_jax import workdir as workdir_lib

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'

# Figures every member of every study has, then those only some studies have
# (at the sweep level, or in at least one member's directory).
MEMBER_FIGURES = ('loss_curves', 'reconstructions', 'reconstructions_by_epoch',
                  'samples', 'latent_scatter', 'interpolations')
STUDY_FIGURES = {
    'A': ('latent_grid',),
    'B': ('metrics_vs_beta', 'metrics_vs_latent_size', 'latent_grid',
          'latent_traversal'),
    'C': ('latent_grid', 'confusion_matrix'),
    'D': ('metrics_vs_beta', 'metrics_vs_latent_size', 'latent_grid',
          'latent_traversal'),
    'E': ('metrics_vs_latent_size', 'curves_by_latent_size', 'latent_grid',
          'class_histogram', 'reconstruction_confusion'),
}
# Numbers each study's evaluation must add to every member's results.
STUDY_METRICS = {
    'A': ('classifier_fid', 'inception_score'),
    'B': ('iwae_nll',),
    'C': (),
    'D': ('iwae_nll',),
    'E': ('inception_score', 'classifier_fid', 'recon_class_accuracy'),
}
# Numbers and figures of prior samples, which a plain autoencoder lacks.
PRIOR_METRICS = ('inception_score', 'classifier_fid')


@pytest.fixture(scope='module')
def quick_classifier(tmp_path_factory, mnist_dir):
  """A classifier trained for one epoch on 5,000 digits: enough to judge."""
  dataset = data.load_dataset('mnist', data_dir=mnist_dir.parent)
  small = data.Dataset('mnist', dataset.train_images[:5000],
                       dataset.train_labels[:5000], dataset.test_images,
                       dataset.test_labels, source='files')
  model, params = classifier_lib.train_classifier(small, num_epochs=1)
  directory = tmp_path_factory.mktemp('classifier')
  accuracy = classifier_lib.accuracy(model, params, dataset.test_images,
                                     dataset.test_labels)
  classifier_lib.save_classifier(directory, params,
                                 {'note': 'quick', 'test_accuracy': accuracy})
  return directory


def _check_png(path: Path) -> None:
  blob = path.read_bytes()
  assert blob[:8] == PNG_MAGIC, path
  width, height = int.from_bytes(blob[16:20], 'big'), int.from_bytes(
      blob[20:24], 'big')
  assert width >= 200 and height >= 100 and len(blob) > 5000, path


# CI's fast set runs Study D (7 MLP members, one program, IWAE; about 30 s).
# E (conv VAEs and the autoencoder, classifier metrics) takes about 3
# minutes and A, B and C compile several conv or MLP groups each (2-5
# minutes apiece); their parts (classifier metrics, perceptual losses, CVAE,
# USPS) have fast tests of their own.
@pytest.mark.parametrize('study', [
    'D', *[pytest.param(s, marks=pytest.mark.slow) for s in 'ABCE']])
def test_quick_reproduction_writes_report_figures_and_tables(
    tmp_path, mnist_dir, usps_dir, quick_classifier, study):
  report_path = reproduce.reproduce(
      study, tmp_path / study, quick=reproduce.SMOKE,
      data_dir=str(mnist_dir.parent),
      classifier_dir=str(quick_classifier))
  page = report_path.read_text()
  assert page.startswith('<!DOCTYPE html>')
  figures = list(tmp_path.glob(f'{study}/**/*.png'))
  # The experiments' own figures are embedded; the members' are linked
  # from the page's directory, so a study's page stays small.
  member_figures = [p for p in figures if p.parent.name.startswith('member_')]
  assert len(re.findall(r'data:image/png;base64,', page)) == (
      len(figures) - len(member_figures))
  for path in member_figures:
    assert f'src="{path.relative_to(tmp_path / study).as_posix()}"' in page
  assert page.count('<h1>') == 1
  # Results lead; the config is folded away after them.
  assert page.index('<table>') < page.index('<summary>config</summary>')

  names = {p.stem for p in figures}
  for name in MEMBER_FIGURES + STUDY_FIGURES[study]:
    assert name in names, f'study {study} lacks {name}.png'
  for path in figures:
    _check_png(path)

  for index, experiment in enumerate(reproduce.STUDIES[study]):
    directory = tmp_path / study / experiment.name
    results = json.loads((directory / 'results.json').read_text())
    assert len(results) == len(experiment.get_config().sweep)
    evaluated = STUDY_METRICS[study] if index == 0 else ()
    for member in results:
      variational = member['settings'].get('model.variational', True)
      expected = [k for k in evaluated
                  if variational or k not in PRIOR_METRICS]
      for key in ('test_recon', 'test_kl', 'test_loss', *expected):
        assert math.isfinite(member[key]), (study, member['member'], key)
      assert (directory / f'member_{member["member"]:03d}' /
              'samples.png').exists() == variational
      if not variational:
        assert 'inception_score' not in member
    table = (directory / 'results.md').read_text()
    assert table.count('\n') >= len(results) + 1
    # The notes give each experiment's training time: its groups' seconds,
    # each group once.
    groups = {r['group']: r['group_train_seconds'] for r in results}
    assert f'{experiment.name} {loop.format_duration(sum(groups.values()))}' in (
        tmp_path / study / workdir_lib.NOTES_FILE).read_text()
  if study in ('D',):
    # The report's numbers, measured at its full budget, sit beside ours
    # only at that budget.
    assert '161.04' not in page and 'not shown' in page
    full = reproduce.experiment_config(reproduce.STUDIES[study][0], False,
                                       None, None)
    assert any(r['model.latent_size'] == 1 and r['test_loss'] == 161.04
               for r in full.reported)
    # The report's figure kinds, kept as small PNGs; never over a file
    # already there unless told to.
    kept_dir = tmp_path / 'kept'
    kept = reproduce.keep_figures(study, tmp_path / study, kept_dir)
    assert sorted(p.name for p in kept) == sorted(
        f'study_d_{f.name}.png' for f in reproduce.FIGURES['study_d'])
    strip = kept_dir / 'study_d_latent1_strip.png'
    source = tmp_path / study / 'study_d' / 'member_000' / 'latent_traversal.png'
    with Image.open(strip) as small, Image.open(source) as drawn:
      assert small.mode == 'P' and small.size == drawn.size
    strip.write_bytes(b'mine')
    with pytest.raises(workdir_lib.WorkdirError, match='--overwrite'):
      reproduce.keep_figures(study, tmp_path / study, kept_dir)
    assert strip.read_bytes() == b'mine'
    reproduce.keep_figures(study, tmp_path / study, kept_dir, overwrite=True)
    assert strip.read_bytes()[:8] == PNG_MAGIC


def test_figures_only_trains_the_figures_members_and_keeps_their_figures(
    tmp_path, mnist_dir):
  # Study B's figures come from 4 of its members (latent 1, 2 and 3, and
  # the CNN); nothing else trains.
  experiment = reproduce.STUDIES['B'][0]
  needed = reproduce.figure_members(experiment)
  whole = experiment.get_config().sweep
  assert len(needed) == 4 < len(whole)
  assert [whole[i].get('model.name') for i in needed].count('cnn_bn_vae') == 1
  reproduce.reproduce('B', tmp_path / 'B', quick=reproduce.SMOKE,
                      data_dir=str(mnist_dir.parent), figures_only=True)
  results = json.loads(
      (tmp_path / 'B' / 'study_b' / 'results.json').read_text())
  assert [r['settings']['model.latent_size'] for r in results] == [
      whole[i]['model.latent_size'] for i in needed]
  assert not any('iwae_nll' in r for r in results)  # no metrics
  assert 'Figures only' in (tmp_path / 'B' / workdir_lib.NOTES_FILE
                            ).read_text()
  # The kept figures are found among this workdir's members.
  kept = reproduce.keep_figures('B', tmp_path / 'B', tmp_path / 'kept')
  assert sorted(p.name for p in kept) == sorted(
      f'study_b_{f.name}.png' for f in reproduce.FIGURES['study_b'])
  strip = tmp_path / 'B' / 'study_b' / 'member_000' / 'latent_traversal.png'
  with Image.open(tmp_path / 'kept' / 'study_b_latent1_strip.png') as small, \
      Image.open(strip) as drawn:
    assert small.size == drawn.size


def test_every_kept_figure_picks_one_member_of_its_sweep():
  for study, experiments in reproduce.STUDIES.items():
    for experiment in experiments:
      for figure in reproduce.FIGURES.get(experiment.name, ()):
        index = reproduce.figure_member(experiment, figure)
        assert (index is None) == (figure.member is None), figure
  broad = reproduce.Figure('samples.png', 'x', 'y',
                           (('model.latent_size', 64),))
  with pytest.raises(ValueError, match=r'picks members \[2, 3, 4, 5, 6\]'):
    reproduce.figure_member(reproduce.STUDIES['D'][0], broad)


@pytest.mark.parametrize('study', sorted(reproduce.STUDIES))
def test_quick_mode_trains_each_experiment_on_its_own_budget(study):
  for experiment in reproduce.STUDIES[study]:
    full = reproduce.experiment_config(experiment, False, None, None)
    quick = reproduce.experiment_config(experiment, True, None, None)
    budget = experiment.quick
    assert (quick.num_epochs, quick.data.train_subset,
            quick.data.test_subset) == (budget.epochs, budget.train_images,
                                        budget.test_images)
    # The full budget is the study's own (all images, or as its report).
    own = experiment.get_config().data
    assert (full.data.train_subset, full.data.test_subset) == (
        own.train_subset, own.test_subset)
    assert budget.epochs <= full.num_epochs
    # Everything but the budget is the study's own setting.
    for key in ('learning_rate', 'batch_size', 'optimizer', 'sweep'):
      assert quick[key] == full[key], key
