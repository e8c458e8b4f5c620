"""The public API (vae_jax.default_config, train_and_evaluate, run_sweep,
load_model), used as a newcomer would: from a directory outside the
checkout, with only the vae_jax package importable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from test_train import tiny_dataset

REPO = Path(__file__).resolve().parents[1]

# What a user writes: no import from the checkout (configs/, tests/), arrays
# of their own as a vae_jax.data.Dataset. It saves what the test checks.
USER_SCRIPT = r'''
import json
import sys

import numpy as np

import vae_jax
import vae_jax.data

arrays = np.load('tiny.npz')
dataset = vae_jax.data.Dataset(
    'blobs', arrays['train_images'], arrays['train_labels'],
    arrays['test_images'], arrays['test_labels'], source='tiny.npz')

config = vae_jax.default_config()
config.model.encoder_widths = (16,)
config.model.latent_size = 2
config.batch_size = 16
config.eval_batch_size = 16
config.num_epochs = 2
config.plots = False
vae_jax.train_and_evaluate(config, 'run', dataset=dataset)

model = vae_jax.load_model('run')
test = dataset.test_images / 255
codes = model.encode(test)
outputs = {
    'codes': codes,
    'decoded': model.decode(codes),
    'reconstructed': model.reconstruct(test),
    'elbo': model.elbo(test),
    'samples_seed_0': model.sample(6, seed=0),
    'samples_seed_0_again': model.sample(6, seed=0),
    'samples_seed_1': model.sample(6, seed=1),
}

sweep_config = config.copy_and_resolve_references()
sweep_config.sweep = vae_jax.grid.product(model__latent_size=[1, 2])
vae_jax.run_sweep(sweep_config, 'sweep', dataset=dataset)
member = vae_jax.load_model('sweep', member=0)
outputs['member_codes'] = member.encode(test)
outputs['member_reconstructed'] = member.reconstruct(test)
outputs['member_elbo'] = member.elbo(test)
np.savez('outputs.npz', **outputs)


def error(call):
    try:
        call()
    except (ValueError, FileNotFoundError) as caught:
        return f'{type(caught).__name__}: {caught}'
    return None


errors = {
    'uint8 images': error(lambda: model.encode(dataset.test_images)),
    'wrong image size': error(lambda: model.elbo(test[:, :4, :4])),
    'one image': error(lambda: model.reconstruct(test[0])),
    'codes of another width': error(lambda: model.decode(np.zeros((3, 5)))),
    'sweep without member': error(lambda: vae_jax.load_model('sweep')),
    'run with member': error(lambda: vae_jax.load_model('run', member=0)),
    'member out of range': error(lambda: vae_jax.load_model('sweep', member=2)),
    'not a workdir': error(lambda: vae_jax.load_model('nowhere')),
    'labels for a VAE': error(lambda: model.encode(test, labels=[0] * 40)),
    'sweep config to train_and_evaluate': error(
        lambda: vae_jax.train_and_evaluate(sweep_config, 'other', dataset=dataset)),
}
print(json.dumps({
    'vae_jax': vae_jax.__file__,
    'version': vae_jax.__version__,
    'checkout_modules': sorted({'configs', 'launch', 'tests'} & set(sys.modules)),
    'repr': repr(member),
    'errors': errors,
}))
'''


def _run_outside_checkout(tmp_path: Path, script: str, **env) -> str:
  """Runs `script` in tmp_path/user, outside the checkout, where of the
  checkout only the vae_jax package can be imported (as when installed),
  and it is this checkout's, whichever one the environment installed.
  Returns what it printed."""
  site = tmp_path / 'site'
  site.mkdir()
  (site / 'vae_jax').symlink_to(REPO / 'vae_jax', target_is_directory=True)
  outside = tmp_path / 'user'
  outside.mkdir(exist_ok=True)
  (outside / 'script.py').write_text(script)
  environment = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  environment.update(env, PYTHONPATH=str(site))
  result = subprocess.run([sys.executable, 'script.py'], cwd=outside,
                          env=environment, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  return result.stdout


def _last_test_loss(path: Path, member: int | None = None) -> float:
  lines = [json.loads(l) for l in path.read_text().splitlines() if l]
  if member is not None:
    lines = [l for l in lines if l['member'] == member]
  return lines[-1]['test_loss']


def _tracked_reconstructions(directory: Path) -> np.ndarray:
  """The reconstructions the run tracked after its last epoch, in [0, 1]."""
  with np.load(directory / 'reconstructions_by_epoch.npz') as saved:
    return saved['outputs'][-1].astype(np.float32) / 255


def test_api_trains_loads_and_runs_a_model_outside_the_checkout(tmp_path):
  dataset = tiny_dataset()
  user = tmp_path / 'user'
  user.mkdir()
  np.savez(user / 'tiny.npz', train_images=dataset.train_images,
           train_labels=dataset.train_labels, test_images=dataset.test_images,
           test_labels=dataset.test_labels)
  report = json.loads(
      _run_outside_checkout(tmp_path, USER_SCRIPT).strip().splitlines()[-1])
  out = dict(np.load(user / 'outputs.npz'))

  assert Path(report['vae_jax']).resolve() == REPO / 'vae_jax' / '__init__.py'
  assert report['checkout_modules'] == []
  assert report['version'] and report['version'][0].isdigit()

  num_test = len(dataset.test_images)
  assert out['codes'].shape == (num_test, 2)
  assert out['decoded'].shape == (num_test, 8, 8)
  assert out['decoded'].min() >= 0 and out['decoded'].max() <= 1
  # reconstruct is decode(encode(.)) through another path (the training
  # code's masked posterior mean), and what the run itself tracked.
  np.testing.assert_allclose(out['reconstructed'], out['decoded'], atol=1e-6)
  tracked = _tracked_reconstructions(user / 'run')
  assert np.abs(out['reconstructed'][:len(tracked)] - tracked).max() <= 1 / 255

  # The per-image bound averages to the test loss the run wrote: the same
  # objective, images and posterior draws.
  assert out['elbo'].shape == (num_test,)
  assert np.all(out['elbo'] < 0)
  np.testing.assert_allclose(-out['elbo'].mean(),
                             _last_test_loss(user / 'run' / 'metrics.jsonl'),
                             rtol=1e-5)

  np.testing.assert_array_equal(out['samples_seed_0'],
                                out['samples_seed_0_again'])
  assert out['samples_seed_0'].shape == (6, 8, 8)
  assert np.abs(out['samples_seed_0'] - out['samples_seed_1']).max() > 1e-3

  # A sweep member: latent size 1 inside its group's model of 2.
  assert out['member_codes'].shape == (num_test, 1)
  np.testing.assert_allclose(
      -out['member_elbo'].mean(),
      _last_test_loss(user / 'sweep' / 'metrics.jsonl', member=0), rtol=1e-5)
  tracked = _tracked_reconstructions(user / 'sweep' / 'member_000')
  assert (np.abs(out['member_reconstructed'][:len(tracked)] - tracked).max()
          <= 1 / 255)
  assert 'member 0 of' in report['repr'] and 'latent_size=1' in report['repr']

  errors = report['errors']
  assert 'divide them by 255' in errors['uint8 images']
  assert '[B, 8, 8]' in errors['wrong image size']
  assert 'images[None]' in errors['one image']
  assert '[B, 2]' in errors['codes of another width']
  assert 'pass member=0 .. 1' in errors['sweep without member']
  assert 'leave member out' in errors['run with member']
  assert 'pass 0 .. 1' in errors['member out of range']
  assert errors['not a workdir'].startswith('FileNotFoundError')
  assert 'leave labels out' in errors['labels for a VAE']
  assert 'vae_jax.run_sweep' in errors['sweep config to train_and_evaluate']


def _readme_python_api_script() -> str:
  """The code block of the README's "Python API" section, verbatim."""
  readme = (REPO / 'README.md').read_text()
  section = readme.split('\n## Python API\n', 1)[1].split('\n## ', 1)[0]
  return section.split('```python\n', 1)[1].split('```', 1)[0]


def test_readme_python_api_script_runs_as_printed(tmp_path, mnist_dir):
  printed = _run_outside_checkout(tmp_path, _readme_python_api_script(),
                                  VAE_JAX_DATA_DIR=str(mnist_dir))
  assert 'test loss' in printed and 'ELBO per image (nats):' in printed
  results = json.loads(
      (tmp_path / 'user' / 'workdirs' / 'api' / 'results.json').read_text())
  assert results['epochs'] == 2
