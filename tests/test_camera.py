"""Camera sources and the capture thread: spec parsing, replay, newest-frame-only, stalls,
open retries. Uses the real replay source on the bundled hand photos and small FrameSources
that behave like failing devices (the way gpiozero's MockPin behaves like a pin)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from edge.camera import Camera, open_source, parse_spec
from edge.camera.capture import ON_DEMAND_AHEAD
from edge.camera.replay import ReplaySource, list_images
from edge.errors import CameraError
from tests.conftest import HANDS


def test_parse_spec_accepts_the_documented_forms() -> None:
    assert parse_spec("picamera2") == ("picamera2", "0", None)
    assert parse_spec("opencv:0") == ("opencv", "0", None)
    assert parse_spec("opencv:/dev/video0") == ("opencv", "/dev/video0", None)
    assert parse_spec("opencv:rtsp://cam.local:554/s") == ("opencv", "rtsp://cam.local:554/s", None)
    assert parse_spec("replay:tests/data/hands@8") == ("replay", "tests/data/hands", 8.0)
    assert parse_spec("replay:some@dir") == ("replay", "some@dir", None)


@pytest.mark.parametrize("bad", ["", "usb", "webcam:0", "opencv:", "replay:", "replay:x@-1", "picamera2:a"])
def test_parse_spec_rejects_with_a_clear_error(bad: str) -> None:
    with pytest.raises(CameraError):
        parse_spec(bad)


def test_replay_loops_the_hand_images_as_rgb() -> None:
    files = list_images(HANDS)
    assert len(files) >= 40
    src = ReplaySource(HANDS, fps=0)
    src.open()
    first = src.read()
    assert first is not None and first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    for _ in range(len(files) - 1):
        assert src.read() is not None
    again = src.read()
    assert again is first  # looped, and the decoded frame is reused, not re-allocated
    assert not first.flags.writeable
    src.close()


def test_replay_of_a_missing_path_is_a_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="neither"):
        open_source(f"replay:{tmp_path}/nope").open()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CameraError, match="no images"):
        open_source(f"replay:{empty}").open()


def write_clip(path: Path, width: int, height: int, levels: list[int]) -> Path:
    """A real MJPG video of flat grey frames, one per level."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert w.isOpened(), "OpenCV cannot write MJPG here"
    for v in levels:
        w.write(np.full((height, width, 3), v, np.uint8))
    w.release()
    return path


def test_replay_of_a_video_file(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "clip.avi", 64, 48, [i * 40 for i in range(5)])
    src = open_source(f"replay:{path}@0")
    src.open()
    frames = [src.read() for _ in range(7)]  # loops after 5
    src.close()
    assert all(f is not None and f.shape == (48, 64, 3) for f in frames)


def test_replay_video_closed_while_reading_is_no_error(tmp_path: Path) -> None:
    """stop() closes the source from another thread while the capture thread may be inside
    read(): at the end of the clip read() rewinds the capture, which close() must not have
    released under it ('NoneType' object has no attribute 'set')."""
    import threading

    path = write_clip(tmp_path / "clip.avi", 32, 24, [i * 60 for i in range(3)])
    src = open_source(f"replay:{path}@0")
    src.open()
    cap = src._video

    class ClosedMidRead:
        """The real capture; at the end of the clip another thread calls close()."""

        fired = False

        def read(self):
            ok, frame = cap.read()
            if not ok and not self.fired:
                self.fired = True
                t = threading.Thread(target=src.close)
                t.start()
                t.join(0.3)  # a close() that waits for this read() is still waiting
            return ok, frame

        def set(self, *a):
            return cap.set(*a)

        def release(self):
            cap.release()

    src._video = ClosedMidRead()
    assert all(src.read() is not None for _ in range(3))
    src.read()  # end of clip: close() runs meanwhile; must not raise
    assert src.read() is None  # closed now
    src.close()


def test_paced_replay_runs_at_its_fps() -> None:
    with Camera(open_source(f"replay:{HANDS}@20")) as cam:
        assert cam.wait_next(0, 5) is not None
        s0 = cam.seq
        time.sleep(1.0)
        n = cam.seq - s0
    assert 15 <= n <= 25, n


def test_on_demand_replay_keeps_a_few_frames_ready_and_drops_none() -> None:
    """replay@0 reads frames ahead while the consumer works, up to ON_DEMAND_AHEAD, then waits
    for them to be taken: a slow consumer finds frames ready, in order, never a skipped one."""
    with Camera(open_source(f"replay:{HANDS}@0")) as cam:
        seqs: list[int] = []
        ahead: list[int] = []
        for i in range(40):
            f = cam.wait_next(seqs[-1] if seqs else 0, 5)
            assert f is not None
            seqs.append(f.seq)
            if i % 5 == 0:
                time.sleep(0.05)  # the capture thread has long filled what it may
                ahead.append(cam.seq - f.seq)
    assert seqs == list(range(1, 41))
    assert all(1 <= n <= ON_DEMAND_AHEAD for n in ahead), ahead
    assert ON_DEMAND_AHEAD in ahead  # the queue does fill up, and no further


def test_consumer_gets_only_newer_frames_and_never_the_same_seq_twice() -> None:
    with Camera(open_source(f"replay:{HANDS}@200")) as cam:
        seen: list[int] = []
        last = 0
        for _ in range(30):
            f = cam.wait_next(last, 2)
            assert f is not None
            seen.append(f.seq)
            last = f.seq
            time.sleep(0.02)  # a slow consumer: frames in between are dropped, not queued
    assert seen == sorted(set(seen))
    assert seen[-1] - seen[0] > len(seen)  # some frames were skipped: newest-only
    # never older than the newest at hand: at 200 fps and 20 ms per item, ~4 are skipped each time
    gaps = np.diff(seen)
    assert np.median(gaps) >= 2


class StallingSource:
    """Delivers `good` frames, then blocks in read() like a hung driver until closed."""

    def __init__(self, good: int = 5):
        self.name = "stalling"
        self.good = good
        self.opens = 0
        self._n = 0
        self._closed = threading.Event()

    def open(self) -> None:
        self.opens += 1
        self._n = 0
        self._closed.clear()

    def read(self) -> Optional[np.ndarray]:
        if self._n < self.good:
            self._n += 1
            time.sleep(0.01)
            return np.zeros((8, 8, 3), np.uint8)
        self._closed.wait()  # hangs until someone closes us
        return None

    def close(self) -> None:
        self._closed.set()


def test_a_stalled_source_is_reported_and_reopened() -> None:
    src = StallingSource(good=5)
    errors: list[tuple[str, str]] = []
    cam = Camera(src, stall_s=0.3, on_error=lambda k, m: errors.append((k, m)))
    with cam:
        f = cam.wait_next(0, 2)
        assert f is not None
        deadline = time.monotonic() + 5
        while src.opens < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        # after reopening it delivers fresh frames again, with new sequence numbers
        f2 = cam.wait_next(5, 3)
    assert src.opens >= 2
    assert cam.stalls >= 1
    assert any(k == "camera_stalled" and "no fresh frame" in m for k, m in errors)
    assert f2 is not None and f2.seq > 5


class FailingThenWorkingSource:
    """Fails to open `fail` times (camera unplugged), then works."""

    def __init__(self, fail: int):
        self.name = "flaky"
        self.fail = fail
        self.attempts = 0

    def open(self) -> None:
        self.attempts += 1
        if self.attempts <= self.fail:
            raise CameraError("flaky: no such device")

    def read(self) -> Optional[np.ndarray]:
        time.sleep(0.01)
        return np.ones((4, 4, 3), np.uint8)

    def close(self) -> None:
        pass


def test_a_camera_that_fails_to_open_is_retried_with_backoff() -> None:
    src = FailingThenWorkingSource(fail=3)
    errors: list[str] = []
    t0 = time.monotonic()
    with Camera(src, on_error=lambda k, m: errors.append(f"{k}: {m}"), backoff=(0.05, 0.1)) as cam:
        f = cam.wait_next(0, 5)
    assert f is not None
    assert src.attempts == 4
    assert len(errors) == 3 and all("camera_open_failed: flaky: no such device" in e for e in errors)
    assert time.monotonic() - t0 >= 0.05 + 0.1 + 0.1  # waited between attempts, growing


def test_stop_is_prompt_even_when_the_source_hangs() -> None:
    src = StallingSource(good=1)
    cam = Camera(src, stall_s=60).start()
    assert cam.wait_next(0, 2) is not None
    t0 = time.monotonic()
    cam.stop()
    assert time.monotonic() - t0 < 1.0
    assert cam.wait_next(1, 0.1) is None


@pytest.mark.parametrize("rotate,k", [(90, -1), (180, 2), (270, 1)])
def test_rotate_turns_every_frame_clockwise(tmp_path: Path, rotate: int, k: int) -> None:
    import cv2

    rgb = np.random.default_rng(rotate).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    with Camera(ReplaySource(tmp_path, fps=0), rotate=rotate) as cam:
        f = cam.wait_next(0, 5)
    assert f is not None
    assert np.array_equal(f.rgb, np.rot90(rgb, k))  # np.rot90 k>0 is anticlockwise


def test_rotate_must_be_a_quarter_turn() -> None:
    with pytest.raises(ValueError):
        Camera(ReplaySource(HANDS, fps=0), rotate=45)


def test_replay_follows_symlinked_folders_once(tmp_path: Path) -> None:
    (tmp_path / "hands").mkdir()
    (tmp_path / "hands" / "3").symlink_to(HANDS / "3", target_is_directory=True)
    (tmp_path / "hands" / "loop").symlink_to(tmp_path / "hands", target_is_directory=True)
    assert len(list_images(tmp_path / "hands")) == len(list_images(HANDS / "3")) > 0


def test_replay_fps_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(CameraError, match="FPS 'abc' is not a number"):
        parse_spec(f"replay:{HANDS}@abc")
