"""Reliability: what vae_jax never deletes, when it stops, what it refuses.

Fault injection: processes killed with SIGKILL at random moments of a run
and of a sweep (checkpoint writes included) resume to the same numbers as
an uninterrupted run; a corrupted checkpoint, a concurrent second process,
a foreign directory and a bad config are refused; training that diverges
stops. The fast set runs a few kills; `-m slow` runs FAULT_TRIALS of each
(the README's reliability figures).
"""

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from test_train import tiny_config, tiny_dataset
from vae_jax import checkpoint
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import group as group_lib
from vae_jax import report
from vae_jax import sweep
from vae_jax import validation
from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import evaluate

REPO = Path(__file__).resolve().parents[1]
FAULT_TRIALS = 20

# Plain SGD at 0.7 on the tiny blobs diverges after a few finite epochs
# (the tests check that it did, and at an epoch > 1).
DIVERGING = {'optimizer': 'sgd', 'learning_rate': 0.7, 'num_epochs': 10}


def _snapshot(directory: Path) -> dict:
  return {str(p.relative_to(directory)): p.read_bytes()
          for p in sorted(directory.rglob('*')) if p.is_file()}


# ------------------------------------------------------------ user files
def test_overwrite_is_refused_while_the_workdir_holds_a_users_files(tmp_path):
  workdir = tmp_path / 'run'
  driver.train_and_evaluate(tiny_config(), str(workdir), dataset=tiny_dataset())
  (workdir / 'thesis.tex').write_text('draft')
  (workdir / 'src').mkdir()
  (workdir / 'src' / 'main.py').write_text('print(1)')
  (workdir / 'checkpoints' / 'mine.txt').write_text('kept')
  before = _snapshot(workdir)
  with pytest.raises(workdir_lib.WorkdirError) as error:
    driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=1),
                             str(workdir), overwrite=True,
                             dataset=tiny_dataset())
  message = str(error.value)
  for name in ('thesis.tex', 'src', 'checkpoints/mine.txt'):
    assert name in message
  assert _snapshot(workdir) == before
  # With the user's files moved out, --overwrite starts the new run.
  for name in ('thesis.tex', 'src', 'checkpoints/mine.txt'):
    (workdir / name).rename(tmp_path / name.replace('/', '_'))
  driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=1), str(workdir),
                           overwrite=True, dataset=tiny_dataset())
  assert json.loads((workdir / 'config.json').read_text())['beta'] == 0.5
  assert not (workdir / 'checkpoints' / '2').exists()


def test_a_directory_with_another_tools_config_is_refused(tmp_path):
  """The issue's reproduction: another tool's config.json, a thesis, src/."""
  other = tmp_path / 'X'
  (other / 'src').mkdir(parents=True)
  (other / 'config.json').write_text('{"name": "app"}')
  (other / 'thesis.tex').write_text('draft')
  before = _snapshot(other)
  for overwrite in (False, True):
    with pytest.raises(workdir_lib.WorkdirError) as error:
      driver.train_and_evaluate(tiny_config(), str(other), overwrite=overwrite,
                               dataset=tiny_dataset())
    message = str(error.value)
    assert 'not a vae_jax workdir' in message
    assert 'src' in message and 'thesis.tex' in message
    assert '--overwrite' not in message
  assert _snapshot(other) == before
  assert sorted(p.name for p in other.iterdir()) == ['config.json', 'src',
                                                     'thesis.tex']


def test_report_evaluate_and_reproduce_keep_out_of_a_users_directory(tmp_path):
  users = tmp_path / 'Y'
  users.mkdir()
  (users / 'NOTES.md').write_text('my notes')
  (users / 'report.html').write_text('<p>my report</p>')
  before = _snapshot(users)
  with pytest.raises(workdir_lib.WorkdirError, match='not a vae_jax'):
    report.write_report(users)
  with pytest.raises(workdir_lib.WorkdirError, match='not a vae_jax'):
    evaluate.evaluate_workdir(users, ['recon_at_mean'])
  result = subprocess.run(
      [sys.executable, '-m', 'launch.reproduce', '--study=D', '--quick',
       f'--workdir={users}'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert result.returncode != 0
  assert 'not a vae_jax workdir' in result.stderr
  assert 'Traceback' not in result.stderr
  assert _snapshot(users) == before


# ----------------------------------------------------------- divergence
def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(tmp_path):
  workdir = tmp_path / 'run'
  with pytest.raises(driver.DivergedError) as error:
    driver.train_and_evaluate(tiny_config(**DIVERGING), str(workdir),
                             dataset=tiny_dataset())
  results_text = (workdir / 'results.json').read_text()
  results = json.loads(results_text, parse_constant=lambda c: pytest.fail(
      f'{c} in results.json'))
  epoch = results['diverged_epoch']
  assert epoch > 1  # the premise: some epochs were finite
  message = str(error.value)
  assert f'epoch {epoch}' in message and 'learning rate' in message
  assert f'last finite checkpoint (epoch {epoch - 1})' in message
  assert results['status'] == 'diverged' and results['epochs'] == epoch - 1
  assert np.isfinite(results['test_loss'])
  checkpoints = checkpoint.RunCheckpoints(workdir)
  assert checkpoints.latest_epoch() == epoch - 1
  checkpoints.close()
  lines = [json.loads(l) for l in
           (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert lines[-1]['epoch'] == epoch and None in lines[-1].values()
  # Evaluation refuses it rather than scoring a broken model.
  with pytest.raises(driver.DivergedError, match='not evaluated'):
    evaluate.evaluate_workdir(workdir, ['recon_at_mean'],
                                dataset=tiny_dataset())


def test_a_diverging_sweep_member_freezes_and_the_others_finish(tmp_path):
  config = tiny_config(**DIVERGING)
  config.checkpoint.keep_latest = 20
  config.sweep = grid_lib.product(learning_rate=[0.05, 0.7])
  workdir = tmp_path / 'sweep'
  results = sweep.run_sweep(config, workdir, dataset=tiny_dataset())
  assert results[0]['status'] == 'finished' and results[0]['epochs'] == 10
  status = results[1]['status']
  assert status.startswith('diverged at epoch ')
  epoch = int(status.split()[-1])
  assert epoch > 1 and results[1]['epochs'] == epoch - 1
  assert np.isfinite(results[1]['test_loss'])
  json.loads((workdir / 'results.json').read_text(),
             parse_constant=lambda c: pytest.fail(f'{c} in results.json'))
  assert 'diverged at epoch' in (workdir / 'results.md').read_text()
  # Its slice of every later checkpoint is its last finite state.
  group = group_lib.SweepGroup([grid_lib.member_config(config, m)
                            for m in config.sweep], (8, 8),
                           group_lib.sweep_mesh())
  checkpoints = checkpoint.RunCheckpoints(workdir / 'group_0')
  frozen = group.unstack(checkpoints.restore(
      epoch - 1, like=group.abstract_state()).params)
  final = group.unstack(checkpoints.restore(
      10, like=group.abstract_state()).params)
  checkpoints.close()
  for a, b in zip(jax.tree.leaves(frozen[1]), jax.tree.leaves(final[1])):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(frozen[0]), jax.tree.leaves(final[0])))


# ---------------------------------------------------------- validation
@pytest.mark.parametrize('key, value', [
    ('beta', -0.1), ('prior_std', 0.0), ('learning_rate', float('nan')),
    ('learning_rate', -1e-3), ('batch_size', 0), ('eval_batch_size', 0),
    ('model.latent_size', 0), ('data.train_subset', 0),
    ('data.test_subset', 0), ('num_epochs', 0), ('model.name', 'mlp'),
    ('loss', 'l2'), ('optimizer', 'lamb'),
])
def test_bad_values_are_refused_before_anything_is_written(tmp_path, key,
                                                           value):
  workdir = tmp_path / 'run'
  with pytest.raises(validation.ConfigError) as error:
    driver.train_and_evaluate(tiny_config(**{key: value}), str(workdir),
                             dataset=tiny_dataset())
  message = str(error.value)
  assert f'config.{key} = {value!r}' in message and '\n' not in message
  assert not workdir.exists()


def test_a_refused_config_leaves_nothing_in_the_way_of_the_corrected_one(
    tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()  # an empty directory the user made for the run
  with pytest.raises(validation.ConfigError):
    driver.train_and_evaluate(tiny_config(prior_std=-1.0), str(workdir),
                             dataset=tiny_dataset())
  assert list(workdir.iterdir()) == []
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(workdir),
                           dataset=tiny_dataset())


def test_bad_values_and_unknown_keys_are_one_line_usage_errors(tmp_path):
  for flag, expected in [('--config.prior_std=-1', 'config.prior_std = -1.0'),
                         ('--config.nope=1', "no key 'nope'")]:
    result = subprocess.run(
        [sys.executable, '-m', 'launch.train', '--config=configs/default.py',
         f'--workdir={tmp_path / "run"}', flag], cwd=REPO,
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert expected in result.stderr and 'Traceback' not in result.stderr
    assert not (tmp_path / 'run').exists()


# ----------------------------------------------------------------- lock
def test_one_process_per_workdir_and_kill_releases_the_lock(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  holder = subprocess.Popen(
      [sys.executable, '-c', textwrap.dedent(f'''
          import sys, time
          from vae_jax import workdir
          lock = workdir.WorkdirLock({str(workdir)!r})
          print('held', flush=True)
          time.sleep(600)''')], cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(workdir_lib.WorkdirError,
                       match=f'in use by process {holder.pid}'):
      driver.train_and_evaluate(tiny_config(), str(workdir),
                               dataset=tiny_dataset())
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  # The kernel released it with the process: no stale lock.
  driver.train_and_evaluate(tiny_config(num_epochs=1), str(workdir),
                           dataset=tiny_dataset())


# ---------------------------------------------------------- checksums
def test_a_flipped_bit_in_a_checkpoint_is_refused(tmp_path):
  workdir = tmp_path / 'run'
  driver.train_and_evaluate(tiny_config(), str(workdir), dataset=tiny_dataset())
  step = workdir / 'checkpoints' / '2'
  biggest = max((p for p in step.rglob('*') if p.is_file()),
                key=lambda p: p.stat().st_size)
  data = bytearray(biggest.read_bytes())
  data[len(data) // 2] ^= 0x10
  biggest.write_bytes(bytes(data))
  with pytest.raises(checkpoint.CorruptCheckpointError) as error:
    driver.train_and_evaluate(tiny_config(num_epochs=3), str(workdir),
                             dataset=tiny_dataset())
  message = str(error.value)
  assert str(biggest) in message and 'epoch(s) 1' in message
  # As offered: moving the corrupted epoch away resumes from epoch 1.
  step.rename(tmp_path / 'corrupted')
  resumed = driver.train_and_evaluate(tiny_config(num_epochs=3), str(workdir),
                                     dataset=tiny_dataset())
  straight = driver.train_and_evaluate(tiny_config(num_epochs=3),
                                      str(tmp_path / 'straight'),
                                      dataset=tiny_dataset())
  assert resumed['test_loss'] == straight['test_loss']


# -------------------------------------------------------------- kill -9
_CHILD = '''
import sys
sys.path.insert(0, {tests!r})
from test_train import tiny_config, tiny_dataset
from vae_jax import driver, sweep
from vae_jax import grid as grid_lib
config = tiny_config(num_epochs={epochs})
dataset = tiny_dataset(num_train=256)
if {batch_norm}:  # Study B's CNN's kind of model, with BatchNorm state
  from test_cnn_bn import SIDE, bn_config
  config = bn_config(num_epochs={epochs})
  dataset = tiny_dataset(num_train=256, side=SIDE)
if {as_sweep}:
  config.sweep = grid_lib.product(beta=[1.0, 0.5])
  sweep.run_sweep(config, {workdir!r}, dataset=dataset)
else:
  driver.train_and_evaluate(config, {workdir!r}, dataset=dataset)
'''


def _train_in_child(workdir: Path, as_sweep: bool, epochs: int,
                    kill_after: float | None = None,
                    kill_at_epoch: int | None = None,
                    batch_norm: bool = False) -> float | bool:
  """Trains in a subprocess from when its first epoch's metrics appear.

  With kill_after, SIGKILLs it that many seconds later, or with
  kill_at_epoch as soon as metrics.jsonl holds that epoch, and returns
  whether it was still running; else waits and returns how long it trained
  on.
  """
  code = _CHILD.format(tests=str(REPO / 'tests'), epochs=epochs,
                       as_sweep=as_sweep, workdir=str(workdir),
                       batch_norm=batch_norm)
  child = subprocess.Popen([sys.executable, '-c', code], cwd=REPO,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
  resumed = (workdir / 'metrics.jsonl').exists()
  deadline = time.monotonic() + 600  # a first epoch on a loaded machine
  while not resumed and not (workdir / 'metrics.jsonl').exists():
    assert child.poll() is None, child.stderr.read()
    assert time.monotonic() < deadline
    time.sleep(0.005)
  start = time.monotonic()
  if kill_after is None and kill_at_epoch is None:
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    return time.monotonic() - start
  if kill_at_epoch is not None:
    while (child.poll() is None and
           f'"epoch": {kill_at_epoch},' not in
           (workdir / 'metrics.jsonl').read_text()):
      time.sleep(0.005)
  else:
    time.sleep(kill_after)
  killed = child.poll() is None
  child.send_signal(signal.SIGKILL)
  child.wait()
  return killed


def _final_state(workdir: Path, as_sweep: bool):
  """metrics.jsonl without timings, and the final checkpoint's arrays."""
  lines = [{k: v for k, v in json.loads(l).items()
            if k not in ('img_per_s', 'seconds')}
           for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  directory = workdir / 'group_0' if as_sweep else workdir
  step = max((p for p in (directory / 'checkpoints').iterdir()
              if p.name.isdigit()), key=lambda p: int(p.name))
  restored = ocp.StandardCheckpointer().restore(step / "default")
  return lines, jax.tree.leaves(restored)


def _kill_and_resume(tmp_path: Path, as_sweep: bool,
                     fractions: list[float] = (),
                     epochs_to_kill_at: list[int] = (),
                     batch_norm: bool = False) -> dict:
  """Kills one run per fraction, that fraction of the uninterrupted run's
  time after its first epoch (training, checkpoints and figures), and one
  per epoch in epochs_to_kill_at, as soon as that epoch's metrics are
  written; then resumes each. batch_norm: a cnn_bn_vae (BatchNorm running
  averages in the state) instead of the tiny MLP."""
  epochs = 8
  straight = tmp_path / 'straight'
  duration = _train_in_child(straight, as_sweep, epochs,
                             batch_norm=batch_norm)
  expected_lines, expected_arrays = _final_state(straight, as_sweep)
  kills = ([{'kill_after': fraction * duration} for fraction in fractions] +
           [{'kill_at_epoch': epoch} for epoch in epochs_to_kill_at])
  counts = {'trials': len(kills), 'killed': 0, 'identical': 0}
  for trial, kill in enumerate(kills):
    workdir = tmp_path / f'trial_{trial}'
    counts['killed'] += _train_in_child(workdir, as_sweep, epochs,
                                        batch_norm=batch_norm, **kill)
    (workdir / 'mine.txt').write_text('user file')  # a user's, beside the run
    _train_in_child(workdir, as_sweep, epochs, batch_norm=batch_norm)
    lines, arrays = _final_state(workdir, as_sweep)
    assert (workdir / 'mine.txt').read_text() == 'user file'
    leftovers = [p for p in workdir.rglob('*')
                 if p.name.endswith('.vae_jax-tmp') or
                 'orbax-checkpoint-tmp' in p.name]
    assert not leftovers, leftovers
    results = json.loads((workdir / 'results.json').read_text())
    final_losses = ([r['test_loss'] for r in results] if as_sweep
                    else [results['test_loss']])
    assert final_losses == [l['test_loss'] for l in lines
                            if l['epoch'] == epochs]
    if lines == expected_lines and all(
        np.array_equal(a, b) for a, b in zip(arrays, expected_arrays)):
      counts['identical'] += 1
  return counts


@pytest.mark.parametrize('as_sweep', [False, True], ids=['run', 'sweep'])
def test_killed_runs_resume_to_the_same_numbers(tmp_path, as_sweep):
  # Mid-training, with later epochs to redo and earlier lines to keep.
  counts = _kill_and_resume(tmp_path, as_sweep, epochs_to_kill_at=[4])
  assert counts == {'trials': 1, 'killed': 1, 'identical': 1}, counts


@pytest.mark.slow
@pytest.mark.parametrize('as_sweep', [False, True], ids=['run', 'sweep'])
def test_killed_batch_norm_runs_resume_to_the_same_numbers(tmp_path, as_sweep):
  # The running averages are checkpointed and restored with the parameters
  # (tests/test_cnn_bn.py resumes one in the fast set).
  counts = _kill_and_resume(tmp_path, as_sweep, epochs_to_kill_at=[4],
                            batch_norm=True)
  assert counts == {'trials': 1, 'killed': 1, 'identical': 1}, counts


@pytest.mark.slow
@pytest.mark.parametrize('as_sweep', [False, True], ids=['run', 'sweep'])
def test_killed_runs_resume_to_the_same_numbers_many_times(tmp_path, as_sweep):
  # Anywhere in the epochs after the first (checkpoint writes included).
  rng = random.Random(0)
  counts = _kill_and_resume(tmp_path, as_sweep,
                            [rng.uniform(0.0, 1.0) for _ in range(FAULT_TRIALS)])
  print(f'\n{"sweep" if as_sweep else "run"}: {counts}')
  assert counts['identical'] == counts['trials'], counts


# ------------------------------------------------- kills in cleanup and saves
_OVERWRITE_CHILD = '''
import sys, shutil, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_train import tiny_config, tiny_dataset
from vae_jax import driver
# Every deletion waits a little, so that a kill at a random moment lands
# inside the cleanup as often as in the training after it.
rmtree, unlink = shutil.rmtree, Path.unlink
shutil.rmtree = lambda *a, **k: (time.sleep(0.02), rmtree(*a, **k))
Path.unlink = lambda self, *a, **k: (time.sleep(0.02), unlink(self, *a, **k))
print('started', flush=True)
driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=2), {workdir!r},
                          overwrite=True, dataset=tiny_dataset())
'''


def _kill_child(code: str, after: float) -> bool:
  """Runs `code` in a subprocess and SIGKILLs it `after` seconds after it
  prints its first line; returns whether it was still running."""
  child = subprocess.Popen([sys.executable, '-c', code], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  assert child.stdout.readline().strip() == 'started', child.stderr.read()
  time.sleep(after)
  killed = child.poll() is None
  child.send_signal(signal.SIGKILL)
  child.wait()
  return killed


def _kill_overwrites(tmp_path: Path, delays: list[float]) -> dict:
  """Kills `--overwrite` of a finished run at each delay; the next call with
  the new config (refused without --overwrite while the old config is
  there) ends where a straight run of it ends."""
  straight = tmp_path / 'straight'
  driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=2), str(straight),
                           dataset=tiny_dataset())
  expected = _final_state(straight, as_sweep=False)
  counts = {'trials': len(delays), 'killed': 0, 'identical': 0}
  for trial, delay in enumerate(delays):
    workdir = tmp_path / f'trial_{trial}'
    driver.train_and_evaluate(tiny_config(num_epochs=3), str(workdir),
                             dataset=tiny_dataset())
    counts['killed'] += _kill_child(_OVERWRITE_CHILD.format(
        tests=str(REPO / 'tests'), workdir=str(workdir)), delay)
    try:
      driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=2),
                               str(workdir), dataset=tiny_dataset())
    except workdir_lib.WorkdirError as error:
      assert 'different config' in str(error)  # the old config.json is there
      driver.train_and_evaluate(tiny_config(beta=0.5, num_epochs=2),
                               str(workdir), overwrite=True,
                               dataset=tiny_dataset())
    lines, arrays = _final_state(workdir, as_sweep=False)
    if lines == expected[0] and all(
        np.array_equal(a, b) for a, b in zip(arrays, expected[1])):
      counts['identical'] += 1
  return counts


_CLASSIFIER_CHILD = '''
import sys
sys.path.insert(0, {tests!r})
from test_classifier import bars
from vae_jax import classifier
print('started', flush=True)
classifier.train_into({directory!r}, bars(), epochs=2, batch_size=32)
'''


def _kill_classifier_saves(tmp_path: Path, fractions: list[float]) -> dict:
  """Kills launch.train_classifier's work at each fraction of its duration
  (training and the save); the same call again ends with the classifier a
  straight call saves (same SHA-256), verified on load."""
  from test_classifier import bars
  from vae_jax import classifier
  start = time.monotonic()
  expected = classifier.train_into(tmp_path / 'straight', bars(), epochs=2,
                                   batch_size=32)['sha256']
  duration = time.monotonic() - start
  counts = {'trials': len(fractions), 'killed': 0, 'identical': 0}
  for trial, fraction in enumerate(fractions):
    directory = tmp_path / f'trial_{trial}'
    counts['killed'] += _kill_child(_CLASSIFIER_CHILD.format(
        tests=str(REPO / 'tests'), directory=str(directory)),
                                    fraction * duration)
    info = classifier.train_into(directory, bars(), epochs=2, batch_size=32)
    _, params, saved = classifier.load_classifier(directory)
    assert saved['sha256'] == classifier.weights_sha256(params)
    counts['identical'] += info['sha256'] == expected
  return counts


def test_a_killed_overwrite_is_refused_or_finished_never_resumed(tmp_path):
  counts = _kill_overwrites(tmp_path, [0.3])
  assert counts['identical'] == counts['trials'], counts


@pytest.mark.slow
def test_killed_overwrites_and_classifier_saves_many_times(tmp_path):
  rng = random.Random(0)
  overwrites = _kill_overwrites(tmp_path / 'overwrite',
                                [rng.uniform(0.0, 1.5)
                                 for _ in range(FAULT_TRIALS)])
  saves = _kill_classifier_saves(tmp_path / 'classifier',
                                 [rng.uniform(0.05, 0.8)
                                  for _ in range(FAULT_TRIALS)])
  print(f'\noverwrite: {overwrites}\nclassifier: {saves}')
  assert overwrites['identical'] == overwrites['trials'], overwrites
  assert saves['identical'] == saves['trials'], saves
