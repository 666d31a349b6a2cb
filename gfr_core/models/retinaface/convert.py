"""facexlib RetinaFace -> :class:`RetinaFace` keys (the module tree is the same)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from ..family import Converter, UnmatchedKeysError

__all__ = ["CONVERTERS"]


def _retinaface(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: object) -> dict[str, Tensor]:
    """Strip a DataParallel ``module.`` prefix; every key must belong to a known part."""
    out, unmatched = {}, []
    for k, v in sd.items():
        k2 = k.removeprefix("module.")
        if re.match(r"(body|fpn|ssh[123]|ClassHead|BboxHead|LandmarkHead)\.", k2):
            out[k2] = v
        else:
            unmatched.append(k)
    if unmatched:
        raise UnmatchedKeysError(
            f"converter 'retinaface' cannot place {len(unmatched)} key(s): {', '.join(unmatched[:5])}"
        )
    return out


CONVERTERS: dict[str, Converter] = {"retinaface": _retinaface, "native": _retinaface}
