"""Study C on USPS (7,291 train / 2,007 test, 16x16): VAE 256-128-64 and
64-128-256, and the CVAE, with the same sweeps as configs/study_c.py.

  python -m launch.sweep --config=configs/study_c_usps.py --workdir=workdirs/study_c_usps
"""

from configs import study_c


def get_config():
  return study_c.get_config('usps')
