"""Make the app's example images from the project's own prior: ``python -m demo.make_examples``.

Faces are sampled from ``embedded-prior`` (no photo of a real person is used), kept only where the MTCNN
detector finds them, composed into photos on a soft background, and degraded with ``gfr_core.degrade``.
Outputs: ``demo/examples/photo-*.png`` (degraded photos) and ``clean-*.png`` (clean faces for the lab).

``--photos DIR`` also degrades the public-domain photographs there (x4 area downscale, JPEG 60) into
``real-*.jpg`` examples, and writes ``before-after.png`` (bicubic | gfr | original face crops) for the README.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from gfr_core import analysis as an
from gfr_core import degrade as dg
from gfr_core import load_model, write_image
from gfr_core.face import detect_faces, face_mask

OUT = Path(__file__).resolve().parent / "examples"


def detectable_faces(n: int, *, psi: float = 0.7, scale: int = 2, first_seed: int = 0) -> list[np.ndarray]:
    """``n`` sampled faces, upscaled ``scale`` x, that the detector finds."""
    G = load_model("embedded-prior")
    faces: list[np.ndarray] = []
    seed = first_seed
    while len(faces) < n and seed < first_seed + 400:
        img = an.synthesize(G, an.sample_latents(G, [seed], psi=psi))[0]
        big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        if detect_faces(big, score_threshold=0.95):
            faces.append(big)
        seed += 1
    return faces


def compose(faces: list[np.ndarray], positions: list[tuple[int, int]], size: tuple[int, int], seed: int) -> np.ndarray:
    """Blend faces into a smooth background with feathered edges."""
    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    c0, c1 = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    canvas = (c0 * (1 - x[..., None]) + c1 * y[..., None]).clip(0, 255)
    for f, (cx, cy) in zip(faces, positions):
        s = f.shape[0]
        m = face_mask(s, feather=0.2)[..., None]
        y0, x0 = cy - s // 2, cx - s // 2
        canvas[y0 : y0 + s, x0 : x0 + s] = m * f + (1 - m) * canvas[y0 : y0 + s, x0 : x0 + s]
    return canvas.round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--photos", help="folder of sharp public-domain photos (../shared/data/photos-pd)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces = detectable_faces(8)
    if len(faces) < 5:
        raise SystemExit(f"only {len(faces)} detectable samples; the prior is not good enough for examples")
    s = faces[0].shape[0]
    group = compose(
        faces[:4],
        [(s // 2 + 10 + i * (s + 20), s // 2 + 20 + (i % 2) * 30) for i in range(4)],
        (s + 80, 4 * (s + 20) + 20),
        seed=1,
    )
    single = compose(faces[4:5], [(s, s)], (2 * s, 2 * s), seed=2)
    for name, img, seed in (("photo-group.png", group, 0), ("photo-single.png", single, 1)):
        rng = np.random.default_rng(seed)
        lq = dg.jpeg(dg.add_gaussian_noise(dg.gaussian_blur(img, 1.2), 4.0, rng), 70)
        write_image(out / name, lq, overwrite=True)
    for i, f in enumerate(faces[5:8]):
        write_image(
            out / f"clean-{i}.png",
            compose([f], [(s // 2 + 16, s // 2 + 16)], (s + 32, s + 32), seed=10 + i),
            overwrite=True,
        )
    if args.photos:
        real_examples(Path(args.photos), out)
    print(f"wrote examples to {out}")


def real_examples(folder: Path, out: Path) -> None:
    """Degraded copies of sharp public-domain photos, and a before/after strip of their faces."""
    from gfr_core import FaceRestorer, read_image
    from gfr_core.metrics.photo import Degradation, degrade_photo

    d = Degradation("x4-q60", 4, 60)
    restorer = FaceRestorer.from_pretrained("embedded")
    for name in ("obama3.jpg", "obama.jpg"):
        lq = degrade_photo(read_image(folder / name).rgb, d)
        write_image(out / f"real-{Path(name).stem}-x4.jpg", lq, overwrite=True, quality=95)
    before_after(folder, out, restorer)
    real_faces(folder, out)


def real_faces(folder: Path, out: Path) -> None:
    """``face-*.png``: the faces of the sharp public-domain photos, 256 px, for the degradation lab."""
    from gfr_core import read_image
    from gfr_core.face import detect_faces

    for name in ("obama.jpg", "obama3.jpg", "biden.jpg"):
        rgb = read_image(folder / name).rgb
        det = detect_faces(rgb, score_threshold=0.99)[0]
        (x0, y0, x1, y1), side = det.box, 1.8 * det.size
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        crop = rgb[b : b + int(side), a : a + int(side)]
        write_image(
            out / f"face-{Path(name).stem}.png",
            cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA),
            overwrite=True,
        )


def before_after(folder: Path, out: Path, restorer) -> None:
    """``before-after.png``: where the bundled 64 px model visibly helps. Each sharp photo is first reduced
    so that its face is ~150 px (its x4 copy ~37 px: where the 64 px crop helps), then degraded (x4 area downscale,
    JPEG 60) and restored at x4: bicubic | gfr | the reduced original, enlarged for display."""
    from gfr_core import read_image
    from gfr_core.metrics.photo import Degradation, degrade_photo

    d = Degradation("x4-q60", 4, 60)
    strips = []
    for name in ("obama-1080p.jpg", "obama3.jpg"):
        rgb = read_image(folder / name).rgb
        rgb = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        lq = degrade_photo(rgb, d)
        res = restorer(lq, upscale=d.scale)
        bic = cv2.resize(lq, (res.image.shape[1], res.image.shape[0]), interpolation=cv2.INTER_CUBIC)
        x0, y0, x1, y1 = res.faces[0].box * d.scale
        side = int(min(1.25 * max(x1 - x0, y1 - y0), *bic.shape[:2]))  # one square tile size for every row
        a = int(np.clip((x0 + x1 - side) / 2, 0, bic.shape[1] - side))  # kept inside the photo
        b = int(np.clip((y0 + y1 - side) / 2, 0, bic.shape[0] - side))
        crops = [im[b : b + side, a : a + side] for im in (bic, res.image, rgb[: bic.shape[0], : bic.shape[1]])]
        strips.append(np.concatenate([cv2.resize(c, (320, 320), interpolation=cv2.INTER_CUBIC) for c in crops], 1))
    write_image(out / "before-after.png", np.concatenate(strips, 0), overwrite=True)


if __name__ == "__main__":
    main()
