"""Steadiness of restored clips (issue #35): `python benchmarks/video_steadiness.py ../shared/data/photos-pd`.

Each sharp photo is moved along a known smooth camera path (gfr_core.video.synth: pan, zoom, rotation), and
every frame is degraded on its own (x2 area downscale, noise sigma 3, JPEG 60). The clip is restored at x2
with --temporal on and off, and scored against the known path and the sharp frames:

* jitter: RMS of the frame-to-frame change of the landmarks used, minus the true path's change (output px):
  how much the crop shakes beyond the camera's own motion;
* flicker: mean temporal standard deviation, over the face region, of (restored - sharp), in grey levels;
* PSNR of the face region against the sharp frames (dB).

`--perfect` adds the perfect 512 px restorer (gfr_core.metrics.oracle): for every frame, the sharp frame aligned
with the very crop transform the pipeline used. Its rows isolate the pipeline's share (crop, paste, mask).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from gfr_core import FaceRestorer, read_image
from gfr_core.face import detect_faces
from gfr_core.metrics.oracle import perfect_restorer
from gfr_core.video import restore_video
from gfr_core.video.synth import make_clip

SCALE = 2


class PerfectClip:
    """Frame after frame (``restore_video`` restores them in order), the perfect restorer of that frame."""

    def __init__(self, sharp: list[np.ndarray], base: FaceRestorer, face_size: int = 512) -> None:
        self.sharp, self.base, self.face_size, self.index = sharp, base, face_size, 0

    def detect(self, rgb: np.ndarray) -> list:
        return self.base.detect(rgb)

    def __call__(self, rgb: np.ndarray, *, upscale: float, fidelity: float, detections: list):
        sharp = self.sharp[self.index]
        self.index += 1
        if not detections:
            return self.base(rgb, upscale=upscale, fidelity=fidelity, detections=[])
        net = perfect_restorer(sharp, rgb, detections, SCALE, self.face_size, 1.0)
        r = FaceRestorer(net, face_size=self.face_size, name="perfect")
        return r(rgb, upscale=upscale, fidelity=fidelity, detections=detections)


def score(
    photo: np.ndarray,
    restorer: FaceRestorer,
    temporal: bool,
    frames: int,
    *,
    sigma: float = 5.0,
    detect_every: int = 2,
    perfect: bool = False,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        maps, sharp = make_clip(photo, Path(d) / "in.mp4", frames=frames, fps=12, scale=SCALE, audio=False)
        used: dict[int, np.ndarray] = {}
        outs: list[np.ndarray] = []
        restore_video(
            PerfectClip(sharp, restorer) if perfect else restorer,
            Path(d) / "in.mp4",
            Path(d) / "out.mp4",
            upscale=SCALE,
            temporal=temporal,
            sigma=sigma,
            detect_every=detect_every,
            on_frame=lambda i, res: (
                used.__setitem__(i, res.faces[0].landmarks * SCALE) if res.faces else None,
                outs.append(res.image),
            ),
        )
    lm = detect_faces(photo, score_threshold=0.95)[0].landmarks
    truth = np.stack([np.c_[lm, np.ones(5)] @ m.T for m in maps])  # in sharp-frame (= output) pixels
    idx = sorted(i for i in used if i + 1 in used)
    moves = [(used[i + 1] - used[i]) - (truth[i + 1] - truth[i]) for i in idx]
    jitter = float(np.sqrt(np.mean(np.square(moves))))
    (x0, y0), (x1, y1) = truth[:, :, :].min((0, 1)).astype(int), truth.max((0, 1)).astype(int)
    pad = int(0.4 * (x1 - x0))
    box = (slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad))
    diff = np.stack([o[box].astype(np.float32) - s[box].astype(np.float32) for o, s in zip(outs, sharp)])
    mse = float(np.mean(diff**2))
    return dict(
        jitter=jitter,
        flicker=float(diff.std(0).mean()),
        psnr=10 * np.log10(255**2 / mse),
        detected=len(used) / len(outs),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--sigma", type=float, default=5.0, help="temporal smoothing, frames")
    ap.add_argument("--detect-every", type=int, default=2)
    ap.add_argument("--perfect", action="store_true", help="also the perfect 512 px restorer (the pipeline's share)")
    args = ap.parse_args()
    restorer = FaceRestorer.from_pretrained(args.model)
    print("| photo | restorer | temporal | jitter px | flicker levels | face PSNR dB | frames with a face |")
    print("|---|---|---|---:|---:|---:|---:|")
    kinds = [args.model, "perfect 512"] if args.perfect else [args.model]
    rows = {(k, m): [] for k in kinds for m in ("on", "off")}
    for f in sorted(args.photos.glob("*.jpg")):
        photo = read_image(f).rgb
        photo = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        for kind, mode in rows:
            s = score(
                photo,
                restorer,
                mode == "on",
                args.frames,
                sigma=args.sigma,
                detect_every=args.detect_every,
                perfect=kind != args.model,
            )
            rows[kind, mode].append(s)
            print(
                f"| {f.name} | {kind} | {mode} | {s['jitter']:.2f} | {s['flicker']:.2f} | {s['psnr']:.2f} "
                f"| {s['detected']:.0%} |",
                flush=True,
            )
    for (kind, mode), rs in rows.items():
        m = {k: np.mean([r[k] for r in rs]) for k in rs[0]}
        print(
            f"| **mean** | {kind} | {mode} | {m['jitter']:.2f} | {m['flicker']:.2f} | {m['psnr']:.2f} "
            f"| {m['detected']:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
