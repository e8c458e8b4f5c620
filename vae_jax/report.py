"""One HTML page for a run, a sweep, or a study of several.

The page leads with the final metrics (with a published study's numbers
beside ours where the config gives them), then any evaluation numbers and
the figures, with the config folded away at the end. A run's and a sweep's
own figures are embedded as base64 PNG, so the page mailed on its own
still shows them; each sweep member's figures are linked from its member
directory beside the page, which keeps a study's page small.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from vae_jax import results_table
from vae_jax import workdir as workdir_lib

REPORT_FILE = workdir_lib.REPORT_FILE

# Figures in reading order; any other PNG follows them alphabetically.
FIGURE_ORDER = (
    'dataset', 'loss_curves', 'metrics_vs_beta', 'metrics_vs_latent_size',
    'reconstructions', 'reconstructions_by_epoch', 'samples', 'latent_grid',
    'latent_traversal', 'latent_scatter', 'latent_by_class', 'interpolations', 'confusion_matrix',
    'class_histogram',
)

# Training's numbers judged against a published value (lower is better);
# the reconstruction / KL split of a total is a trade-off, not a score. An
# evaluation number is judged as its metric's Output.better says.
TRAINING_JUDGED = {'test_loss': 'lower'}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; } td.text { text-align: left; }
td.worse { background: #fde2e2; } td.better { background: #e2f5e2; }
td.base { color: #888; } td.report { color: #555; font-style: italic; }
.scroll { overflow-x: auto; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
details { margin: 0.5em 0; } pre { background: #f6f6f6; padding: 0.8em;
                                   overflow-x: auto; font-size: 0.8em; }
"""


def _is_run_dir(directory: Path) -> bool:
  return (directory / workdir_lib.RESULTS_FILE).exists()


def experiment_dirs(workdir: Path) -> list[Path]:
  """The run or sweep directories a report covers: workdir itself, or (for a
  study) each subdirectory holding a results.json."""
  if _is_run_dir(workdir):
    return [workdir]
  found = sorted(d for d in workdir.iterdir() if d.is_dir() and _is_run_dir(d))
  if not found:
    raise FileNotFoundError(
        f'{workdir} holds no results.json, and no subdirectory does: it is '
        'not a finished run, sweep or study. Train first (launch.train, '
        'launch.sweep or launch.reproduce).')
  return found


def _figure_key(path: Path) -> tuple[int, str]:
  stem = path.stem
  return (FIGURE_ORDER.index(stem) if stem in FIGURE_ORDER
          else len(FIGURE_ORDER), stem)


def _figures_html(directory: Path, linked_from: Path | None = None) -> str:
  """The PNGs in `directory`, embedded, or with linked_from (the page's
  directory) as links relative to it."""
  parts = []
  for path in sorted(directory.glob('*.png'), key=_figure_key):
    caption = path.stem.replace('_', ' ')
    if linked_from is None:
      data = base64.b64encode(path.read_bytes()).decode('ascii')
      source = f'data:image/png;base64,{data}'
    else:
      source = html.escape(path.relative_to(linked_from).as_posix())
    parts.append(f'<figure><img src="{source}" loading="lazy" '
                 f'alt="{caption}"><figcaption>{caption}</figcaption></figure>')
  return '\n'.join(parts)


def _format(value: Any) -> str:
  if value is None:  # a pending sweep member's metrics
    return '-'
  if isinstance(value, float):
    return f'{value:.4g}' if abs(value) < 1e-2 and value else f'{value:.2f}'
  if isinstance(value, (list, tuple)):
    return html.escape(str(tuple(value)))
  return html.escape(str(value))


def _scalar_items(result: dict) -> dict[str, Any]:
  return {k: v for k, v in result.items()
          if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def _run_table(result: dict) -> str:
  rows = ''.join(f'<tr><td class="text">{html.escape(k)}</td><td>{_format(v)}'
                 '</td></tr>' for k, v in _scalar_items(result).items())
  return f'<table><tr><th>metric</th><th>value</th></tr>{rows}</table>'


# Shown in the members table beside the settings (with the published value
# next to each where the config gives one); every other number goes in the
# details table below it, so the table fits a laptop screen.
HEADLINE_METRICS = ('test_recon', 'test_kl', 'test_loss')


def _metric_cell(r: dict, key: str, reported: dict,
                 judged: dict[str, str]) -> str:
  """Our number; shaded when `judged` says which way is better for it and
  a published number stands beside it."""
  cls = ''
  ours, theirs = r.get(key), reported.get(key)
  if (key in judged and isinstance(ours, (int, float))
      and isinstance(theirs, (int, float))):
    good = ours <= theirs if judged[key] == 'lower' else ours >= theirs
    cls = ' class="better"' if good else ' class="worse"'
  return f'<td{cls}>{_format(r.get(key, ""))}</td>'


def _table(header: list[str], rows: list[list[str]]) -> str:
  lines = ['<table><tr>' + ''.join(f'<th>{html.escape(h)}</th>'
                                   for h in header) + '</tr>']
  lines += ['<tr>' + ''.join(cells) + '</tr>' for cells in rows]
  lines.append('</table>')
  return '\n'.join(lines)


def _judged(outputs: dict[str, results_table.Output]) -> dict[str, str]:
  """Which way is better for each number that may be judged."""
  return {**TRAINING_JUDGED,
          **{k: o.better for k, o in outputs.items() if o.better}}


def _evaluation_legend(directory: Path) -> str:
  """What each number launch.evaluate added is (from evaluation.json)."""
  evaluated = results_table.recorded_evaluation(directory)
  if not evaluated:
    return ''
  rows = [[f'<td class="text">{html.escape(name)}</td>',
           f'<td class="text">{html.escape(key)}</td>',
           f'<td class="text">{html.escape(output.description)}</td>']
          for name, (description, yields) in evaluated.items()
          for key, output in yields.items()]
  metrics = '; '.join(f'{html.escape(name)}: {html.escape(description)}'
                      for name, (description, _) in evaluated.items())
  return ('<details><summary>what the evaluated numbers are</summary>'
          f'<p>{metrics}</p>{_table(["metric", "number", "what it is"], rows)}'
          '</details>')


def _sweep_table(results: list[dict], config: dict,
                 judged: dict[str, str]) -> str:
  """Members as rows: their settings, the headline metrics and any metric a
  study reported, each published number right beside ours (shaded by
  whether ours is at least as good, for the `judged` numbers); the other
  numbers in a details table. A setting a member does not override shows
  the base config's value, in grey."""
  settings = sorted({k for r in results for k in r.get('settings', {})})
  defaults = results_table.setting_defaults(config, settings)
  skip = {'member', 'label', 'group', 'settings', 'reported'}
  metrics = [k for k in dict.fromkeys(k for r in results for k in
                                      _scalar_items(r)) if k not in skip]
  reported_keys = [k for k in dict.fromkeys(
      k for r in results for k in (r.get('reported') or {}))
                   if k not in settings and any(isinstance(
                       (r.get('reported') or {}).get(k), (int, float))
                       for r in results)]
  headline = [k for k in HEADLINE_METRICS if k in metrics]
  if any(r.get('status', 'finished') != 'finished' for r in results):
    headline.insert(0, 'status')
  headline += [k for k in reported_keys if k not in headline]
  details = [k for k in metrics if k not in headline]

  header = ['member'] + [s.split('.')[-1] for s in settings]
  for k in headline:
    header += [k] + ([f'report: {k}'] if k in reported_keys else [])
  rows = []
  for r in results:
    reported = r.get('reported') or {}
    cells = [f'<td>{r.get("member", "")}</td>']
    for s in settings:
      own = s in r['settings']
      value = results_table.format_setting(
          r['settings'][s] if own else defaults.get(s, ''))
      cells.append(f'<td class="text{"" if own else " base"}">'
                   f'{html.escape(value)}</td>')
    for k in headline:
      cells.append(_metric_cell(r, k, reported, judged))
      if k in reported_keys:
        cells.append(f'<td class="report">{_format(reported.get(k, ""))}</td>')
    rows.append(cells)
  parts = [_table(header, rows)]
  if details:
    detail_rows = [[f'<td>{r.get("member", "")}</td>'] +
                   [_metric_cell(r, k, r.get('reported') or {}, judged)
                    for k in details] for r in results]
    parts.append('<details><summary>every other number per member '
                 f'({", ".join(details)})</summary>'
                 f'{_table(["member"] + details, detail_rows)}</details>')
  return '\n'.join(parts)


def _experiment_html(directory: Path, page_dir: Path,
                     heading: bool) -> str:
  """One run's or sweep's section; heading: whether it is one of several
  (a study's), under a heading of its name."""
  results = json.loads((directory / workdir_lib.RESULTS_FILE).read_text())
  config_path = directory / workdir_lib.CONFIG_FILE
  config = config_path.read_text() if config_path.exists() else '{}'
  parts = [f'<h2>{html.escape(directory.name)}</h2>'] if heading else []
  judged = _judged(results_table.recorded_outputs(directory))
  if isinstance(results, list):
    parts.append('<p>Final test metrics per member, per image (KL in nats; '
                 'the reconstruction in the loss\'s own unit). Where a '
                 'study published a number it stands beside ours; '
                 f'{", ".join(judged)} are green where ours is at least as '
                 'good, red where worse.</p>')
    parts.append(_sweep_table(results, json.loads(config), judged))
    agreement = results_table.describe_rank_agreement(results)
    if agreement:
      parts.append(f'<p>{html.escape(agreement)}</p>')
    parts.append(_evaluation_legend(directory))
    parts.append(_figures_html(directory))
    for r in results:
      member_dir = workdir_lib.member_dir(directory, r['member'])
      if member_dir.is_dir():
        parts.append(f'<details><summary>member {r["member"]}: '
                     f'{html.escape(r.get("label", ""))}</summary>'
                     f'{_figures_html(member_dir, linked_from=page_dir)}'
                     '</details>')
  else:
    parts.append(_run_table(results))
    parts.append(_evaluation_legend(directory))
    parts.append(_figures_html(directory))
  parts.append(f'<details><summary>config</summary><pre>{html.escape(config)}'
               '</pre></details>')
  return '\n'.join(parts)


def write_report(workdir: str | Path, title: str | None = None) -> Path:
  """Writes workdir/report.html for the run, sweep or study in `workdir`.

  Raises:
    workdir_lib.WorkdirError: workdir is not a vae_jax run, sweep or study
      (nothing is written there).
  """
  workdir = Path(workdir)
  if workdir_lib.marked_kind(workdir) not in ('run', 'sweep', 'study'):
    raise workdir_lib.WorkdirError(
        f'{workdir} is not a vae_jax run, sweep or study; pass the --workdir '
        'of launch.train, launch.sweep or launch.reproduce.')
  experiments = experiment_dirs(workdir)
  title = title or f'vae_jax report: {workdir.name}'
  body = [f'<h1>{html.escape(title)}</h1>']
  notes = workdir / workdir_lib.NOTES_FILE
  if notes.exists():
    body.append(f'<pre>{html.escape(notes.read_text())}</pre>')
  body += [_experiment_html(d, workdir, heading=experiments != [workdir])
           for d in experiments]
  page = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          f'<title>{html.escape(title)}</title><style>{_STYLE}</style></head>'
          f'<body>{"".join(body)}</body></html>')
  return workdir_lib.atomic_write_text(workdir / REPORT_FILE, page)
