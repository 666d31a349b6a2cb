"""Per-sample random draws that do not depend on how a batch is split across processes.

Data-parallel training splits each global batch of ``B * world`` samples into strided shares (process ``r``
holds samples ``r, r + world, ...``). Inside :func:`batch_shard`, :func:`randn_batch` draws the whole global
batch from the (identically seeded) generator of every process and returns this process's share, so each
sample gets the very numbers it would get in one process with the whole batch.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["batch_shard", "randn_batch"]

_SHARD: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar("gfr_batch_shard", default=(0, 1))


@contextlib.contextmanager
def batch_shard(rank: int, world: int) -> Iterator[None]:
    """Within this block, :func:`randn_batch` returns share ``rank`` of ``world`` of a global batch."""
    token = _SHARD.set((rank, world))
    try:
        yield
    finally:
        _SHARD.reset(token)


def randn_batch(
    batch: int, *shape: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """(batch, *shape) standard normal samples: this process's share of the global batch's draws."""
    rank, world = _SHARD.get()
    if world == 1:
        return torch.randn(batch, *shape, device=device, dtype=dtype)
    return torch.randn(batch * world, *shape, device=device, dtype=dtype)[rank::world]
