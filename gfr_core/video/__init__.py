"""Video: every face of a clip restored with the per-photo pipeline, steadily (tracked, landmarks smoothed
over time), streamed, with the sound and timestamps kept. Needs PyAV (``pip install -e '.[video]'``)."""

from .io import VIDEO_SUFFIXES, VideoInfo, VideoInputError, probe_video, read_frames
from .restore import VideoResult, restore_video
from .track import Tracker, smooth_detections

__all__ = [
    "VIDEO_SUFFIXES",
    "Tracker",
    "VideoInfo",
    "VideoInputError",
    "VideoResult",
    "probe_video",
    "read_frames",
    "restore_video",
    "smooth_detections",
]
