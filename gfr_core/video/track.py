"""Faces across frames (pure functions): tracks by box overlap, and landmarks smoothed over time.

Per-frame detection jitters by a pixel or two and misses faces now and then; a restorer fed those crops
flickers. Each face is followed as a track (greedy IoU matching to the previous frames), and its five
landmarks are replaced by a Gaussian-weighted mean of the same track's landmarks in the frames around it
(sigma 5 frames, as KEEP, ECCV 2024, does), which also fills short misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..face import Detection

__all__ = ["Tracker", "smooth_detections"]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Tracker:
    """Online assignment of each frame's detections to tracks (a track per person)."""

    min_iou: float = 0.3  # a detection continues a track whose last box it overlaps this much
    max_miss: int = 10  # frames a track may go without a detection before it ends
    _last: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)  # track -> (frame, last box)
    _next: int = 0

    def assign(self, frame: int, dets: list[Detection]) -> list[tuple[int, Detection]]:
        """(track id, detection) for the detections of ``frame`` (frames in increasing order)."""
        self._last = {t: v for t, v in self._last.items() if frame - v[0] <= self.max_miss}
        pairs = sorted(
            ((_iou(d.box, box), t, i) for i, d in enumerate(dets) for t, (_, box) in self._last.items()),
            reverse=True,
        )
        taken_t, taken_d, out = set(), set(), []
        for iou, t, i in pairs:
            if iou < self.min_iou or t in taken_t or i in taken_d:
                continue
            taken_t.add(t)
            taken_d.add(i)
            out.append((t, dets[i]))
        for i, d in enumerate(dets):
            if i not in taken_d:
                out.append((self._next, d))
                self._next += 1
        for t, d in out:
            self._last[t] = (frame, d.box)
        return out


def smooth_detections(
    observed: dict[int, dict[int, Detection]], frame: int, *, sigma: float = 5.0, max_gap: int = 10, hold: int = 1
) -> list[Detection]:
    """The faces of ``frame`` with landmarks and boxes averaged over time, per track.

    Args:
        observed: frame -> {track id: detection} for the frames around ``frame`` (the caller keeps
            ``3 * sigma`` frames on each side).
        frame: The frame to answer for.
        sigma: Gaussian width in frames (0: the frame's own detections, unchanged).
        max_gap: A track missing at ``frame`` is filled in only when it was seen within this many frames
            both before and after it,
        hold: ... or within fewer than this many frames on one side (frames the detector skipped, at the
            clip's ends too).
    """
    tracks = {t for dets in observed.values() for t in dets}
    out = []
    for t in sorted(tracks):
        seen = sorted(f for f, dets in observed.items() if t in dets)
        if frame not in seen:
            before = [f for f in seen if frame - max_gap <= f < frame]
            after = [f for f in seen if frame < f <= frame + max_gap]
            if not (before and after) and not any(abs(f - frame) < hold for f in seen):
                continue
        if sigma <= 0:
            if frame in seen:
                out.append(observed[frame][t])
            continue
        near = [f for f in seen if abs(f - frame) <= 3 * sigma]
        w = np.exp(-0.5 * ((np.array(near, np.float64) - frame) / sigma) ** 2)
        w /= w.sum()
        lm = sum(wi * observed[f][t].landmarks for wi, f in zip(w, near))
        box = sum(wi * observed[f][t].box for wi, f in zip(w, near))
        score = float(max(observed[f][t].score for f in near))
        out.append(Detection(box=np.asarray(box), landmarks=np.asarray(lm), score=score))
    return out
