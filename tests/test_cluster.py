"""``gfr restore --engine ray`` (issue #36, part 3) on a local Ray: the same bytes as the local CLI for 20
photos, and a run killed half-way finishes the rest on restart without redoing what was finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from PIL import Image

from gfr_core import read_image

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "tests" / "fixtures" / "photos-pd").glob("*.jpg")) + sorted(
    (ROOT / "demo" / "examples").glob("photo-*.png")
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """20 photos with faces, of several sizes and formats, some in a subfolder."""
    root = tmp_path_factory.mktemp("archive")
    n = 0
    for scale in (0.25, 0.35, 0.5, 0.7):
        for src in SOURCES:
            if n == 20:
                break
            img = read_image(src).rgb
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            sub = root / ("b" if n % 3 == 0 else "")
            sub.mkdir(exist_ok=True)
            Image.fromarray(small).save(sub / f"p{n:02d}{src.suffix}")  # not gfr's writer: inputs, not outputs
            n += 1
    assert n == 20
    return root


def _gfr(*args: str, popen: bool = False, quiet: bool = True):
    cmd = [sys.executable, "-m", "gfr_core", "restore", *args, "--model", "embedded"] + (["-q"] if quiet else [])
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    if popen:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE, text=True)
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def local(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    _gfr(str(photos), "-o", str(out))
    return out


def test_ray_writes_the_local_clis_bytes(photos, local, tmp_path):
    out = tmp_path / "ray"
    err = _gfr(str(photos), "-o", str(out), "--engine", "ray", quiet=False).stderr
    # #41.34: a normal run says what it did, with a bar counting files, and none of Ray's own noise
    assert "Token authentication" not in err and "core_worker.cc" not in err and "WARNING" not in err, err
    assert "20/20" in err and "file/s" in err and err.count(" face(s) -> ") == 20
    want, got = _files(local), _files(out)
    assert len(want) == 20 and sorted(got) == sorted(want)  # the same names, nothing else (no temporary file)
    assert [k for k in want if got[k] != want[k]] == []  # byte for byte


def test_a_killed_ray_run_resumes_without_redoing_finished_outputs(photos, local, tmp_path):
    out = tmp_path / "ray"
    proc = _gfr(str(photos), "-o", str(out), "--engine", "ray", popen=True)
    deadline = time.time() + 300
    while len([p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]) < 5:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, "no progress"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray
    proc.wait(timeout=60)
    session = f"_{proc.pid}"  # Ray names a local session's folder after its driver: session_<date>_<pid>

    def helpers() -> list[str]:  # the killed run's Ray processes still alive
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "/ray/session_" in cmd and f"{session} " in cmd.replace("/", " ") + " ":
                found.append(cmd[:120])
        return found

    deadline = time.time() + 30
    while helpers() and time.time() < deadline:  # #41.28: the agents ended with the driver, not orphaned
        time.sleep(0.5)
    assert helpers() == []

    def published() -> dict[Path, tuple[int, int]]:
        files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}

    finished, quiet_since = published(), time.time()
    while time.time() - quiet_since < 5:  # an actor may publish the photo it was on before Ray reaps it
        time.sleep(0.5)
        if published() != finished:
            finished, quiet_since = published(), time.time()
    assert 5 <= len(finished) < 20, len(finished)
    res = _gfr(str(photos), "-o", str(out), "--engine", "ray", "--skip-existing")
    assert f"{len(finished)} of 20 already restored, skipped (--skip-existing)" in res.stderr
    for p, v in finished.items():  # not redone: the very same files
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == v, p
    assert _files(out) == _files(local)  # complete, byte-identical, and no temporary file left


def test_an_address_where_no_cluster_answers_is_one_line_at_once(photos, tmp_path):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "gfr_core", "restore", str(photos), "-o", str(tmp_path / "out"), "--engine", "ray"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    t = time.time()
    res = subprocess.run([*cmd, "--address", f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and time.time() - t < 60  # not Ray's minutes of retries
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers there" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([*cmd, "--save-faces"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--save-faces is not available with --engine ray" in res.stderr
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
