"""notebooks/quickstart.ipynb runs top to bottom on a tiny configuration,
from its own folder, as a reader opens it: the kernel gets no path to the
checkout, so it sees only the installed vae_jax."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / 'notebooks' / 'quickstart.ipynb'


def test_quickstart_notebook_executes_from_its_folder(mnist_dir):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  env = {'VAE_JAX_DATA_DIR': str(mnist_dir), 'QUICKSTART_EPOCHS': '1',
         'QUICKSTART_TRAIN_SUBSET': '2048'}
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)  # the kernel inherits this process's environment
  try:
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name='python3',
        resources={'metadata': {'path': str(NOTEBOOK.parent)}})
    client.execute()
  finally:
    for key, value in old.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code'
             for o in cell.get('outputs', [])]
  assert not [o for o in outputs if o.output_type == 'error']
  images = [o for o in outputs if 'image/png' in o.get('data', {})]
  # Two run figures, the model's digits, and the lowest-ELBO digits.
  assert len(images) == 4
  printed = ''.join(o.get('text', '') for o in outputs
                    if o.output_type == 'stream')
  assert 'mean ELBO' in printed
