"""Training of the embedded models: a StyleGAN2 prior, then a GFPGAN-style restorer on top of it.

Both loops run in resumable chunks (``minutes``): state is saved atomically to ``out/state.pt`` and a run
restarted with the same ``out`` continues where it stopped. Ctrl-C or SIGTERM ends a chunk early: the step in
progress finishes and the state is saved (a second signal stops at once, losing the steps since the last
save). The same code runs a few-step smoke configuration on CPU (tests) and the real configuration on a GPU
(bf16 autocast) or, slowly, on CPU.

* Prior: non-saturating logistic GAN loss, lazy R1 on reals, style-mixing regularisation, EMA generator.
* Restorer: the prior's EMA generator becomes GFPGAN's frozen decoder; the U-Net learns w+ and the SFT
  conditions from faces degraded on the fly by :func:`gfr_core.data.degrade.degrade`. Losses: L1, optionally a
  per-image PSNR loss (``w_psnr``), an image pyramid L1 on the U-Net's auxiliary RGB outputs, a
  non-saturating adversarial loss, discriminator feature matching, and GFPGAN's VGG19 perceptual loss when
  torchvision's VGG19 weights are on disk (``w_perceptual``; :mod:`gfr_core.models.vgg`; the embedded models
  were trained without it, as those weights cannot be downloaded here), and GFPGAN's identity loss when its
  ArcFace weights are (``w_identity``: L1 between the ArcFace embeddings of output and ground truth;
  :mod:`gfr_core.models.arcface`; not used for the embedded models either).
  ``use_prior=False`` trains the same architecture with a randomly initialised, trainable decoder: the
  prior ablation.
"""

from .common import cpu_bf16_native
from .config import PRECISIONS, TRAINABLE, PriorConfig, RestorerConfig
from .export import export_embedded, export_resume_state, write_model_card
from .losses import psnr_loss
from .prior import train_prior
from .restorer import restorer_config, train_restorer

__all__ = [
    "PRECISIONS",
    "TRAINABLE",
    "PriorConfig",
    "RestorerConfig",
    "cpu_bf16_native",
    "export_embedded",
    "export_resume_state",
    "psnr_loss",
    "restorer_config",
    "train_prior",
    "train_restorer",
    "write_model_card",
]
