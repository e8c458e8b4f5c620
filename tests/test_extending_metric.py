"""A metric defined outside vae_jax (docs/extending.md's metric example):
registered in this file, it is computed by the evaluation driver for a run
and a sweep, gets its column in the sweep's tables and its line in the HTML
report, and keeps both where the metric is not registered."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_train import tiny_config, tiny_dataset
from vae_jax import driver
from vae_jax import grid
from vae_jax import report
from vae_jax import restore
from vae_jax import sweep
from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import evaluate
from vae_jax.evaluation import registry

DESCRIPTION = 'Mean Euclidean norm of the posterior means of the test images.'


@registry.register(
    'posterior_mean_norm', DESCRIPTION, needs=('test_set',),
    yields={'posterior_mean_norm': registry.Output(
        'mean |E[z | x]| over the test images', '.3f')})
def posterior_mean_norm(evaluation: registry.MemberEvaluation) -> dict:
  member, test = evaluation.member, evaluation.test
  posterior = member.model.apply(
      member.variables,  # params, and a BatchNorm model's running averages
      jnp.asarray(test.test_images, jnp.float32) / 255,
      jnp.asarray(test.test_labels), method=member.model.encode)
  norms = np.linalg.norm(np.asarray(posterior.mean, np.float64), axis=-1)
  return {'posterior_mean_norm': float(norms.mean())}


def _numpy_norm(params, images: np.ndarray) -> float:
  """The same number from the MLP encoder's weights, in NumPy: one ReLU
  layer (tiny_config's encoder_widths=(16,)), then the mean head."""
  params = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
  x = images.reshape(len(images), -1).astype(np.float64) / 255
  hidden = np.maximum(x @ params['enc_0']['kernel'] + params['enc_0']['bias'],
                      0.0)
  mean = hidden @ params['enc_mean']['kernel'] + params['enc_mean']['bias']
  return float(np.linalg.norm(mean, axis=-1).mean())


def _trained_params(workdir, image_shape) -> list:
  config = restore.load_run_config(workdir)
  return [m.params for m in restore.restore_members(workdir, config,
                                                     image_shape)]


def test_a_registered_metric_is_evaluated_tabled_and_reported(tmp_path,
                                                            monkeypatch):
  dataset = tiny_dataset()

  # A run: the number joins results.json, with what it was computed from.
  run = tmp_path / 'run'
  driver.train_and_evaluate(tiny_config(), str(run), dataset=dataset)
  result = evaluate.evaluate_workdir(run, ['posterior_mean_norm'],
                                   dataset=dataset)
  [params] = _trained_params(run, dataset.image_shape)
  expected = _numpy_norm(params, dataset.test_images)
  assert expected > 0
  assert result['posterior_mean_norm'] == pytest.approx(expected, rel=1e-4)
  saved = json.loads((run / workdir_lib.RESULTS_FILE).read_text())
  assert saved['posterior_mean_norm'] == result['posterior_mean_norm']
  assert saved['evaluated']['posterior_mean_norm'] == {
      'epochs': 2, 'checkpoint_epoch': 2}

  # A sweep: one number per member, and a column in both tables.
  config = tiny_config()
  config.sweep = grid.product(beta=[1.0, 0.25])
  swept = tmp_path / 'sweep'
  sweep.run_sweep(config, swept, dataset=dataset)
  results = evaluate.evaluate_workdir(swept, ['posterior_mean_norm'],
                                    dataset=dataset)
  values = [r['posterior_mean_norm'] for r in results]
  for value, member_params in zip(
      values, _trained_params(swept, dataset.image_shape)):
    assert value == pytest.approx(_numpy_norm(member_params,
                                              dataset.test_images), rel=1e-4)
  assert values[0] != values[1]
  with open(swept / workdir_lib.RESULTS_CSV) as f:
    rows = list(csv.DictReader(f))
  assert [float(r['posterior_mean_norm']) for r in rows] == pytest.approx(
      values)

  def table_and_page():
    markdown = (swept / workdir_lib.RESULTS_MD).read_text().splitlines()
    header = [c.strip() for c in markdown[0].strip('|').split('|')]
    column = header.index('posterior_mean_norm')
    cells = [[c.strip() for c in line.strip('|').split('|')][column]
             for line in markdown[2:4]]
    return cells, report.write_report(swept).read_text()

  cells, page = table_and_page()
  assert cells == [f'{v:.3f}' for v in values]  # its declared format
  assert DESCRIPTION in page and 'mean |E[z | x]| over the test images' in page
  assert all(f'{v:.2f}' in page for v in values)

  # Where it is not registered (a later launch.sweep or launch.report), the
  # workdir's evaluation.json still names it: resuming the finished sweep
  # rewrites the tables with its column, and the report still says what it is.
  monkeypatch.delitem(registry.EVALUATORS, 'posterior_mean_norm')
  sweep.run_sweep(config, swept, dataset=dataset)
  cells_again, page = table_and_page()
  assert cells_again == cells and DESCRIPTION in page
  with pytest.raises(ValueError, match='Unknown metrics'):
    evaluate.evaluate_workdir(swept, ['posterior_mean_norm'], dataset=dataset)


def test_a_metric_returning_what_it_did_not_declare_is_refused(tmp_path,
                                                              monkeypatch):
  monkeypatch.setattr(registry, 'EVALUATORS', registry.EVALUATORS.copy())

  @registry.register('undeclared', 'Returns a key it does not declare.',
                     yields={'declared': registry.Output('a number')})
  def undeclared(evaluation):
    del evaluation
    return {'declared': 1.0, 'surprise': 2.0}

  dataset = tiny_dataset()
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path),
                           dataset=dataset)
  with pytest.raises(ValueError, match=r"'undeclared' returned \['surprise'\]"):
    evaluate.evaluate_workdir(tmp_path, ['undeclared'], dataset=dataset)
  assert 'declared' not in json.loads(
      (tmp_path / workdir_lib.RESULTS_FILE).read_text())


@pytest.mark.parametrize('kwargs, message', [
    (dict(needs=('gpu',)), r"needs \['gpu'\]; choose from"),
    (dict(settings=('iwae_k',)), r"reads settings \['iwae_k'\]"),
    (dict(yields={'test_loss': registry.Output('ours')}), 'which training '
     'writes'),
    (dict(yields={}), 'yields nothing'),
])
def test_registration_errors_name_what_is_wrong(kwargs, message):
  kwargs = {'yields': {'x': registry.Output('x')}, **kwargs}
  with pytest.raises(ValueError, match=message):
    registry.register('broken', 'A broken metric.', **kwargs)
  assert 'broken' not in registry.EVALUATORS


def test_a_name_is_registered_once():
  with pytest.raises(ValueError, match="'iwae' is already registered "
                     r'\(by vae_jax.evaluation.metrics.iwae.evaluate\)'):
    registry.register('iwae', 'Another iwae.', yields={
        'iwae_nll': registry.Output('ours')})(lambda evaluation: {})


def test_an_output_format_must_show_a_number():
  with pytest.raises(ValueError, match="format='s'"):
    registry.Output('a number', 's')
  with pytest.raises(ValueError, match='better'):
    registry.Output('a number', better='more')
