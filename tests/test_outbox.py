"""The durable outbox on real files: order, bound and drop count kept across reopen, ack
removes, kill -9 keeps every returned put, retained state from a previous run superseded,
and a corrupt file / unwritable state dir / full disk fall back without stopping anything."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Union

from edge.outbox import Message, Outbox
from tests.conftest import fill_filesystem, mount_tmpfs, small_disk, umount

ROOT = Path(__file__).resolve().parent.parent


def ev(i: int, topic: str = "fingercount/t/event") -> Message:
    return Message(topic, b'{"i":%d}' % i)


def numbers(ob: Outbox) -> list[int]:
    out = []
    while (m := ob.next_unsent()) is not None:
        out.append(json.loads(m.payload)["i"])
        ob.mark_sent(m)
    ob.rewind()
    return out


def deliver(ob: Outbox, n: int) -> None:
    """Hand the next n messages to the broker, which acknowledges them."""
    for _ in range(n):
        m = ob.next_unsent()
        ob.mark_sent(m)
        ob.ack(m)


SELECT = "SELECT topic, payload, retain FROM msgs ORDER BY id"


def rows(where: Union[Path, Outbox]) -> list[tuple[str, bytes, int]]:
    """The stored rows of a closed file, or of an open outbox through its own connection
    (it holds the file exclusively, as the daemon does)."""
    if isinstance(where, Outbox):
        with where._lock:
            assert where._db is not None
            return where._db.execute(SELECT).fetchall()
    db = sqlite3.connect(where)
    try:
        return db.execute(SELECT).fetchall()
    finally:
        db.close()


def crash(ob: Outbox) -> None:
    """What kill -9 does to the file: the connection (and its lock) goes, nothing is flushed."""
    assert ob._db is not None
    ob._db.close()
    ob._db = None


def test_order_ack_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite"
    ob = Outbox(100, path)
    assert ob.persistent and path.is_file()
    msgs = [ev(i) for i in range(6)]
    for m in msgs:
        ob.put(m)
    assert numbers(ob) == list(range(6))
    for m in msgs[:3]:
        ob.mark_sent(m)
    ob.ack(msgs[0])
    ob.ack(msgs[1])
    assert len(ob) == 4 and len(rows(ob)) == 6  # the rows go with the next write, not one by one
    ob.close()  # ... or at close
    assert len(rows(path)) == 4
    again = Outbox(100, path)
    assert again.restored == 4 and numbers(again) == [2, 3, 4, 5]
    again.put(ev(6))  # new ones go after the old ones
    assert numbers(again) == [2, 3, 4, 5, 6]
    again.close()


def test_acknowledged_rows_go_with_the_next_put_or_after_a_while(tmp_path: Path, monkeypatch) -> None:
    """One transaction per put, none per ack: the card is written once per count change."""
    import edge.outbox as outbox_mod

    path = tmp_path / "outbox.sqlite"
    ob = Outbox(100, path)
    ob.put_many([ev(0), ev(1)])  # a count and its event: one transaction
    assert len(rows(ob)) == 2
    deliver(ob, 2)
    assert len(ob) == 0 and len(rows(ob)) == 2
    ob.put(ev(2))  # the deletes ride along with the next write
    assert [json.loads(p)["i"] for _, p, _ in rows(ob)] == [2]
    # an idle outbox deletes them after ACK_FLUSH_S at the latest
    monkeypatch.setattr(outbox_mod, "ACK_FLUSH_S", 0.0)
    ob.put(ev(3))
    deliver(ob, 1)
    assert [json.loads(p)["i"] for _, p, _ in rows(ob)] == [3]
    # killed before the rows went: those messages are sent once more (QoS 1: at least once)
    monkeypatch.setattr(outbox_mod, "ACK_FLUSH_S", 3600.0)
    ob.put(ev(4))
    deliver(ob, 1)
    crash(ob)
    crashed = Outbox(100, path)
    assert numbers(crashed) == [3, 4] and crashed.restored == 2
    crashed.close()


def test_put_many_keeps_the_bound_and_the_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(3, path)
    ob.put(ev(0))
    ob.put_many([ev(1), ev(2), ev(3)])
    ob.put_many([ev(4), ev(5)])
    assert ob.dropped == 3 and numbers(ob) == [3, 4, 5] and len(rows(ob)) == 3
    ob.close()
    assert Outbox(3, path).dropped == 3


def test_bound_drops_the_oldest_and_the_count_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(3, path)
    for i in range(7):
        ob.put(ev(i))
    assert ob.dropped == 4 and numbers(ob) == [4, 5, 6] and len(rows(ob)) == 3
    ob.close()
    again = Outbox(3, path)
    assert again.dropped == 4 and numbers(again) == [4, 5, 6]
    again.put(ev(7))
    assert again.dropped == 5
    again.close()
    smaller = Outbox(2, path)  # mqtt.outbox_max lowered between runs: the oldest go, counted
    assert smaller.dropped == 6 and numbers(smaller) == [6, 7] and len(rows(smaller)) == 2
    smaller.close()


def count(n: int) -> Message:
    return Message("fingercount/t/count", b'{"count":%d}' % n, retain=True)


def number(payload: bytes) -> int:
    d = json.loads(payload)
    return d["i"] if "i" in d else d["count"]


def kinds(ob: Outbox) -> list[str]:
    """What is queued and not handed out yet: 'count3', 'event0', ..."""
    out = []
    while (m := ob.next_unsent()) is not None:
        out.append(m.topic.rsplit("/", 1)[1] + str(number(m.payload)))
        ob.mark_sent(m)
    ob.rewind()
    return out


def test_a_newer_retained_message_replaces_the_queued_one(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(10, path)
    ob.put_many([count(1), ev(0)])
    ob.put_many([count(2), ev(1)])
    ob.put_many([count(3), ev(2)])
    # the events keep the history, in order; the state is the newest one, at its own place
    assert kinds(ob) == ["event0", "event1", "count3", "event2"] and ob.superseded == 2
    assert [t.rsplit("/", 1)[1] for t, _, _ in rows(ob)] == ["event", "event", "count", "event"]
    other = Message("fingercount/t/availability", b'{"i":9}', retain=True)
    ob.put(other)  # another topic: kept
    # handed to the connection: stays for its PUBACK, and the newer one queues behind it
    sent = []
    while (m := ob.next_unsent()) is not None and len(sent) < 3:
        ob.mark_sent(m)
        sent.append(m)
    assert json.loads(sent[2].payload) == {"count": 3}
    ob.put_many([count(4), ev(3)])
    assert ob.in_flight == 3 and ob.superseded == 2
    for m in sent:
        ob.ack(m)
    assert ob.in_flight == 0 and ob.delivered == 3 and len(ob) == 4
    assert kinds(ob) == ["event2", "availability9", "count4", "event3"]
    # handed to a connection that died before the PUBACK: unsent again, so replaceable
    while (m := ob.next_unsent()) is not None:
        ob.mark_sent(m)
    ob.rewind()
    ob.put_many([count(5), count(6), ev(4)])  # one batch: only its newest count stays
    assert kinds(ob) == ["event2", "availability9", "event3", "count6", "event4"]
    assert ob.superseded == 4 and ob.dropped == 0
    ob.close()
    assert [number(p) for _, p, _ in rows(path)] == [2, 9, 3, 6, 4]


def test_retained_messages_of_a_previous_run_are_superseded(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(10, path)
    ob.put(Message("fingercount/t/count", b'{"count":3}', retain=True))
    ob.put(ev(0))
    m = ob.next_unsent()
    ob.mark_sent(m)  # in flight: not replaced by the next count
    ob.put(Message("fingercount/t/count", b'{"count":4}', retain=True))
    ob.put(ev(1))
    assert [m[0].rsplit("/", 1)[1] for m in rows(ob)] == ["count", "event", "count", "event"]
    ob.close()
    again = Outbox(10, path)
    assert again.superseded == 2 and again.restored == 2
    assert numbers(again) == [0, 1] and rows(again) == [("fingercount/t/event", b'{"i":0}', 0),
                                                        ("fingercount/t/event", b'{"i":1}', 0)]
    again.close()


def test_a_returned_put_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    code = textwrap.dedent(f"""
        import os, signal, sys
        from edge.outbox import Message, Outbox
        ob = Outbox(1000, {str(path)!r})
        assert ob.persistent
        for i in range(50):
            ob.put(Message("fingercount/t/event", b'{{"i":%d}}' % i))
        sys.stdout.write("put 50\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == -9 and p.stdout == "put 50\n", p.stderr
    ob = Outbox(1000, path)
    assert numbers(ob) == list(range(50))
    ob.close()


def test_a_corrupt_file_is_moved_aside_and_a_new_one_started(tmp_path: Path, caplog) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not an SQLite database, a torn write left it like this" * 100)
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        ob = Outbox(10, path)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "corrupt" in warned[0] and "moved aside" in warned[0], warned
    aside = list(tmp_path.glob("outbox.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert ob.persistent and len(ob) == 0
    ob.put(ev(1))
    ob.close()
    assert numbers(Outbox(10, path)) == [1]


def test_only_the_newest_corrupt_files_are_kept(tmp_path: Path) -> None:
    # A card that keeps corrupting the outbox filled up with them: none was ever deleted.
    path = tmp_path / "outbox.sqlite"
    for day in range(1, 6):  # what earlier runs moved aside, some with their WAL
        old = tmp_path / f"outbox.sqlite.corrupt-210001{day:02d}T120000"  # a clock gone wrong
        old.write_bytes(b"old")
        if day % 2:
            Path(f"{old}-wal").write_bytes(b"old wal")
    other = tmp_path / "samples.sqlite3.corrupt-20250101T000000"  # not the outbox's
    other.write_bytes(b"x")
    path.write_bytes(b"torn" * 1000)
    ob = Outbox(10, path)
    assert ob.persistent
    left = sorted(f.name for f in tmp_path.glob("outbox.sqlite.corrupt-*"))
    print(left)
    now = [n for n in left if not n.startswith("outbox.sqlite.corrupt-2100")]
    assert len(now) == 1 and (tmp_path / now[0]).read_bytes().startswith(b"torn")  # just moved aside
    assert sorted(set(left) - set(now)) == ["outbox.sqlite.corrupt-21000104T120000",
                                            "outbox.sqlite.corrupt-21000105T120000",
                                            "outbox.sqlite.corrupt-21000105T120000-wal"]
    assert other.exists()
    ob.close()


def test_damaged_pages_are_found_too(tmp_path: Path, caplog) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(1000, path)
    for _ in range(300):
        ob.put(Message("fingercount/t/event", os.urandom(200)))
    ob.close()  # checkpoints the WAL into the file
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    data[5 * 4096:6 * 4096] = b"\xff" * 4096  # a page torn by a dying SD card
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        again = Outbox(1000, path)
    assert list(tmp_path.glob("outbox.sqlite.corrupt-*")), [r.getMessage() for r in caplog.records]
    assert again.persistent and len(again) == 0
    again.close()


def test_unwritable_state_dir_keeps_messages_in_memory(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")  # root ignores chmod
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        ob = Outbox(3, blocker / "outbox.sqlite")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "memory only" in warned[0], warned
    assert not ob.persistent
    for i in range(5):
        ob.put(ev(i))
    assert numbers(ob) == [2, 3, 4] and ob.dropped == 2


def test_full_disk_falls_back_to_memory_without_losing_order(tmp_path: Path, caplog) -> None:
    mnt = tmp_path / "small"
    mounted = mount_tmpfs(mnt, "1m")
    try:
        ob = Outbox(5000, mnt / "outbox.sqlite")
        assert ob.persistent
        ob.put(ev(0))
        if mounted:
            fill_filesystem(mnt)
            how = "a full 1 MB tmpfs"
        else:  # no mount permission: SQLite's own page limit gives the same SQLITE_FULL
            assert ob._db is not None
            pages = ob._db.execute("PRAGMA page_count").fetchone()[0]
            ob._db.execute(f"PRAGMA max_page_count={pages}")
            how = "PRAGMA max_page_count"
        with caplog.at_level(logging.WARNING, logger="edge.outbox"):
            for i in range(1, 2000):  # the WAL grows until the disk refuses
                ob.put(Message("fingercount/t/event", b'{"pad":"%s","i":%d}' % (b"x" * 2000, i)))
                if not ob.persistent:
                    break
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        print(f"disk full simulated with {how}; fell back after {i} puts: {warned}")
        assert not ob.persistent and len(warned) == 1 and "full" in warned[0], warned
        for j in range(i + 1, i + 5):
            ob.put(ev(j))
        assert numbers(ob) == list(range(i + 5))  # nothing lost, still in order
    finally:
        if mounted:
            umount(mnt)


def fill_until_memory_only(ob: Outbox, first: int) -> int:
    """Padded puts from `first` until the (full) disk refuses; returns the next number."""
    i = first
    while ob.persistent:
        assert i < first + 2000, "the disk never filled up"
        ob.put(Message("fingercount/t/event", b'{"pad":"%s","i":%d}' % (b"x" * 2000, i)))
        i += 1
    return i


def test_a_freed_disk_makes_the_outbox_durable_again(tmp_path: Path, caplog) -> None:
    with small_disk(tmp_path / "small", "1m") as mnt:
        path = mnt / "outbox.sqlite"
        ob = Outbox(5000, path, retry_s=0)  # retry at every put (the daemon: every 60 s)
        for i in range(5):
            ob.put(ev(i))
        filler = fill_filesystem(mnt)
        with caplog.at_level(logging.WARNING, logger="edge.outbox"):
            n = fill_until_memory_only(ob, 5)
            for _ in range(3):  # delivered while memory only: never to be resent
                m = ob.next_unsent()
                assert m is not None
                ob.mark_sent(m)
                ob.ack(m)
            ob.put(ev(n))  # still full: retried, refused, quietly
            assert not ob.persistent
            filler.unlink()
            ob.put(ev(n + 1))
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert ob.persistent, warned
        assert len(warned) == 2 and "full" in warned[0] and "writable again" in warned[1], warned
        expect = list(range(3, n + 2))
        assert [json.loads(p)["i"] for _, p, _ in rows(ob)] == expect  # the file is the queue
        ob.put(ev(n + 2))
        ob.close()
        again = Outbox(5000, path)
        assert again.restored == n and numbers(again) == expect + [n + 2]
        again.close()


def test_a_previous_runs_messages_join_when_the_file_comes_back(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", "1m") as mnt:
        path = mnt / "outbox.sqlite"
        first = Outbox(100, path)
        for i in range(3):
            first.put(ev(i))
        first.put(Message("fingercount/t/count", b'{"i":-1}', retain=True))
        first.close()  # a run that ended with 3 events and its count undelivered
        filler = fill_filesystem(mnt)
        ob = Outbox(100, path, retry_s=0)  # starts on a full disk: cannot rewrite the file
        assert not ob.persistent and ob.restored == 0
        ob.put(ev(10))
        m = ob.next_unsent()
        assert m is not None
        ob.mark_sent(m)  # in flight when the file comes back
        ob.put(ev(11))
        filler.unlink()
        ob.put(ev(12))
        assert ob.persistent and ob.restored == 3 and ob.superseded == 1
        # the previous run's events go out right after what is in flight, before newer ones
        assert numbers(ob) == [0, 1, 2, 11, 12]
        assert numbers(ob) == [10, 0, 1, 2, 11, 12]  # after a reconnect: all, in order
        ob.close()
        again = Outbox(100, path)
        assert numbers(again) == [10, 0, 1, 2, 11, 12]
        again.close()


def test_the_write_ahead_log_stays_small(tmp_path: Path) -> None:
    # SQLite's default let outbox.sqlite-wal grow to 4 MB and stay that size: on a nearly
    # full card that is room the samples and logs need.
    from edge.sqlite_files import WAL_LIMIT_BYTES

    path = tmp_path / "outbox.sqlite"
    ob = Outbox(1000, path)
    wal, largest = Path(f"{path}-wal"), 0
    for i in range(1500):
        ob.put_many([Message("t/count", b'{"count": %d}' % (i % 6), 1, True), Message("t/event", b"{}" * 40, 1, False)])
        for _ in range(2):
            m = ob.next_unsent()
            assert m is not None
            ob.mark_sent(m)
            ob.ack(m)
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    ob.close()
    assert 0 < largest <= WAL_LIMIT_BYTES, largest
