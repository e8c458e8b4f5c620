"""The README's "A quick tour": its commands, read from README.md, run as
written on a fresh machine (no $VAE_JAX_DATA_DIR, an empty cache), scaled
down by flags appended after them (absl keeps a repeated flag's last value)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
README = REPO / 'README.md'
DATA = '../shared/data'  # the tour's --data_dir, replaced by the test data
LOG_LINE = re.compile(r'^[IWEF]\d{4} ')


def tour_section() -> str:
  text = README.read_text()
  start = text.index('## A quick tour')
  return text[start:text.index('\n## ', start + 1)]


def tour_lines() -> list[str]:
  """The lines of the tour's bash block, comments dropped."""
  block = re.search(r'```bash\n(.*?)```', tour_section(), re.S).group(1)
  return [line.split('  #')[0].strip() for line in block.splitlines()
          if line.strip() and not line.startswith('#')]


def tour_command(module: str) -> list[str]:
  """The arguments of the tour's `python -m module ...` line."""
  [line] = [l for l in tour_lines() if l.startswith(f'python -m {module} ')]
  return shlex.split(line)[3:]


def placed(args: list[str], tmp_path: Path, data_root: Path) -> list[str]:
  """The tour's arguments with its workdirs W, S, R under tmp_path and its
  data location at the test data."""
  out = []
  for arg in args:
    name, _, value = arg.partition('=')
    if name == '--workdir':
      arg = f'--workdir={tmp_path / value}'
    elif value == DATA:
      arg = f'{name}={data_root}'
    out.append(arg)
  return out


def fresh_machine(tmp_path: Path) -> dict:
  environment = {k: v for k, v in os.environ.items()
                 if k != 'VAE_JAX_DATA_DIR'}
  environment['VAE_JAX_CACHE_DIR'] = str(tmp_path / 'cache')
  return environment


def run(module: str, args: list[str], tmp_path: Path,
        timeout: int = 900) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout,
                        env=fresh_machine(tmp_path))


def last_error(stderr: str) -> str:
  [line] = [l for l in stderr.splitlines() if not LOG_LINE.match(l)]
  return line


def test_the_tour_activates_the_environment_and_names_the_data():
  lines = tour_lines()
  assert lines[0] == 'source .venv/bin/activate'
  assert '.venv/bin/pip install' in README.read_text()  # what made it
  modules = [shlex.split(l)[2] for l in lines if l.startswith('python -m ')]
  assert modules == ['launch.train', 'launch.sweep',
                     'launch.train_classifier', 'launch.evaluate',
                     'launch.reproduce', 'benchmarks.run']
  for module in modules:
    assert f'--data_dir={DATA}' in tour_command(module), module
  # Nothing it names lies outside the repository, but the data.
  section = tour_section()
  for path in re.findall(r'[\w./-]+\.(?:md|py|ipynb)\b', section):
    assert (REPO / path).exists(), path
  for link in re.findall(r'\]\(([^)#]+)', section):
    assert (REPO / link).exists(), link


def test_the_tour_runs_on_a_fresh_machine(tmp_path, mnist_dir):
  data_root = mnist_dir.parent
  small = ['--config.num_epochs=1', '--config.data.test_subset=200',
           '--config.plots=False']

  train = run('launch.train',
              placed(tour_command('launch.train'), tmp_path, data_root)
              + small + ['--config.data.train_subset=1024'], tmp_path)
  assert train.returncode == 0, train.stderr[-3000:]
  assert json.loads(train.stdout)['epochs'] == 1
  assert f'Wrote {tmp_path / "W"}: ' in train.stderr.splitlines()[-1]

  sweep = run('launch.sweep',
              placed(tour_command('launch.sweep'), tmp_path, data_root)
              + small + ['--config.data.train_subset=512'], tmp_path)
  assert sweep.returncode == 0, sweep.stderr[-3000:]
  assert 'member_000/ .. member_006/ (7)' in sweep.stderr.splitlines()[-1]
  results = json.loads((tmp_path / 'S' / 'results.json').read_text())
  assert len(results) == 7 and all(r['epochs'] == 1 for r in results)
  # What `tensorboard --logdir S` reads: each member's events.
  assert list((tmp_path / 'S' / 'member_006').glob('events.out.tfevents.*'))

  # Evaluated before the classifier is trained: one line, whose command
  # works as written (it finds MNIST and writes where evaluate looks).
  evaluate_args = placed(tour_command('launch.evaluate'), tmp_path,
                         data_root) + ['--iwae_samples=5', '--num_images=20',
                                       '--num_samples=200']
  missing = run('launch.evaluate', evaluate_args, tmp_path)
  assert missing.returncode == 1 and 'Traceback' not in missing.stderr
  line = last_error(missing.stderr)
  assert 'about 10 minutes' in line
  suggested = shlex.split(line.split('and run this again: ')[1])
  assert suggested[:3] == ['python', '-m', 'launch.train_classifier']
  default_dir = tmp_path / 'cache' / 'classifier'
  assert f'--workdir={default_dir}' in suggested
  assert f'--data_dir={data_root}' in suggested
  # The tour's own line is that command with --workdir left at its default.
  assert sorted(suggested[3:]) == sorted(
      placed(tour_command('launch.train_classifier'), tmp_path, data_root)
      + [f'--workdir={default_dir}'])
  # Too large a batch stops it after the data is found, before training.
  refused = run('launch.train_classifier',
                suggested[3:] + ['--batch_size=100000'], tmp_path)
  assert refused.returncode == 1, refused.stderr[-3000:]
  assert ('--batch_size=100000: give 1 to 60000' in
          last_error(refused.stderr)), refused.stderr[-3000:]
  assert f'MNIST classifier in {default_dir}: 5 epoch(s)' in refused.stderr
  assert not default_dir.exists()

  # The IWAE of the tour's evaluation (its classifier metrics need the real
  # classifier, 10 minutes: test_the_whole_tour_as_written).
  evaluated = run('launch.evaluate', evaluate_args + ['--metrics=iwae'],
                  tmp_path)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  results = json.loads((tmp_path / 'S' / 'results.json').read_text())
  assert all(r['iwae_nll'] > 0 for r in results)
  assert f'Wrote {tmp_path / "S"}: ' in evaluated.stderr.splitlines()[-1]


@pytest.mark.slow
def test_the_whole_tour_as_written(tmp_path, mnist_dir):
  """Every command but tensorboard, as written (the sweep and benchmark at
  fewer epochs, the classifier 1 epoch): tens of minutes."""
  data_root = mnist_dir.parent
  for module, extra in [
      ('launch.train', []),
      ('launch.sweep', ['--config.num_epochs=2']),
      ('launch.train_classifier', ['--epochs=1']),
      ('launch.evaluate', ['--iwae_samples=50', '--num_images=200']),
      ('launch.reproduce', []),
      ('benchmarks.run', ['--epochs=2', '--memory=False',
                          '--torch_variants=preloaded,fused_adam']),
  ]:
    result = run(module, placed(tour_command(module), tmp_path, data_root)
                 + extra, tmp_path, timeout=3600)
    assert result.returncode == 0, (module, result.stderr[-3000:])
    assert 'Traceback' not in result.stderr, module
  assert (tmp_path / 'R' / 'report.html').exists()
