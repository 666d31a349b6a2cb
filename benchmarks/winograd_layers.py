"""Per-layer timing of Winograd F(4,3) against oneDNN's direct 3x3 conv (the measurements behind
``gfr_core.nn.winograd_pays`` and its chunk size).

Usage: ``python benchmarks/winograd_layers.py [--threads 2] [--chunks-mb 2 8 1000]``. Each row is one
conv + bias of a 512 px GFPGAN v1.3/v1.4 layer shape, one face, NHWC fp32, median of 9 after 2 warm-ups.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from gfr_core.nn import conv3x3_winograd, winograd_filter, winograd_pays
from gfr_core.tools.bench import _time

# (input channels, output channels, resolution) of the 3x3 convs of a 512 px GFPGAN v1.3 / v1.4
LAYERS = [
    (512, 512, 16),
    (512, 512, 32),
    (512, 512, 64),
    (256, 256, 64),
    (512, 256, 128),
    (256, 256, 128),
    (256, 128, 128),
    (128, 128, 128),
    (256, 128, 256),
    (128, 128, 256),
    (128, 64, 512),
    (64, 64, 512),
]


def _median_ms(fn) -> float:
    return statistics.median(_time(fn, torch.device("cpu"), warmup=2, repeats=9)) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--chunks-mb", type=float, nargs="+", default=[2, 8, 1000], help="chunk sizes to time (1000: no chunking)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{'layer':>16} {'direct ms':>10} " + " ".join(f"{f'{mb:g} MB':>9}" for mb in args.chunks_mb) + "  pays")
    with torch.inference_mode():
        for c, k, r in LAYERS:
            x = torch.randn(1, c, r, r).contiguous(memory_format=torch.channels_last)
            w, b = torch.randn(k, c, 3, 3) / (3 * c**0.5), torch.randn(k)
            u = winograd_filter(w).contiguous()
            direct = _median_ms(lambda: F.conv2d(x, w, b, padding=1))
            wino = [
                _median_ms(lambda mb=mb: conv3x3_winograd(x, u, b, chunk_bytes=int(mb * 2**20)))
                for mb in args.chunks_mb
            ]
            print(
                f"{f'{c}->{k} @{r}':>16} {direct:10.1f} "
                + " ".join(f"{t:9.1f}" for t in wino)
                + f"  {winograd_pays(c, k, tuple(x.shape))}",
                flush=True,
            )


if __name__ == "__main__":
    main()
