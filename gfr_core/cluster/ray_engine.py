"""``gfr restore SRC -o OUT --engine ray [--address ADDR]``: the same restoration, on a Ray cluster.

The planned jobs (names, skips and refusals decided exactly as the local CLI decides them) become a Ray
Dataset; a pool of actors, each loading the model once, reads every input lazily and runs the per-photo
pipeline of :mod:`gfr_core.tools.restore_jobs` on it, writing through the same never-overwrite publish.
The output folder must be one that every node sees (a shared filesystem). Outputs that exist are skipped,
so a killed run resumes where it stopped. Each actor runs torch with as many threads as the local CLI
would on its machine, so that on one machine the outputs are byte-identical to the local CLI's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["restore_on_ray"]

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        from ..tools.restore_jobs import UserError

        raise UserError("--engine ray needs Ray Data: pip install -e '.[cluster]'") from None
    return ray


class _Worker:
    """A Ray actor: the restorer, loaded once, applied to batches of planned jobs."""

    def __init__(self, options: dict[str, Any], threads: int) -> None:
        import torch

        from ..tools.restore_cli import load_restorer

        torch.set_num_threads(threads)
        self.args = argparse.Namespace(**options)
        self.args.quiet = True
        self.restorer = load_restorer(self.args)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..tools.restore_jobs import Job, job_error, restore_clip_job, restore_photo_job

        status, message = [], []
        for i in range(len(batch["src"])):
            size = (int(batch["width"][i]), int(batch["height"][i])) if batch["width"][i] > 0 else None
            job = Job(Path(batch["src"][i]), Path(batch["rel"][i]), Path(batch["dst"][i]), str(batch["ext"][i]), size)
            try:
                run = restore_clip_job if job.ext == ".mp4" else restore_photo_job
                message.append(run(self.restorer, job, self.args))
                status.append("ok")
            except Exception as exc:
                line = job_error(job, exc)
                if line is None:  # not the input's fault: stop the run, as the local CLI does
                    raise
                message.append(line)
                status.append("failed")
        return {"src": batch["src"], "status": np.array(status), "message": np.array(message)}


def _check_address(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) that nothing answers is one line at once, not minutes of retries."""
    import socket

    from ..tools.restore_jobs import UserError

    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise UserError(
            f"--address {address}: no Ray cluster answers there ({why}); start one with `ray start --head`, "
            "give its address (host:6379), or leave --address out for a local Ray"
        ) from None


def restore_on_ray(jobs: list, args: argparse.Namespace) -> int:
    """Restore the planned ``jobs`` on Ray; like the local CLI, 1 when some input failed, else 0."""
    ray = _ray()
    import torch

    from ..io.image import remove_stale_temp_files
    from ..tools.restore_cli import load_restorer
    from ..tools.restore_jobs import UserError

    threads = args.threads or torch.get_num_threads()  # what the local CLI would use on this machine
    if args.address and not ray.is_initialized():
        _check_address(args.address)
    load_restorer(args)  # here first: a model that cannot be had is one line, before any cluster work
    for folder in {j.dst.parent for j in jobs}:  # what a killed earlier run left half-written
        remove_stale_temp_files(folder)
    if not ray.is_initialized():
        quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
        if args.address:
            try:
                ray.init(address=args.address, **quiet)
            except ConnectionError as exc:
                raise UserError(f"--address {args.address}: {exc}") from None
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not args.quiet
    gpus = int(ray.cluster_resources().get("GPU", 0)) if str(args.device).startswith("cuda") else 0
    cpus = int(ray.cluster_resources().get("CPU", 1))
    per_actor = min(threads, cpus)
    actors = max(1, gpus if gpus else cpus // per_actor)
    rows = [  # absolute paths: an actor on another node has another working folder
        dict(
            src=str(j.src.absolute()),
            rel=str(j.rel),
            dst=str(j.dst.absolute()),
            ext=j.ext,
            width=j.size[0] if j.size else 0,
            height=j.size[1] if j.size else 0,
        )
        for j in jobs
    ]
    options = {k: v for k, v in vars(args).items() if k != "func"}
    results = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _Worker,
        fn_constructor_kwargs=dict(options=options, threads=per_actor),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(actors, len(rows))),
        num_cpus=1 if gpus else per_actor,
        num_gpus=1 if gpus else 0,
    )
    failures = 0
    for row in results.iter_rows():  # results stream back as they finish
        if row["status"] != "ok":
            failures += 1
            print(row["message"], file=sys.stderr)
        elif not args.quiet:
            print(row["message"], file=sys.stderr)
    if failures:
        print(f"gfr: {failures} of {len(jobs)} file(s) failed", file=sys.stderr)
        return 1
    return 0
