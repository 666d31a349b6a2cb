"""ParseNet face parsing: facexlib's release file (a Hub mirror first; the official release asset in extras).

No published sha256 is known for ``parsing_parsenet.pth``, so none is pinned: the card says so, and the
strict converter plus ``load_state_dict(strict=True)`` still refuse any file of another layout.
"""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS", "FACE_LABELS", "PAPER"]

PAPER = "Chen, Tai, Wong et al. Progressive Semantic-Aware Style Transformation for Blind Face Restoration. CVPR 2021"

FACE_LABELS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15)
"""Labels of the 19 that GFPGAN's paste mask keeps (facexlib's colour map); 0, 14, 16, 17, 18 are dropped.
facexlib gives no class names, so none are given here."""

CARDS = (
    ModelCard(
        name="parsenet",
        arch="parsenet",
        config={},
        task="parse",
        repo_id="gmk123/GFPGAN",  # a Hub mirror of the GFPGAN release files, this one included
        filename="parsing_parsenet.pth",
        converter="parsenet",
        license="MIT (chaofengc/PSFRGAN; distributed by xinntao/facexlib)",
        paper=PAPER,
        sha256=None,
        description="ParseNet 512 px, 19 classes: the face-shaped paste mask when cached",
        urls=(
            "https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",
            "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/parsing_parsenet.pth",
        ),
    ),
)
