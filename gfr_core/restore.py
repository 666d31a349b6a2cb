"""Whole-photo face restoration: detect -> align -> restore (one batched forward) -> paste back.

``FaceRestorer`` holds a model and its settings only; every call is independent (no state accumulates
between photos). Images enter and leave as RGB ``uint8`` arrays; gray and RGBA inputs keep their layout.

**Fidelity.** ``fidelity`` in [0, 1] controls how far the result may move from the input:

* ``0``: the prior alone renders the predicted latents (SFT conditions / GPEN encoder features switched
  off): the most "generated" face.
* ``0 -> 0.5``: the spatial guidance (SFT scale and shift, or GPEN's injected encoder features) is faded in
  linearly; ``0.5`` is exactly the trained model's output (the default).
* ``0.5 -> 1``: the restored face is blended with the aligned input in pixel space; ``1`` returns the input
  face unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
from torch import nn

from .face import Detection, align_face, detect_faces, paste_face, select_center_face, template
from .imageio import LoadedImage, prepare_array, restore_mode
from .nn import ConvLayer, ModulatedConv2d

__all__ = ["DEFAULT_FIDELITY", "FaceResult", "FaceRestorer", "InferenceSettings", "RestoreResult", "optimize_for_inference", "reuse_freed_memory"]

log = logging.getLogger(__name__)

DEFAULT_FIDELITY = 0.5
"""The trained model's own output."""


@dataclass(frozen=True)
class FaceResult:
    """One face of a photo."""

    box: np.ndarray  # (4,) x1, y1, x2, y2 in input-photo pixels
    landmarks: np.ndarray  # (5,2) in input-photo pixels
    score: float  # detector confidence (1.0 for aligned input)
    affine: np.ndarray  # (2,3) photo -> aligned crop
    aligned: np.ndarray  # (S,S,3) uint8 RGB crop fed to the model
    restored: np.ndarray  # (S,S,3) uint8 RGB model output


@dataclass(frozen=True)
class RestoreResult:
    """The restored photo and what was done to it."""

    image: np.ndarray  # (H*up,W*up[,C]) uint8; gray stays (H,W), RGBA keeps its (upscaled) alpha
    faces: list[FaceResult]  # detected faces in decreasing size
    upscale: float  # output / input size
    messages: list[str] = field(default_factory=list)  # remarks for the user (no face found, conversions)


@dataclass(frozen=True)
class InferenceSettings:
    """How a restorer runs on a device. Chosen from measurements (``gfr bench --variants``, benchmarks/RESULTS.md)."""

    device_type: str  # 'cpu' or 'cuda'
    fused: bool  # grouped-conv modulated conv (True) or activation scaling with shared weights (False)
    channels_last: bool  # NHWC memory format for the input and the 4-D weights
    autocast_dtype: torch.dtype | None  # reduced-precision autocast (bf16) or None for fp32
    compile: bool  # torch.compile the model
    batch_pixels: int = 1 << 30  # most face pixels (faces x S x S) per forward; bounds batch size and memory
    reuse_memory: bool = False  # CPU: keep freed large blocks in the heap for reuse (see reuse_freed_memory)
    winograd: bool = False  # Winograd F(4,3) for the wide 3x3 convs where it pays (nn.winograd_pays)

    @classmethod
    def for_device(cls, device: str | torch.device, *, compile: bool = False) -> "InferenceSettings":
        """Defaults per device type, from measurements (``gfr bench --variants``, benchmarks/RESULTS.md).

        CPU: fp32, NHWC and the shared-weight modulated conv (as fast as the grouped form for one 512 px
        face, faster for batched small faces); one 512 px face per forward (batching 512 px faces measured
        slower per face: their activations no longer fit in cache), up to 8 faces of the 64 px embedded
        model. Large freed blocks are kept for reuse (:func:`reuse_freed_memory`): without it a 512 px
        forward spends ~30 % of its time page-faulting fresh memory. The 3x3 convs of >= 128 channels at
        8-256 px run as Winograd F(4,3) in cache-sized chunks (:mod:`gfr_core.nn.winograd`): ~1.3x per
        512 px face, eager or compiled. ``compile=True`` is another ~1.1x at 512 px but costs 4-5 min of
        compilation with a cold cache: for batch jobs.
        CUDA: the shared-weight form (one large conv per layer instead of a grouped one), NHWC, bf16
        autocast and large batches; not yet measured on a GPU.
        """
        dev = torch.device(device)
        if dev.type == "cuda":
            return cls("cuda", fused=False, channels_last=True, autocast_dtype=torch.bfloat16, compile=compile,
                       batch_pixels=32 * 512 * 512)
        return cls(dev.type, fused=False, channels_last=True, autocast_dtype=None, compile=compile, batch_pixels=8 * 64 * 64,
                   reuse_memory=dev.type == "cpu", winograd=dev.type == "cpu")

    def faces_per_forward(self, face_size: int) -> int:
        """Faces per forward at ``face_size`` under this device's pixel budget (at least 1)."""
        return max(1, self.batch_pixels // (face_size * face_size))

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self):
        import contextlib

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def forward_kwargs(self, is_gfpgan: bool) -> dict[str, object]:
        return {"fused": self.fused, **({"noise_mode": "const"} if is_gfpgan else {})}

    def describe(self) -> dict[str, object]:
        return dict(fused_modconv=self.fused, channels_last=self.channels_last,
                    autocast=str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else "fp32",
                    compile=self.compile, batch_pixels=self.batch_pixels, reuse_memory=self.reuse_memory,
                    winograd=self.winograd)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -3, -4, -8  # glibc mallopt parameters (malloc.h)
_memory_reuse = False  # whether reuse_freed_memory(True) is in effect in this process


def reuse_freed_memory(enable: bool = True) -> bool:
    """Let glibc serve large tensors from its heap and keep freed memory for reuse (process-wide).

    By default glibc gives every allocation over 32 MiB its own ``mmap`` and unmaps it on free, so every
    large activation of a forward arrives as fresh pages that the kernel faults in and zeroes: one 512 px
    GFPGAN forward took 0.84 M minor page faults and 1.2 s of kernel time on the 2-vCPU bench machine
    (benchmarks/RESULTS.md). With ``mmap`` off and up to 1 GiB of freed heap kept, the second forward
    faults nothing. The cost: the process keeps that memory resident between photos.

    Threads allocate from per-thread arenas whose heaps cannot hold such blocks, so this also limits
    glibc to the one main arena. A thread that has already allocated keeps its own arena: in a threaded
    server call this before the worker threads start (``app.py`` does).

    Args:
        enable: ``False`` puts back glibc's settled default (``mmap`` above 32 MiB, trim above 64 MiB,
            8 arenas per core) and returns the kept memory to the system. Blocks still free in the heap
            can serve later requests, so this is not a fresh process (``gfr bench`` uses one per model).

    Returns:
        True where it was applied (Linux with glibc), False elsewhere (nothing changes).
    """
    import ctypes
    import os
    import platform

    global _memory_reuse
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if enable:
        settings = [(_M_TRIM_THRESHOLD, 1 << 30), (_M_MMAP_MAX, 0), (_M_ARENA_MAX, 1)]
    else:
        settings = [(_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20), (_M_MMAP_MAX, 65536),
                    (_M_ARENA_MAX, 8 * (os.cpu_count() or 1))]
    ok = all(libc.mallopt(param, value) == 1 for param, value in settings)
    if ok and not enable:
        libc.malloc_trim(0)
    if not ok:
        log.warning("mallopt refused the allocator settings %s", settings)
    _memory_reuse = enable and ok
    return ok


def memory_reuse_enabled() -> bool:
    """Whether :func:`reuse_freed_memory` is in effect in this process."""
    return _memory_reuse


def optimize_for_inference(model: nn.Module, settings: InferenceSettings) -> nn.Module:
    """Freeze ``model`` for inference with ``settings`` (memory format, compilation). Returns the callable to use.

    With ``channels_last`` the 4-D conv weights are stored NHWC; the 5-D modulated-conv weights are left
    as they are (they are rebuilt per sample in each forward). With ``winograd`` the 3x3 convs whose
    channel pair pays (:func:`gfr_core.nn.winograd_pays`) use Winograd F(4,3); the others, and every conv
    when it is off, use the direct convolution.
    """
    model.eval().requires_grad_(False)
    if settings.reuse_memory:
        reuse_freed_memory()
    if settings.channels_last:
        for t in [*model.parameters(), *model.buffers()]:
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    for m in model.modules():
        if isinstance(m, (ConvLayer, ModulatedConv2d)):
            m.use_winograd(settings.winograd)
    if settings.compile:
        # freezing: weights become constants, so inductor can pre-pack conv weights and fold the
        # weight-only arithmetic (equalized-lr gains, the shared-weight demodulation norms). On CUDA,
        # "reduce-overhead" also captures each (fixed) batch shape in a CUDA graph.
        mode = "reduce-overhead" if settings.device_type == "cuda" else None
        return torch.compile(model, mode=mode, dynamic=False, options={"freezing": True})
    return model


def _check_fidelity(fidelity: float) -> float:
    f = float(fidelity)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"fidelity must be in [0, 1], got {fidelity}")
    return f


class FaceRestorer:
    """Restore every face in a photo with a GFPGAN- or GPEN-style model.

    Example::

        restorer = FaceRestorer.from_pretrained("gfpgan-v1.4")
        result = restorer(rgb_uint8, upscale=2)
        result.image, result.faces[0].restored
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        face_size: int,
        name: str = "custom",
        device: str | torch.device = "cpu",
        detector: str = "mtcnn",
        max_batch: int | None = None,
        crop_zoom: float = 1.0,
        settings: InferenceSettings | None = None,
    ) -> None:
        """Wrap a restoration network.

        Args:
            model: Maps (B,3,S,S) in [-1,1] to (B,3,S,S) and accepts ``spatial_strength=``.
            face_size: S, the model's input resolution.
            name: Label used in messages.
            device: Device the model runs on.
            detector: Face detector name (see :data:`gfr_core.face.DETECTORS`).
            max_batch: Most faces per forward pass (default: the device's measured policy,
                :meth:`InferenceSettings.faces_per_forward`); bounds memory on photos with many faces.
            crop_zoom: Template zoom the model was trained with (see :func:`gfr_core.face.template`).
            settings: Inference settings (default: :meth:`InferenceSettings.for_device`).
        """
        self.settings = settings or InferenceSettings.for_device(device)
        self.model = model.eval().to(device)
        self._forward = optimize_for_inference(self.model, self.settings)
        self.face_size = int(face_size)
        self.name = name
        self.device = torch.device(device)
        self.detector = detector
        self.max_batch = int(max_batch) if max_batch else self.settings.faces_per_forward(self.face_size)
        self.crop_zoom = float(crop_zoom)

    @classmethod
    def from_pretrained(
        cls, name: str, *, device: str | torch.device = "cpu", detector: str = "mtcnn", max_batch: int | None = None,
        settings: InferenceSettings | None = None,
    ) -> "FaceRestorer":
        """Load a registered restorer (see ``gfr models``) or a local checkpoint file.

        ``settings`` overrides the device's measured defaults, e.g.
        ``InferenceSettings.for_device("cuda", compile=True)`` for ``torch.compile`` with CUDA graphs.
        """
        from .hub import load_model, model_card

        model = load_model(name, device=device)
        card = model_card(name)
        if card is not None:
            if card.task != "restore":
                raise ValueError(f"{name} is a {card.task} model, not a face restorer; pick one of `gfr models` with task 'restore'")
            size, zoom = card.face_size, card.crop_zoom
        else:  # a foreign checkpoint file (official layout): the architecture's size, the FFHQ template
            size, zoom = int(getattr(model, "out_size", getattr(model, "size", 512))), 1.0
        return cls(model, face_size=size, name=str(name), device=device, detector=detector, max_batch=max_batch, crop_zoom=zoom,
                   settings=settings)

    # ----------------------------------------------------------------------------------------------
    # Faces

    @torch.inference_mode()
    def restore_faces(self, crops: np.ndarray, *, fidelity: float = DEFAULT_FIDELITY) -> np.ndarray:
        """Restore aligned crops in batches.

        Args:
            crops: (N,S,S,3) uint8 RGB, S = ``face_size``.
            fidelity: See the module docstring.

        Returns:
            (N,S,S,3) uint8 RGB.
        """
        f = _check_fidelity(fidelity)
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.face_size, self.face_size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"crops must be (N,{self.face_size},{self.face_size},3) uint8, got {crops.shape} {crops.dtype}")
        out = np.empty_like(crops)
        for i in range(0, len(crops), self.max_batch):
            x = torch.from_numpy(crops[i : i + self.max_batch]).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1
            n = len(x)
            if self.settings.compile:  # pad to a power of two: a few fixed shapes, each compiled (CUDA graph) once
                padded = min(self.max_batch, 1 << (n - 1).bit_length())
                x = torch.cat([x, x.new_zeros(padded - n, *x.shape[1:])])
            with self.settings.autocast():
                y = self._forward(self.settings.prepare_input(x), spatial_strength=min(1.0, 2 * f), fused=self.settings.fused)
            y, x = y[:n].float(), x[:n]
            if f > 0.5:
                a = 2 * f - 1
                y = (1 - a) * y + a * x
            y = ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
            out[i : i + self.max_batch] = y.cpu().numpy()
        return out

    def restore_aligned(self, face: np.ndarray, *, fidelity: float = DEFAULT_FIDELITY) -> np.ndarray:
        """Restore one already-aligned face of any size; returns the (S,S[,C]) restored crop.

        Gray input gives gray output and an alpha channel is resized and kept.
        """
        rgb, alpha, gray = prepare_array(face)
        crop = self._resize_to_face(rgb)
        restored = self.restore_faces(crop[None], fidelity=fidelity)[0]
        return restore_mode(restored, alpha=alpha, gray=gray)

    def _resize_to_face(self, rgb: np.ndarray) -> np.ndarray:
        s = self.face_size
        if rgb.shape[:2] == (s, s):
            return rgb
        interp = cv2.INTER_AREA if min(rgb.shape[:2]) > s else cv2.INTER_CUBIC
        return cv2.resize(rgb, (s, s), interpolation=interp)

    # ----------------------------------------------------------------------------------------------
    # Photos

    def detect(self, rgb: np.ndarray, *, only_center_face: bool = False, min_face_size: float = 16.0) -> list[Detection]:
        """Faces of an RGB photo, largest first (or only the most central one)."""
        dets = detect_faces(rgb, detector=self.detector, device=str(self.device), min_face_size=min_face_size)
        if only_center_face:
            dets = select_center_face(dets, rgb.shape[1], rgb.shape[0])
        return dets

    def __call__(
        self,
        image: np.ndarray | LoadedImage,
        *,
        upscale: float = 2,
        fidelity: float = DEFAULT_FIDELITY,
        only_center_face: bool = False,
        aligned: bool = False,
        min_face_size: float = 16.0,
        detections: list[Detection] | None = None,
        background: Literal["lanczos", "bicubic"] = "lanczos",
    ) -> RestoreResult:
        """Restore every face of a photo and paste it back into the upscaled photo.

        Args:
            image: (H,W), (H,W,3) or (H,W,4) array (uint8, uint16 or float in [0,1]), or a :class:`LoadedImage`.
            upscale: Output size / input size (1 to 8).
            fidelity: See the module docstring; 0.5 is the model's own output.
            only_center_face: Restore only the face closest to the centre.
            aligned: The input is one face already aligned to the template: skip detection and return the
                restored crop at the model's resolution.
            min_face_size: Ignore smaller faces (pixels).
            detections: Use these faces instead of running the detector.
            background: Resampling used to upscale the photo behind the faces.
        """
        f = _check_fidelity(fidelity)
        if not 1 <= upscale <= 8:
            raise ValueError(f"upscale must be between 1 and 8, got {upscale}")
        messages: list[str] = []
        if isinstance(image, LoadedImage):
            rgb, alpha, gray = image.rgb, image.alpha, image.gray
            messages += image.notes
        else:
            rgb, alpha, gray = prepare_array(image)
        h, w = rgb.shape[:2]

        if aligned:
            crop = self._resize_to_face(rgb)
            restored = self.restore_faces(crop[None], fidelity=f)[0]
            s = self.face_size
            affine = np.array([[s / w, 0, 0], [0, s / h, 0]], np.float64)
            lm = template(s, self.crop_zoom) * np.array([w / s, h / s])
            face = FaceResult(np.array([0, 0, w, h], np.float64), lm, 1.0, affine, crop, restored)
            return RestoreResult(restore_mode(restored, alpha=alpha, gray=gray), [face], s / max(h, w), messages)

        dets = detections if detections is not None else self.detect(rgb, only_center_face=only_center_face, min_face_size=min_face_size)
        interp = cv2.INTER_LANCZOS4 if background == "lanczos" else cv2.INTER_CUBIC
        out_w, out_h = round(w * upscale), round(h * upscale)
        canvas = rgb.copy() if (out_w, out_h) == (w, h) else cv2.resize(rgb, (out_w, out_h), interpolation=interp)
        faces: list[FaceResult] = []
        if not dets:
            messages.append("no face found: the photo was only upscaled")
        else:
            alignedf = [align_face(rgb, d.landmarks, self.face_size, zoom=self.crop_zoom) for d in dets]
            restored = self.restore_faces(np.stack([a.crop for a in alignedf]), fidelity=f)
            # paste smallest first so that larger (closer) faces end up on top where faces overlap
            for d, a, r in sorted(zip(dets, alignedf, restored), key=lambda t: t[0].size):
                paste_face(canvas, r, a.affine, upscale=out_w / w)
            faces = [FaceResult(d.box, d.landmarks, d.score, a.affine, a.crop, r) for d, a, r in zip(dets, alignedf, restored)]
        return RestoreResult(restore_mode(canvas, alpha=alpha, gray=gray), faces, out_w / w, messages)

