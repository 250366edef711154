"""Broker down for 10 s: every QoS 1 count/event made meanwhile arrives afterwards, in order."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from tests.faults.harness import Watcher, changing_replay

# Every change of the raw prediction is a count change: the replay makes many of them.
EAGER = {"FINGERCOUNT_SMOOTHING__WINDOW": "1", "FINGERCOUNT_SMOOTHING__MIN_CONFIDENCE": "0",
         "FINGERCOUNT_SMOOTHING__MIN_HOLD_MS": "0", "FINGERCOUNT_MQTT__KEEPALIVE": "5"}


def printed_changes(lines: list[str]) -> list[int]:
    """Frame seq of every count change the daemon printed (--print)."""
    return [int(m.group(1)) for ln in lines if (m := re.search(r"count .*frame (\d+)\)", ln))]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_broker_outage_loses_no_count_or_event(tmp_path: Path, persistent_broker, daemon_factory) -> None:
    b = persistent_broker
    device = "outage"
    # Persistent session: the broker keeps what the daemon sends before we are back.
    w = Watcher(b.port, device, client_id=f"watch-{device}").start()
    replay = changing_replay(tmp_path / "replay", hold=4)
    d = daemon_factory(b.port, f"replay:{replay}@10", device=device, env=EAGER).start()
    d.wait_ready(60)
    w.wait_availability("online", 0, 15)
    time.sleep(2)

    down_wall, t_down = time.time(), time.monotonic()
    b.stop()
    time.sleep(10)
    assert d.alive(), d.tail()
    up_wall, t_up = time.time(), time.monotonic()
    b.start()
    w.wait_availability("online", t_up, 40)  # the daemon's reconnect backoff is <= 15 s
    time.sleep(2)
    assert d.alive(), d.tail()
    assert d.stop() == 0, d.tail()
    time.sleep(0.5)
    w.stop()

    printed = printed_changes(d.stdout_lines())
    got = [e["seq"] for e in w.events("count_changed")]
    during = [e for e in w.events("count_changed") if down_wall <= epoch(e["ts"]) <= up_wall]
    print(f"count changes: {len(printed)} printed, {len(got)} received, "
          f"{len(during)} made during the {up_wall - down_wall:.1f} s outage")
    assert len(during) >= 5, "too few changes during the outage to prove anything"
    # Nothing lost, nothing duplicated, in order: the broker saw exactly what the daemon printed.
    assert got == printed
    # Those made during the outage reached us only after the broker came back.
    late = [m for m in w.on("event") if m.t > t_up and m.json().get("type") == "count_changed"]
    assert len(late) >= len(during)
    # The retained count is the last change.
    counts = [m.json() for m in w.on("count")]
    last_event = w.events("count_changed")[-1]
    assert counts[-1]["count"] == last_event["count"]
    assert t_down < t_up
