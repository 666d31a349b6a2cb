"""``python -m gfr_core``: the ``gfr`` command line."""

import sys

from .tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
