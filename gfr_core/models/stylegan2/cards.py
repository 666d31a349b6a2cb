"""Released StyleGAN2 face priors."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS", "PAPER"]

PAPER = (
    "Karras, Laine, Aittala, Hellsten, Lehtinen, Aila. Analyzing and Improving the Image Quality of StyleGAN. CVPR 2020"
)

CARDS = (
    ModelCard(
        name="stylegan2-ffhq-512",
        arch="stylegan2",
        config=dict(size=512, style_dim=512, n_mlp=8, channel_multiplier=1, flavour="original"),
        task="prior",
        repo_id="gmk123/GFPGAN",  # community mirror of the TencentARC/GFPGAN release files
        filename="StyleGAN2_512_Cmul1_FFHQ_B12G4_scratch_800k.pth",
        urls=(
            "https://github.com/TencentARC/GFPGAN/releases/download/v0.1.0/StyleGAN2_512_Cmul1_FFHQ_B12G4_scratch_800k.pth",
        ),
        converter="stylegan2_basicsr",
        license="FFHQ-trained (CC BY-NC-SA 4.0); released with TencentARC/GFPGAN",
        paper=PAPER,
        description="StyleGAN2 FFHQ 512 px, channel multiplier 1: the prior GFPGAN v1 was trained with",
    ),
    ModelCard(
        name="stylegan2-ffhq-1024",
        arch="stylegan2",
        config=dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2, flavour="original"),
        task="prior",
        repo_id="wmpscc/StyleGene_CKPT",  # a public Hub copy of rosinality's conversion (a plain state_dict pickle)
        filename="stylegan2-ffhq-config-f.pt",
        converter="stylegan2_rosinality",
        license="NVIDIA Source Code License-NC (non-commercial); FFHQ (CC BY-NC-SA 4.0)",
        paper=PAPER,
        description="StyleGAN2 config-f FFHQ 1024 px (rosinality conversion, g_ema + latent_avg)",
        extras=dict(
            official="https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl",
            official_note=(
                "NVIDIA's own file is a TensorFlow pickle that needs code to load, so gfr refuses it; convert it "
                "once, in a throwaway environment, with rosinality/stylegan2-pytorch's convert_weight.py, and load "
                "the resulting .pt (tensors only). No published sha256 of the .pt is known."
            ),
        ),
    ),
)
