"""Study C on USPS (7,291 train / 2,007 test, 16x16): the CVAE sweeps and the
VAE (128-64 / 64-128), as configs/study_c.py reads the report.

  python -m launch.sweep --config=configs/study_c_usps.py --workdir=workdirs/study_c_usps
"""

from configs import study_c


def get_config():
  return study_c.get_config('usps')
