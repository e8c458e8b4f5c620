"""What every launcher does before its work."""

import logging as std_logging

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
