"""benchmarks/accelerator_check.sh on CPU with tiny settings: every step runs
and writes what a GPU session would commit, so the script cannot rot between
the sessions that have a device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_accelerator_check_runs_every_step_on_cpu(tmp_path, mnist_dir):
  out = tmp_path / 'out'
  env = dict(os.environ, OUT=str(out), DATA_DIR=str(mnist_dir.parent),
             EPOCHS='1', SWEEP_KS='1,2', TRAIN_SUBSET='512',
             TORCH_VARIANTS='preloaded', STUDY_D_EPOCHS='20',
             BUDGET_SECONDS='1800', STEP_SECONDS='600',
             PYTHON=sys.executable)
  result = subprocess.run(['bash', 'benchmarks/accelerator_check.sh'],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1900)
  assert result.returncode == 0, result.stderr[-2000:]
  summary = (out / 'summary.txt').read_text()
  for step in ('frameworks_default', 'frameworks_study_d', 'conv_study_e',
               'sweep_scaling', 'study_d'):
    assert f'{step}: exit 0' in summary, (summary, step)
  assert 'devices [CpuDevice' in (out / 'devices.txt').read_text()
  rows = json.loads((out / 'sweep_scaling' / 'sweep_scaling.json').read_text())
  assert [r['members'] for r in rows] == [1, 2]
  assert all(r['aggregate_img_per_s'] > 0 and r['peak_memory_bytes'] > 0
             for r in rows)
  for name in ('frameworks_default', 'frameworks_study_d', 'conv_study_e'):
    assert list((out / name).glob('*.json')), name
  study_d = json.loads((out / 'study_d' / 'results.json').read_text())
  assert len(study_d) == 7 and all(r['epochs'] == 20 for r in study_d)


@pytest.mark.slow
def test_the_burda_accelerator_script_trains_resumes_and_evaluates(
    tmp_path, mnist_dir):
  """Two calls: the first runs out of time mid-training, the second resumes
  from the carried workdir, finishes and evaluates."""
  workdir = tmp_path / 'runs' / 'burda'
  tiny = ('--config.data.train_subset=400 --config.data.test_subset=40 '
          '--config.batch_size=20')
  for call, (epochs, budget) in enumerate([(2000, 60), (3, 900)]):
    out = tmp_path / f'out_{call}'
    env = dict(os.environ, OUT=str(out), DATA_DIR=str(mnist_dir.parent),
               WORKDIR=str(workdir), BUDGET_SECONDS=str(budget),
               ROWS='iwae_k2', IWAE_SAMPLES='10', PYTHON=sys.executable,
               EXTRA_FLAGS=f'{tiny} --config.num_epochs={epochs}')
    if call == 1:
      # The carried copy comes back as the workdir; 3 epochs end it at once
      # only if the first call trained fewer, so resume with the first's.
      trained = max(int(p.name) for p in
                    (workdir / 'group_0' / 'checkpoints').iterdir()
                    if p.name.isdigit())
      env['EXTRA_FLAGS'] = f'{tiny} --config.num_epochs={trained + 2}'
    result = subprocess.run(['bash', 'benchmarks/burda_accelerator.sh'],
                            cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=budget + 120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / 'burda_accelerator' / 'metrics.jsonl').exists()
  summary = (tmp_path / 'out_1' / 'summary.txt').read_text()
  assert 'train: exit 0' in summary and 'evaluate: exit 0' in summary
  results = json.loads((workdir / 'results.json').read_text())
  assert results[0]['epochs'] == trained + 2
  assert results[0]['iwae_nll'] > 0 and results[0]['active_units'] >= 1
