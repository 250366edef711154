"""Camera faults against the real daemon: a camera that freezes, a camera that will not open.

Also the systemd contract around them: WATCHDOG=1 only while frames are classified, READY=1
only once the camera works, STOPPING=1 at SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from tests.faults.harness import Watcher, changing_replay

STALL = {"FINGERCOUNT_CAMERA__STALL_S": "1"}


def gaps(times: list[float], start: float, end: float) -> float:
    """Longest interval without a message between start and end."""
    pts = [start] + [t for t in times if start <= t <= end] + [end]
    return max(b - a for a, b in zip(pts, pts[1:]))


def test_camera_freeze_is_reported_and_recovered_without_restart(tmp_path: Path, broker,
                                                                 daemon_factory) -> None:
    device = "stall"
    w = Watcher(broker.port, device).start()
    replay = changing_replay(tmp_path / "replay", hold=3, per_label=1)
    d = daemon_factory(broker.port, f"replay:{replay}@20", device=device, env=STALL).start()
    d.wait_ready(60)
    assert d.notify is not None
    pid = d.proc.pid
    time.sleep(3.5)
    t0 = time.monotonic()
    # The harness sets WATCHDOG_USEC=2 s: systemd would act on any gap longer than that.
    assert gaps(d.notify.times("WATCHDOG=1"), t0 - 3, t0) < 1.5, "watchdog not fed while running"

    (replay / ".freeze").touch()  # the replay now delivers nothing, like a hung driver
    t_freeze = time.monotonic()
    w.wait(lambda: w.events("error", t_freeze), 6, "a camera error event")
    ev = w.events("error", t_freeze)[0]
    assert ev["error"] == "camera_stalled" and "no fresh frame" in ev["message"], ev
    time.sleep(3)
    t_thaw_wall = time.monotonic()
    # No frames, no watchdog: under systemd a stall longer than WatchdogSec= restarts us.
    wd_frozen = [t for t in d.notify.times("WATCHDOG=1") if t_freeze + 0.5 < t < t_thaw_wall]
    assert not wd_frozen, f"WATCHDOG=1 sent while no frame was classified: {len(wd_frozen)}"
    assert not [m for m in w.on("prediction") if m.t > t_freeze + 0.5]

    (replay / ".freeze").unlink()
    t_thaw = time.monotonic()
    w.wait(lambda: w.on("prediction", t_thaw), 10, "predictions after the camera came back")
    w.wait(lambda: [t for t in d.notify.times("WATCHDOG=1") if t > t_thaw], 5, "watchdog again")
    assert d.alive() and d.proc.pid == pid, "recovered by restarting, not in process"
    print(f"stall reported {w.on('event', t_freeze)[0].t - t_freeze:.2f} s after the freeze; "
          f"frames again {w.on('prediction', t_thaw)[0].t - t_thaw:.2f} s after the thaw")

    t_term = time.monotonic()
    assert d.stop() == 0, d.tail()
    stop_t = d.notify.first("STOPPING=1")
    assert stop_t is not None and stop_t >= t_term
    w.stop()


def test_camera_that_fails_to_open_is_retried_with_backoff(tmp_path: Path, broker,
                                                           daemon_factory) -> None:
    device = "noopen"
    w = Watcher(broker.port, device).start()
    missing = tmp_path / "camera-not-there-yet"
    d = daemon_factory(broker.port, f"replay:{missing}@10", device=device).start()
    time.sleep(6)
    assert d.alive(), d.tail()
    assert d.notify is not None and d.notify.first("READY=1") is None, "READY=1 without a camera"
    lines = [ln for ln in d.log.read_text().splitlines() if "camera_open_failed" in ln]
    assert len(lines) >= 3, d.tail()
    assert str(missing) in lines[0], lines[0]
    waits = [float(m.group(1)) for ln in lines if (m := re.search(r"retrying in ([0-9.]+) s", ln))]
    assert waits == sorted(waits) and waits[-1] > waits[0], f"no backoff: {waits}"
    assert w.events("error") and w.events("error")[0]["error"] == "camera_open_failed"

    # Plug the camera in: the daemon picks it up by itself.
    tmp = tmp_path / "staging"
    changing_replay(tmp, hold=1, per_label=1)
    os.rename(tmp, missing)
    t_plug = time.monotonic()
    d.wait_ready(30)
    w.wait(lambda: w.on("prediction", t_plug), 15, "predictions after the camera appeared")
    print(f"camera appeared -> READY after {d.notify.first('READY=1') - t_plug:.2f} s; "
          f"retry waits {waits}")
    assert d.stop() == 0
    shutil.rmtree(missing)
    w.stop()
