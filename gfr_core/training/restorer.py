"""Training the GFPGAN-style restorer on the frozen prior; resumable in chunks (``out/state.pt``).

The prior's EMA generator becomes GFPGAN's frozen decoder; the U-Net learns w+ and the SFT conditions
from faces degraded on the fly by :func:`gfr_core.data.degrade.degrade` (losses: :mod:`.losses`).
``use_prior=False`` trains the same architecture with a randomly initialised, trainable decoder: the
prior ablation.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import AlignedFaces
from ..data.degrade import degrade
from ..hub import load_model, save_checkpoint
from ..io.tensor import from_uint8
from ..models import GFPGAN, StyleGAN2Discriminator, StyleGAN2Generator
from ..models.arcface import ResNetArcFace
from .common import autocast, ema, faces, hardware, load_state, save_state, stop_on_signal
from .config import TRAINABLE, RestorerConfig
from .distributed import Replica, ShardedBatches, any_rank, average_gradients, broadcast_float, mean_stats, replicated
from .losses import RestorerLosses

__all__ = ["restorer_config", "train_restorer"]

log = logging.getLogger(__name__)


def restorer_config(prior: StyleGAN2Generator, *, detail_channels: int = 0, detail_blocks: int = 0) -> dict[str, Any]:
    """GFPGAN config whose decoder matches the prior's layout (and flavour)."""
    k = prior.config
    return dict(
        out_size=k.size,
        num_style_feat=k.style_dim,
        channel_multiplier=k.channel_multiplier,
        narrow=k.narrow,
        sft_half=True,
        flavour=k.flavour,
        num_mlp=k.n_mlp,
        lr_mlp=k.lr_mlp,
        detail_channels=detail_channels,
        detail_blocks=detail_blocks,
    )


def _init_restorer(R: GFPGAN, source: str) -> None:
    """Copy a trained restorer's weights into ``R``; only the DetailHead may be absent from them (it then
    starts at zero, so ``R`` begins with exactly the source's output)."""
    src = load_model(source)
    if not isinstance(src, GFPGAN):
        raise ValueError(f"--init {source}: not a GFPGAN-style restorer; give a restorer checkpoint")
    try:
        res = R.load_state_dict(src.state_dict(), strict=False)
    except RuntimeError as e:  # same keys, other shapes
        raise ValueError(
            f"--init {source}: its layer shapes differ from this run's ({str(e).splitlines()[1].strip()}); "
            "use a restorer of the same prior layout"
        ) from None
    missing = [k for k in res.missing_keys if not k.startswith("detail.")]
    if missing or res.unexpected_keys:
        raise ValueError(
            f"--init {source}: its architecture differs from this run's "
            f"(missing {missing[:3]}, unexpected {res.unexpected_keys[:3]}); use a restorer of the same prior layout"
        )


class _DegradedFaces(torch.utils.data.Dataset):
    """(degraded, clean) pairs; the degradation of item i at epoch e is seeded by (seed, e, i)."""

    def __init__(self, faces: np.ndarray, resolution: int, preset: str, seed: int) -> None:
        self.clean = AlignedFaces(faces, resolution=resolution, hflip=False).faces
        self.preset, self.seed, self.epoch = preset, seed, 0

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        gt = self.clean[i]
        if rng.random() < 0.5:
            gt = gt[:, ::-1]
        lq = degrade(np.ascontiguousarray(gt), rng, self.preset)
        return from_uint8(lq)[0], from_uint8(gt)[0]


@dataclass
class _Run:
    """Everything one restorer run holds: the networks, their optimizers and the counters."""

    R: GFPGAN
    R_ema: GFPGAN
    D: nn.Module
    opt_r: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    arch: dict[str, Any]
    step: int = 0
    images: int = 0
    elapsed: float = 0.0


def _check(cfg: RestorerConfig) -> None:
    if cfg.trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, got {cfg.trainable!r}")
    if cfg.trainable == "detail" and cfg.detail_channels <= 0:
        raise ValueError("trainable='detail' needs a DetailHead: set detail_channels > 0")


def _loss_networks(cfg: RestorerConfig, dev: torch.device) -> tuple[nn.Module | None, nn.Module | None]:
    """VGG19 and ArcFace when their losses are on; a missing weights file fails here, before anything slow."""
    perceptual = arcface = None
    if cfg.w_perceptual > 0:
        from ..models.vgg import VGGPerceptualLoss

        perceptual = VGGPerceptualLoss.from_file(cfg.vgg_weights).to(dev)
    if cfg.w_identity > 0:
        arcface = ResNetArcFace.from_file(cfg.arcface_weights).to(dev)
    return perceptual, arcface


def _build(cfg: RestorerConfig, dev: torch.device, state_path: Path) -> _Run:
    """The restorer (its decoder the frozen prior), its EMA copy, the discriminator and the optimizers."""
    if cfg.prior:
        prior = load_model(cfg.prior)
        if not isinstance(prior, StyleGAN2Generator):
            raise ValueError(f"--prior {cfg.prior}: not a StyleGAN2 prior; give a prior checkpoint")
        arch = restorer_config(prior, detail_channels=cfg.detail_channels, detail_blocks=cfg.detail_blocks)
    elif cfg.use_prior:
        raise ValueError(
            "gfr train restorer needs --prior PRIOR (a prior checkpoint: embedded-prior, or a run's "
            "prior.safetensors), or --use-prior false for the no-prior ablation"
        )
    else:  # the ablation without a prior file: the bundled prior's layout (no weights read), or cfg.arch's
        from ..hub import build_model, get_card

        with torch.device("meta"):
            layout = build_model(get_card("embedded-prior"))
        arch = restorer_config(layout, detail_channels=cfg.detail_channels, detail_blocks=cfg.detail_blocks)
        prior, arch = None, arch | dict(cfg.arch)
    R = GFPGAN(**arch).to(dev)
    if prior is not None and cfg.use_prior:
        R.stylegan_decoder.load_state_dict(prior.state_dict())
    if cfg.init and not state_path.is_file():
        _init_restorer(R, cfg.init)
        log.info("restorer initialised from %s", cfg.init)
    if cfg.use_prior:
        R.stylegan_decoder.requires_grad_(False)
    R_ema = copy.deepcopy(R).eval().requires_grad_(False)
    D = StyleGAN2Discriminator(size=arch["out_size"], narrow=arch["narrow"]).to(dev)
    params = [p for p in (R.detail if cfg.trainable == "detail" else R).parameters() if p.requires_grad]
    opt_r = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    return _Run(R, R_ema, D, opt_r, opt_d, arch)


def _resume(run: _Run, cfg: RestorerConfig, state_path: Path, dev: torch.device) -> None:
    """Continue from ``state.pt``, which must come from a run with the same head and trainable parameters."""
    st = torch.load(state_path, map_location=dev, weights_only=True)
    saved_head = {k for k in st["R"] if k.startswith("detail.")}
    if saved_head != {k for k in run.R.state_dict() if k.startswith("detail.")}:
        blocks = len({k.split(".")[2] for k in saved_head if k.startswith("detail.blocks.")})
        was = f"a DetailHead with {blocks} blocks" if saved_head else "no DetailHead"
        raise ValueError(
            f"{state_path} was trained with {was}; rerun with the same --detail-channels / --detail-blocks "
            "or start a new --out with --init"
        )
    saved = st.get("trainable", "all")
    if saved != cfg.trainable:  # the optimizer state covers other parameters
        raise ValueError(
            f"{state_path} was trained with trainable={saved!r}; rerun with the same "
            "--trainable or start a new --out with --init"
        )
    load_state(run.R, st["R"])
    load_state(run.R_ema, st.get("R_ema", st["R"]))  # states written before the EMA existed
    run.D.load_state_dict(st["D"])
    run.opt_r.load_state_dict(st["opt_r"])
    run.opt_d.load_state_dict(st["opt_d"])
    for opt in (run.opt_r, run.opt_d):  # this chunk's learning rate, not the saved one
        for g in opt.param_groups:
            g["lr"] = cfg.lr
    run.step, run.elapsed = int(st["step"]), float(st["elapsed"])
    run.images = int(st.get("images", run.step * cfg.batch))  # states written before the count was kept
    log.info("resumed restorer training at step %d", run.step)


def _step(
    run: _Run,
    lq: Tensor,
    gt: Tensor,
    loss_fn: RestorerLosses,
    amp: Any,
    *,
    head_only: bool,
    fused: bool,
    ema_beta: float,
    rep: Replica = Replica(),
) -> dict[str, float]:
    """One optimisation step of the restorer (and of the discriminator when it is used); the gradients are
    averaged over the training processes."""
    R, D = run.R, run.D
    R.train()
    with amp:
        with torch.set_grad_enabled(not head_only):
            latents, conditions, rgbs, features = R.encode(lq, return_rgb=not head_only)
            img = R.decode(latents, conditions, noise_mode="random", fused=fused)
        out_img = R.refine(lq, img, features).float()
        losses = loss_fn(out_img, gt, rgbs)
        loss = loss_fn.total(losses)
    run.opt_r.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(rep, [R])
    run.opt_r.step()
    if ema_beta > 0:
        ema(run.R_ema, R, ema_beta)
    else:
        run.R_ema.load_state_dict(R.state_dict())
    if loss_fn.discriminator is not None:
        with amp:
            losses["loss_d"] = F.softplus(D(out_img.detach())).mean() + F.softplus(-D(gt)).mean()
        run.opt_d.zero_grad(set_to_none=True)
        losses["loss_d"].backward()
        average_gradients(rep, [D])
        run.opt_d.step()
    stats = mean_stats(rep, {k: float(v.detach()) for k, v in losses.items()})
    if not all(math.isfinite(v) for v in stats.values()):
        raise FloatingPointError(f"restorer training diverged at step {run.step + 1}: {stats}")
    return stats


def train_restorer(cfg: RestorerConfig) -> Path:
    """Train (or resume) the GFPGAN-style restorer; returns the exported checkpoint path.

    Under ``torchrun`` each process trains on its share of a global batch of ``batch`` x processes
    (:mod:`.distributed`); rank 0 writes the files.
    """
    _check(cfg)
    return replicated(cfg.device, lambda rep, dev: _train_restorer(cfg, rep, dev))


def _train_restorer(cfg: RestorerConfig, rep: Replica, dev: torch.device) -> Path:
    amp = autocast(dev, cfg.precision)
    # The batch-folded modulated conv is ~10 % faster in training on CPU (3.4 vs 3.7 s per batch of 32,
    # embedded restorer, two AVX2 threads); the shared-weight one suits GPUs. Same result up to rounding.
    fused = dev.type == "cpu"
    perceptual, arcface = _loss_networks(cfg, dev)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)  # the same on every process: identical replicas and random draws
    state_path = out / "state.pt"
    run = _build(cfg, dev, state_path)
    ds = _DegradedFaces(
        faces(cfg.data, "train", cfg.zoom, cfg.limit, cfg.prealigned), run.arch["out_size"], cfg.degradation, cfg.seed
    )
    sampler = ShardedBatches(len(ds), cfg.batch, rep, cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=0)
    global_batch = cfg.batch * rep.world
    if state_path.is_file():
        _resume(run, cfg, state_path, dev)
    ds.epoch = sampler.epoch = run.step // len(sampler)
    weights = dict(
        l1=cfg.w_l1,
        pyramid=cfg.w_pyramid,
        psnr=cfg.w_psnr,
        adv=cfg.w_adv,
        fm=cfg.w_fm,
        perceptual=cfg.w_perceptual,
        identity=cfg.w_identity,
    )
    loss_fn = RestorerLosses(
        weights, discriminator=run.D if cfg.w_adv > 0 or cfg.w_fm > 0 else None, perceptual=perceptual, arcface=arcface
    )
    from tqdm import tqdm

    t0 = time.time()
    bar = tqdm(
        total=None,
        desc="restorer" + ("" if cfg.use_prior else " (no prior)"),
        unit="step",
        initial=run.step,
        mininterval=10,
        disable=None if rep.main else True,
    )
    stats: dict[str, float] = {}
    images0 = run.images
    it = iter(loader)
    with stop_on_signal(escalate=rep.world == 1) as signalled, rep.shard():
        while run.step < cfg.steps and not any_rank(rep, (time.time() - t0) >= cfg.minutes * 60 or signalled.is_set()):
            try:
                lq, gt = next(it)
            except StopIteration:
                ds.epoch += 1
                sampler.epoch = ds.epoch
                it = iter(loader)
                lq, gt = next(it)
            if cfg.anneal:  # rank 0's clock, so that every replica takes the same step
                frac = broadcast_float(rep, min(1.0, (time.time() - t0) / (cfg.minutes * 60)))
                lr = 0.5 * cfg.lr * (1 + math.cos(math.pi * frac))
                for g in run.opt_r.param_groups:
                    g["lr"] = lr
            stats = _step(
                run,
                lq.to(dev),
                gt.to(dev),
                loss_fn,
                amp,
                head_only=cfg.trainable == "detail",
                fused=fused,
                ema_beta=cfg.ema_beta,
                rep=rep,
            )
            run.step += 1
            run.images += global_batch
            bar.update(1)
            if run.step % 50 == 0:
                speed = (run.images - images0) / (time.time() - t0)
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()} | {"samples/s": f"{speed:.1f}"})
            if run.step % cfg.ckpt_every == 0 and rep.main:
                _save_restorer(out, run, time.time() - t0, cfg, dev, stats, len(ds))
    bar.close()
    if not rep.main:
        return out / "restorer.safetensors"
    chunk = dict(seconds=time.time() - t0, samples=run.images - images0, processes=rep.world)
    return _save_restorer(out, run, time.time() - t0, cfg, dev, stats, len(ds), chunk)


def _save_restorer(
    out: Path,
    run: _Run,
    chunk_seconds: float,
    cfg: RestorerConfig,
    dev: torch.device,
    stats: dict[str, float],
    n_faces: int,
    chunk: dict | None = None,
) -> Path:
    """Save the resumable state and export the EMA weights as ``restorer.safetensors``."""
    elapsed = run.elapsed + chunk_seconds
    save_state(
        out / "state.pt",
        dict(
            R=run.R.state_dict(),
            R_ema=run.R_ema.state_dict(),
            D=run.D.state_dict(),
            opt_r=run.opt_r.state_dict(),
            opt_d=run.opt_d.state_dict(),
            step=run.step,
            images=run.images,
            elapsed=elapsed,
            trainable=cfg.trainable,
        ),
    )
    record = dict(
        config=asdict(cfg),
        arch=run.arch,
        step=run.step,
        images_seen=run.images,
        epochs=round(run.images / max(1, n_faces), 2),
        train_seconds=round(elapsed, 1),
        hardware=hardware(dev),
        torch=torch.__version__,
        last_losses=stats,
    )
    if chunk is not None:  # this chunk's speed: all processes together
        record["last_chunk"] = chunk | dict(samples_per_second=round(chunk["samples"] / max(chunk["seconds"], 1e-9), 2))
    (out / "training.json").write_text(json.dumps(record, indent=1))
    run.R.eval()
    return save_checkpoint(
        out / "restorer.safetensors",
        run.R_ema,
        metadata={"gfr_crop_zoom": str(cfg.zoom), "gfr_training": json.dumps(record)},
    )
