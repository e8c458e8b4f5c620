"""What every launcher does before its work."""

import contextlib
import logging as std_logging
import os
import sys

from absl import app
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


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with an unknown `--config.KEY` reported as a flag
  error (one line, no traceback) instead of ml_collections' KeyError."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as error:
    key = str(error).strip('"\'')
    given = [a.split('=', 1)[0] for a in argv[1:] if a.startswith('--config.')]
    culprit = next((g for g in given if key in g.split('.')), '--config.*')
    sys.stderr.write(
        f'FATAL Flags parsing error: {culprit}: the config has no key '
        f'{key!r}; see the config file (and vae_jax/defaults.py) for the keys '
        'it has.\n')
    sys.exit(1)


@contextlib.contextmanager
def user_errors():
  """Turns a user's mistake into one message without a traceback: a bad
  config value, a workdir that is not this run's, a corrupted checkpoint
  (usage errors), or a run that diverged (exit status 1)."""
  from vae_jax import checkpoint
  from vae_jax import classifier
  from vae_jax import driver
  from vae_jax import validation
  from vae_jax import workdir
  try:
    yield
  except (validation.ConfigError, workdir.WorkdirError,
          checkpoint.CorruptCheckpointError,
          classifier.ClassifierError) as error:
    raise app.UsageError(str(error)) from None
  except driver.DivergedError as error:
    logging.error('%s', error)
    raise SystemExit(f'vae_jax: {error}') from None


def run(main) -> None:
  """app.run(main) with parse_flags."""
  app.run(main, flags_parser=parse_flags)
