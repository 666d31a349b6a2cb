"""Load check of the web app: N concurrent restores, then M sequential ones, with the server's memory.

Usage: ``python benchmarks/app_load.py [--concurrent 16] [--sequential 50]`` (offline, CPU). Starts
``app.py`` on a free port, drives its ``/restore`` endpoint with gradio_client and samples the server's
resident memory (VmRSS, and VmHWM for the peak) from /proc. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrent", type=int, default=16)
    ap.add_argument("--sequential", type=int, default=50)
    ap.add_argument("--photo", default=str(ROOT / "demo" / "examples" / "photo-group.png"))
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        from gradio_client import Client, handle_file

        client = Client(url, verbose=False)

        def restore(_: int) -> str | None:
            try:
                client.predict(handle_file(args.photo), "embedded", 0.0, 2, False, False, False, api_name="/restore")
                return None
            except Exception as exc:  # counted and reported
                return f"{type(exc).__name__}: {exc}"

        restore(0)  # warm-up: models load once
        idle = _rss_mb(server.pid)
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(_rss_mb(server.pid))
                time.sleep(0.2)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrent) as pool:
            errors = [e for e in pool.map(restore, range(args.concurrent)) if e]
        concurrent_s = time.perf_counter() - t0
        stop.set()
        t.join()
        after_concurrent = _rss_mb(server.pid)
        seq = []
        seq_errors = []
        for i in range(args.sequential):
            e = restore(i)
            if e:
                seq_errors.append(e)
            if i % 10 == 9:
                seq.append(round(_rss_mb(server.pid)))
        print(
            json.dumps(
                dict(
                    photo=Path(args.photo).name,
                    idle_rss_mb=round(idle),
                    concurrent=args.concurrent,
                    concurrent_errors=errors,
                    concurrent_wall_s=round(concurrent_s, 1),
                    concurrent_peak_rss_mb=round(max(samples or [after_concurrent])),
                    rss_after_concurrent_mb=round(after_concurrent),
                    sequential=args.sequential,
                    sequential_errors=seq_errors,
                    rss_every_10_sequential_mb=seq,
                    server_peak_rss_mb=round(_rss_mb(server.pid, "VmHWM")),
                ),
                indent=1,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
