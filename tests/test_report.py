"""Result tables: settings cells (base values filled in, formatted) in the
sweep's Markdown / CSV and in the HTML report."""

import csv
import json

from vae_jax import grid as grid_lib
from vae_jax import report
from vae_jax import results_table
from vae_jax import workdir

BASE = {'learning_rate': 0.001, 'batch_size': 256,
        'model': {'encoder_widths': [512, 256], 'latent_size': 2}}


def _results():
  def member(index, settings, loss):
    return {'member': index, 'label': grid_lib.member_label(settings),
            'settings': settings, 'group': 0, 'epochs': 1,
            'test_recon': loss - 5.0, 'test_kl': 5.0, 'test_loss': loss,
            'img_per_s': 1234.5, 'num_params': 5678}
  return [member(0, {'learning_rate': 1e-4}, 160.0),
          member(1, {'batch_size': 64}, 140.0),
          member(2, {'model.encoder_widths': (400,)}, 130.0)]


def test_format_setting():
  assert results_table.format_setting(1e-4) == '0.0001'
  assert results_table.format_setting(0.5) == '0.5'
  assert results_table.format_setting((512, 256)) == '512-256'
  assert results_table.format_setting([400]) == '400'
  assert results_table.format_setting('adam') == 'adam'


def test_setting_defaults_walks_dotted_keys_and_skips_unknown_ones():
  assert results_table.setting_defaults(
      BASE, ['model.latent_size', 'batch_size', 'model.nope', 'x.y']) == {
          'model.latent_size': 2, 'batch_size': 256}


def test_tables_show_the_base_value_where_a_member_does_not_override(tmp_path):
  results_table.write_results_table(tmp_path, _results(), base_config=BASE)
  with open(tmp_path / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert [r['learning_rate'] for r in rows] == ['0.0001', '0.001', '0.001']
  assert [r['batch_size'] for r in rows] == ['256', '64', '256']
  assert [r['model.encoder_widths'] for r in rows] == ['512-256', '512-256',
                                                       '400']
  markdown = (tmp_path / 'results.md').read_text().splitlines()
  assert markdown[2].startswith('| 0 | 256 | 0.0001 | 512-256 | 1 | 155.00 |')
  assert markdown[2].endswith('| 5,678 | 1,234 |')  # parameters, images/s

  (tmp_path / 'config.json').write_text(json.dumps(BASE))
  workdir.mark(tmp_path, 'sweep')
  page = report.write_report(tmp_path, 'table').read_text()
  # Overridden settings in black, inherited ones marked as the base's.
  assert '<td class="text">0.0001</td>' in page
  assert '<td class="text base">0.001</td>' in page
  assert '<td class="text base">512-256</td>' in page


def test_published_numbers_sit_beside_ours_and_the_rest_in_details(tmp_path):
  results = _results()
  results[0]['reported'] = {'test_loss': 150.0, 'fid': 90.0}
  results[0]['fid'] = 80.0
  results[1]['reported'] = {'inception_score': 9.0}
  results[1]['inception_score'] = 8.5
  # Their metrics' records say which way is better.
  results_table.record_evaluation(tmp_path, {
      'fid': ('Inception FID.', {
          'fid': results_table.Output('Inception FID', better='lower')}),
      'inception_score': ('Inception Score.', {
          'inception_score': results_table.Output('IS', better='higher')})})
  (tmp_path / 'results.json').write_text(json.dumps(results))
  (tmp_path / 'config.json').write_text(json.dumps(BASE))
  workdir.mark(tmp_path, 'sweep')
  page = report.write_report(tmp_path, 'table').read_text()
  main_table, rest = page.split('<details><summary>every other number', 1)
  main_table = main_table[main_table.index('<table>'):]
  header = main_table[:main_table.index('</tr>')]
  columns = [c.split('</th>')[0] for c in header.split('<th>')[1:]]
  assert columns == ['member', 'batch_size', 'learning_rate', 'encoder_widths',
                     'test_recon', 'test_kl', 'test_loss',
                     'report: test_loss', 'fid', 'report: fid',
                     'inception_score', 'report: inception_score']
  # Member 0's total (160) is worse than its report's 150; its FID better.
  assert ('<td class="worse">160.00</td><td class="report">150.00</td>'
          in main_table)
  assert '<td class="better">80.00</td><td class="report">90.00</td>' in (
      main_table)
  # Member 1's Inception Score is lower than its report's: worse.
  assert '<td class="worse">8.50</td><td class="report">9.00</td>' in (
      main_table)
  # Throughput and size are one click away, not columns of the main table.
  assert 'img_per_s' not in main_table and 'num_params' not in main_table
  assert 'img_per_s' in rest and '1234.50' in rest


def test_a_run_page_has_one_title_and_leads_with_its_numbers(tmp_path):
  run = tmp_path / 'my_run'
  run.mkdir()
  (run / 'config.json').write_text(json.dumps(BASE))
  (run / 'results.json').write_text(json.dumps(
      {'test_loss': 101.25, 'test_kl': 20.5}))
  workdir.mark(run, 'run')
  page = report.write_report(run).read_text()
  assert page.count('my_run') == 2  # the <title> and the one <h1>
  assert '<h2>' not in page
  assert page.index('101.25') < page.index('<summary>config</summary>')
