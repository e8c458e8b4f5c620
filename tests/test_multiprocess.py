"""A sweep as several processes joined by JAX's distributed runtime, on this
machine's CPU (gloo collectives): the same numbers as one process, only
process 0 writes, and a killed process stops the others."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent('''
    import sys
    sys.path.insert(0, {tests!r})
    import jax
    if {processes} > 1:
      jax.config.update('jax_cpu_collectives_implementation', 'gloo')
      jax.distributed.initialize(coordinator_address={address!r},
                                 num_processes={processes},
                                 process_id=int(sys.argv[1]),
                                 heartbeat_timeout_seconds=10)
    from test_train import tiny_config, tiny_dataset
    from vae_jax import grid as grid_lib
    from vae_jax import sweep
    config = tiny_config(num_epochs={epochs})
    config.sweep = grid_lib.product(beta=[1.0, 0.5], seed=[0, 1])
    sweep.run_sweep(config, {workdir!r}, dataset=tiny_dataset(num_train=256))
    print('done', jax.process_index(), flush=True)
''')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(workdir: Path, processes: int, epochs: int) -> list:
  """Starts the sweep as `processes` processes of one CPU device each, or
  (processes=1) as one process with two devices, the same layout."""
  code = _CHILD.format(tests=str(REPO / 'tests'), processes=processes,
                       address=f'127.0.0.1:{_free_port()}', epochs=epochs,
                       workdir=str(workdir))
  env = dict(os.environ)
  if processes == 1:
    env['XLA_FLAGS'] = '--xla_force_host_platform_device_count=2'
  return [subprocess.Popen([sys.executable, '-c', code, str(i)], cwd=REPO,
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
          for i in range(processes)]


def _finish(children, timeout=240) -> list[tuple[int, str, str]]:
  outcomes = []
  for child in children:
    out, err = child.communicate(timeout=timeout)
    outcomes.append((child.returncode, out, err))
  return outcomes


def _lines(workdir: Path) -> list[dict]:
  return [{k: v for k, v in json.loads(l).items()
           if k not in ('img_per_s', 'seconds')}  # timings
          for l in (workdir / 'metrics.jsonl').read_text().splitlines()]


def test_a_sweep_as_two_processes_equals_one_process(tmp_path):
  one, two = tmp_path / 'one', tmp_path / 'two'
  for code, out, err in _finish(_start(one, 1, 3)):
    assert code == 0, err[-3000:]
  outcomes = _finish(_start(two, 2, 3))
  for code, out, err in outcomes:
    assert code == 0, err[-3000:]
  assert [o[1].split()[-1] for o in outcomes] == ['0', '1']
  # Members' numbers agree bit for bit: each device runs the same program
  # on the same members in both layouts.
  assert _lines(two) == _lines(one)
  results = json.loads((two / 'results.json').read_text())
  assert [r['test_loss'] for r in results] == [
      r['test_loss'] for r in json.loads((one / 'results.json').read_text())]
  # Process 0 wrote the shared files, once; its lock is its own.
  assert 'process' in (two / '.vae_jax.lock').read_text()
  assert sorted(p.name for p in two.glob('member_*')) == [
      'member_000', 'member_001', 'member_002', 'member_003']


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_both_resume(tmp_path):
  straight, workdir = tmp_path / 'straight', tmp_path / 'killed'
  for code, _, err in _finish(_start(straight, 2, 8)):
    assert code == 0, err[-3000:]
  children = _start(workdir, 2, 8)
  deadline = time.monotonic() + 120
  while not (workdir / 'metrics.jsonl').exists():
    assert time.monotonic() < deadline
    time.sleep(0.05)
  children[1].send_signal(signal.SIGKILL)
  start = time.monotonic()
  code, _, err = _finish(children[:1], timeout=120)[0]
  children[1].wait()
  assert code != 0 and time.monotonic() - start < 90, err[-2000:]
  for code, _, err in _finish(_start(workdir, 2, 8)):
    assert code == 0, err[-3000:]
  assert _lines(workdir) == _lines(straight)
