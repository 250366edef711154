"""Rotated hand rectangles (MediaPipe's DetectionsToRects/HandLandmarksToRect + RectTransformation),
the rotated crop for the landmark model, and landmarks projected back to frame pixels.

Angles follow MediaPipe: rotation = 90deg - atan2(-(y1 - y0), x1 - x0), so a hand whose
fingers point up in the image has rotation 0; the crop shows every hand fingers-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

TARGET_ANGLE = math.pi / 2
# palm detection -> hand rect (hand_landmark's palm_detection_detection_to_roi)
PALM_SCALE, PALM_SHIFT_Y = 2.6, -0.5
# landmarks -> next frame's rect (hand_landmark_landmarks_to_roi)
LANDMARK_SCALE, LANDMARK_SHIFT_Y = 2.0, -0.1
# the landmarks HandLandmarksToRect measures the hand by: wrist, thumb CMC/MCP/IP, and the
# MCP and PIP of index, middle, ring and pinky (not the finger tips, which move most)
ROI_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


@dataclass(frozen=True)
class RotatedRect:
    """A square in frame pixels: centre, side, rotation (radians, MediaPipe's sense)."""

    cx: float
    cy: float
    side: float
    rotation: float

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The rect's unit x axis and y axis in frame coordinates (y down)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        return np.array([c, s], np.float32), np.array([-s, c], np.float32)


def normalize_radians(a: float) -> float:
    """a wrapped into [-pi, pi)."""
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def rotation_between(p0: np.ndarray, p1: np.ndarray) -> float:
    """Rotation that turns the direction p0 -> p1 (frame pixels) to point up."""
    return normalize_radians(TARGET_ANGLE - math.atan2(-(float(p1[1]) - float(p0[1])),
                                                       float(p1[0]) - float(p0[0])))


def transform_rect(cx: float, cy: float, w: float, h: float, rotation: float,
                   scale: float, shift_y: float) -> RotatedRect:
    """MediaPipe's RectTransformation in pixels: shift along the rotated y axis by shift_y x h,
    take the long side (square_long), scale it."""
    cx += -h * shift_y * math.sin(rotation)
    cy += h * shift_y * math.cos(rotation)
    return RotatedRect(cx, cy, max(w, h) * scale, rotation)


def rect_from_palm(box: tuple[float, float, float, float], keypoints: np.ndarray) -> RotatedRect:
    """Hand rect from a palm detection: rotation from keypoint 0 (wrist) to 2 (middle MCP),
    the palm box shifted half its height toward the fingers and scaled 2.6."""
    x0, y0, x1, y1 = box
    rot = rotation_between(keypoints[0], keypoints[2])
    return transform_rect((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rot, PALM_SCALE, PALM_SHIFT_Y)


def rect_from_landmarks(landmarks: np.ndarray) -> RotatedRect:
    """Next frame's hand rect from 21 landmarks (frame pixels): rotation from the wrist to
    ((index MCP + ring MCP) / 2 + middle MCP) / 2, the bounds of ROI_LANDMARKS in the
    rotated frame, shifted -0.1 of its height and scaled 2.0."""
    lm = landmarks[:, :2].astype(np.float64)
    mid = ((lm[5] + lm[13]) / 2 + lm[9]) / 2
    rot = rotation_between(lm[0], mid)
    pts = lm[list(ROI_LANDMARKS)]
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    c, s = math.cos(rot), math.sin(rot)
    u, v = np.array([c, s]), np.array([-s, c])
    local = np.stack([(pts - centre) @ u, (pts - centre) @ v], axis=1)
    lo, hi = local.min(axis=0), local.max(axis=0)
    mc = (lo + hi) / 2
    cx, cy = centre + mc[0] * u + mc[1] * v
    w, h = hi - lo
    return transform_rect(float(cx), float(cy), float(w), float(h), rot, LANDMARK_SCALE, LANDMARK_SHIFT_Y)


def crop_matrix(rect: RotatedRect, size: int) -> np.ndarray:
    """2x3 affine mapping crop coordinates (0..size) to frame coordinates. Coordinates are
    continuous: pixel i spans [i, i + 1), as MediaPipe's normalised x times the width."""
    u, v = rect.axes()
    k = rect.side / size
    # crop pixel (i, j) -> centre + (i - size/2) k u + (j - size/2) k v
    origin = np.array([rect.cx, rect.cy], np.float32) - (size / 2) * k * (u + v)
    return np.array([[k * u[0], k * v[0], origin[0]], [k * u[1], k * v[1], origin[1]]], np.float32)


def crop(rgb: np.ndarray, rect: RotatedRect, size: int) -> np.ndarray:
    """The rect's content as a size x size float32 [0, 1] image, hand fingers-up; outside the
    frame the border pixels are repeated (MediaPipe's BORDER_REPLICATE for the landmark crop)."""
    m = crop_matrix(rect, size)
    # warpAffine maps pixel indices (centres at i, not i + 0.5): shift in and out by half a pixel
    m[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5
    out = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float32) * (1.0 / 255.0)


def project(points: np.ndarray, rect: RotatedRect, size: int) -> np.ndarray:
    """Landmarks (N, 3) in crop pixels -> frame pixels; z is scaled like x and y (crop pixels
    -> frame pixels), so it stays comparable with them."""
    m = crop_matrix(rect, size).astype(np.float64)
    xy = points[:, :2].astype(np.float64) @ m[:, :2].T + m[:, 2]
    z = points[:, 2:3].astype(np.float64) * (rect.side / size)
    return np.concatenate([xy, z], axis=1).astype(np.float32)
