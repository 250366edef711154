"""Palm detection: letterbox, run MediaPipe's palm model, decode against the anchors, NMS."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import ModelError
from edge.hands.anchors import ssd_anchors
from edge.hands.nms import sigmoid, weighted_nms
from edge.hands.tensors import TensorModel

NUM_KEYPOINTS = 7  # wrist, index/middle/ring/pinky MCP, thumb CMC, thumb MCP (MediaPipe's order)


@dataclass(frozen=True)
class Palm:
    """One palm detection in frame pixels."""

    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    keypoints: np.ndarray  # (7, 2) x, y


@dataclass(frozen=True)
class Letterbox:
    """How a frame was scaled and padded into the square model input (to undo it)."""

    scale: float  # model pixels per frame pixel
    pad_x: float  # model pixels left of the image
    pad_y: float

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Model-input pixel coordinates (..., 2) -> frame pixels."""
        return (xy - np.array([self.pad_x, self.pad_y], np.float32)) / self.scale


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit the frame into size x size keeping its aspect ratio, zero borders centred on both
    sides (MediaPipe's keep_aspect_ratio with BORDER_ZERO); float32 in [0, 1]."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = _shrink(rgb, int(max(h, w) // size))
    # INTER_AREA, not bilinear: bilinear from 640 to 192 aliases, and the palm detector then
    # missed hands it finds in the averaged image (as mediapipe's own bilinear crop does)
    small = cv2.resize(small, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), np.float32)
    px, py = (size - nw) // 2, (size - nh) // 2
    out[py:py + nh, px:px + nw] = small.astype(np.float32) * (1.0 / 255.0)
    # the exact scale per axis is nw / w; one scale keeps boxes square, the error < 1 model px
    return out, Letterbox(scale=nw / w, pad_x=float(px), pad_y=float(py))


def _shrink(rgb: np.ndarray, most: int) -> np.ndarray:
    """rgb averaged down by the largest integer factor <= most that divides both sides:
    INTER_AREA is ~5x quicker by an integer factor, and the last step is then small."""
    h, w = rgb.shape[:2]
    for f in range(most, 1, -1):
        if h % f == 0 and w % f == 0:
            return cv2.resize(rgb, (w // f, h // f), interpolation=cv2.INTER_AREA)
    return rgb


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw (N, 18) regressors -> boxes (N, 4) x0,y0,x1,y1 and keypoints (N, 7, 2), in model
    pixels. Each row: x centre, y centre, w, h, then 7 (x, y), offsets in pixels of a `size`
    input from the anchor centre (fixed anchor size: w = h = 1)."""
    a = anchors * size
    cx = raw[:, 0] + a[:, 0]
    cy = raw[:, 1] + a[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + a[:, None, :]
    return boxes, kps


class PalmDetector:
    """MediaPipe's palm detector (lite or full) on whole frames."""

    def __init__(self, model: TensorModel, min_score: float = 0.5, iou_threshold: float = 0.3):
        """Check the model is a palm detector: a square input and (N, 18) boxes + (N, 1) scores."""
        self.model = model
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        h, w = model.input_hw
        if h != w:
            raise ModelError(f"{model.what}: palm input {h}x{w} is not square")
        self.size = h
        self.anchors = ssd_anchors(h)
        n = len(self.anchors)
        shapes = [s for _, s in model.output_shapes()]
        # outputs are told apart by shape, not by their order
        box_i = next((i for i, s in enumerate(shapes) if s[-2:] == (n, 18)), None)
        score_i = next((i for i, s in enumerate(shapes) if s[-2:] == (n, 1) or s[-1:] == (n,)), None)
        if box_i is None or score_i is None:
            raise ModelError(f"{model.what}: outputs {shapes} are not a palm detector's "
                             f"({n} x 18 boxes and {n} scores for {h}x{w} anchors)")
        self._box_i, self._score_i = box_i, score_i

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """The frame letterboxed into the model's input, and how (to map palms back)."""
        return letterbox(rgb, self.size)

    def detect(self, rgb: np.ndarray, mirrored: bool = False) -> list[Palm]:
        """Palms in an RGB uint8 frame, best first (empty when none reaches min_score);
        mirrored: see detect_prepared."""
        x, lb = self.prepare(rgb)
        return self.detect_prepared(x, lb, mirrored)

    def detect_prepared(self, x: np.ndarray, lb: Letterbox, mirrored: bool = False) -> list[Palm]:
        """Palms in a prepared input (prepare()), in frame pixels, best first.

        mirrored: run the model on the input's left-right mirror image and map the palms
        back (the detector is not symmetric: it finds some hands only mirrored). Mirroring
        the letterboxed input, not the frame, costs nothing and maps back exactly."""
        outs = self.model.run(x[:, ::-1] if mirrored else x)
        raw = outs[self._box_i].reshape(-1, 18)
        scores = sigmoid(outs[self._score_i].reshape(-1))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        boxes, kps = decode_boxes(raw[keep], self.anchors[keep], float(self.size))
        if mirrored:  # model x -> size - x in the unmirrored input (a box's x0 and x1 swap)
            boxes = np.stack([self.size - boxes[:, 2], boxes[:, 1], self.size - boxes[:, 0], boxes[:, 3]], axis=1)
            kps = np.stack([self.size - kps[:, :, 0], kps[:, :, 1]], axis=2)
        palms = []
        for score, box, kp in weighted_nms(boxes, scores[keep], kps, self.iou_threshold):
            b = lb.to_frame(box.reshape(2, 2)).reshape(-1)
            palms.append(Palm(score, (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                              lb.to_frame(kp)))
        return palms

    def best_score(self, rgb: np.ndarray) -> float:
        """The highest palm score in the frame (diagnostics; no threshold)."""
        x, _ = letterbox(rgb, self.size)
        outs = self.model.run(x)
        return float(sigmoid(outs[self._score_i].reshape(-1)).max())
