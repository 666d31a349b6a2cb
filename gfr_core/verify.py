"""``python -m gfr_core.verify PATH...``: the parity check against the official-architecture fixtures.

The tool lives in :mod:`gfr_core.tools.verify`; this module keeps the documented command short.
"""

import sys

from .tools.verify import main

if __name__ == "__main__":
    sys.exit(main())
