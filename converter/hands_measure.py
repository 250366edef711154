"""How far a hand model's variant is from the float model, on real photos, and how fast it is.

Palm detector: on each photo both run the edge's own PalmDetector (letterbox, anchors, NMS,
threshold 0.5); detection agreement is how often both find a palm or both find none, and where
both find one, the IoU of their best boxes and the mean distance of their 7 keypoints (in pixels
of the 192 x 192 model input, and as a share of the float model's palm box side).

Landmark model: both run the edge's LandmarkModel on the same hand crops (cut from the float
palm detector's palm); landmark error is the mean distance of the 21 landmarks in pixels of the
224 x 224 crop, and as a share of the hand's size (the longer side of the float landmarks'
box), over the crops where the float model says a hand is present; presence agreement is how
often both say present (>= 0.5) or both say absent, over every crop, no-hand photos included.

Speed: invoke p50 at 1 thread through the edge's interpreter (ai-edge-litert, XNNPACK),
the variants timed in turns (invoke_speeds).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from converter.hands_data import Photo, read_rgb
from edge.bench import fill_inputs
from edge.hands.landmarks import LandmarkModel
from edge.hands.palm import Palm, PalmDetector
from edge.hands.tensors import TensorModel
from edge.machine import xnnpack_status
from edge.runtime.interpreter import make_interpreter

MIN_PRESENCE = 0.5
SPEED_ROUNDS, SPEED_BLOCK = 12, 10  # 120 timed invokes per model


def _r(x: Any, nd: int = 4) -> float:
    return round(float(x), nd)


def palm_results(data: bytes, photos: list[Photo]) -> list[tuple[Palm | None, float]]:
    """(best palm or None, longer side of the photo) for each photo."""
    det = PalmDetector(TensorModel(data, 1, "palm"))
    out = []
    for p in photos:
        rgb = read_rgb(p)
        palms = det.detect(rgb)
        out.append((palms[0] if palms else None, float(max(rgb.shape[:2]))))
    return out


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare_palms(ref: list[tuple[Palm | None, float]], got: list[tuple[Palm | None, float]],
                  photos: list[Photo], size: int) -> dict[str, Any]:
    agree: dict[str, list[bool]] = {}
    ious, kp_px, kp_rel, dscore = [], [], [], []
    for (r, side), (g, _), p in zip(ref, got, photos):
        agree.setdefault(p.group, []).append((r is None) == (g is None))
        if r is None or g is None:
            continue
        ious.append(box_iou(r.box, g.box))
        d = np.linalg.norm(r.keypoints - g.keypoints, axis=1).mean()
        kp_px.append(d * size / side)  # frame px -> model-input px (the letterbox scale)
        kp_rel.append(d / max(1e-6, max(r.box[2] - r.box[0], r.box[3] - r.box[1])))
        dscore.append(abs(r.score - g.score))
    n_both = len(ious)
    every = [a for v in agree.values() for a in v]
    return {
        "photos": len(photos),
        "detection_agreement": _r(np.mean(every)),
        "agreement_by_set": {k: _r(np.mean(v)) for k, v in agree.items()},
        "found_by_float": sum(r is not None for r, _ in ref),
        "found": sum(g is not None for g, _ in got),
        "both_found": n_both,
        "box_iou_mean": _r(np.mean(ious)) if n_both else None,
        "box_iou_min": _r(np.min(ious)) if n_both else None,
        "keypoint_px_mean": _r(np.mean(kp_px), 3) if n_both else None,
        "keypoint_px_p95": _r(np.percentile(kp_px, 95), 3) if n_both else None,
        "keypoint_px_max": _r(np.max(kp_px), 3) if n_both else None,
        "keypoint_error_of_palm_size": _r(np.mean(kp_rel)) if n_both else None,
        "score_abs_diff_mean": _r(np.mean(dscore)) if n_both else None,
        "input_px": size,
    }


def landmark_results(data: bytes, crops: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
    """(landmarks (21, 3) crop px, presence, right-hand probability) for each crop."""
    lm = LandmarkModel(TensorModel(data, 1, "landmark"))
    out = []
    for c in crops:
        r = lm(c)
        out.append((r.landmarks, r.presence, r.right))
    return out


def compare_landmarks(ref: list[tuple[np.ndarray, float, float]],
                      got: list[tuple[np.ndarray, float, float]], size: int) -> dict[str, Any]:
    px, rel, pres_agree, hand_agree, dpres = [], [], [], [], []
    for (rl, rp, rh), (gl, gp, gh) in zip(ref, got):
        pres_agree.append((rp >= MIN_PRESENCE) == (gp >= MIN_PRESENCE))
        dpres.append(abs(rp - gp))
        if rp < MIN_PRESENCE:
            continue
        hand_agree.append((rh >= 0.5) == (gh >= 0.5))
        d = float(np.linalg.norm(rl[:, :2] - gl[:, :2], axis=1).mean())
        extent = float((rl[:, :2].max(axis=0) - rl[:, :2].min(axis=0)).max())
        px.append(d)
        rel.append(d / max(extent, 1e-6))
    n = len(px)
    return {
        "crops": len(ref),
        "hands_by_float": n,
        "landmark_px_mean": _r(np.mean(px), 3) if n else None,
        "landmark_px_p95": _r(np.percentile(px, 95), 3) if n else None,
        "landmark_px_max": _r(np.max(px), 3) if n else None,
        "landmark_error_of_hand_size": _r(np.mean(rel)) if n else None,
        "landmark_error_of_hand_size_p95": _r(np.percentile(rel, 95)) if n else None,
        "presence_agreement": _r(np.mean(pres_agree)),
        "presence_abs_diff_mean": _r(np.mean(dpres)),
        "handedness_agreement": _r(np.mean(hand_agree)) if hand_agree else None,
        "input_px": size,
    }


def invoke_speeds(models: dict[str, bytes], rounds: int = SPEED_ROUNDS,
                  block: int = SPEED_BLOCK) -> dict[str, dict[str, Any]]:
    """Invoke latency of each model at 1 thread through the edge's interpreter (XNNPACK),
    timed in interleaved blocks (A, B, C, A, B, C, ...): on a shared, loaded machine each
    variant then meets the same load, so their ratios hold even where the absolute ms drift."""
    interps = {}
    for name, data in models.items():
        it = make_interpreter(data, 1, name)
        fill_inputs(it)
        for _ in range(5):  # warm-up
            it.invoke()
        interps[name] = it
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, it in interps.items():
            for _ in range(block):
                t0 = time.perf_counter()
                it.invoke()
                times[name].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for name, ts in times.items():
        out[name] = {"p50_ms": _r(np.percentile(ts, 50), 3), "p90_ms": _r(np.percentile(ts, 90), 3),
                     "threads": 1, "runs": len(ts), "xnnpack": xnnpack_status(interps[name])["enabled"],
                     "bytes": len(models[name])}
    return out
