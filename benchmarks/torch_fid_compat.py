"""pytorch-fid and torchvision, importable on any torch (the FID parity tests and benchmark).

The torchvision wheel from PyPI carries a compiled extension (_C.so) built
against PyPI's CUDA torch. On a CPU-only torch (torch==2.13.0+cpu) that
library does not load, so none of torchvision's operators are defined, and
`import torchvision` then fails in torchvision/_meta_registrations.py, which
registers fake kernels for `torchvision::nms` and `torchvision::qnms`
unconditionally ("operator torchvision::nms does not exist"). Every other
registration there is guarded by `torchvision.extension._has_ops()`.

FID needs neither operator, so where the extension cannot load, this module
defines those two schemas with an implementation that raises, before
torchvision is imported. Where it does load (a matching torch), nothing is
defined and torchvision works as usual.

Use:

  torch, torchvision, fid_inception = torch_fid_compat.import_pytorch_fid()
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pathlib
from typing import Any
from unittest import mock

# Operators that torchvision's import registers fake kernels for without
# checking whether its extension loaded, with their schemas from
# torchvision/csrc/ops/nms.cpp and quantized/qnms_kernel.cpp.
_UNGUARDED_OPS = {
    'nms': 'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms': 'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
}

# Kept alive for the life of the process: a torch.library.Library deregisters
# its definitions when it is garbage-collected.
_placeholder_library = None


def _extension_path() -> pathlib.Path | None:
  spec = importlib.util.find_spec('torchvision')
  if spec is None or not spec.submodule_search_locations:
    return None
  for location in spec.submodule_search_locations:
    for candidate in sorted(pathlib.Path(location).glob('_C*.so')) + sorted(
        pathlib.Path(location).glob('_C*.pyd')):
      return candidate
  return None


def _raise_placeholder(*args, **kwargs):
  del args, kwargs
  raise NotImplementedError(
      'torchvision::nms/qnms placeholder: torchvision\'s compiled extension'
      ' does not load with this torch build (benchmarks/torch_fid_compat.py).')


def define_missing_torchvision_ops() -> bool:
  """Defines placeholder torchvision::nms / qnms if the extension cannot load.

  Must run before the first `import torchvision`.

  Returns:
    True if placeholders were defined, False if the real extension loaded
    (or they exist already).
  """
  global _placeholder_library
  import torch
  if _placeholder_library is not None:
    return False
  path = _extension_path()
  if path is not None:
    try:
      # The same call torchvision makes; a second load of the same file is a
      # no-op, so torchvision's own import later is unaffected.
      torch.ops.load_library(str(path))
    except (OSError, ImportError, RuntimeError):
      pass
  if all(_op_exists(torch, name) for name in _UNGUARDED_OPS):
    return False
  library = torch.library.Library('torchvision', 'FRAGMENT')
  for name, schema in _UNGUARDED_OPS.items():
    if not _op_exists(torch, name):
      library.define(schema)
      library.impl(name, _raise_placeholder, 'CompositeExplicitAutograd')
  _placeholder_library = library
  return True


def _op_exists(torch, name: str) -> bool:
  try:
    getattr(torch.ops.torchvision, name)
    return True
  except (AttributeError, RuntimeError):
    return False


def import_pytorch_fid() -> tuple[Any, Any, Any]:
  """(torch, torchvision, pytorch_fid.inception), importable on CPU-only torch.

  Raises:
    ImportError: torch, torchvision or pytorch_fid is not installed.
  """
  torch = importlib.import_module('torch')
  if importlib.util.find_spec('torchvision') is None:
    raise ImportError('torchvision is not installed')
  define_missing_torchvision_ops()
  torchvision = importlib.import_module('torchvision')
  inception = importlib.import_module('pytorch_fid.inception')
  return torch, torchvision, inception


@contextlib.contextmanager
def pytorch_fid_weights(state_dict=None):
  """Within: pytorch-fid builds its Inception from `state_dict`, no download.

  `fid_inception_v3()` ends in
  `inception.load_state_dict(load_state_dict_from_url(FID_WEIGHTS_URL))`.
  The download is replaced by `state_dict`, which pytorch-fid then loads
  itself (strictly), exactly as it loads the real checkpoint. With
  state_dict=None the load is skipped too and the network keeps
  torchvision's initialisation.
  """
  _, torchvision, inception = import_pytorch_fid()
  inception3 = torchvision.models.inception.Inception3

  def fake_download(url, *args, **kwargs):
    del args, kwargs
    assert url == inception.FID_WEIGHTS_URL, url
    return state_dict

  def skip_load(self, state_dict, *args, **kwargs):
    del self, args, kwargs
    assert state_dict is None, 'only the stubbed download is skipped'

  with contextlib.ExitStack() as stack:
    stack.enter_context(mock.patch.object(inception,
                                          'load_state_dict_from_url',
                                          fake_download))
    if state_dict is None:
      stack.enter_context(mock.patch.object(inception3, 'load_state_dict',
                                            skip_load))
    yield


def fid_inception_skeleton():
  """pytorch-fid's `fid_inception_v3()` (torchvision Inception3, 1008
  classes, FID blocks) with untrained weights: its state_dict has the keys of
  pt_inception-2015-12-05-6726825d.pth."""
  _, _, inception = import_pytorch_fid()
  with pytorch_fid_weights(None):
    return inception.fid_inception_v3()


def build_pytorch_fid_inception(state_dict, output_blocks=(3,),
                                resize_input: bool = True,
                                normalize_input: bool = True):
  """pytorch-fid's own InceptionV3 (FID variant) loaded from `state_dict`
  (the format of the released checkpoint), in eval mode."""
  _, _, inception = import_pytorch_fid()
  with pytorch_fid_weights(state_dict):
    model = inception.InceptionV3(list(output_blocks),
                                  resize_input=resize_input,
                                  normalize_input=normalize_input,
                                  use_fid_inception=True)
  return model.eval()
