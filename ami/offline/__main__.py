"""``python -m ami.offline CONFIG --exp E --run R``: the smalldata producer (``ami smalldata``)."""

import sys

from .cli import main

sys.exit(main())
