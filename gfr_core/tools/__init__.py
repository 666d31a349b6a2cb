"""Developer and user tools: the ``gfr`` CLI, ``gfr bench`` and the parity verifier."""
