"""Training the StyleGAN2 prior: non-saturating logistic GAN loss, lazy R1 on reals, style-mixing
regularisation, EMA generator; resumable in chunks (``out/state.pt``)."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import AlignedFaces
from ..hub import save_checkpoint
from ..models import StyleGAN2Discriminator, StyleGAN2Generator, mix_latents
from ..nn import randn_batch
from .common import autocast, ema, faces, grid, hardware, load_state, save_state, stop_on_signal
from .config import PriorConfig
from .distributed import Replica, ShardedBatches, any_rank, average_gradients, mean_stats, replicated

__all__ = ["train_prior"]

log = logging.getLogger(__name__)


def train_prior(cfg: PriorConfig) -> Path:
    """Train (or resume) the StyleGAN2 prior; returns the path of the exported EMA generator.

    Under ``torchrun`` each process trains on its share of a global batch of ``batch`` x processes
    (:mod:`.distributed`); rank 0 writes the files.
    """
    return replicated(cfg.device, lambda rep, dev: _train_prior(cfg, rep, dev))


def _train_prior(cfg: PriorConfig, rep: Replica, dev: torch.device) -> Path:
    amp = autocast(dev, cfg.precision)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)  # the same on every process: identical replicas and random draws
    ds = AlignedFaces(faces(cfg.data, "train", cfg.zoom, cfg.limit, cfg.prealigned), resolution=cfg.size, seed=cfg.seed)
    sampler = ShardedBatches(len(ds), cfg.batch, rep, cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=0)
    global_batch = cfg.batch * rep.world
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
        for m, k in ((G, "G"), (D, "D"), (G_ema, "G_ema")):
            load_state(m, st[k])
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        images = int(st.get("images", step * cfg.batch))  # states written before the count was kept
        log.info("resumed prior training at step %d", step)
    fixed_z = torch.randn(32, cfg.style_dim, generator=torch.Generator().manual_seed(123)).to(dev)
    beta = 0.5 ** (global_batch / (cfg.ema_kimg * 1000))

    def batches():
        epoch = step // len(sampler)
        while True:
            sampler.epoch = ds.epoch = epoch
            yield from loader
            epoch += 1

    data = batches()

    def sample_ws(n: int) -> Tensor:
        z = randn_batch(n, cfg.style_dim, device=dev)
        ws = G.broadcast(G.map(z))
        if cfg.mixing_prob > 0 and torch.rand(()) < cfg.mixing_prob:
            ws2 = G.broadcast(G.map(randn_batch(n, cfg.style_dim, device=dev)))
            ws = mix_latents(ws, ws2, int(torch.randint(1, G.num_ws, ())))
        return ws

    from tqdm import tqdm

    t0, images0 = time.time(), images
    bar = tqdm(total=None, desc="prior", unit="step", initial=step, mininterval=10, disable=None if rep.main else True)
    stats: dict[str, float] = {}
    with stop_on_signal(escalate=rep.world == 1) as signalled, rep.shard():
        while step < cfg.steps and not any_rank(rep, (time.time() - t0) >= cfg.minutes * 60 or signalled.is_set()):
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
            average_gradients(rep, [D])
            opt_d.step()
            # Generator: non-saturating loss.
            with amp:
                fake = G.synthesis(sample_ws(cfg.batch), noise_mode="random", fused=False)
                loss_g = F.softplus(-D(fake.float())).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            average_gradients(rep, [G])
            opt_g.step()
            ema(G_ema, G, beta)
            step += 1
            images += global_batch
            stats = mean_stats(rep, stats | dict(loss_d=float(loss_d.detach()), loss_g=float(loss_g.detach())))
            bar.update(1)
            if step % 50 == 0:
                speed = (images - images0) / (time.time() - t0)
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()} | {"samples/s": f"{speed:.1f}"})
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"prior training diverged at step {step}: {stats}")
            if step % cfg.sample_every == 0 and rep.main:
                _write_samples(G_ema, fixed_z, out / f"samples-{step:07d}.png")
            if step % cfg.ckpt_every == 0 and rep.main:
                _save_prior(out, G, D, G_ema, opt_g, opt_d, step, images, elapsed + time.time() - t0, cfg, dev, stats)
    bar.close()
    chunk = dict(seconds=time.time() - t0, samples=images - images0, processes=rep.world)
    if not rep.main:
        return out / "prior.safetensors"
    _write_samples(G_ema, fixed_z, out / "samples-latest.png")
    return _save_prior(out, G, D, G_ema, opt_g, opt_d, step, images, elapsed + time.time() - t0, cfg, dev, stats, chunk)


@torch.no_grad()
def _write_samples(G_ema: StyleGAN2Generator, z: Tensor, path: Path) -> None:
    from PIL import Image

    img, _ = G_ema(z, noise_mode="const")
    Image.fromarray(grid(img, 8)).save(path)


def _save_prior(
    out: Path,
    G,
    D,
    G_ema,
    opt_g,
    opt_d,
    step: int,
    images: int,
    elapsed: float,
    cfg: PriorConfig,
    dev: torch.device,
    stats,
    chunk: dict | None = None,
) -> Path:
    save_state(
        out / "state.pt",
        dict(
            G=G.state_dict(),
            D=D.state_dict(),
            G_ema=G_ema.state_dict(),
            opt_g=opt_g.state_dict(),
            opt_d=opt_d.state_dict(),
            step=step,
            images=images,
            elapsed=elapsed,
        ),
    )
    G_ema.update_w_avg()
    record = dict(
        config=asdict(cfg),
        step=step,
        images_seen=images,
        train_seconds=round(elapsed, 1),
        hardware=hardware(dev),
        torch=torch.__version__,
        last_losses=stats,
    )
    if chunk is not None:  # this chunk's speed: all processes together
        record["last_chunk"] = chunk | dict(samples_per_second=round(chunk["samples"] / max(chunk["seconds"], 1e-9), 2))
    (out / "training.json").write_text(json.dumps(record, indent=1))
    return save_checkpoint(
        out / "prior.safetensors", G_ema, metadata={"gfr_crop_zoom": str(cfg.zoom), "gfr_training": json.dumps(record)}
    )
