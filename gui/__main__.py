"""``python -m gui``: the same as ``ami-gui``."""

import sys

from gui import main

sys.exit(main())
