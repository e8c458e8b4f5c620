"""What vae_jax may delete, which checkpoint it evaluates, and the classifier
workdir: each case a hostile user found, as a test."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from test_classifier import bars
from test_faults import REPO, _snapshot
from test_train import tiny_config, tiny_dataset
from vae_jax import checkpoint
from vae_jax import classifier
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax.models.classifier import MNISTClassifier
from vae_jax import plots
from vae_jax import sweep
from vae_jax import validation
from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry

SETTINGS = registry.Settings(iwae_samples=20, iwae_chunk=10, iwae_batch=20,
                             num_samples=100, batch_size=50)


def _another_tools_experiment(directory: Path, config: dict) -> None:
  (directory / 'checkpoints').mkdir(parents=True)
  (directory / 'config.json').write_text(json.dumps(config))
  (directory / 'checkpoints' / 'epoch_90.pt').write_text('w')
  (directory / 'NOTES.md').write_text('n')
  (directory / 'metrics.jsonl').write_text('{}\n')
  (directory / 'results.json').write_text('{}')


@pytest.mark.parametrize('config', [
    {'data': 'imagenet', 'model': 'resnet50', 'optimizer': 'sgd', 'seed': 1,
     'num_epochs': 90},
    # Even shaped like a vae_jax config: its files are not vae_jax's.
    {'data': {'name': 'mnist'}, 'model': {'name': 'mlp_vae'},
     'optimizer': 'adam', 'seed': 0, 'num_epochs': 3},
], ids=['other_config', 'vae_jax_like_config'])
def test_overwrite_never_deletes_another_tools_experiment(tmp_path, config):
  """Case 1: a config.json with vae_jax's keys and files with its names."""
  other = tmp_path / 'U'
  _another_tools_experiment(other, config)
  before = _snapshot(other)
  for overwrite in (False, True):
    with pytest.raises(workdir_lib.WorkdirError) as error:
      driver.train_and_evaluate(tiny_config(), str(other), overwrite=overwrite,
                               dataset=tiny_dataset())
    message = str(error.value)
    assert 'not a vae_jax workdir' in message
    assert 'NOTES.md' in message
    assert '--overwrite' not in message
  assert _snapshot(other) == before
  assert not (other / workdir_lib.MARKER_FILE).exists()


def test_a_run_from_before_the_marker_is_adopted_only_when_all_is_its_own(
    tmp_path):
  run = tmp_path / 'old'
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(run),
                           dataset=tiny_dataset())
  (run / workdir_lib.MARKER_FILE).unlink()
  (run / workdir_lib.LOCK_FILE).unlink()
  assert workdir_lib.marked_kind(run) == 'run'
  (run / 'checkpoints' / 'notes.txt').write_text('mine')
  assert workdir_lib.marked_kind(run) is None
  with pytest.raises(workdir_lib.WorkdirError, match='checkpoints/notes.txt'):
    driver.train_and_evaluate(tiny_config(num_epochs=2), str(run),
                             dataset=tiny_dataset())
  (run / 'checkpoints' / 'notes.txt').unlink()
  driver.train_and_evaluate(tiny_config(num_epochs=2), str(run),
                           dataset=tiny_dataset())
  assert json.loads((run / 'results.json').read_text())['epochs'] == 2


def test_overwrite_never_deletes_a_nested_live_run_or_a_users_files(tmp_path):
  """Case 2: O/sub (in use by another process), O/NOTES.md, O/classifier/."""
  outer = tmp_path / 'O'
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(outer),
                           dataset=tiny_dataset())
  nested = outer / 'sub'
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(nested),
                           dataset=tiny_dataset())
  (outer / 'NOTES.md').write_text('my notes')
  (outer / 'classifier').mkdir()
  (outer / 'classifier' / 'weights.bin').write_bytes(b'\0' * 8)
  before = _snapshot(outer)
  with workdir_lib.WorkdirLock(nested):  # the nested run's process
    with pytest.raises(workdir_lib.WorkdirError) as error:
      driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=1),
                               str(outer), overwrite=True,
                               dataset=tiny_dataset())
  message = str(error.value)
  for name in ('NOTES.md', 'classifier', 'sub'):
    assert name in message
  after = _snapshot(outer)
  after.pop(f'sub/{workdir_lib.LOCK_FILE}', None)  # the holder's pid line
  before.pop(f'sub/{workdir_lib.LOCK_FILE}', None)
  assert after == before


def test_overwrite_of_a_sweep_keeps_a_users_file_in_a_member_directory(
    tmp_path):
  config = tiny_config()
  config.sweep = grid_lib.product(beta=[1.0, 2.0])
  sweep.run_sweep(config, tmp_path, dataset=tiny_dataset())
  notes = tmp_path / 'member_001' / 'my_notes.txt'
  notes.write_text('keep me')
  config.sweep = grid_lib.product(beta=[0.5])
  with pytest.raises(workdir_lib.WorkdirError,
                     match='member_001/my_notes.txt'):
    sweep.run_sweep(config, tmp_path, overwrite=True, dataset=tiny_dataset())
  assert notes.read_text() == 'keep me'
  assert (tmp_path / 'group_0' / 'checkpoints').is_dir()


def test_a_nested_workdir_in_use_is_never_deleted(tmp_path):
  """A study's sweep that another process holds is left whole."""
  study = tmp_path / 'study'
  lock, _ = workdir_lib.claim(study, 'study')
  lock.release()
  config = tiny_config(num_epochs=1)
  config.sweep = grid_lib.product(beta=[1.0])
  sweep.run_sweep(config, study / 'experiment', dataset=tiny_dataset())
  before = _snapshot(study / 'experiment')
  with workdir_lib.WorkdirLock(study), \
      workdir_lib.WorkdirLock(study / 'experiment'):
    with pytest.raises(workdir_lib.WorkdirError, match='in use'):
      workdir_lib.delete_owned(study, 'study')
  assert _snapshot(study / 'experiment').keys() == before.keys()
  with workdir_lib.WorkdirLock(study):
    workdir_lib.delete_owned(study, 'study')
  assert sorted(p.name for p in study.iterdir()) == [
      workdir_lib.MARKER_FILE, workdir_lib.LOCK_FILE]


def test_evaluation_uses_the_checkpoint_its_results_were_written_from(
    tmp_path):
  """Case 4: a run extended to 4 epochs and killed after epoch 3's
  checkpoint still has results.json of epoch 2."""
  dataset = tiny_dataset()
  extended, straight = tmp_path / 'extended', tmp_path / 'straight'
  driver.train_and_evaluate(tiny_config(), str(extended), dataset=dataset)
  shutil.copytree(extended, straight)
  results_of_epoch_2 = (extended / 'results.json').read_text()
  driver.train_and_evaluate(tiny_config(num_epochs=3), str(extended),
                           dataset=dataset)
  (extended / 'results.json').write_text(results_of_epoch_2)  # the kill
  got = evaluate.evaluate_workdir(extended, ['iwae'], settings=SETTINGS,
                                    dataset=dataset)
  expected = evaluate.evaluate_workdir(straight, ['iwae'],
                                         settings=SETTINGS, dataset=dataset)
  assert got['epochs'] == 2
  assert got['iwae_nll'] == expected['iwae_nll']
  assert got['evaluated']['iwae']['checkpoint_epoch'] == 2
  # With epoch 2's checkpoint gone, it refuses rather than mix epochs.
  shutil.rmtree(extended / 'checkpoints' / '2')
  shutil.rmtree(extended / 'checkpoints' / 'checksums')
  (extended / 'checkpoints' / 'checksums').mkdir()
  with pytest.raises(FileNotFoundError, match='written at epoch 2'):
    evaluate.evaluate_workdir(extended, ['iwae'], settings=SETTINGS,
                                dataset=dataset, recompute=True)


def test_a_classifier_killed_mid_save_starts_over(tmp_path):
  """Case 5: weights/ written, classifier.json not."""
  directory = tmp_path / 'classifier'
  directory.mkdir()
  workdir_lib.mark(directory, 'classifier')
  params = MNISTClassifier().init(jax.random.PRNGKey(0),
                                  jnp.zeros((1, 28, 28)))['params']
  import orbax.checkpoint as ocp
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory / classifier.WEIGHTS_DIR, params)
  info = classifier.train_into(directory, bars(), epochs=2, batch_size=32)
  assert info['test_accuracy'] > 0.9
  _, loaded, saved = classifier.load_classifier(directory)
  assert saved['sha256'] == classifier.weights_sha256(loaded) == info['sha256']
  # The same settings again keep it; others need overwrite.
  assert classifier.train_into(directory, bars(), epochs=2,
                               batch_size=32)['sha256'] == info['sha256']
  with pytest.raises(workdir_lib.WorkdirError, match='other settings'):
    classifier.train_into(directory, bars(), epochs=3, batch_size=32)
  again = classifier.train_into(directory, bars(), epochs=3, batch_size=32,
                                overwrite=True)
  assert again['epochs'] == 3


@pytest.mark.parametrize('kwargs, flag', [
    ({'epochs': -2}, '--epochs=-2'), ({'batch_size': 0}, '--batch_size=0'),
    ({'batch_size': 10_000}, '--batch_size=10000'),
    ({'learning_rate': 0.0}, '--learning_rate=0.0'),
    ({'seed': -1}, '--seed=-1'),
])
def test_classifier_settings_are_refused_before_anything_is_written(
    tmp_path, kwargs, flag):
  """Case 6: an untrainable classifier is refused, and nothing is written."""
  with pytest.raises(classifier.ClassifierError, match=flag):
    classifier.train_into(tmp_path / 'c', bars(), **kwargs)
  assert not (tmp_path / 'c').exists()


def test_a_classifier_is_not_trained_into_a_users_directory(tmp_path):
  (tmp_path / 'thesis.tex').write_text('draft')
  with pytest.raises(workdir_lib.WorkdirError, match='thesis.tex'):
    classifier.train_into(tmp_path, bars(), epochs=1)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['thesis.tex']


def test_train_classifier_flags_are_one_line_usage_errors(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'launch.train_classifier',
       f'--workdir={tmp_path / "c"}', '--epochs=-2', '--batch_size=0'],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert '--epochs' in result.stderr and 'Traceback' not in result.stderr
  assert not (tmp_path / 'c').exists()


def test_evaluation_refuses_a_classifier_below_the_stated_accuracy(tmp_path):
  dataset = tiny_dataset(side=28)
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path / 'run'),
                           dataset=dataset)
  params = MNISTClassifier().init(jax.random.PRNGKey(0),
                                  jnp.zeros((1, 28, 28)))['params']
  classifier.save_classifier(tmp_path / 'weak', params,
                             {'test_accuracy': 0.0974})
  with pytest.raises(classifier.ClassifierError, match='9.74%'):
    evaluate.evaluate_workdir(tmp_path / 'run', ['inception_score'],
                                tmp_path / 'weak', dataset=dataset)
  results = json.loads((tmp_path / 'run' / 'results.json').read_text())
  assert 'inception_score' not in results


@pytest.mark.parametrize('override', [
    {'batch_size': 4096},  # more than the 96 training images
    {'seed': -1}, {'seed': 2**32},
    {'model.encoder_widths': (0,)}, {'model.decoder_widths': (16, 0)},
])
def test_values_are_checked_against_the_data_before_the_workdir_is_claimed(
    tmp_path, override):
  """Case 7: nothing written, and the corrected rerun needs no --overwrite."""
  workdir = tmp_path / 'run'
  with pytest.raises(validation.ConfigError) as error:
    driver.train_and_evaluate(tiny_config(**override), str(workdir),
                             dataset=tiny_dataset())
  key = next(iter(override))
  assert f'config.{key}' in str(error.value)
  assert not workdir.exists()
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(workdir),
                           dataset=tiny_dataset())


def test_a_sweep_member_too_large_for_the_data_is_refused_before_writing(
    tmp_path):
  config = tiny_config()
  config.sweep = grid_lib.product(batch_size=[16, 500])
  with pytest.raises(validation.ConfigError, match='sweep member 1'):
    sweep.run_sweep(config, tmp_path / 's', dataset=tiny_dataset())
  assert not (tmp_path / 's').exists()


def test_resuming_with_fewer_epochs_than_trained_is_refused(tmp_path):
  workdir = tmp_path / 'run'
  driver.train_and_evaluate(tiny_config(num_epochs=3), str(workdir),
                           dataset=tiny_dataset())
  saved = (workdir / 'config.json').read_text()
  with pytest.raises(validation.ConfigError, match='fewer than the 3 epochs'):
    driver.train_and_evaluate(tiny_config(num_epochs=2), str(workdir),
                             dataset=tiny_dataset())
  assert (workdir / 'config.json').read_text() == saved
  assert checkpoint.trained_epochs(workdir) == 3


def test_a_figure_interrupted_while_drawing_leaves_no_partial_png(
    tmp_path, monkeypatch):
  """Case 8: figures are written whole."""
  import matplotlib.figure
  path = tmp_path / 'loss_curves.png'
  path.write_bytes(b'old figure')

  def dies_half_way(self, fname, **kwargs):
    Path(fname).write_bytes(b'\x89PNG half')
    raise KeyboardInterrupt

  monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', dies_half_way)
  with pytest.raises(KeyboardInterrupt):
    plots._save(matplotlib.figure.Figure(), path)
  assert path.read_bytes() == b'old figure'
  assert [p.name for p in tmp_path.iterdir()] == ['loss_curves.png']


def test_evaluate_flags_out_of_range_are_one_line_usage_errors(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'launch.evaluate', f'--workdir={tmp_path}',
       '--num_images=-450'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert result.returncode == 1
  assert '--num_images' in result.stderr and 'Traceback' not in result.stderr
  with pytest.raises(ValueError, match='--num_images=-450'):
    registry.Settings(num_images=-450)
