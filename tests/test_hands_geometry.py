"""The hand stage's numpy parts on synthetic inputs: anchors, box decoding, weighted NMS,
letterbox, rotated rects, the rotated crop and the projection back to frame pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.hands.anchors import ssd_anchors
from edge.hands.hand import Hand, landmark_box
from edge.hands.nms import iou, sigmoid, weighted_nms
from edge.hands.palm import decode_boxes, letterbox
from edge.hands.roi import (
    RotatedRect,
    crop,
    normalize_radians,
    project,
    rect_from_landmarks,
    rect_from_palm,
    rotation_between,
)


def test_palm_anchors_are_mediapipes_2016() -> None:
    a = ssd_anchors(192)
    assert a.shape == (2016, 2)
    # stride 8: a 24 x 24 grid, 2 anchors per cell, row by row
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 24, 0.5 / 24])
    assert np.allclose(a[2 * 24], [0.5 / 24, 1.5 / 24])
    # the three stride-16 layers share a 12 x 12 grid with 6 anchors per cell
    assert np.allclose(a[1152:1158], [0.5 / 12, 0.5 / 12])
    assert np.allclose(a[1158], [1.5 / 12, 0.5 / 12])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12])
    assert len(ssd_anchors(256)) == 2 * 32 * 32 + 6 * 16 * 16


def test_decode_boxes_offsets_from_anchor_centres() -> None:
    anchors = np.array([[0.5, 0.5], [0.25, 0.75]], np.float32)
    raw = np.zeros((2, 18), np.float32)
    raw[0, :4] = [10, -4, 40, 20]  # x, y offset in model pixels, w, h
    raw[0, 4:6] = [-3, 7]  # keypoint 0
    raw[1, :4] = [0, 0, 8, 8]
    boxes, kps = decode_boxes(raw, anchors, 192.0)
    assert np.allclose(boxes[0], [106 - 20, 92 - 10, 106 + 20, 92 + 10])
    assert np.allclose(kps[0, 0], [93, 103]) and np.allclose(kps[0, 1], [96, 96])
    assert np.allclose(boxes[1], [48 - 4, 144 - 4, 48 + 4, 144 + 4])
    assert kps.shape == (2, 7, 2)


def test_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    assert np.allclose(iou(boxes[0], boxes), [1.0, 50 / 150, 0.0, 1.0])


def test_weighted_nms_merges_overlaps_weighted_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60], [1, 1, 11, 11]], np.float32)
    scores = np.array([0.6, 0.9, 0.7, 0.3], np.float32)
    kps = np.zeros((4, 7, 2), np.float32)
    kps[:, :, 0] = np.array([0, 10, 100, 5], np.float32)[:, None]
    out = weighted_nms(boxes, scores, kps, iou_threshold=0.3)
    assert [round(s, 3) for s, _, _ in out] == [0.9, 0.7]  # best first, each keeps its own score
    score, box, kp = out[0]
    # box 1 (0.9) takes boxes 0 (IoU 0.67) and 3 (IoU 0.47 with box 1): their weighted mean
    w = np.array([0.9, 0.6, 0.3]) / 1.8
    assert np.allclose(box, (boxes[[1, 0, 3]] * w[:, None]).sum(0), atol=1e-4)
    assert np.allclose(kp[:, 0], (np.array([10, 0, 5]) * w).sum(), atol=1e-4)
    assert np.allclose(out[1][1], boxes[2]) and np.allclose(out[1][2][:, 0], 100)


def test_weighted_nms_keeps_boxes_below_the_overlap_threshold_apart() -> None:
    boxes = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], np.float32)  # IoU 4/16 = 0.25
    out = weighted_nms(boxes, np.array([0.8, 0.9], np.float32), np.zeros((2, 7, 2), np.float32), 0.3)
    assert len(out) == 2 and np.allclose(out[0][1], boxes[1]) and np.allclose(out[1][1], boxes[0])
    assert len(weighted_nms(boxes, np.array([0.8, 0.9]), np.zeros((2, 7, 2)), 0.2)) == 1


def test_sigmoid_is_clipped_like_mediapipes_scores() -> None:
    s = sigmoid(np.array([-1e4, 0.0, 1e4]))
    assert np.all(np.isfinite(s)) and s[1] == 0.5
    assert math.isclose(float(s[0]), 1 / (1 + math.exp(100)))


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (100, 100), (33, 200)])
def test_letterbox_maps_back_to_frame_pixels(shape: tuple[int, int]) -> None:
    h, w = shape
    rgb = np.zeros((h, w, 3), np.uint8)
    x, lb = letterbox(rgb, 192)
    assert x.shape == (192, 192, 3) and x.dtype == np.float32
    pts = np.array([[0, 0], [w, h], [w * 0.3, h * 0.8]], np.float32)
    model = pts * lb.scale + [lb.pad_x, lb.pad_y]
    assert model.min() >= -1e-3 and model.max() <= 192 + 1e-3
    assert np.allclose(lb.to_frame(model), pts, atol=1e-3)
    # the padding is black, the image is centred: bright pixels land where to_frame says
    bright = np.full((h, w, 3), 255, np.uint8)
    x, lb = letterbox(bright, 192)
    ys, xs = np.nonzero(x[:, :, 0] > 0.5)
    assert abs(lb.to_frame(np.array([[xs.min(), ys.min()]], np.float32))[0]).max() <= 2 / lb.scale


def test_rotation_follows_mediapipe() -> None:
    o = np.array([100.0, 100.0])
    assert math.isclose(rotation_between(o, o + [0, -10]), 0.0, abs_tol=1e-9)  # fingers up
    assert math.isclose(rotation_between(o, o + [10, 0]), math.pi / 2)  # fingers right
    assert math.isclose(rotation_between(o, o + [-10, 0]), -math.pi / 2)
    assert math.isclose(abs(rotation_between(o, o + [0, 10])), math.pi)
    assert math.isclose(normalize_radians(3 * math.pi / 2), -math.pi / 2)


def test_rect_from_an_upright_palm() -> None:
    kps = np.zeros((7, 2), np.float32)
    kps[0] = [150, 200]  # wrist below
    kps[2] = [150, 100]  # middle finger MCP above
    r = rect_from_palm((100, 120, 200, 200), kps)
    assert math.isclose(r.rotation, 0.0, abs_tol=1e-9)
    assert math.isclose(r.cx, 150) and math.isclose(r.cy, 160 - 0.5 * 80)  # shifted toward the fingers
    assert math.isclose(r.side, 100 * 2.6)  # the long side, scaled


def test_rect_from_a_palm_pointing_right_shifts_right() -> None:
    kps = np.zeros((7, 2), np.float32)
    kps[0], kps[2] = [100, 150], [200, 150]
    r = rect_from_palm((100, 100, 200, 200), kps)
    assert math.isclose(r.rotation, math.pi / 2)
    assert math.isclose(r.cx, 150 + 50, abs_tol=1e-6) and math.isclose(r.cy, 150, abs_tol=1e-6)


def test_crop_and_project_agree_for_a_rotated_rect() -> None:
    """A dot drawn in the frame is found in the rotated crop where project() says it came from."""
    import cv2

    frame = np.zeros((300, 400, 3), np.uint8)
    dot = (250.0, 120.0)
    cv2.circle(frame, (250, 120), 3, (255, 255, 255), -1)
    for rot in (0.0, 0.7, math.pi / 2, -2.5):
        rect = RotatedRect(220.0, 150.0, 180.0, rot)
        c = crop(frame, rect, 224)
        assert c.shape == (224, 224, 3) and c.max() <= 1.0
        ys, xs = np.nonzero(c[:, :, 0] > 0.5)
        centre = np.array([[xs.mean() + 0.5, ys.mean() + 0.5, 0.0]], np.float32)  # pixel centres
        back = project(centre, rect, 224)[0]
        assert np.hypot(back[0] - dot[0], back[1] - dot[1]) < 1.0, (rot, back)


def test_project_scales_z_like_x() -> None:
    rect = RotatedRect(100.0, 100.0, 448.0, 0.0)
    p = project(np.array([[112.0, 112.0, 10.0]], np.float32), rect, 224)
    assert np.allclose(p, [[100.0, 100.0, 20.0]])


def _hand_landmarks() -> np.ndarray:
    """A plausible upright right hand (frame pixels): wrist at the bottom, fingers up."""
    lm = np.zeros((21, 3), np.float32)
    lm[0] = [200, 300, 0]
    for f, x in enumerate((150, 180, 205, 230, 255)):  # thumb .. pinky columns
        base = 1 + 4 * f
        for j in range(4):
            lm[base + j] = [x + (j * -8 if f == 0 else 0), 250 - 25 * j - (0 if f == 0 else 20), 0]
    return lm


def test_rect_from_landmarks_turns_with_the_hand() -> None:
    lm = _hand_landmarks()
    r0 = rect_from_landmarks(lm)
    assert abs(r0.rotation) < 0.15  # about upright
    pts = lm[:, :2]
    assert np.all(np.abs(pts - [r0.cx, r0.cy]).max(axis=0) < r0.side / 2)  # the hand is inside
    centre = np.array([200.0, 200.0])
    for turn in (0.5, math.pi / 2, 2.0):
        c, s = math.cos(turn), math.sin(turn)
        turned = lm.copy()
        turned[:, :2] = (pts - centre) @ np.array([[c, s], [-s, c]]) + centre  # clockwise on screen
        r = rect_from_landmarks(turned)
        assert math.isclose(normalize_radians(r.rotation - r0.rotation), turn, abs_tol=1e-4)
        assert math.isclose(r.side, r0.side, rel_tol=1e-4)
        want = (np.array([r0.cx, r0.cy]) - centre) @ np.array([[c, s], [-s, c]]) + centre
        assert np.allclose([r.cx, r.cy], want, atol=1e-3)


def test_hand_payload_box_and_square_crop() -> None:
    lm = _hand_landmarks()
    hand = Hand(score=0.97, box=landmark_box(lm), handedness="right", landmarks=lm, tracked=False)
    assert hand.box == (126, 155, 255, 300)
    assert hand.payload() == {"present": True, "score": 0.97, "box": [126, 155, 255, 300], "handedness": "right"}
    frame = np.full((320, 260, 3), 200, np.uint8)
    sq = hand.square_crop(frame, 64)
    assert sq.shape == (64, 64, 3) and sq.dtype == np.uint8
    # the enlarged square leaves the frame at the bottom and right: padded with zeros there
    assert sq[-1, 32].max() == 0 and sq[32, -1].max() == 0 and sq[10, 10].min() == 200


def test_a_hand_compares_and_prints_without_its_array() -> None:
    lm = _hand_landmarks()
    a = Hand(score=0.9, box=landmark_box(lm), handedness="left", landmarks=lm, tracked=True)
    b = Hand(score=0.9, box=landmark_box(lm), handedness="left", landmarks=lm.copy(), tracked=True)
    assert a == a and a != b and len({a, b}) == 2  # no "truth value of an array is ambiguous"
    assert repr(a) == "Hand(score=0.9, box=(126, 155, 255, 300), handedness='left', tracked=True)"
