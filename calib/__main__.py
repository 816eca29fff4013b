"""``python -m calib``: the calib command line (see :mod:`calib.cli`)."""

import sys

from .cli import main

sys.exit(main())
