"""A camera that keeps failing (opens but every read fails, or stalls) backs off like one that
will not open, and its reports are thinned to a few, then one a minute with a count; frames
flowing again end the run. Small FrameSources play the failing devices; the daemon runs as a
process on a real empty video and a real broker."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import pytest

from edge.camera import Camera
from edge.camera.capture import REPORT_BURST, RepeatFilter
from edge.errors import CameraError
from tests.conftest import wait_until
from tests.test_daemon_process import start_daemon, stop_daemon
from tests.test_mqtt import Collector
from tests.test_pipeline import model_dir


class BrokenSource:
    """Opens, then fails every read while `broken` is set (a camera whose driver errors)."""

    def __init__(self, broken: bool = True):
        self.name = "broken"
        self.broken = threading.Event()
        if broken:
            self.broken.set()
        self.opens: list[float] = []

    def open(self) -> None:
        self.opens.append(time.monotonic())

    def read(self) -> Optional[np.ndarray]:
        time.sleep(0.01)
        if self.broken.is_set():
            raise CameraError("broken: read failed")
        return np.ones((4, 4, 3), np.uint8)

    def close(self) -> None:
        pass


class SilentSource(BrokenSource):
    """Opens, then never delivers a frame (a hung driver): a stall after every open."""

    def read(self) -> Optional[np.ndarray]:
        time.sleep(0.01)
        return None


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def test_reads_that_all_fail_back_off_and_are_reported_a_few_times() -> None:
    src = BrokenSource()
    errors: list[tuple[str, str]] = []
    cam = Camera(src, on_error=lambda k, m: errors.append((k, m)), backoff=(0.05, 0.4))
    with cam:
        assert wait_until(lambda: len(src.opens) >= 6, 20), f"only {len(src.opens)} opens"
    # each reopen waited longer, up to the cap: 0.05, 0.1, 0.2, 0.4, 0.4 s
    for gap, delay in zip(gaps(src.opens), [0.05, 0.1, 0.2, 0.4, 0.4]):
        assert gap >= delay * 0.9, (gaps(src.opens), "no backoff")
    assert len(errors) == REPORT_BURST, errors
    assert all(k == "camera_error" and "broken: read failed" in m for k, m in errors)
    assert "reopening in 0.05 s" in errors[0][1] and "reopening in 0.2 s" in errors[2][1]
    # the counters stay exact although the reports are thinned
    assert cam.failures >= 5 and cam.reopens >= 5 and cam.captured == 0
    assert cam.reopens in (len(src.opens) - 1, len(src.opens))


def test_a_stalled_camera_backs_off_and_is_reported_a_few_times() -> None:
    src = SilentSource()
    errors: list[tuple[str, str]] = []
    cam = Camera(src, stall_s=0.2, on_error=lambda k, m: errors.append((k, m)), backoff=(0.05, 0.4))
    with cam:
        assert wait_until(lambda: cam.stalls >= 5 and len(src.opens) >= 5, 20), cam.stalls
    for gap, delay in zip(gaps(src.opens), [0.05, 0.1, 0.2, 0.4]):
        assert gap >= 0.2 + delay * 0.9, (gaps(src.opens), "reopened without backing off")
    assert len(errors) == REPORT_BURST and cam.stalls >= 5, (errors, cam.stalls)
    assert all(k == "camera_stalled" and "no fresh frame for 0.2 s" in m for k, m in errors)


def test_a_long_run_of_one_error_is_reported_once_a_minute_with_a_count() -> None:
    f = RepeatFilter()
    wall = 1_700_000_000.0
    shown = [f.admit("camera_error", "x: gone", t, wall + t) for t in (0, 1, 3)]
    assert shown == ["", "", ""]  # the first REPORT_BURST: the retry delay growing
    assert [f.admit("camera_error", "x: gone", t, wall + t) for t in range(10, 63, 10)] == [None] * 6
    since = time.strftime("%H:%M:%S", time.localtime(wall + 3))
    assert f.admit("camera_error", "x: gone", 63.5, wall + 63.5) == f"6 more since {since}"
    assert f.admit("camera_error", "x: gone", 70, wall + 70) is None
    # another message, or another kind, is news: shown at once
    assert f.admit("camera_error", "x: other", 71, wall + 71) == ""
    assert f.admit("camera_stalled", "x: gone", 72, wall + 72) == ""
    f.reset()  # the camera recovered: a new run starts afresh
    assert f.admit("camera_error", "x: other", 73, wall + 73) == ""


def test_frames_flowing_again_end_the_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.camera.capture")
    src = BrokenSource()
    errors: list[str] = []
    cam = Camera(src, on_error=lambda k, m: errors.append(m), backoff=(0.05, 0.4), healthy_s=0.5)
    with cam:
        assert wait_until(lambda: cam.failures >= 5, 20)
        assert len(errors) == REPORT_BURST
        src.broken.clear()
        assert wait_until(lambda: "recovered" in caplog.text, 20), caplog.text
        assert cam.failures == 0
        seq = cam.seq
        assert cam.wait_next(seq, 5) is not None  # still delivering
        src.broken.set()  # fails again: reported at once, retried at the shortest delay
        assert wait_until(lambda: len(errors) > REPORT_BURST, 10), errors
    assert "reopening in 0.05 s" in errors[REPORT_BURST], errors
    assert len([r for r in caplog.records if "recovered" in r.getMessage()]) == 1, caplog.text


def test_a_video_without_frames_does_not_flood_the_log_or_mqtt(broker, tmp_path: Path) -> None:
    """The tester's case: 18,771 identical log lines and ~350 error events/s before."""
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48)).release()
    assert empty.stat().st_size > 0
    dev = "emptyvideo"
    sub = Collector(broker.port, [f"fingercount/{dev}/#"])
    log = tmp_path / "daemon.log"
    with open(log, "w") as err:
        p = start_daemon(broker.port, tmp_path, dev, model_dir(), "--camera", f"replay:{empty}@15", stderr=err)
    try:
        # three reopens take 0.5 + 1 + 2 s with the backoff; without it, a few milliseconds
        st = sub.wait(lambda: [s for s in sub.json_on(f"fingercount/{dev}/stats")
                               if s["camera"]["reopens"] >= 3], 40, "three reopens in stats")[-1]
        assert stop_daemon(p)[0] == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    sub.close()
    lines = [ln for ln in log.read_text().splitlines() if "camera_error" in ln]
    events = [e for e in sub.json_on(f"fingercount/{dev}/event") if e["type"] == "error"]
    assert st["camera"]["captured"] == 0 and st["camera"]["open_failures"] == 0
    assert 1 <= len(lines) <= REPORT_BURST, lines[:5] + [f"... {len(lines)} lines"]
    assert 1 <= len(events) <= REPORT_BURST, f"{len(events)} error events"
    assert all(e["error"] == "camera_error" and "yields no frames" in e["message"] for e in events)
