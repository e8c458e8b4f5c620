r"""Writes one self-contained HTML report for a run, a sweep or a study.

  python -m launch.report --workdir=workdirs/study_d

The page (DIR/report.html) embeds the config, final and evaluation metrics
with published numbers beside ours, and every figure in the directory.
"""

from absl import app
from absl import flags

from launch import common
from vae_jax import report

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'A run, sweep or study directory.',
                    required=True)
flags.DEFINE_string('title', None, 'Page title (default: from the workdir).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  common.setup_logging()
  with common.user_errors():
    print(report.write_report(FLAGS.workdir, FLAGS.title))


if __name__ == '__main__':
  common.run(main)
