"""Data-parallel training through ``torchrun`` on the CPU (gloo): two processes with batch B train exactly
what one process trains with batch 2B; rank 0 alone writes; resume with another process count; Ctrl-C stops
every rank after the step, saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import smooth_photo

ROOT = Path(__file__).resolve().parents[1]
PRIOR = ["--size", "16", "--style-dim", "16", "--n-mlp", "2", "--narrow", "0.03125", "--prealigned", "true"]
QUIET = ["--device", "cpu", "--sample-every", "1000", "--ckpt-every", "1000"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faces")
    for i in range(16):
        Image.fromarray(smooth_photo(48, 48, seed=i)).save(d / f"f{i}.png")
    return d


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))


def _train(procs: int, *args: str, popen: bool = False):
    launcher = [sys.executable, "-m", "gfr_core"]
    if procs > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
        launcher += ["-m", "gfr_core"]
    cmd = [*launcher, "train", *args]
    if popen:
        return subprocess.Popen(cmd, env=_env(), cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, text=True)
    res = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _state(run: Path) -> dict:
    return torch.load(run / "state.pt", weights_only=True)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_train_what_one_trains_with_the_doubled_batch(faces, tmp_path):
    common = ["--data", str(faces), *PRIOR, *QUIET, "--steps", "3"]
    one = _train(1, "prior", *common, "--out", str(tmp_path / "one"), "--batch", "8")
    two = _train(2, "prior", *common, "--out", str(tmp_path / "two"), "--batch", "4")
    _train(1, "prior", *common, "--out", str(tmp_path / "half"), "--batch", "4")
    a, b, c = (_state(tmp_path / r) for r in ("one", "two", "half"))
    assert a["step"] == b["step"] == 3 and a["images"] == b["images"] == 24
    for net in ("G", "D", "G_ema"):
        # within float tolerance, and 100x closer than a run with another batch is (the check can fail)
        assert _max_diff(a[net], b[net]) < min(1e-4, _max_diff(a[net], c[net]) / 100), net
    # rank 0 alone speaks and writes; the samples per second of the chunk are printed and recorded
    assert "saved" in two.stdout and two.stdout.count("saved ") == 1 and "over 2 process(es)" in two.stdout
    assert "over 1 process(es)" in one.stdout and "samples/s" in one.stdout
    chunk = json.loads((tmp_path / "two" / "training.json").read_text())["last_chunk"]
    assert chunk["processes"] == 2 and chunk["samples"] == 24 and chunk["samples_per_second"] > 0
    assert not list((tmp_path / "two").glob("*.tmp"))

    # the restorer on that prior, discriminator and feature matching on: the same equality
    rest = ["--data", str(faces), "--prior", str(tmp_path / "one" / "prior.safetensors"), "--zoom", "1.3"]
    rest += ["--prealigned", "true", "--device", "cpu", "--ckpt-every", "1000", "--steps", "3"]
    _train(1, "restorer", *rest, "--out", str(tmp_path / "r1"), "--batch", "8")
    _train(2, "restorer", *rest, "--out", str(tmp_path / "r2"), "--batch", "4")
    a, b = _state(tmp_path / "r1"), _state(tmp_path / "r2")
    for net in ("R", "R_ema", "D"):
        assert _max_diff(a[net], b[net]) < 1e-4, net

    # resume with another process count: two processes continue what one began
    _train(2, "restorer", *rest[:-2], "--steps", "5", "--out", str(tmp_path / "r1"), "--batch", "4")
    st = _state(tmp_path / "r1")
    assert st["step"] == 5 and st["images"] == 3 * 8 + 2 * 8


def test_ctrl_c_stops_every_rank_after_the_step_and_saves(faces, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(faces), *PRIOR, "--device", "cpu", "--batch", "4", "--steps", "100000"]
    proc = _train(2, "prior", *args, "--out", str(out), "--sample-every", "1", "--ckpt-every", "100000", popen=True)
    try:
        deadline = time.time() + 300
        while not list(out.glob("samples-*.png")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert list(out.glob("samples-*.png")), "training did not start"
        assert not (out / "state.pt").exists()  # no periodic save: what follows is the stop's
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the launcher and both ranks get it
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:  # never leave the ranks running past the test
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    st = _state(out)
    record = json.loads((out / "training.json").read_text())
    assert st["step"] >= 1 and record["step"] == st["step"] and st["images"] == 8 * st["step"]
    assert (out / "prior.safetensors").is_file()


def test_too_little_data_for_the_global_batch_is_one_line_on_every_rank(faces, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "gfr_core"]
    cmd += ["train", "prior", "--data", str(faces), *PRIOR, *QUIET, "--steps", "2", "--batch", "16"]
    res = subprocess.run(
        [*cmd, "--out", str(tmp_path / "run")], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode != 0
    line = "16 training faces are fewer than one global batch (16 x 2 processes); use a smaller --batch or more data"
    assert res.stderr.count(line) == 2, res.stderr[-3000:]  # each rank says it, and neither waits for the other
    assert not (tmp_path / "run" / "state.pt").exists()


def test_a_rank_that_fails_does_not_leave_the_others_waiting(faces, tmp_path):
    """Rank 1 fails in its third step while rank 0 waits for it in a collective: the run ends (an error,
    not a hang), because a failing rank leaves the group without waiting at the final barrier."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    import gfr_core.training.prior as prior\n"
        "    real, calls = prior.average_gradients, []\n"
        "    def failing(*args, **kwargs):\n"
        "        calls.append(1)\n"
        "        if len(calls) == 5:\n"
        "            raise RuntimeError('rank 1 fails on purpose')\n"
        "        return real(*args, **kwargs)\n"
        "    prior.average_gradients = failing\n"
    )
    env = dict(_env(), PYTHONPATH=f"{hook}{os.pathsep}{ROOT}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "gfr_core"]
    cmd += ["train", "prior", "--data", str(faces), *PRIOR, *QUIET, "--steps", "50", "--batch", "4"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(tmp_path / "run")],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks, or they would outlive the test
        proc.communicate()
        pytest.fail("the run hung: the failing rank waited at the barrier while the other waited for it")
    assert proc.returncode != 0 and "rank 1 fails on purpose" in err
