"""The outbox across a restart, with the real daemon and a real mosquitto: what a run made
while the broker was down survives kill -9 and goes out, in order, after `online` when the
next run finds the broker; its stale retained counts do not. A corrupt or unusable outbox
file never stops the link."""

from __future__ import annotations

import json
import logging
import re
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from edge.config import load_config
from edge.mqtt import MqttLink
from tests.faults.harness import Daemon, Watcher, changing_replay
from tests.test_mqtt import Collector, link_cfg

# Every change of the raw prediction is a count change: the replay makes many of them.
EAGER = {"FINGERCOUNT_SMOOTHING__WINDOW": "1", "FINGERCOUNT_SMOOTHING__MIN_CONFIDENCE": "0",
         "FINGERCOUNT_SMOOTHING__MIN_HOLD_MS": "0", "FINGERCOUNT_PUBLISH__STATS_INTERVAL_S": "1"}


def printed_changes(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for ln in lines if (m := re.search(r"count .*frame (\d+)\)", ln))]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def stored(path: Path) -> list[tuple[int, str, bytes, int]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, topic, payload, retain FROM msgs ORDER BY id").fetchall()
    finally:
        db.close()


def test_messages_of_a_killed_run_arrive_after_online_in_order(broker_factory, tmp_path: Path) -> None:
    device = "restart"
    b = broker_factory(name="outbox")
    b.stop()  # the first run never sees a broker
    replay = changing_replay(tmp_path / "replay", hold=4)
    d1 = Daemon(tmp_path / "d1", b.port, f"replay:{replay}@10", device=device, env=EAGER)
    d1.tmp.mkdir()
    d2 = Daemon(tmp_path / "d2", b.port, f"replay:{replay}@10", device=device, env=EAGER)
    d2.tmp.mkdir()
    d2.state = d1.state
    w = None
    try:
        d1.start(notify=False)
        deadline = time.monotonic() + 40
        while len(printed_changes(d1.stdout_lines())) < 5 and time.monotonic() < deadline:
            assert d1.alive(), d1.tail()
            time.sleep(0.1)
        d1.signal(signal.SIGKILL)
        d1.proc.wait(5)
        killed_at = time.time()
        printed = printed_changes(d1.stdout_lines())
        assert len(printed) >= 5, f"too few count changes in the first run:\n{d1.tail()}"

        # What the killed run left on disk: every change it printed (a put returns before
        # the print; one more may have been stored just before the kill), and counts.
        left = stored(d1.state / "outbox.sqlite")
        old_events = [(t, p) for _, t, p, r in left if not r]
        old_seqs = [json.loads(p)["seq"] for t, p in old_events
                    if t.endswith("/event") and json.loads(p)["type"] == "count_changed"]
        assert old_seqs[:len(printed)] == printed and len(old_seqs) - len(printed) <= 1, (old_seqs, printed)
        assert any(r for *_, r in left), "the first run stored no retained count"
        assert not [t for _, t, _, _ in left if t.endswith("/prediction")]  # per-frame: never stored

        b.start()
        w = Watcher(b.port, device).start()
        t2 = time.monotonic()
        d2.start(notify=False)
        w.wait(lambda: len([m for m in w.on("event") if epoch(m.json()["ts"]) < killed_at]) >= len(old_events),
               30, f"the {len(old_events)} events of the killed run")
        w.wait(lambda: [m for m in w.on("stats") if m.json().get("outbox_depth") == 0], 15, "an empty outbox")
        late = Collector(b.port, [f"fingercount/{device}/count"])
        retained = [json.loads(p) for t, p, r in late.wait(lambda: late.msgs, 5, "the retained count") if r]
        late.close()
        assert d2.stop() == 0, d2.tail()
    finally:
        d1.close()
        d2.close()
        if w is not None:
            w.stop()

    msgs = list(w.msgs)
    online = next(i for i, m in enumerate(msgs) if m.topic.endswith("/availability") and m.text == "online")
    got = [(m.topic, m.payload) for m in msgs if m.topic.endswith("/event") and epoch(m.json()["ts"]) < killed_at]
    first_old = next(i for i, m in enumerate(msgs) if (m.topic, m.payload) == got[0])
    print(f"first run: {len(printed)} count changes printed, {len(left)} messages left on disk "
          f"({len(left) - len(old_events)} retained counts); second run delivered {len(got)} of them "
          f"{msgs[first_old].t - t2:.2f} s after its start")
    assert online < first_old, "messages of the previous run went out before `online`"
    assert got == old_events  # all of them, in order, no duplicates
    # The stale retained counts of the killed run never reach the broker: every count seen
    # belongs to the new run, and so does the retained one a late subscriber gets.
    counts = [m.json() for m in w.on("count")]
    assert counts and all(epoch(c["since"]) > killed_at for c in counts), counts
    stats = [m.json() for m in w.on("stats")]
    assert stats and all(s["outbox_persistent"] is True for s in stats)
    assert "from the previous run to deliver" in d2.log.read_text()
    assert retained and epoch(retained[-1]["since"]) > killed_at, retained
    # Acknowledged = gone from the file: nothing of the first run is left.
    assert not [row for row in stored(d1.state / "outbox.sqlite") if row[0] <= left[-1][0]]


def test_corrupt_outbox_file_is_replaced_and_the_link_keeps_working(broker, tmp_path: Path, caplog) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite").write_bytes(b"\x00garbage after a power cut\x00" * 200)
    sub = Collector(broker.port, ["fingercount/t1/event"])
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        link = MqttLink(link_cfg(broker.port, tmp_path)).start()
    assert [r for r in caplog.records if "moved aside" in r.getMessage()]
    assert list(state.glob("outbox.sqlite.corrupt-*"))
    assert link.wait_connected(5)
    link.publish_reliable("event", {"type": "test", "i": 1})
    sub.wait(lambda: sub.on("fingercount/t1/event"), what="event through the new outbox")
    assert link.stats()["outbox_persistent"] is True
    link.stop()
    sub.close()


def test_unwritable_state_dir_keeps_the_link_working_in_memory(broker, tmp_path: Path, caplog) -> None:
    (tmp_path / "file").write_text("not a directory")
    cfg = load_config(None, {"device_id": "t1", "state_dir": str(tmp_path / "file" / "state"),
                             "mqtt": {"host": "127.0.0.1", "port": broker.port}}, environ={})
    sub = Collector(broker.port, ["fingercount/t1/event"])
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        link = MqttLink(cfg).start()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "memory only" in warned[0], warned
    assert link.wait_connected(5)
    for i in range(3):
        link.publish_reliable("event", {"type": "test", "i": i})
    sub.wait(lambda: len(sub.on("fingercount/t1/event")) >= 3, what="3 events from memory")
    assert [e["i"] for e in sub.json_on("fingercount/t1/event")] == [0, 1, 2]
    assert link.stats()["outbox_persistent"] is False
    link.stop()
    sub.close()
