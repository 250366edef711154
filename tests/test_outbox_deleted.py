"""A state dir deleted while the daemon runs (rm -rf state): the outbox kept writing to the
deleted file, said it was persistent, and a power cut then lost the queue. It now notices,
makes a new file at the path with the queue, and says so once."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

import edge.outbox as outbox_mod
from edge.mqtt import MqttLink
from edge.outbox import Message, Outbox
from tests.conftest import wait_until
from tests.test_mqtt import Collector, link_cfg
from tests.test_outbox import ev as outbox_ev
from tests.test_outbox import numbers


def ev(i: int) -> Message:
    return outbox_ev(i, "fingercount/t1/event")  # link_cfg's device


def deleted_fds(under: Path) -> list[str]:
    """Files under `under` this process has open that are no longer on disk."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(under)) and target.endswith("(deleted)"):
            out.append(target)
    return out


@pytest.fixture
def check_now(monkeypatch) -> None:
    monkeypatch.setattr(outbox_mod, "CHECK_S", 0.0, raising=False)  # the daemon: every 5 s


def test_a_deleted_state_dir_gets_a_new_file_with_the_queue(tmp_path: Path, check_now, caplog) -> None:
    state = tmp_path / "state"
    path = state / "outbox.sqlite"
    ob = Outbox(100, path)
    for i in range(5):
        ob.put(ev(i))
    m = ob.next_unsent()
    ob.mark_sent(m)
    ob.ack(m)  # delivered: not carried over
    shutil.rmtree(state)
    gone = deleted_fds(tmp_path)
    assert gone, "the outbox should still have the deleted file open"
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        ob.put(ev(5))
        ob.put(ev(6))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    print(f"open after rm -rf: {gone}; now: {deleted_fds(tmp_path)}; {warned}")
    assert len(warned) == 1 and "deleted or replaced" in warned[0] and "4 queued" in warned[0], warned
    assert ob.persistent and path.is_file() and deleted_fds(tmp_path) == []
    assert numbers(ob) == [1, 2, 3, 4, 5, 6]
    ob.close()
    again = Outbox(100, path)  # what a restart (or a power cut) finds
    assert numbers(again) == [1, 2, 3, 4, 5, 6]
    again.close()


def test_a_state_dir_that_cannot_be_made_again_is_memory_only_and_says_so(tmp_path: Path, check_now,
                                                                          caplog) -> None:
    state = tmp_path / "state"
    ob = Outbox(100, state / "outbox.sqlite", retry_s=0)
    ob.put(ev(0))
    shutil.rmtree(state)
    state.write_text("a file where the state dir was")
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        ob.put(ev(1))
        ob.put(ev(2))  # retried, refused, quietly
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert not ob.persistent and deleted_fds(tmp_path) == []
    assert len(warned) == 1 and "cannot be made again" in warned[0] and "memory only" in warned[0], warned
    state.unlink()
    ob.put(ev(3))  # the retry makes the dir and the file
    assert ob.persistent and numbers(ob) == [0, 1, 2, 3]
    ob.close()
    assert numbers(Outbox(100, state / "outbox.sqlite")) == [0, 1, 2, 3]


def test_the_link_notices_while_the_broker_is_away(broker_factory, tmp_path: Path, monkeypatch) -> None:
    """No put needed: the link thread checks too (here every 0.2 s, the daemon every 5 s)."""
    monkeypatch.setattr(outbox_mod, "CHECK_S", 0.2, raising=False)
    b = broker_factory(name="deleted")
    b.stop()
    link = MqttLink(link_cfg(b.port, tmp_path), reconnect=(0.2, 0.5)).start()
    sub = None
    try:
        for i in range(3):
            link.publish_reliable("event", {"i": i})
        path = tmp_path / "state" / "outbox.sqlite"
        shutil.rmtree(path.parent)
        # each of these holds from the moment the link thread's reopen is done
        reopened = wait_until(lambda: path.is_file() and not deleted_fds(tmp_path)
                              and link.stats()["outbox_persistent"], 10)
        assert reopened, ("no new outbox file while the broker was away", deleted_fds(tmp_path))
        b.start()
        sub = Collector(b.port, ["fingercount/t1/event"])
        link.publish_reliable("event", {"i": 3})
        sub.wait(lambda: len(sub.on("fingercount/t1/event")) >= 4, timeout=15, what="4 events")
        got = [e["i"] for e in sub.json_on("fingercount/t1/event")]
        assert [i for k, i in enumerate(got) if i not in got[:k]] == [0, 1, 2, 3]
    finally:
        link.stop()
        if sub is not None:
            sub.close()
