"""Box decoding helpers and MediaPipe's WEIGHTED non-maximum suppression, in numpy."""

from __future__ import annotations

import numpy as np


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) x0,y0,x1,y1 box with each of (N, 4) boxes."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float = 0.3) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED suppression: the best remaining detection takes every other with
    IoU > iou_threshold; its box and keypoints become their score-weighted mean, its score
    stays its own. Returns [(score, box (4,), keypoints (K, 2))], best first."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    out: list[tuple[float, np.ndarray, np.ndarray]] = []
    while remaining.size:
        top = remaining[0]
        overlap = iou(boxes[top], boxes[remaining])
        group = remaining[overlap > iou_threshold]
        if top not in group:  # a degenerate (zero-area) box overlaps nothing, not even itself
            group = np.concatenate([[top], group])
        remaining = remaining[~np.isin(remaining, group)]
        w = scores[group].astype(np.float64)
        w = w / w.sum()
        box = (boxes[group] * w[:, None]).sum(axis=0)
        kps = (keypoints[group] * w[:, None, None]).sum(axis=0)
        out.append((float(scores[top]), box.astype(np.float32), kps.astype(np.float32)))
    return out


def sigmoid(x: np.ndarray, clip: float = 100.0) -> np.ndarray:
    """Logistic of x clipped to +-clip (MediaPipe's score_clipping_thresh)."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -clip, clip)))
