"""Camera sources behind one small abstraction (like gpiozero's pin factories).

Spec strings: picamera2[:N] | opencv:N | opencv:/dev/videoN | opencv:rtsp://… |
replay:DIR_OR_VIDEO[@FPS].
"""

from __future__ import annotations

from typing import Any, Optional

from edge.camera.base import Frame, FrameSource
from edge.camera.capture import Camera, ErrorCallback
from edge.errors import CameraError
from edge.redact import redact

__all__ = ["Camera", "Frame", "FrameSource", "camera_from_config", "open_source", "parse_spec"]


def camera_from_config(section: Any, source: Optional[FrameSource] = None,
                       on_error: Optional[ErrorCallback] = None) -> Camera:
    """A Camera as the `camera:` config section describes it (source from its spec unless given)."""
    if source is None:
        source = open_source(section.source, section.width, section.height, section.fps)
    return Camera(source, stall_s=section.stall_s, on_error=on_error, rotate=section.rotate)


def parse_spec(spec: str) -> tuple[str, str, Optional[float]]:
    """'replay:dir@8' -> ('replay', 'dir', 8.0); errors are CameraError with the accepted forms."""
    spec = (spec or "").strip()
    shown = redact(spec)  # errors are logged: no camera password in them
    kind, _, rest = spec.partition(":")
    kind = kind.lower()
    if kind == "picamera2":
        if rest and not rest.isdigit():
            raise CameraError(f"camera {shown!r}: picamera2 takes an optional camera number (picamera2:1)")
        return "picamera2", rest or "0", None
    if kind == "opencv":
        if not rest:
            raise CameraError(f"camera {shown!r}: say which device: opencv:0, opencv:/dev/video0 or opencv:rtsp://…")
        return "opencv", rest, None
    if kind == "replay":
        if not rest:
            raise CameraError(f"camera {shown!r}: say what to replay: replay:DIR_OR_VIDEO[@FPS]")
        path, fps = rest, None
        if "@" in rest:
            head, _, tail = rest.rpartition("@")
            try:
                fps = float(tail)
                path = head
            except ValueError:
                # An '@' in the path itself, unless only the part before it exists.
                from pathlib import Path

                if not Path(rest).exists() and Path(head).exists():
                    raise CameraError(f"camera {shown!r}: FPS {tail!r} is not a number") from None
            if fps is not None and fps < 0:
                raise CameraError(f"camera {shown!r}: FPS must be >= 0 (0 = as fast as possible)")
        return "replay", path, fps
    raise CameraError(f"unknown camera {shown!r}: use picamera2, opencv:N, opencv:/dev/videoN, "
                      "opencv:rtsp://…, or replay:DIR_OR_VIDEO[@FPS]")


def open_source(spec: str, width: int = 640, height: int = 480, fps: float = 30.0) -> FrameSource:
    """A FrameSource for a spec (not yet opened; the capture thread opens it)."""
    kind, target, spec_fps = parse_spec(spec)
    if kind == "replay":
        from edge.camera.replay import ReplaySource

        return ReplaySource(target, fps if spec_fps is None else spec_fps)
    if kind == "opencv":
        from edge.camera.opencv import OpenCVSource

        return OpenCVSource(target, width, height, fps)
    from edge.camera.picamera2 import Picamera2Source

    return Picamera2Source(width, height, fps, int(target))
