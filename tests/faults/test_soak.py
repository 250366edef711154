"""Soak at full speed on the replay camera: memory, open files, threads and latency stay flat.

`make test` runs FC_SOAK_S=60 (default); `make soak` runs 600.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.faults.harness import Watcher, changing_replay

SOAK_S = float(os.environ.get("FC_SOAK_S", "60"))


@pytest.mark.soak
def test_soak_full_speed(tmp_path: Path, broker, daemon_factory) -> None:
    device = "soak"
    w = Watcher(broker.port, device).start()
    replay = changing_replay(tmp_path / "replay", hold=3, per_label=2)
    d = daemon_factory(broker.port, f"replay:{replay}@0", device=device,
                       env={"FINGERCOUNT_PUBLISH__MAX_HZ": "50",
                            "FINGERCOUNT_PUBLISH__STATS_INTERVAL_S": "5"}).start()
    d.wait_ready(60)
    proc = psutil.Process(d.proc.pid)
    warmup = min(15.0, max(5.0, SOAK_S * 0.1))
    time.sleep(warmup)
    t_start = time.monotonic()
    samples: list[tuple[float, float, int, int]] = []  # t, rss MB, open fds, threads
    while time.monotonic() - t_start < SOAK_S:
        samples.append((time.monotonic(), proc.memory_info().rss / 2**20, proc.num_fds(),
                        proc.num_threads()))
        assert d.alive(), d.tail()
        time.sleep(1.0)
    t_end = time.monotonic()
    samples.append((t_end, proc.memory_info().rss / 2**20, proc.num_fds(), proc.num_threads()))
    stats = [m.json() for m in w.on("stats", t_start)]
    preds = [(m.t, m.json()) for m in w.on("prediction", t_start) if m.t <= t_end]
    assert d.stop() == 0, d.tail()
    w.stop()

    mid = t_start + (t_end - t_start) / 2
    lat1 = [p["timing_ms"]["total"] for t, p in preds if t < mid]
    lat2 = [p["timing_ms"]["total"] for t, p in preds if t >= mid]
    p99_1, p99_2 = float(np.percentile(lat1, 99)), float(np.percentile(lat2, 99))
    rss = [s[1] for s in samples]
    fds = [s[2] for s in samples]
    threads = [s[3] for s in samples]
    half = len(samples) // 2
    fps = [s["fps"] for s in stats]
    frames = stats[-1]["frames"] - stats[0]["frames"] if len(stats) >= 2 else 0
    print(f"\nsoak {SOAK_S:.0f} s at full speed: {frames} frames, fps median "
          f"{np.median(fps):.1f}; RSS {rss[0]:.1f} -> {rss[-1]:.1f} MB (max {max(rss):.1f}); "
          f"fds {fds[0]} -> {fds[-1]} (max {max(fds)}); threads {threads[0]} -> {threads[-1]}; "
          f"p99 total {p99_1:.2f} ms (1st half) vs {p99_2:.2f} ms (2nd half), "
          f"{len(lat1) + len(lat2)} predictions")
    assert len(lat1) > 50 and len(lat2) > 50, "too few predictions to judge latency"
    assert max(rss) - rss[0] < 10, "RSS grew by 10 MB or more"
    # A sample can catch a file the stats thread has open for a moment (/proc, /sys): that
    # is no leak. A leak stays: it shows in the last samples, and in most of the second half.
    for name, xs in (("open files", fds), ("threads", threads)):
        base = max(xs[:half])
        assert min(xs[-5:]) <= base and sum(x > base for x in xs[half:]) <= 2, f"{name} grew: {xs}"
    # Shared CI cores make latency noisy: allow 50 % plus 2 ms before calling it a drift.
    assert p99_2 <= 1.5 * p99_1 + 2.0, "p99 latency drifted upwards"
