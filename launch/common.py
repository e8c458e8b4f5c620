"""What every launcher does before its work."""

import logging as std_logging
import os

from absl import flags
from absl import logging


def setup_logging() -> None:
  """Shows vae_jax's progress lines; hides library chatter unless --verbosity is given.

  Orbax logs every checkpoint step at INFO through absl; our own lines go
  through the 'vae_jax' logger, which absl's handler prints.
  """
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('vae_jax').setLevel(std_logging.INFO)


def usable_cpus() -> int:
  """CPUs this process may run on (honours taskset and cgroup affinity).

  os.cpu_count() counts the machine's CPUs; a benchmark pinned to fewer that
  starts one thread per machine CPU oversubscribes its cores.
  """
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1
