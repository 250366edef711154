"""Broker down for 10 s: every QoS 1 count/event made meanwhile arrives afterwards, in order."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from tests.faults.harness import Watcher, changing_replay

# Every change of the raw prediction is a count change: the replay makes many of them.
EAGER = {"FINGERCOUNT_SMOOTHING__WINDOW": "1", "FINGERCOUNT_SMOOTHING__MIN_CONFIDENCE": "0",
         "FINGERCOUNT_SMOOTHING__MIN_HOLD_MS": "0", "FINGERCOUNT_MQTT__KEEPALIVE": "5",
         "FINGERCOUNT_CAMERA__STALL_S": "1"}


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
    # Besides the count changes (as many as the model's predictions vary), a camera that
    # freezes for a while makes error events (QoS 1) during the outage, whatever the model.
    time.sleep(2)
    (replay / ".freeze").touch()
    time.sleep(4.5)
    (replay / ".freeze").unlink()
    time.sleep(3.5)
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
    stalls_logged = [ln for ln in d.log.read_text().splitlines() if "camera_stalled" in ln]
    stalls_got = [e for e in w.events("error") if e.get("error") == "camera_stalled"]
    in_outage = [e for e in w.events() if down_wall <= epoch(e["ts"]) <= up_wall]
    print(f"count changes: {len(printed)} printed, {len(got)} received; camera stalls: "
          f"{len(stalls_logged)} logged, {len(stalls_got)} received; {len(in_outage)} events "
          f"made during the {up_wall - down_wall:.1f} s outage")
    assert len(in_outage) >= 3, "too few events during the outage to prove anything"
    # Nothing lost, nothing duplicated, in order: the broker saw exactly what the daemon made.
    assert got == printed
    assert len(stalls_got) == len(stalls_logged) >= 2
    seen_ts = [epoch(e["ts"]) for e in w.events()]
    assert seen_ts == sorted(seen_ts), "events out of order"
    # Those made during the outage reached us only after the broker came back.
    late = [m for m in w.on("event") if m.t > t_up and down_wall <= epoch(m.json()["ts"]) <= up_wall]
    assert len(late) == len(in_outage)
    # The retained count is the last change.
    counts = [m.json() for m in w.on("count")]
    if w.events("count_changed"):
        assert counts[-1]["count"] == w.events("count_changed")[-1]["count"]
    assert t_down < t_up
