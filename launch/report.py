r"""Writes one self-contained HTML report for a run, a sweep or a study.

  python -m launch.report --workdir=workdirs/study_d

The page (DIR/report.html) embeds the config, final and evaluation metrics
with published numbers beside ours, and every figure in the directory; its
path is the last line printed.
"""

from absl import flags

from launch import common
from vae_jax import report

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'A run, sweep or study directory.',
                    required=True)
flags.DEFINE_string('title', None, 'Page title (default: from the workdir).')


def main(argv):
  del argv  # common.run refuses arguments that are not flags
  path = report.write_report(FLAGS.workdir, FLAGS.title)
  common.log.info('Wrote %s (open it in a browser).', path)
  print(path)


if __name__ == '__main__':
  common.run(main)
