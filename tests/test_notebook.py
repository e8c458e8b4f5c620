"""notebooks/quickstart.ipynb runs top to bottom on a tiny configuration."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_notebook_executes(mnist_dir, tmp_path):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  notebook = nbformat.read(REPO / 'notebooks' / 'quickstart.ipynb', as_version=4)
  env = {'VAE_JAX_DATA_DIR': str(mnist_dir), 'QUICKSTART_EPOCHS': '1',
         'QUICKSTART_TRAIN_SUBSET': '2048',
         'PYTHONPATH': os.pathsep.join([str(REPO),
                                        os.environ.get('PYTHONPATH', '')])}
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    client = nbclient.NotebookClient(notebook, timeout=600,
                                     kernel_name='python3',
                                     resources={'metadata': {'path': str(REPO)}})
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
  assert len(images) >= 3  # two run figures and the samples/interpolation
