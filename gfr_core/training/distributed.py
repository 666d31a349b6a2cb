"""Data-parallel training with ``torchrun`` (PyTorch's process launcher): one replica per process.

``torchrun --nproc-per-node N -m gfr_core train prior|restorer ...`` starts N processes; each holds a full
copy of the networks and trains on its share of every global batch (``--batch`` samples per process). After
each backward pass the gradients are averaged over the processes (one all-reduce of all of them), so the
replicas stay identical, as StyleGAN2-ADA does it, without a DDP wrapper (its hooks do not support the
double backward of R1). Rank 0 alone writes states, samples and logs.

The split is arranged so that N processes with ``--batch B`` compute what one process computes with
``--batch N*B``: every process draws the same shuffled global batches (:class:`ShardedBatches`), takes the
strided share ``rank, rank + N, ...`` (so the discriminator's minibatch-stddev groups hold the same samples),
and draws per-sample noise for the whole global batch, keeping its share (:func:`gfr_core.nn.batch_shard`).
Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing of this runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..nn import batch_shard
from .common import device

__all__ = [
    "Replica",
    "ShardedBatches",
    "any_rank",
    "average_gradients",
    "broadcast_float",
    "mean_stats",
    "replicated",
    "start",
    "stop",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    """This process's place among the training processes."""

    rank: int = 0  # 0 .. world - 1
    world: int = 1  # number of processes
    local_rank: int = 0  # index on this machine (its GPU)

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0

    def shard(self) -> contextlib.AbstractContextManager[None]:
        """Per-sample random draws of the global batch, this process's share (:func:`gfr_core.nn.batch_shard`)."""
        return batch_shard(self.rank, self.world)


def start(device_name: str) -> tuple[Replica, torch.device]:
    """Join the process group when launched by ``torchrun`` (gloo on CPUs, NCCL on GPUs); the device to use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = device(device_name)
    if world <= 1:
        return Replica(), dev
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if rank != 0:  # one log for the run
        logging.getLogger("gfr_core").setLevel(logging.WARNING)
    log.info("data-parallel training: %d processes (%s)", world, dist.get_backend())
    return Replica(rank, world, local), dev


def stop(rep: Replica, *, failed: bool = False) -> None:
    """Leave the process group: all ranks together after a run, at once after a failure (the others may
    wait in a collective that never comes; ``torchrun`` stops them when this process exits)."""
    if rep.world > 1 and dist.is_initialized():
        if not failed:
            dist.barrier()
        dist.destroy_process_group()


T = TypeVar("T")


def replicated(device_name: str, train: Callable[[Replica, torch.device], T]) -> T:
    """``train(replica, device)`` in the process group of ``torchrun`` (or alone), then leave the group."""
    rep, dev = start(device_name)
    try:
        result = train(rep, dev)
    except BaseException:
        stop(rep, failed=True)
        raise
    stop(rep)
    return result


def average_gradients(rep: Replica, modules: Sequence[nn.Module]) -> None:
    """Average the gradients of ``modules`` over the processes: one all-reduce of them all, flattened."""
    if rep.world == 1:
        return
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= rep.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_rank(rep: Replica, flag: bool) -> bool:
    """True on every process when ``flag`` is true on any (a signal or the time limit stops all at one step)."""
    if rep.world == 1:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_float(rep: Replica, value: float) -> float:
    """Rank 0's ``value`` on every process."""
    if rep.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(t, src=0)
    return float(t.item())


def mean_stats(rep: Replica, stats: dict[str, float]) -> dict[str, float]:
    """Loss statistics averaged over the processes (the global batch's)."""
    if rep.world == 1 or not stats:
        return stats
    keys = sorted(stats)
    t = torch.tensor([stats[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / rep.world for k, v in zip(keys, t)}


class ShardedBatches(torch.utils.data.Sampler[list[int]]):
    """This process's share of each global batch of ``batch * world`` indices, reshuffled every epoch.

    The permutation of epoch ``e`` comes from ``(seed, e)`` alone, so every process sees the same global
    batches; its share is the strided ``rank::world`` slice. An incomplete last batch is dropped.
    """

    def __init__(self, n: int, batch: int, rep: Replica, seed: int) -> None:
        if n < batch * rep.world:
            raise ValueError(
                f"{n} training faces are fewer than one global batch ({batch} x {rep.world} processes); "
                "use a smaller --batch or more data"
            )
        self.n, self.batch, self.rep, self.seed, self.epoch = n, batch, rep, seed, 0

    def __len__(self) -> int:
        return self.n // (self.batch * self.rep.world)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g)
        size = self.batch * self.rep.world
        for k in range(len(self)):
            yield order[k * size : (k + 1) * size][self.rep.rank :: self.rep.world].tolist()
