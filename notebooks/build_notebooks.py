"""Write (and optionally execute) the analysis notebooks: ``python notebooks/build_notebooks.py --execute``.

The cells live here so that they are reviewed as code; the committed ``.ipynb`` files carry the executed
outputs (figures and tables computed from the embedded models). Set ``GFR_NB_FAST=1`` for the quick
configuration CI uses: every figure is still computed, on fewer samples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
# Configuration: the models analysed. Offline these are the bundled embedded models; with the Hub
# reachable, set e.g. RESTORER = "gfpgan-v1.4" and PRIOR = "stylegan2-ffhq-512".
import os
PRIOR = "embedded-prior"
RESTORER = "embedded"
DATA = "../../shared/data/faces128-lfw-val.tar"   # real faces, val split (never trained on)
FAST = os.environ.get("GFR_NB_FAST") == "1"   # CI: fewer samples, same figures

import warnings
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto (in facenet-pytorch, huggingface_hub) without ipywidgets
import numpy as np
import torch
import matplotlib.pyplot as plt
%matplotlib inline
from IPython.display import display
import gfr_core
from gfr_core import FaceRestorer, load_model, analysis as an, degrade as dg, evaluate as ev

torch.manual_seed(0)
torch.set_num_threads(max(1, os.cpu_count() or 1))
G = load_model(PRIOR)
restorer = FaceRestorer.from_pretrained(RESTORER)
S, ZOOM = restorer.face_size, restorer.crop_zoom
print(f"prior {PRIOR}: {G.size}px, {G.num_ws} latents of {G.style_dim}-d; restorer {RESTORER}: {S}px")

def show(img, title, caption=None, size=8):
    fig, ax = plt.subplots(figsize=(size, size * img.shape[0] / img.shape[1]))
    ax.imshow(img); ax.set_axis_off(); ax.set_title(title)
    if caption:
        fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=9, wrap=True)
    plt.show()

def val_faces(n):
    """Real faces from the val split (aligned like the pipeline), or prior samples when the data is absent."""
    try:
        faces, _ = ev.load_eval_faces(DATA, size=S, zoom=ZOOM, limit=n)
        return faces, "val split"
    except FileNotFoundError:
        return an.synthesize(G, an.sample_latents(G, list(range(1000, 1000 + n)), psi=0.8)), "prior samples (no data)"
'''


def nb_latents() -> list:
    return [
        new_markdown_cell(
            "# 01 · Latent codes of the facial prior\n\nHow StyleGAN2's Z and W spaces differ, where the w+ codes a "
            "restorer predicts for real degraded faces sit relative to the prior, and which directions of W "
            "change a face."
        ),
        new_code_cell(SETUP),
        new_markdown_cell(
            "## Samples and the truncation trick\nψ interpolates each w towards the mean latent w̄: ψ=0 gives the "
            "mean face, ψ=1 the untruncated distribution."
        ),
        new_code_cell("""\
seeds = list(range(6))
psis = [0.0, 0.25, 0.5, 0.75, 1.0]
rows = [an.synthesize(G, an.sample_latents(G, seeds, psi=p)) for p in psis]
grid = an.tile(np.concatenate(rows), len(seeds))
show(grid, "Truncation sweep: rows ψ = " + ", ".join(map(str, psis)),
     "Each column is one seed. Look at how variety (pose, colour, identity) collapses to the mean face as ψ→0.")
mean_face = an.synthesize(G, G.broadcast(G.w_avg[None]))[0]
show(mean_face, "The mean latent w̄ rendered", size=3)"""),
        new_markdown_cell(
            "## The distribution of W versus Z\nZ is an isotropic Gaussian; the mapping network warps it. "
            "W is far from isotropic: a few principal directions carry most of its variance."
        ),
        new_code_cell("""\
n = 512 if FAST else 4096
z = torch.randn(n, G.style_dim, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    w = G.map(z)
def pca(x):
    x = x - x.mean(0)
    u, s, v = torch.linalg.svd(x, full_matrices=False)
    return (s**2 / (s**2).sum()).numpy(), (x @ v[:2].T).numpy()
ev_z, pz = pca(z); ev_w, pw = pca(w)
fig, ax = plt.subplots(1, 3, figsize=(15, 4))
ax[0].hist(z.norm(dim=1).numpy(), 50, alpha=.6, label="|z|"); ax[0].hist((w - w.mean(0)).norm(dim=1).numpy(), 50, alpha=.6, label="|w − mean(w)|")
ax[0].set_xlabel("norm"); ax[0].set_ylabel("count"); ax[0].legend(); ax[0].set_title("Norms")
k = 32
ax[1].plot(np.cumsum(ev_z[:k]), "o-", label="Z"); ax[1].plot(np.cumsum(ev_w[:k]), "o-", label="W")
ax[1].set_xlabel("principal components"); ax[1].set_ylabel("cumulative explained variance"); ax[1].legend(); ax[1].set_title("PCA spectrum")
ax[2].scatter(pz[:, 0], pz[:, 1], s=3, alpha=.4, label="Z"); ax[2].scatter(pw[:, 0] / pw.std(), pw[:, 1] / pw.std(), s=3, alpha=.4, label="W (scaled)")
ax[2].set_xlabel("PC1"); ax[2].set_ylabel("PC2"); ax[2].legend(); ax[2].set_title("2-D PCA")
plt.suptitle("Z vs W: W concentrates its variance in few directions"); plt.show()
print(f"variance in the top 10 PCs: Z {ev_z[:10].sum():.1%}, W {ev_w[:10].sum():.1%}")"""),
        new_markdown_cell(
            "## Where restored faces sit: predicted w+ against the prior's W\nFor degraded faces, the "
            "restorer's U-Net predicts one w per layer. We measure each layer's distance to the W "
            "distribution in units of the typical distance of a real w sample (1.0 = as far as a typical sample)."
        ),
        new_code_cell("""\
faces, source = val_faces(48 if FAST else 256)
lq = np.stack([dg.degrade(f, np.random.default_rng(i)) for i, f in enumerate(faces)])
wp = an.predicted_latents(restorer.model, lq)                    # (N, num_ws, D)
mu = w.mean(0)
typical = (w - mu).norm(dim=1).median()
dist = ((wp - mu).norm(dim=2) / typical).numpy()                 # (N, num_ws)
res = an.latent_resolutions(wp.shape[1])
fig, ax = plt.subplots(figsize=(10, 4))
ax.boxplot(dist, showfliers=False); ax.axhline(1.0, color="gray", ls="--", label="typical prior sample")
ax.set_xticks(range(1, len(res) + 1), [f"w{i}\\n{r}px" for i, r in enumerate(res)])
ax.set_ylabel("distance to mean(W) / typical"); ax.legend()
ax.set_title(f"Predicted w+ per layer for degraded faces ({source}, n={len(faces)})")
plt.show()
print("median distance per layer:", np.round(np.median(dist, 0), 2))"""),
        new_markdown_cell(
            "## Interpolation in W versus Z\nLinear paths in W, spherical paths in Z. The mean pixel change "
            "between consecutive frames shows how evenly each path moves through image space."
        ),
        new_code_cell("""\
pairs = [(1, 2), (3, 4)] if FAST else [(1, 2), (3, 4), (5, 6), (7, 8)]
steps = 8
fig, ax = plt.subplots(len(pairs), 1, figsize=(12, 2.2 * len(pairs)))
changes = {"w": [], "z": []}
for r, (a, b) in enumerate(pairs):
    fw = an.interpolate(G, a, b, steps=steps, space="w"); fz = an.interpolate(G, a, b, steps=steps, space="z")
    ax[r].imshow(an.tile(np.concatenate([fw, fz]), steps)); ax[r].set_axis_off(); ax[r].set_title(f"seeds {a}→{b}: top W (linear), bottom Z (slerp)")
    for k, f in (("w", fw), ("z", fz)):
        changes[k].append(np.abs(np.diff(f.astype(float), axis=0)).mean(axis=(1, 2, 3)))
plt.show()
for k in changes:
    c = np.array(changes[k]); print(f"{k}: step-to-step pixel change mean {c.mean():.2f}, unevenness (std/mean) {c.std(1).mean() / c.mean():.2f}")"""),
        new_markdown_cell(
            "## Principal directions of the style affines (SeFa)\nThe eigenvectors of AᵀA, where A stacks the "
            "style affines of every layer, are the directions in W that change the generated image most. "
            "Applied to samples, and to restored faces through the restorer's decoder."
        ),
        new_code_cell("""\
vals, dirs = an.sefa_directions(G)
strengths = [-3, -1.5, 0, 1.5, 3]
base = an.sample_latents(G, [11], psi=0.7)
rows = []
for k in range(3):
    rows.append(an.synthesize(G, torch.cat([an.apply_direction(base, dirs[k], s * float(typical) / 3) for s in strengths])))
show(an.tile(np.concatenate(rows), len(strengths)), "SeFa directions 1-3 on a sample (columns: strength −3…+3)",
     "Each row moves along one closed-form direction; the middle column is the unedited sample.")
dec = restorer.model.stylegan_decoder if hasattr(restorer.model, "stylegan_decoder") else restorer.model.generator
vals_r, dirs_r = an.sefa_directions(dec)
wr = an.predicted_latents(restorer.model, lq[:1])
rows = [an.synthesize(dec, torch.cat([an.apply_direction(wr, dirs_r[k], s * float(typical) / 3) for s in strengths])) for k in range(3)]
show(an.tile(np.concatenate(rows), len(strengths)), "The same edit on a restored face's w+ (bare decoder, no SFT)",
     "The restorer's predicted code lives in the decoder's W space, so prior directions transfer to restored faces.")
plt.figure(figsize=(6, 3)); plt.semilogy(vals[:20].numpy(), "o-"); plt.xlabel("direction"); plt.ylabel("eigenvalue"); plt.title("SeFa spectrum"); plt.show()"""),
    ]


def nb_mixing() -> list:
    return [
        new_markdown_cell(
            "# 02 · Style mixing\n\nWhat the coarse (4–8 px), middle (16–32 px) and fine (≥64 px) layers of the "
            "prior control, for samples and for the latents of restored faces."
        ),
        new_code_cell(SETUP),
        new_code_cell("""\
groups = an.layer_groups(G.num_ws)
print({k: list(v) for k, v in groups.items()})
n = 3 if FAST else 4
rows = an.sample_latents(G, list(range(0, n)), psi=0.7)
cols = an.sample_latents(G, list(range(100, 100 + n)), psi=0.7)
for name, layers in groups.items():
    if len(layers):
        show(an.style_mixing_grid(G, rows, cols, layers), f"Samples: {name} styles ({list(layers)}) from the top row",
             "Rows keep their own styles except the named group, copied from the column's sample (top row / left column are the sources).", size=6)"""),
        new_markdown_cell("## Mixing the latents of restored faces"),
        new_code_cell("""\
faces, source = val_faces(8)
lq = np.stack([dg.degrade(f, np.random.default_rng(i)) for i, f in enumerate(faces)])
dec = restorer.model.stylegan_decoder if hasattr(restorer.model, "stylegan_decoder") else restorer.model.generator
wr = an.predicted_latents(restorer.model, lq)
for name, layers in groups.items():
    if len(layers):
        show(an.style_mixing_grid(dec, wr[:n], wr[n:2 * n], layers), f"Restored faces ({source}): {name} styles swapped",
             "Latents predicted by the restorer, rendered by its decoder without SFT, mixed like samples.", size=6)"""),
        new_markdown_cell(
            "## What each layer group controls, measured\nFor pairs of samples, replace one group of A's "
            "latents by B's and measure the mean absolute pixel change (0–255), globally and in the face centre."
        ),
        new_code_cell("""\
m = 24 if FAST else 128
A = an.sample_latents(G, list(range(2000, 2000 + m)), psi=0.8); B = an.sample_latents(G, list(range(3000, 3000 + m)), psi=0.8)
ia = an.synthesize(G, A).astype(float)
c = slice(G.size // 4, 3 * G.size // 4)
result = {}
for name, layers in groups.items():
    if not len(layers):
        continue
    mixed = A.clone(); mixed[:, list(layers)] = B[:, list(layers)]
    im = an.synthesize(G, mixed).astype(float)
    d = np.abs(im - ia)
    result[name] = (d.mean(axis=(1, 2, 3)), d[:, c, c].mean(axis=(1, 2, 3)), np.abs(im.mean((1, 2)) - ia.mean((1, 2))).mean(1))
fig, ax = plt.subplots(figsize=(8, 4))
x = np.arange(len(result)); wd = 0.27
for j, label in enumerate(["whole image", "face centre", "mean colour shift"]):
    vals_ = [result[k][j] for k in result]
    ax.bar(x + (j - 1) * wd, [v.mean() for v in vals_], wd, yerr=[v.std() / np.sqrt(len(v)) for v in vals_], label=label)
ax.set_xticks(x, list(result)); ax.set_ylabel("mean |Δpixel| (0–255)"); ax.legend()
ax.set_title(f"Pixel change when one layer group is swapped (n={m} pairs, ±s.e.)"); plt.show()
for k, v in result.items():
    print(f"{k:>6}: whole {v[0].mean():.1f}, centre {v[1].mean():.1f}, colour {v[2].mean():.1f}")"""),
    ]


def nb_ablations() -> list:
    return [
        new_markdown_cell(
            "# 03 · What the prior contributes: ablations\n\nThe same degraded faces restored by the full model, "
            "by the model with its SFT conditions switched off (latents only), with the latents replaced by "
            "the mean latent (spatial features only), with a randomly initialised decoder, and by the same "
            "architecture trained without the prior. Then the fidelity control swept from 0 to 1."
        ),
        new_code_cell(SETUP),
        new_code_cell("""\
from gfr_core import get_card, list_models
faces, source = val_faces(32 if FAST else 200)
lq = np.stack([dg.degrade(f, np.random.default_rng((0, i))) for i, f in enumerate(faces)])
outs = {"bicubic (input)": lq}
for v in ["full", "no_sft", "mean_latent", "random_decoder"]:
    outs[v] = an.ablation_outputs(restorer.model, lq, v)
noprior = "embedded-noprior" if RESTORER == "embedded" and "embedded-noprior" in list_models() else None
if noprior:
    outs["trained without prior"] = FaceRestorer.from_pretrained(noprior).restore_faces(lq)
def lmd_of(imgs):
    gts = [ev.face_landmarks(f) for f in faces]
    d = [ev.landmark_distance(o, g, zoom=ZOOM) for o, g in zip(imgs, gts) if g is not None]
    return float(np.mean(d)), len(d)
rows = []
for name, imgs in outs.items():
    l, nl = lmd_of(imgs)
    rows.append((name, np.mean([ev.psnr(a, b) for a, b in zip(imgs, faces)]), np.mean([ev.ssim(a, b) for a, b in zip(imgs, faces)]), l))
import pandas as pd
table = pd.DataFrame(rows, columns=["variant", "PSNR dB", "SSIM", "LMD px"]).set_index("variant")
print(f"{len(faces)} faces ({source}), degradation preset 'gfpgan', seed 0")
display(table.round(3))"""),
        new_code_cell("""\
k = 6
names = list(outs)
grid = np.concatenate([faces[:k]] + [outs[n][:k] for n in names])
show(an.tile(grid, k), "Rows: clean, " + ", ".join(names),
     "Look at how much of each face survives: without SFT only the predicted latents drive the prior; with the mean latent only the spatial SFT path does; a random decoder removes the learned prior. The table above gives the numbers.", size=9)"""),
        new_markdown_cell(
            "## The fidelity control\n0: the model's output · 1: the input face · linear in between "
            "(the bare prior is studied above, not behind this knob)."
        ),
        new_code_cell("""\
fids = [0.0, 0.25, 0.5, 0.75, 1.0]
sweep = {f: restorer.restore_faces(lq, fidelity=f) for f in fids}
ps = [np.mean([ev.psnr(a, b) for a, b in zip(sweep[f], faces)]) for f in fids]
dist_in = [np.abs(sweep[f].astype(float) - lq).mean() for f in fids]
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
ax[0].plot(fids, ps, "o-"); ax[0].set_xlabel("fidelity"); ax[0].set_ylabel("PSNR vs clean (dB)"); ax[0].set_title("Quality against the clean face")
ax[1].plot(fids, dist_in, "o-", color="C1"); ax[1].set_xlabel("fidelity"); ax[1].set_ylabel("mean |output − input|"); ax[1].set_title("Distance from the degraded input")
plt.show()
show(an.tile(np.concatenate([sweep[f][:4] for f in fids]), 4), "Fidelity 0 → 1 (rows)", size=5)"""),
    ]


def nb_robustness() -> list:
    return [
        new_markdown_cell(
            "# 04 · Robustness to each degradation\n\nPSNR and SSIM as one degradation at a time grows, for every "
            "available restorer and the bicubic baseline. Bands are ± one standard error over faces."
        ),
        new_code_cell(SETUP),
        new_code_cell("""\
from gfr_core import get_card, is_cached, list_models
names = [n for n in list_models("restore") if is_cached(get_card(n)) and get_card(n).face_size == S and get_card(n).crop_zoom == ZOOM]
restorers = {n: FaceRestorer.from_pretrained(n) for n in names}
faces, source = val_faces(24 if FAST else 128)
sweeps = {"blur": [0, 2, 4, 8, 12], "downsample": [1, 2, 4, 6, 8], "noise": [0, 5, 10, 20, 30], "jpeg": [95, 70, 50, 30, 10]}
labels = {"blur": "blur σ (px at 512)", "downsample": "downsample factor", "noise": "noise σ (0–255)", "jpeg": "JPEG quality"}
results = {f: ev.degradation_sweep(restorers, faces, f, v) for f, v in sweeps.items()}
print(f"models: {names}; {len(faces)} faces ({source})")"""),
        new_code_cell("""\
for metric in ["psnr", "ssim"]:
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    for ax, (f, vals) in zip(axes, sweeps.items()):
        for name, r in results[f].items():
            m = r[metric].mean(1); se = r[metric].std(1) / np.sqrt(r[metric].shape[1])
            ax.plot(vals, m, "o-", label=name); ax.fill_between(vals, m - se, m + se, alpha=0.25)
        ax.set_xlabel(labels[f]); ax.set_ylabel(metric.upper()); ax.set_title(f"{metric.upper()} vs {f}")
    axes[0].legend()
    plt.suptitle(f"{metric.upper()} against the clean face, one degradation at a time"); plt.tight_layout(); plt.show()"""),
        new_markdown_cell(
            "## The pipeline's ceiling: a perfect restorer\n\nHow much of a model's gain reaches the photo? A *perfect* "
            "restorer returns, for each aligned crop of a degraded photo, the sharp photo aligned with the same "
            "transform. Pasted through gfr's composition and through the official GFPGAN-style paste (bilinear warp "
            "back, eroded square mask), beside bicubic and the restorer above, it splits every loss into the model's "
            "and the paste's (`gfr eval-photos DIR --oracle 512`). Face PSNR gain over bicubic, central 80 % of each "
            "face box, on the public-domain photographs degraded five ways."
        ),
        new_code_cell("""\
import glob
from IPython.display import Markdown
from gfr_core import read_image
files = sorted(glob.glob("../tests/fixtures/photos-pd/*.jpg"))[: 1 if FAST else None]
photos, names = [read_image(f).rgb for f in files], [os.path.basename(f) for f in files]
ceilings = {
    "perfect 512 px": ev.oracle_faces(photos, names, face_size=512),
    f"perfect {S} px (zoom {ZOOM:g}), with {RESTORER}": ev.oracle_faces(photos, names, face_size=S, zoom=ZOOM, model=restorer),
}
for title, faces in ceilings.items():
    display(Markdown(ev.oracle_report(faces, title=f"**{title}**")))"""),
        new_code_cell("""\
fig, axes = plt.subplots(1, 2, figsize=(15, 3.8))
for ax, (title, faces) in zip(axes, ceilings.items()):
    degs = list(dict.fromkeys(f.degradation for f in faces))
    series = {"official-style paste": "official_gain", "gfr": "gfr_gain"}
    if faces[0].model is not None:
        series[RESTORER + " (real model)"] = "model_gain"
    for i, (label, attr) in enumerate(series.items()):
        ax.bar(np.arange(len(degs)) + 0.27 * (i - 1), [np.mean([getattr(f, attr) for f in faces if f.degradation == d]) for d in degs], 0.27, label=label)
    ax.set_xticks(range(len(degs)), degs); ax.axhline(0, color="k", lw=0.5); ax.set_ylabel("face PSNR gain over bicubic, dB"); ax.set_title(title); ax.legend()
plt.suptitle("What reaches the photo: a perfect restorer through each paste"); plt.tight_layout(); plt.show()"""),
    ]


NOTEBOOKS = {
    "01_latent_codes.ipynb": nb_latents,
    "02_style_mixing.ipynb": nb_mixing,
    "03_prior_ablations.ipynb": nb_ablations,
    "04_degradation_robustness.ipynb": nb_robustness,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS))
    args = parser.parse_args()
    for name in args.names:
        nb = build(name)
        if args.execute:
            from nbclient import NotebookClient

            NotebookClient(
                nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
            ).execute()
        nbformat.write(nb, HERE / name)
        size = (HERE / name).stat().st_size
        print(f"{name}: {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
