"""HandStage through the real models: tracking on a replayed video, a track lost and found
again on the same frame, bad frames, corrupt or wrong hand-model packages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import open_source
from edge.errors import FingercountError, ModelError
from edge.hands import NO_HAND_PAYLOAD, FrameError, HandStage, load_hand_stage, no_hand_payload
from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from edge.runtime.preprocess import read_image
from tests.conftest import DATA, MODELS, ROOT

PHOTOS = DATA / "hands-real" / "epsrc"
HAND = PHOTOS / "5" / "set1_five_1.jpg"
WALL = PHOTOS / "no-hand" / "empty-wall_set1.jpg"


def shifted(rgb: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    """The frame moved by (dx, dy) pixels, the border repeated."""
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    return cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """A real MJPG video of RGB frames."""
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert vw.isOpened(), "OpenCV cannot write MJPG here"
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def replay(path: Path, n: int) -> list[np.ndarray]:
    src = open_source(f"replay:{path}@0")
    src.open()
    try:
        frames = [src.read() for _ in range(n)]
    finally:
        src.close()
    assert all(f is not None for f in frames)
    return frames  # type: ignore[return-value]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """12 frames: the hand moving 3 px right per frame (6), the empty wall (3), the hand again (3)."""
    hand, wall = read_image(str(HAND)), read_image(str(WALL))
    frames = [shifted(hand, 3 * i) for i in range(6)] + [wall] * 3 + [shifted(hand, -4 * i) for i in range(3)]
    path = write_video(tmp_path_factory.mktemp("clip") / "hand.avi", frames)
    return replay(path, len(frames))


def test_tracking_skips_detection_while_the_hand_stays(video: list[np.ndarray]) -> None:
    stage = load_hand_stage(MODELS, tracking=True, retry_pad=0.0)  # one detection a frame at most (the retry: test_hands_retry)
    seen = []
    for frame in video:
        before = stage.detections
        hand = stage(frame)
        detected = stage.detections - before
        assert detected in (0, 1) and (stage.timing_ms["detect"] > 0) == bool(detected)
        seen.append((hand, detected))
    first = seen[0][0]
    assert first is not None and not first.tracked and seen[0][1] == 1
    for i in range(1, 6):  # tracked: no detection, the landmarks follow the hand
        hand, detected = seen[i]
        assert hand is not None and hand.tracked and detected == 0, i
        assert stage.timing_ms["landmarks"] > 0
        dx = float(np.mean(hand.landmarks[:, 0] - first.landmarks[:, 0]))
        assert abs(dx - 3 * i) < 2.0, (i, dx)
        assert abs(float(np.mean(hand.landmarks[:, 1] - first.landmarks[:, 1]))) < 2.0
    for i in range(6, 9):  # the hand left: the track is lost on its first frame, detection every frame
        hand, detected = seen[i]
        assert hand is None and detected == 1, i
    back, detected = seen[9]
    assert back is not None and not back.tracked and detected == 1
    assert all(h is not None and h.tracked and d == 0 for h, d in seen[10:])
    assert stage.detections == 1 + 3 + 1


def test_tracking_off_detects_on_every_frame(video: list[np.ndarray]) -> None:
    stage = load_hand_stage(MODELS, tracking=False, retry_pad=0.0)
    hands = [stage(f) for f in video]
    assert stage.detections == len(video)
    assert not any(h.tracked for h in hands if h is not None)
    assert [h is not None for h in hands] == [True] * 6 + [False] * 3 + [True] * 3


def test_a_lost_track_is_found_again_on_the_same_frame() -> None:
    """The hand jumps across the frame: the crop from the last landmarks shows the wall,
    presence drops, and detection on that same frame finds the hand (no frame without it)."""
    stage = load_hand_stage(MODELS, tracking=True)
    a = stage(read_image(str(PHOTOS / "3" / "set1_three_1.jpg")))  # hand at the left
    assert a is not None and stage.detections == 1
    b = stage(read_image(str(PHOTOS / "2" / "set1_two_1.jpg")))  # a hand at the right
    assert b is not None and not b.tracked and stage.detections == 2
    assert b.box[0] > a.box[2]
    assert stage.timing_ms["detect"] > 0 and stage.timing_ms["landmarks"] > 0
    stage.reset()  # a new video: detection again, even for the same frame
    c = stage(read_image(str(PHOTOS / "2" / "set1_two_1.jpg")))
    assert c is not None and not c.tracked and stage.detections == 3


def test_bad_frames_give_none_or_one_clear_error() -> None:
    stage = load_hand_stage(MODELS, tracking=True)
    hand = read_image(str(HAND))
    assert stage(hand) is not None
    for frame in (np.zeros((0, 0, 3), np.uint8), np.zeros((1, 1, 3), np.uint8), np.zeros((480, 0, 3), np.uint8),
                  np.full((480, 640, 3), 128, np.uint8), np.zeros((480, 640, 3), np.uint8)):
        assert stage(frame) is None, frame.shape
        assert stage.last_score < 0.5
    for frame, why in ((np.zeros((10,), np.uint8), "not an image"), (np.zeros((4, 4, 4, 4), np.uint8), "not an image"),
                       (np.zeros((48, 64, 2), np.uint8), "not an image"),
                       (np.zeros((48, 64, 3), np.float32), "not uint8"), ([[1, 2], [3, 4]], "numpy array")):
        with pytest.raises(FrameError, match=why) as e:
            stage(frame)  # type: ignore[arg-type]
        assert isinstance(e.value, FingercountError) and "\n" not in str(e.value)
    # one-channel (H, W) and (H, W, 1) pictures are read as grey RGB, RGBA without its alpha
    grey = cv2.cvtColor(read_image(str(PHOTOS / "4" / "set1_four_1.jpg")), cv2.COLOR_RGB2GRAY)
    stage.tracking = False
    want = stage(np.dstack([grey] * 3))
    assert want is not None
    for frame in (grey, grey[:, :, None]):
        got = stage(frame)
        assert got is not None and np.array_equal(got.landmarks, want.landmarks)
    got, rgb = stage(cv2.cvtColor(hand, cv2.COLOR_RGB2RGBA)), stage(hand)
    assert got is not None and rgb is not None and np.array_equal(got.landmarks, rgb.landmarks)
    stage.tracking = True
    # the stage still works, and bad frames did not leave a stale track behind
    stage(np.zeros((1, 1, 3), np.uint8))
    h = stage(hand)
    assert h is not None and not h.tracked


def test_no_hand_payload() -> None:
    assert NO_HAND_PAYLOAD == {"present": False, "score": 0.0, "box": None, "handedness": None}
    assert no_hand_payload(0.31234567) == {"present": False, "score": 0.3123, "box": None, "handedness": None}


def _copy(name: str, dest: Path) -> Path:
    shutil.copytree(MODELS / name, dest / name)
    return dest / name


def test_a_corrupt_hand_model_is_one_clear_error(tmp_path: Path) -> None:
    _copy("hand-landmark-full", tmp_path)
    pkg = _copy("palm-detection-lite", tmp_path)
    model = pkg / "palm-detection-lite_fp32.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its sha256") as e:
        load_hand_stage(tmp_path)
    assert "\n" not in str(e.value)
    # a damaged file whose model.json was updated to match: the interpreter's verifier says so
    model.write_bytes(bytes(data[: len(data) // 3]))
    meta = json.loads((pkg / "model.json").read_text())
    meta["variants"]["fp32"].update(sha256=__import__("hashlib").sha256(model.read_bytes()).hexdigest())
    (pkg / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError) as e:
        load_hand_stage(tmp_path)
    assert "palm-detection-lite fp32" in str(e.value) and "\n" not in str(e.value)
    model.write_bytes(b"")
    meta["variants"]["fp32"].update(sha256=__import__("hashlib").sha256(b"").hexdigest())
    (pkg / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="empty"):
        load_hand_stage(tmp_path)


def test_wrong_or_missing_hand_packages_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is a hand-landmark model, not a palm-detection model"):
        load_hand_stage(MODELS, palm="hand-landmark-lite")
    with pytest.raises(ModelError, match="is a finger-count model, not a hand-landmark model"):
        load_hand_stage(MODELS, landmark="fingers-cnn")
    with pytest.raises(ModelError, match="not found"):
        load_hand_stage(tmp_path)
    _copy("palm-detection-lite", tmp_path)
    _copy("hand-landmark-full", tmp_path)
    # the shipped packages have fp16 and int8 too: a copy that lacks them
    for name in ("palm-detection-lite", "hand-landmark-full"):
        mj = tmp_path / name / "model.json"
        meta = json.loads(mj.read_text())
        meta["variants"] = {"fp32": meta["variants"]["fp32"]}
        mj.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"no int8 variant \(has: fp32\)"):
        load_hand_stage(tmp_path, precision="int8")
    # a bare landmark .tflite given as the palm model: its outputs are not a palm detector's
    with pytest.raises(ModelError, match="not a palm detector"):
        load_hand_stage(tmp_path, palm=str(tmp_path / "hand-landmark-full" / "hand-landmark-full_fp32.tflite"))
    with pytest.raises(ModelError, match="not a hand landmark model"):
        load_hand_stage(tmp_path, landmark=str(tmp_path / "palm-detection-lite" / "palm-detection-lite_fp32.tflite"))


def test_hand_packages_load_without_labels_and_are_not_classifiers() -> None:
    for name, task, size in (("palm-detection-lite", "palm-detection", 192), ("palm-detection-full", "palm-detection", 192),
                             ("hand-landmark-lite", "hand-landmark", 224), ("hand-landmark-full", "hand-landmark", 224)):
        pkg = load_package(MODELS / name)
        assert pkg.task == task and pkg.labels == [] and pkg.version == "0.10.21"
        assert (pkg.input.height, pkg.input.width, pkg.input.channels) == (size, size, 3)
        assert pkg.meta["license"] == "Apache-2.0" and "Google" in pkg.meta["attribution"]
        assert "Apache License" in (MODELS / name / "LICENSE").read_text()
        assert pkg.provenance["member_sha256"] == pkg.variants["fp32"]["sha256"]
        pkg.variant_bytes("fp32")  # sha256 verified
        with pytest.raises(ModelError, match="not a classifier"):
            Classifier(pkg, "fp32", threads=1)


def test_fingercount_models_lists_the_hand_packages() -> None:
    res = subprocess.run([sys.executable, "-m", "edge", "models", "--models-dir", str(MODELS)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "palm-detection-lite 0.10.21  task palm-detection  input 192x192x3 rgb" in res.stdout
    assert "hand-landmark-full 0.10.21  task hand-landmark  input 224x224x3 rgb" in res.stdout
    assert "fingers-cnn" in res.stdout and "labels 0,1,2,3,4,5" in res.stdout


def test_hand_stage_type() -> None:
    stage = load_hand_stage(MODELS, palm="palm-detection-full", landmark="hand-landmark-lite", threads=2,
                            tracking=False, min_detection=0.6, min_presence=0.7)
    assert isinstance(stage, HandStage) and not stage.tracking
    assert stage.palm.min_score == 0.6 and stage.min_presence == 0.7


def test_tensor_model_quantises_integer_inputs_and_outputs() -> None:
    """The hand stage's wrapper runs full-integer variants too: a shipped uint8-I/O classifier
    through it gives what the classifier's own runtime gives (scale/zero point both ways)."""
    from edge.hands.tensors import TensorModel

    pkg = load_package(MODELS / "fingers-cnn")
    clf = Classifier(pkg, "int8", threads=1)
    tm = TensorModel(pkg.variant_bytes("int8"), 1, "fingers-cnn int8")
    assert tm.in_dtype == np.uint8 and tm.input_hw == (64, 64)
    for p in sorted((DATA / "hands-real" / "sign-language-digits").rglob("*.JPG"))[:3]:
        pixels = clf.preprocess(read_image(str(p)))
        want = clf.invoke(pixels)
        got = tm.run(pixels.astype(np.float32))[0].reshape(-1)  # this model's float range is 0..255
        assert got.dtype == np.float32 and np.allclose(got, want, atol=1e-6)
        assert np.isclose(got.sum(), 1.0, atol=0.05)  # dequantised probabilities, not raw codes


def test_hands_config_section(tmp_path: Path) -> None:
    from edge.config import load_config
    from edge.errors import ConfigError
    from edge.hands import hand_stage_from_config

    f = tmp_path / "config.yaml"
    f.write_text(f"models_dir: {MODELS}\nmodel: {{threads: 2}}\nhands:\n  landmark: hand-landmark-lite\n"
                 "  min_presence: 0.8\n  mirror_retry: false\n")
    cfg = load_config(f, environ={"FINGERCOUNT_HANDS__TRACKING": "false"})
    assert cfg.hands.palm == "palm-detection-lite" and cfg.hands.threads is None and cfg.hands.precision == "fp32"
    stage = hand_stage_from_config(cfg)
    assert not stage.tracking and stage.min_presence == 0.8 and stage.palm.min_score == 0.5
    assert not stage.mirror_retry and load_config(None, environ={}).hands.mirror_retry
    assert stage.landmark.model.what == "hand-landmark-lite fp32"
    assert stage(read_image(str(HAND))) is not None
    f.write_text("hands:\n  tracker: true\n")
    with pytest.raises(ConfigError, match="hands.tracker"):
        load_config(f, environ={})
    f.write_text("hands:\n  min_presence: 1.5\n")
    with pytest.raises(ConfigError, match="hands.min_presence"):
        load_config(f, environ={})


@pytest.mark.parametrize("name", ["hand-landmark-lite", "hand-landmark-full"])
def test_landmark_outputs_are_named_by_shape_and_export_name(name: str) -> None:
    from edge.hands.landmarks import LandmarkModel, _name_order
    from edge.hands.stage import load_model

    lm = LandmarkModel(load_model(load_package(MODELS / name), "fp32", 1))
    names = [n for n, _ in lm.model.output_shapes()]
    assert names[lm._screen_i] == "Identity" and names[lm._world_i] == "Identity_3"
    assert names[lm._presence_i] == "Identity_1" and names[lm._hand_i] == "Identity_2"
    # both scores are a LOGISTIC op's outputs in these models: taken as they are, no second sigmoid
    assert lm._is_prob == {lm._presence_i: True, lm._hand_i: True}
    assert [_name_order(n) for n in ("Identity", "Identity_2", "Identity_12:0", "StatefulPartitionedCall:1")] \
        == [0, 2, 12, -1]


def test_mirror_retry_finds_a_hand_the_palm_detector_sees_only_mirrored() -> None:
    rgb = read_image(str(PHOTOS / "1" / "set1_one_157.jpg"))
    plain = load_hand_stage(MODELS, tracking=False, mirror_retry=False, retry_pad=0.0)
    assert plain(rgb) is None and plain.palm.detect(rgb) == []
    stage = load_hand_stage(MODELS, tracking=False)
    assert stage.mirror_retry
    hand = stage(rgb)
    assert hand is not None and not hand.tracked and stage.detections == 1
    # the palm found in the mirror image, mapped back, lies on the hand the landmarks found
    palm = stage.palm.detect(rgb, mirrored=True)[0]
    x0, y0, x1, y1 = hand.box
    cx, cy = (palm.box[0] + palm.box[2]) / 2, (palm.box[1] + palm.box[3]) / 2
    assert x0 <= cx <= x1 and y0 <= cy <= y1
    assert x0 - 10 <= palm.keypoints[0, 0] <= x1 + 10  # the wrist keypoint too
    # the landmarks come from the frame itself: same handedness as the mirrored frame's hand flipped
    flipped = stage(np.ascontiguousarray(rgb[:, ::-1]))
    assert flipped is not None and {flipped.handedness, hand.handedness} == {"left", "right"}
