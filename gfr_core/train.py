"""Training of the embedded models: a StyleGAN2 prior, then a GFPGAN-style restorer on top of it.

Both loops run in resumable chunks (``minutes``): state is saved atomically to ``out/state.pt`` and a run
restarted with the same ``out`` continues where it stopped. Ctrl-C or SIGTERM ends a chunk early: the step in
progress finishes and the state is saved (a second signal stops at once, losing the steps since the last
save). The same code runs a few-step smoke configuration on CPU (tests) and the real configuration on a GPU
(bf16 autocast) or, slowly, on CPU.

* Prior: non-saturating logistic GAN loss, lazy R1 on reals, style-mixing regularisation, EMA generator.
* Restorer: the prior's EMA generator becomes GFPGAN's frozen decoder; the U-Net learns w+ and the SFT
  conditions from faces degraded on the fly by :func:`gfr_core.degrade.degrade`. Losses: L1, optionally a
  per-image PSNR loss (``w_psnr``), an image pyramid L1 on the U-Net's auxiliary RGB outputs, a
  non-saturating adversarial loss, discriminator feature matching, and GFPGAN's VGG19 perceptual loss when
  torchvision's VGG19 weights are on disk (``w_perceptual``; :mod:`gfr_core.perceptual`; the embedded models
  were trained without it, as those weights cannot be downloaded here), and GFPGAN's identity loss when its
  ArcFace weights are (``w_identity``: L1 between the ArcFace embeddings of output and ground truth;
  :mod:`gfr_core.arcface`; not used for the embedded models either).
  ``use_prior=False`` trains the same architecture with a randomly initialised, trainable decoder: the
  prior ablation.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .arcface import ResNetArcFace, to_identity_input
from .data import AlignedFaces, aligned_faces, load_prealigned, split_sources
from .degrade import degrade
from .hub import save_checkpoint
from .models import GFPGAN, StyleGAN2Discriminator, StyleGAN2Generator, mix_latents

__all__ = ["PRECISIONS", "PriorConfig", "RestorerConfig", "export_resume_state", "psnr_loss", "train_prior", "train_restorer"]

log = logging.getLogger(__name__)


@dataclass
class PriorConfig:
    """Settings of ``gfr train prior``."""

    data: str  # folder with *-train.tar files, a tar, or an image folder
    out: str  # run folder (state.pt, samples, prior.safetensors)
    size: int = 64  # generator resolution
    style_dim: int = 256  # z / w dimensionality
    n_mlp: int = 4  # mapping depth
    narrow: float = 0.125  # width multiplier of the StyleGAN2 channel table
    flavour: str = "original"  # 'original' (equalized learning rate: trains stably) or 'clean'
    zoom: float = 1.3  # alignment template zoom (gfr_core.face.template)
    batch: int = 16  # images per step
    lr: float = 0.002  # Adam learning rate (G and D)
    r1_gamma: float = 0.05  # R1 weight
    r1_every: int = 16  # lazy regularisation interval
    mixing_prob: float = 0.9  # style-mixing regularisation probability
    ema_kimg: float = 5.0  # EMA half-life in thousands of images
    steps: int = 1_000_000  # stop after this many steps in total
    minutes: float = 10.0  # stop this chunk after this many minutes
    sample_every: int = 500  # write a sample grid every N steps
    ckpt_every: int = 200  # save state every N steps
    limit: int | None = None  # use at most this many training photos (smoke tests)
    prealigned: bool = False  # the data are already aligned face crops (skip detection)
    seed: int = 0  # seed of weights and sampling
    device: str = "auto"  # 'cpu', 'cuda' or 'auto'
    precision: str = "auto"  # 'bf16' autocast, 'fp32', or 'auto' (bf16 on CUDA, fp32 on CPU)

    def generator_config(self) -> dict[str, Any]:
        return dict(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp, channel_multiplier=1, narrow=self.narrow, flavour=self.flavour)


@dataclass
class RestorerConfig:
    """Settings of ``gfr train restorer``."""

    data: str  # as PriorConfig.data
    out: str  # run folder
    prior: str | None = None  # prior checkpoint (prior.safetensors); also gives the architecture
    use_prior: bool = True  # False: the no-prior ablation (random, trainable decoder)
    zoom: float = 1.3  # alignment template zoom
    batch: int = 16  # faces per step
    lr: float = 0.002  # Adam learning rate
    w_l1: float = 1.0  # L1 weight
    w_pyramid: float = 1.0  # auxiliary-RGB pyramid L1 weight
    w_psnr: float = 0.0  # per-image PSNR loss weight (mean of 10*log10(MSE) over the batch; see psnr_loss)
    w_adv: float = 0.05  # adversarial weight
    w_fm: float = 0.5  # discriminator feature-matching weight (with w_adv 0 too, no discriminator is run)
    w_perceptual: float = 0.0  # VGG19 perceptual L1 weight (GFPGAN's layers); > 0 needs torchvision's VGG19 weights
    vgg_weights: str | None = None  # VGG19 weights file (default: $GFR_VGG19_WEIGHTS, then torch's hub cache)
    w_identity: float = 0.0  # ArcFace identity L1 weight (GFPGAN uses 10); > 0 needs GFPGAN's arcface_resnet18.pth
    arcface_weights: str | None = None  # ArcFace weights file (default: $GFR_ARCFACE_WEIGHTS, then torch's hub cache)
    ema_beta: float = 0.998  # EMA of the restorer weights per step (exported); 0 disables
    anneal: bool = False  # cosine-decay the learning rate to 0 over this chunk's minutes (final fine-tuning)
    degradation: str = "gfpgan"  # degradation preset
    steps: int = 1_000_000  # stop after this many steps in total
    minutes: float = 10.0  # stop this chunk after this many minutes
    ckpt_every: int = 200  # save state every N steps
    limit: int | None = None  # use at most this many training photos
    prealigned: bool = False  # the data are already aligned face crops (skip detection)
    seed: int = 0  # seed
    device: str = "auto"  # 'cpu', 'cuda' or 'auto'
    precision: str = "auto"  # 'bf16' autocast, 'fp32', or 'auto' (bf16 on CUDA, fp32 on CPU)
    detail_channels: int = 32  # width of the full-resolution DetailHead (0: the released GFPGAN layout)
    detail_blocks: int = 0  # ContextBlocks in the DetailHead (--init from a restorer with fewer starts them at zero)
    init: str | None = None  # start a new run from these restorer weights; only the DetailHead may be missing
    trainable: str = "all"  # 'all', or 'detail': only the DetailHead trains (U-Net and decoder run without gradients)
    # Architecture when there is no prior to copy it from (use_prior=False without --prior).
    arch: dict[str, Any] = field(default_factory=dict)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


PRECISIONS = ("auto", "bf16", "fp32")
TRAINABLE = ("all", "detail")


def _autocast(dev: torch.device, precision: str) -> torch.autocast:
    """Autocast context of the training steps. bf16 on CPU uses AMX / AVX-512-BF16 where present: the 64 px
    restorer's step measured 1.5x faster (narrow 0.125) to 1.9x (narrow 0.25) on the development CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    bf16 = precision == "bf16" or (precision == "auto" and dev.type == "cuda")
    if bf16 and dev.type == "cpu" and _cpu_bf16_native() is False:
        log.warning("this CPU has neither AVX-512-BF16 nor AMX, so bf16 is emulated here and slower than fp32 "
                    "(~2x per step measured on AVX2): train with --precision fp32 on this machine")
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)


def _cpu_bf16_native() -> bool | None:
    """Whether this x86 CPU computes bf16 natively (AVX-512-BF16 or AMX tiles); None where torch cannot tell."""
    checks = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if platform.machine().lower() not in ("x86_64", "amd64") or not all(checks):
        return None
    return any(check() for check in checks)


def _ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.lerp_(p.detach(), 1 - beta)
        for be, b in zip(ema.buffers(), model.buffers()):
            be.copy_(b)


@contextlib.contextmanager
def _stop_on_signal() -> Iterator[threading.Event]:
    """Turn the first SIGINT / SIGTERM into a request to stop after the current step (and save).

    Yields the event the training loop checks. A second signal raises KeyboardInterrupt as usual. Outside the
    main thread (where handlers cannot be installed) the event is never set.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s: stopping after this step and saving the state (send it again to stop at once, unsaved)",
                    signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _grid(images: Tensor, nrow: int) -> np.ndarray:
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(list(x[i : i + nrow]), axis=1) for i in range(0, len(x), nrow)]
    return np.concatenate(rows, axis=0)


def _infinite(loader: torch.utils.data.DataLoader):
    while True:
        yield from loader


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def _faces(data: str, split: str, zoom: float, limit: int | None, prealigned: bool = False) -> np.ndarray:
    sources = split_sources(data, split)
    if prealigned:
        faces = load_prealigned(sources, size=128, limit=limit)
    else:
        faces, _ = aligned_faces(sources, size=128, zoom=zoom, limit=limit, progress=False)
    if len(faces) == 0:
        raise RuntimeError(f"no aligned faces in {data} ({split})")
    return faces


# ---------------------------------------------------------------------------------------------------
# Prior


def train_prior(cfg: PriorConfig) -> Path:
    """Train (or resume) the StyleGAN2 prior; returns the path of the exported EMA generator."""
    dev = _device(cfg.device)
    amp = _autocast(dev, cfg.precision)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(
        AlignedFaces(_faces(cfg.data, "train", cfg.zoom, cfg.limit, cfg.prealigned), resolution=cfg.size),
        batch_size=cfg.batch, shuffle=True, drop_last=True, num_workers=0,
    )
    G = StyleGAN2Generator(**cfg.generator_config()).to(dev)
    D = StyleGAN2Discriminator(size=cfg.size, narrow=cfg.narrow).to(dev)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    c = cfg.r1_every / (cfg.r1_every + 1)  # lazy-regularisation correction of D's Adam
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * c, betas=(0.0, 0.99**c))
    step, images, elapsed = 0, 0, 0.0
    state_path = out / "state.pt"
    if state_path.is_file():
        st = torch.load(state_path, map_location=dev, weights_only=True)
        for m, k in ((G, "G"), (D, "D"), (G_ema, "G_ema"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            m.load_state_dict(st[k])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        images = int(st.get("images", step * cfg.batch))  # states written before the count was kept
        log.info("resumed prior training at step %d", step)
    fixed_z = torch.randn(32, cfg.style_dim, generator=torch.Generator().manual_seed(123)).to(dev)
    beta = 0.5 ** (cfg.batch / (cfg.ema_kimg * 1000))
    data = _infinite(loader)

    def sample_ws(n: int) -> Tensor:
        z = torch.randn(n, cfg.style_dim, device=dev)
        ws = G.broadcast(G.map(z))
        if cfg.mixing_prob > 0 and torch.rand(()) < cfg.mixing_prob:
            ws2 = G.broadcast(G.map(torch.randn_like(z)))
            ws = mix_latents(ws, ws2, int(torch.randint(1, G.num_ws, ())))
        return ws

    from tqdm import tqdm

    t0 = time.time()
    bar = tqdm(total=None, desc="prior", unit="step", initial=step, mininterval=10, disable=None)
    stats: dict[str, float] = {}
    with _stop_on_signal() as stop:
        while step < cfg.steps and (time.time() - t0) < cfg.minutes * 60 and not stop.is_set():
            real = next(data).to(dev)
            # Discriminator: logistic loss, lazy R1.
            with amp:
                with torch.no_grad():
                    fake = G.synthesis(sample_ws(cfg.batch), noise_mode="random", fused=False)
                loss_d = F.softplus(D(fake.float())).mean() + F.softplus(-D(real)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if step % cfg.r1_every == 0:
                real_r = real.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(D(real_r).sum(), real_r, create_graph=True)
                r1 = grad.square().sum(dim=(1, 2, 3)).mean()
                (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward()
                stats["r1"] = float(r1.detach())
            opt_d.step()
            # Generator: non-saturating loss.
            with amp:
                fake = G.synthesis(sample_ws(cfg.batch), noise_mode="random", fused=False)
                loss_g = F.softplus(-D(fake.float())).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            _ema(G_ema, G, beta)
            step += 1
            images += cfg.batch
            stats.update(loss_d=float(loss_d.detach()), loss_g=float(loss_g.detach()))
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()})
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"prior training diverged at step {step}: {stats}")
            if step % cfg.sample_every == 0:
                _write_samples(G_ema, fixed_z, out / f"samples-{step:07d}.png")
            if step % cfg.ckpt_every == 0:
                _save_prior(out, G, D, G_ema, opt_g, opt_d, step, images, elapsed + time.time() - t0, cfg, dev, stats)
    bar.close()
    _write_samples(G_ema, fixed_z, out / "samples-latest.png")
    return _save_prior(out, G, D, G_ema, opt_g, opt_d, step, images, elapsed + time.time() - t0, cfg, dev, stats)


@torch.no_grad()
def _write_samples(G_ema: StyleGAN2Generator, z: Tensor, path: Path) -> None:
    from PIL import Image

    img, _ = G_ema(z, noise_mode="const")
    Image.fromarray(_grid(img, 8)).save(path)


def _save_prior(out: Path, G, D, G_ema, opt_g, opt_d, step: int, images: int, elapsed: float, cfg: PriorConfig, dev: torch.device,
                stats) -> Path:
    _save_state(out / "state.pt", dict(G=G.state_dict(), D=D.state_dict(), G_ema=G_ema.state_dict(),
                                       opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), step=step, images=images, elapsed=elapsed))
    G_ema.update_w_avg()
    record = dict(config=asdict(cfg), step=step, images_seen=images, train_seconds=round(elapsed, 1),
                  hardware=_hardware(dev), torch=torch.__version__, last_losses=stats)
    (out / "training.json").write_text(json.dumps(record, indent=1))
    return save_checkpoint(out / "prior.safetensors", G_ema, arch="stylegan2", config=cfg.generator_config(),
                           metadata={"gfr_crop_zoom": str(cfg.zoom), "gfr_training": json.dumps(record)})


# ---------------------------------------------------------------------------------------------------
# Restorer


def restorer_config(prior: StyleGAN2Generator, *, detail_channels: int = 0, detail_blocks: int = 0) -> dict[str, Any]:
    """GFPGAN config whose decoder matches the prior's layout (and flavour)."""
    k = prior.init_kwargs
    return dict(out_size=k["size"], num_style_feat=k["style_dim"], channel_multiplier=k["channel_multiplier"],
                narrow=k["narrow"], sft_half=True, flavour=k["flavour"], num_mlp=k["n_mlp"], lr_mlp=k["lr_mlp"],
                detail_channels=detail_channels, detail_blocks=detail_blocks)


def _init_restorer(R: GFPGAN, source: str) -> None:
    """Copy a trained restorer's weights into ``R``; only the DetailHead may be absent from them (it then
    starts at zero, so ``R`` begins with exactly the source's output)."""
    from .hub import load_model

    src = load_model(source)
    if not isinstance(src, GFPGAN):
        raise ValueError(f"--init {source}: not a GFPGAN-style restorer; give a restorer checkpoint")
    try:
        res = R.load_state_dict(src.state_dict(), strict=False)
    except RuntimeError as e:  # same keys, other shapes
        raise ValueError(f"--init {source}: its layer shapes differ from this run's ({str(e).splitlines()[1].strip()}); "
                         "use a restorer of the same prior layout") from None
    missing = [k for k in res.missing_keys if not k.startswith("detail.")]
    if missing or res.unexpected_keys:
        raise ValueError(f"--init {source}: its architecture differs from this run's "
                         f"(missing {missing[:3]}, unexpected {res.unexpected_keys[:3]}); use a restorer of the same prior layout")


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
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 127.5 - 1  # noqa: E731
        return to_t(lq), to_t(gt)


def psnr_loss(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over the batch of ``10*log10(MSE_i)`` for (B,3,H,W) images in [-1,1]: minus the per-image PSNR
    up to a constant.

    Evaluation averages PSNR per image, so the same small absolute error costs many more dB on a face that
    is nearly clean than on a badly degraded one; L1 or L2 over the batch weights both alike (or by the
    error). The log scales each image's MSE gradient by 1/MSE_i (the PSNR loss of HINet, Chen et al. 2021).
    """
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(mse + eps).mean()


def train_restorer(cfg: RestorerConfig) -> Path:
    """Train (or resume) the GFPGAN-style restorer; returns the exported checkpoint path."""
    from .hub import load_model

    if cfg.trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, got {cfg.trainable!r}")
    if cfg.trainable == "detail" and cfg.detail_channels <= 0:
        raise ValueError("trainable='detail' needs a DetailHead: set detail_channels > 0")
    dev = _device(cfg.device)
    amp = _autocast(dev, cfg.precision)
    # The batch-folded modulated conv is ~10 % faster in training on CPU (3.4 vs 3.7 s per batch of 32,
    # embedded restorer, two AVX2 threads); the shared-weight one suits GPUs. Same result up to rounding.
    fused = dev.type == "cpu"
    perceptual = None
    if cfg.w_perceptual > 0:  # before anything slow: a missing weights file fails at once
        from .perceptual import VGGPerceptualLoss

        perceptual = VGGPerceptualLoss.from_file(cfg.vgg_weights).to(dev)
    arcface = None
    if cfg.w_identity > 0:
        arcface = ResNetArcFace.from_file(cfg.arcface_weights).to(dev)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.prior:
        prior = load_model(cfg.prior)
        assert isinstance(prior, StyleGAN2Generator)
        arch = restorer_config(prior, detail_channels=cfg.detail_channels, detail_blocks=cfg.detail_blocks)
    elif cfg.use_prior:
        raise ValueError("train_restorer needs a prior checkpoint unless use_prior=False")
    else:
        prior, arch = None, dict(detail_channels=cfg.detail_channels, detail_blocks=cfg.detail_blocks) | dict(cfg.arch)
    R = GFPGAN(**arch).to(dev)
    if cfg.use_prior:
        R.stylegan_decoder.load_state_dict(prior.state_dict())
    state_path = out / "state.pt"
    if cfg.init and not state_path.is_file():
        _init_restorer(R, cfg.init)
        log.info("restorer initialised from %s", cfg.init)
    if cfg.use_prior:
        R.stylegan_decoder.requires_grad_(False)
    R_ema = copy.deepcopy(R).eval().requires_grad_(False)
    size = arch["out_size"]
    D = StyleGAN2Discriminator(size=size, narrow=arch["narrow"]).to(dev)
    head_only = cfg.trainable == "detail"
    params = [p for p in (R.detail if head_only else R).parameters() if p.requires_grad]
    opt_r = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    ds = _DegradedFaces(_faces(cfg.data, "train", cfg.zoom, cfg.limit, cfg.prealigned), size, cfg.degradation, cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch, shuffle=True, drop_last=True, num_workers=0)
    step, images, elapsed = 0, 0, 0.0
    if state_path.is_file():
        st = torch.load(state_path, map_location=dev, weights_only=True)
        saved_head = {k for k in st["R"] if k.startswith("detail.")}
        if saved_head != {k for k in R.state_dict() if k.startswith("detail.")}:
            blocks = len({k.split(".")[2] for k in saved_head if k.startswith("detail.blocks.")})
            was = f"a DetailHead with {blocks} blocks" if saved_head else "no DetailHead"
            raise ValueError(f"{state_path} was trained with {was}; rerun with the same --detail-channels / --detail-blocks "
                             "or start a new --out with --init")
        saved = st.get("trainable", "all")
        if saved != cfg.trainable:  # the optimizer state covers other parameters
            raise ValueError(f"{state_path} was trained with trainable={saved!r}; rerun with the same "
                             "--trainable or start a new --out with --init")
        R.load_state_dict(st["R"])
        R_ema.load_state_dict(st.get("R_ema", st["R"]))  # states written before the EMA existed
        D.load_state_dict(st["D"])
        opt_r.load_state_dict(st["opt_r"])
        opt_d.load_state_dict(st["opt_d"])
        for opt in (opt_r, opt_d):  # this chunk's learning rate, not the saved one
            for g in opt.param_groups:
                g["lr"] = cfg.lr
        step, elapsed = int(st["step"]), float(st["elapsed"])
        images = int(st.get("images", step * cfg.batch))  # states written before the count was kept
        log.info("resumed restorer training at step %d", step)
    use_d = cfg.w_adv > 0 or cfg.w_fm > 0
    from tqdm import tqdm

    t0 = time.time()
    bar = tqdm(total=None, desc="restorer" + ("" if cfg.use_prior else " (no prior)"), unit="step", initial=step, mininterval=10, disable=None)
    stats: dict[str, float] = {}
    it = iter(loader)
    with _stop_on_signal() as stop:
        while step < cfg.steps and (time.time() - t0) < cfg.minutes * 60 and not stop.is_set():
            try:
                lq, gt = next(it)
            except StopIteration:
                ds.epoch += 1
                it = iter(loader)
                lq, gt = next(it)
            lq, gt = lq.to(dev), gt.to(dev)
            if cfg.anneal:
                lr = 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, (time.time() - t0) / (cfg.minutes * 60))))
                for g in opt_r.param_groups:
                    g["lr"] = lr
            R.train()
            with amp:
                with torch.set_grad_enabled(not head_only):
                    latents, conditions, rgbs, features = R.encode(lq, return_rgb=not head_only)
                    img = R.decode(latents, conditions, noise_mode="random", fused=fused)
                out_img = R.refine(lq, img, features).float()
                losses = dict(l1=F.l1_loss(out_img, gt))
                if cfg.w_psnr > 0:
                    losses["psnr"] = psnr_loss(out_img, gt)
                if not head_only:  # the auxiliary images come from the U-Net
                    losses["pyramid"] = sum(F.l1_loss(r.float(), F.interpolate(gt, size=r.shape[-2:], mode="area")) for r in rgbs) / len(rgbs)
                if use_d:
                    logits, f_fake = D(out_img, return_features=True)
                    with torch.no_grad():
                        _, f_real = D(gt, return_features=True)
                    losses["adv"] = F.softplus(-logits).mean()
                    losses["fm"] = sum(F.l1_loss(a, b) for a, b in zip(f_fake, f_real)) / len(f_fake)
                if perceptual is not None:
                    losses["perceptual"] = perceptual(out_img, gt)
                if arcface is not None:
                    with torch.no_grad():
                        id_gt = arcface(to_identity_input(gt, arcface.size))
                    losses["identity"] = F.l1_loss(arcface(to_identity_input(out_img, arcface.size)), id_gt)
                weights = dict(l1=cfg.w_l1, pyramid=cfg.w_pyramid, psnr=cfg.w_psnr, adv=cfg.w_adv, fm=cfg.w_fm, perceptual=cfg.w_perceptual,
                               identity=cfg.w_identity)
                loss = sum(weights[k] * v for k, v in losses.items())
            opt_r.zero_grad(set_to_none=True)
            loss.backward()
            opt_r.step()
            if cfg.ema_beta > 0:
                _ema(R_ema, R, cfg.ema_beta)
            else:
                R_ema.load_state_dict(R.state_dict())
            if use_d:
                with amp:
                    losses["loss_d"] = F.softplus(D(out_img.detach())).mean() + F.softplus(-D(gt)).mean()
                opt_d.zero_grad(set_to_none=True)
                losses["loss_d"].backward()
                opt_d.step()
            step += 1
            images += cfg.batch
            stats = {k: float(v.detach()) for k, v in losses.items()}
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"restorer training diverged at step {step}: {stats}")
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()})
            if step % cfg.ckpt_every == 0:
                _save_restorer(out, R, R_ema, D, opt_r, opt_d, step, images, elapsed + time.time() - t0, cfg, dev, stats, arch, len(ds))
    bar.close()
    return _save_restorer(out, R, R_ema, D, opt_r, opt_d, step, images, elapsed + time.time() - t0, cfg, dev, stats, arch, len(ds))


def _save_restorer(out: Path, R, R_ema, D, opt_r, opt_d, step, images, elapsed, cfg: RestorerConfig, dev, stats, arch, n_faces) -> Path:
    """Save the resumable state and export the EMA weights as ``restorer.safetensors``."""
    _save_state(out / "state.pt", dict(R=R.state_dict(), R_ema=R_ema.state_dict(), D=D.state_dict(), opt_r=opt_r.state_dict(),
                                       opt_d=opt_d.state_dict(), step=step, images=images, elapsed=elapsed,
                                       trainable=cfg.trainable))
    record = dict(config=asdict(cfg), arch=arch, step=step, images_seen=images, epochs=round(images / max(1, n_faces), 2),
                  train_seconds=round(elapsed, 1), hardware=_hardware(dev), torch=torch.__version__, last_losses=stats)
    (out / "training.json").write_text(json.dumps(record, indent=1))
    R.eval()
    return save_checkpoint(out / "restorer.safetensors", R_ema, arch="gfpgan", config=arch,
                           metadata={"gfr_crop_zoom": str(cfg.zoom), "gfr_training": json.dumps(record)})


# ---------------------------------------------------------------------------------------------------
# Shipping


def export_embedded(
    *,
    prior_run: str,
    restorer_run: str,
    noprior_run: str | None,
    weights_dir: str | Path,
    metrics: dict[str, Any] | None = None,
) -> list[Path]:
    """Copy trained runs into the package as fp16 safetensors plus registry cards (JSON).

    Writes ``embedded-prior``, ``embedded`` and (if given) ``embedded-noprior``. The cards record the data,
    its terms, the training command and record, the hardware and the evaluation metrics.
    """
    import hashlib

    from .hub import load_model

    wdir = Path(weights_dir)
    wdir.mkdir(parents=True, exist_ok=True)
    terms = ("Trained on Labeled Faces in the Wild (UMass Amherst, research use; 11,098 re-aligned train photos). "
             "The weights inherit those terms: research, non-commercial use.")
    written = []
    entries = [("embedded-prior", prior_run, "prior.safetensors", "stylegan2", "prior",
                "StyleGAN2 face prior trained by gfr on real faces (64 px, offline default prior)"),
               ("embedded", restorer_run, "restorer.safetensors", "gfpgan", "restore",
                "GFPGAN-style restorer on the frozen embedded prior (64 px, offline default restorer)")]
    if noprior_run:
        entries.append(("embedded-noprior", noprior_run, "restorer.safetensors", "gfpgan", "restore",
                        "Prior ablation: same architecture trained without the prior (random, trainable decoder)"))
    for name, run, fname, arch, task, desc in entries:
        model = load_model(Path(run) / fname)
        record = json.loads((Path(run) / "training.json").read_text())
        config = record.get("arch") or PriorConfig(**record["config"]).generator_config()
        dst = wdir / f"{name}.safetensors"
        save_checkpoint(dst, model, arch=arch, config=config, dtype=torch.float16,
                        metadata={"gfr_crop_zoom": str(record["config"]["zoom"])})
        data = dst.read_bytes()
        card = dict(
            name=name, arch=arch, config=config, task=task, filename=f"weights/{dst.name}", converter="native",
            license=terms, paper="gfr embedded model; architectures: Karras et al. CVPR 2020 (StyleGAN2), Wang et al. CVPR 2021 (GFPGAN)",
            sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), crop_zoom=float(record["config"]["zoom"]),
            description=desc,
            extras=dict(training=record, metrics=(metrics or {}).get(name), stored_dtype="float16",
                        command=_command_for(name, record)),
        )
        (wdir / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
        written += [dst, wdir / f"{name}.json"]
    return written


def _command_for(name: str, record: dict[str, Any]) -> str:
    """The ``gfr train`` command line of a run's last chunk: its data, out and every non-default setting."""
    c = record["config"]
    kind, cls = ("prior", PriorConfig) if name == "embedded-prior" else ("restorer", RestorerConfig)
    defaults = {f.name: f.default for f in fields(cls) if f.name not in ("data", "out", "arch")}
    flags = [f"--{k.replace('_', '-')} {str(v).lower() if isinstance(v, bool) else v}"
             for k, v in c.items() if k in defaults and v != defaults[k]]
    return f"gfr train {kind} --data {c['data']} --out {c['out']} {' '.join(flags)} (resumed until step {record['step']})"


def export_resume_state(run: str | Path, dst: str | Path) -> Path:
    """Write a compact copy of a run's ``state.pt`` (floating tensors as bfloat16) for committing.

    bfloat16 keeps float32's exponent range, so Adam's second moments survive; resuming casts everything
    back to float32 (``load_state_dict`` copies into the float32 modules and optimizers). The rounding
    (~0.4 % relative) is a small perturbation of the weights, of the order of a few optimizer steps.
    """
    def compact(x: Any) -> Any:
        if isinstance(x, Tensor) and x.is_floating_point() and x.dim() > 0:
            return x.to(torch.bfloat16)
        if isinstance(x, dict):
            return {k: compact(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(compact(v) for v in x)
        return x

    state = torch.load(Path(run) / "state.pt", map_location="cpu", weights_only=True)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _save_state(dst, compact(state))
    return dst


def write_model_card(weights_dir: str | Path) -> Path:
    """Write ``MODEL_CARD.md`` and a sample grid for the embedded models from their JSON cards."""
    from PIL import Image

    from . import analysis as an
    from .hub import load_model

    wdir = Path(weights_dir)
    cards = {p.stem: json.loads(p.read_text()) for p in sorted(wdir.glob("*.json"))}
    G = load_model(wdir / "embedded-prior.safetensors")
    grid = an.tile(an.synthesize(G, an.sample_latents(G, list(range(32)), psi=0.7)), 8)
    Image.fromarray(grid).save(wdir / "embedded-prior-samples.png")
    lines = ["# Embedded models", "",
             "Small models trained by this project's own code on real faces, bundled so that gfr works offline.", ""]
    for name, c in cards.items():
        tr = c["extras"]["training"]
        lines += [f"## {name}", "", c["description"], "",
                  f"* Architecture: `{c['arch']}` {json.dumps(c['config'])}, alignment zoom {c['crop_zoom']}",
                  f"* File: `{c['filename']}` ({c['size_bytes']:,} bytes, {c['extras']['stored_dtype']}), sha256 `{c['sha256']}`",
                  f"* Data and terms: {c['license']}",
                  f"* Training: `{c['extras']['command']}`",
                  f"* Steps {tr['step']}, images seen {tr['images_seen']:,}, {tr['train_seconds'] / 60:.0f} min on {tr['hardware']}, torch {tr['torch']}",
                  f"* Last losses: {json.dumps({k: round(v, 4) for k, v in tr['last_losses'].items()})}"]
        m = c["extras"].get("metrics")
        if m:
            lines.append(f"* Evaluation: {m}")
        lines.append("")
    lines += ["## Samples of embedded-prior (ψ = 0.7, seeds 0-31)", "", "![samples](embedded-prior-samples.png)", ""]
    out = wdir / "MODEL_CARD.md"
    out.write_text("\n".join(lines))
    return out
