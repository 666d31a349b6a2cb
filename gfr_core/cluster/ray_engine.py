"""``gfr restore SRC -o OUT --engine ray [--address ADDR]``: the same restoration, on a Ray cluster.

The planned jobs (names, skips and refusals decided exactly as the local CLI decides them) become a Ray
Dataset; a pool of actors, each loading the model once, reads every input lazily and runs the per-photo
pipeline of :mod:`gfr_core.jobs` on it, writing through the same never-overwrite publish.
The output folder must be one that every node sees (a shared filesystem). With ``--skip-existing``,
outputs that exist are skipped, so a killed run resumes where it stopped. Each actor runs torch with as many threads as the local CLI
would on its machine, so that on one machine the outputs are byte-identical to the local CLI's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
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
        from ..jobs import UserError

        raise UserError("--engine ray needs Ray Data: pip install -e '.[cluster]'") from None
    return ray


class _Worker:
    """A Ray actor: the restorer, loaded once, applied to batches of planned jobs."""

    def __init__(self, options: dict[str, Any], threads: int) -> None:
        import torch

        from ..jobs import load_restorer

        torch.set_num_threads(threads)
        self.args = argparse.Namespace(**options)
        self.args.quiet = True
        self.restorer = load_restorer(self.args)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..jobs import Job, job_error, restore_clip_job, restore_photo_job

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

    from ..jobs import UserError

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


_WATCHDOG = """
import os, signal, sys, time
session = sys.argv[1]
sys.stdin.buffer.read()  # returns when the driver's end of the pipe closes: its exit, however it ended
time.sleep(1)  # a driver that exits cleanly stops its Ray itself
def left():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if session.encode() in f.read() and int(pid) != os.getpid():
                    yield int(pid)
        except OSError:
            pass
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pid in left():
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    time.sleep(2)
"""
"""A process that outlives the driver of a local Ray and ends the helpers of its session when the driver
ends, however it ends (SIGKILL too): Ray's dashboard and runtime-env agents otherwise stay orphaned."""


_WATCHDOGS: list = []
"""The watchdogs this process started: each holds its pipe's write end open while the driver lives."""


def _end_with_driver(ray) -> None:
    """Start the watchdog (:data:`_WATCHDOG`) of the local Ray this process has just started (Linux: it reads
    ``/proc``; elsewhere `ray stop` ends what a killed run left)."""
    import subprocess

    node = getattr(ray._private.worker.global_worker, "node", None)
    session = node.get_session_dir_path() if node is not None else None
    if not session or not Path("/proc/self/cmdline").exists():
        return
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, session],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives a kill of the driver's whole process group
    )
    _WATCHDOGS.append(watchdog)  # the pipe stays open, held by this process, until it ends


def restore_on_ray(jobs: list, args: argparse.Namespace) -> int:
    """Restore the planned ``jobs`` on Ray; like the local CLI, 1 when some input failed, else 0."""
    ray = _ray()
    import torch

    from ..io.image import remove_stale_temp_files
    from ..jobs import UserError, load_restorer

    threads = args.threads or torch.get_num_threads()  # what the local CLI would use on this machine
    if args.address and not ray.is_initialized():
        _check_address(args.address)
    load_restorer(args)  # here first: a model that cannot be had is one line, before any cluster work
    for folder in {j.dst.parent for j in jobs}:  # what a killed earlier run left half-written
        remove_stale_temp_files(folder)
    if not ray.is_initialized():
        quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
        # its note that token authentication is on (it stays on) is not the user's business on a normal run
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        if args.address:
            try:
                ray.init(address=args.address, **quiet)
            except ConnectionError as exc:
                raise UserError(f"--address {args.address}: {exc}") from None
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
            _end_with_driver(ray)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes (progress bars off, ...) are not the user's
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # gfr's own bar below counts the files
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
    with warnings.catch_warnings():  # max_restarts has no named parameter yet; Ray's own code passes it so
        warnings.filterwarnings("ignore", message=r".*ray_remote_args.* is deprecated")
        results = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Worker,
            fn_constructor_kwargs=dict(options=options, threads=per_actor),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(rows))),
            num_cpus=1 if gpus else per_actor,
            num_gpus=1 if gpus else 0,
            max_restarts=0,  # a failed actor fails the run (restarts also made Ray log an error line each run)
        )
    from tqdm import tqdm

    failures = 0
    with tqdm(total=len(jobs), unit="file", disable=args.quiet, file=sys.stderr) as bar:
        for row in results.iter_rows():  # results stream back as they finish
            if row["status"] != "ok":
                failures += 1
                tqdm.write(row["message"], file=sys.stderr)
            elif not args.quiet:
                tqdm.write(row["message"], file=sys.stderr)
            bar.update()
    if failures:
        print(f"gfr: {failures} of {len(jobs)} file(s) failed", file=sys.stderr)
        return 1
    return 0
