"""``python -m ami``: see :mod:`ami.cli`."""

import sys

from ami.cli import main

sys.exit(main())
