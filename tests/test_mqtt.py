"""MQTT link against a real mosquitto: availability, ordered bounded outbox across outages,
Home Assistant discovery, TLS with username/password."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import paho.mqtt.client as mqtt
import pytest

from edge.config import load_config
from edge.mqtt import MqttLink
from tests.conftest import wait_until


class Collector:
    """A real MQTT subscriber that records (topic, payload, retain) as they arrive."""

    def __init__(self, port: int, topics: list[str], host: str = "127.0.0.1", client_id: str = "",
                 clean: bool = True, tls_ca: Optional[Path] = None, auth: Optional[tuple[str, str]] = None):
        self.msgs: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if tls_ca:
            self.c.tls_set(ca_certs=str(tls_ca))
        if auth:
            self.c.username_pw_set(*auth)
        self.topics = topics
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect(host, port, 30)
        self.c.loop_start()
        assert self.subscribed.wait(5), "subscriber did not get SUBACK"

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.msgs.append((m.topic, bytes(m.payload), bool(m.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.msgs if t == topic]

    def json_on(self, topic: str) -> list[Any]:
        return [json.loads(p) for p in self.on(topic)]

    def wait(self, pred: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        v = wait_until(pred, timeout)
        if v:
            return v
        with self.lock:
            seen = [(t, p[:120]) for t, p, _ in self.msgs[-15:]]
        raise AssertionError(f"timed out waiting for {what or pred}; last messages: {seen}")

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def link_cfg(port: int, tmp: Path, **mqtt_over: Any) -> Any:
    over = {"device_id": "t1", "state_dir": str(tmp / "state"), "mqtt": {"host": "127.0.0.1", "port": port, **mqtt_over}}
    return load_config(None, over, environ={})


def test_online_on_connect_offline_on_clean_stop(broker, tmp_path: Path) -> None:
    sub = Collector(broker.port, ["fingercount/t1/availability"])
    link = MqttLink(link_cfg(broker.port, tmp_path)).start()
    assert link.wait_connected(5)
    sub.wait(lambda: b"online" in sub.on("fingercount/t1/availability"), what="online")
    link.stop()
    sub.wait(lambda: sub.on("fingercount/t1/availability")[-1:] == [b"offline"], what="offline")
    sub.close()
    # retained: a late subscriber sees offline too
    late = Collector(broker.port, ["fingercount/t1/availability"])
    late.wait(lambda: late.on("fingercount/t1/availability") == [b"offline"], what="retained offline")
    late.close()


def test_two_clients_with_one_id_back_off_instead_of_kicking_each_other_out(broker, tmp_path: Path) -> None:
    # Two Pis both called raspberrypi: the broker drops the older connection whenever the other
    # connects. Without a back-off they reconnected hundreds of times a second.
    a = MqttLink(link_cfg(broker.port, tmp_path / "a"), reconnect=(0.2, 2.0)).start()
    b = MqttLink(link_cfg(broker.port, tmp_path / "b"), reconnect=(0.2, 2.0)).start()
    try:
        time.sleep(6)
        assert a.connects + b.connects <= 20, (a.connects, b.connects)
        assert a.connects >= 2 and b.connects >= 1  # both keep trying
        assert "another client with the id 'fingercount-t1'" in (a.last_error or "") + (b.last_error or "")
    finally:
        a.stop()
        b.stop()


def test_a_broker_restarted_just_after_connecting_is_not_blamed_on_another_client(
        broker, tmp_path: Path, monkeypatch, caplog) -> None:
    import edge.mqtt as mqtt_mod

    monkeypatch.setattr(mqtt_mod, "SHORT_SESSION_S", 60.0)  # short however slow the machine is
    with caplog.at_level(logging.WARNING, logger="edge.mqtt"):
        link = MqttLink(link_cfg(broker.port, tmp_path), reconnect=(0.2, 0.5)).start()
        try:
            assert link.wait_connected(5)
            broker.stop()
            broker.start()
            assert wait_until(lambda: link.connects >= 2 and link.connected.is_set(), 15), link.last_error
        finally:
            link.stop()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    print(warned)
    assert [w for w in warned if "closed the connection" in w and "reconnecting" in w], warned
    assert not [w for w in warned if "another client" in w], warned


@pytest.fixture
def persist_dir() -> Iterator[Path]:
    # mosquitto started as root drops to its own user before writing its database, and
    # pytest's tmp_path is private to us: use a world-writable directory of our own.
    d = Path(tempfile.mkdtemp(prefix="fingercount-mosq-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def persistent_broker(broker_factory, d: Path):
    """mosquitto keeping sessions across its own restart, so a subscriber misses nothing."""
    return broker_factory(f"persistence true\npersistence_location {d}/\n", name="persist")


def test_outbox_keeps_order_across_a_broker_outage(broker_factory, persist_dir: Path, tmp_path: Path) -> None:
    b = persistent_broker(broker_factory, persist_dir)
    sub = Collector(b.port, ["fingercount/t1/event"], client_id="sub-order", clean=False)
    link = MqttLink(link_cfg(b.port, tmp_path), reconnect=(0.2, 0.5)).start()
    assert link.wait_connected(5)
    for i in range(5):
        link.publish_reliable("event", {"type": "test", "i": i})
    sub.wait(lambda: len(sub.on("fingercount/t1/event")) >= 5, what="5 events before the outage")
    b.stop()
    deadline = time.monotonic() + 5
    while link.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not link.connected.is_set()
    for i in range(5, 40):  # produced while the broker is down
        link.publish_reliable("event", {"type": "test", "i": i})
    assert link.stats()["outbox_depth"] == 35
    b.start()
    sub.wait(lambda: len({e["i"] for e in sub.json_on("fingercount/t1/event")}) >= 40, timeout=15,
             what="all 40 events after reconnect")
    got = [e["i"] for e in sub.json_on("fingercount/t1/event")]
    # QoS 1 may deliver a message twice; it must never deliver out of order
    dedup = [i for n, i in enumerate(got) if i not in got[:n]]
    assert dedup == list(range(40)), got
    # the subscriber can see the last message before the link has its PUBACK and deletes the row
    assert wait_until(lambda: link.stats()["outbox_depth"] == 0, 5), link.stats()
    assert link.outbox.dropped == 0
    link.stop()
    sub.close()


def test_after_an_outage_only_the_newest_retained_count_goes_out(broker_factory, persist_dir: Path,
                                                                 tmp_path: Path) -> None:
    # 40 s without a broker made 183 stale retained counts arrive in a burst (Home Assistant
    # recorded each), and they took half of outbox_max from the events.
    b = persistent_broker(broker_factory, persist_dir)
    count, event = "fingercount/t1/count", "fingercount/t1/event"
    sub = Collector(b.port, [count, event], client_id="sub-retained", clean=False)
    n = 30
    link = MqttLink(link_cfg(b.port, tmp_path, outbox_max=n + 10), reconnect=(0.2, 0.5)).start()
    try:
        assert link.wait_connected(5)
        link.publish_reliable("count", {"count": -1}, retain=True)
        sub.wait(lambda: sub.on(count), what="the count before the outage")
        b.stop()
        assert wait_until(lambda: not link.connected.is_set(), 5)
        for i in range(n):  # as the daemon does at each change: the state and its event
            link.publish_reliable_many([("count", {"count": i}, True), ("event", {"i": i}, False)])
        depth = link.stats()["outbox_depth"]
        b.start()
        sub.wait(lambda: len({e["i"] for e in sub.json_on(event)}) >= n, timeout=20, what=f"{n} events")
        # the newest count went out before the last event; a stale one would have gone even earlier
        sub.wait(lambda: {"count": n - 1} in sub.json_on(count), timeout=5, what="the newest count")
        got = [e["i"] for e in sub.json_on(event)]
        counts = [c["count"] for c in sub.json_on(count)]
        print(f"queued while away: {depth}; counts received: {counts}; events: {len(got)}")
        assert [i for k, i in enumerate(got) if i not in got[:k]] == list(range(n))  # in order
        assert set(counts) <= {-1, n - 1}, counts  # -1: from before the outage (or retained)
        assert depth == n + 1 and link.outbox.dropped == 0 and link.outbox.superseded == n - 1
    finally:
        link.stop()
        sub.close()


def test_a_queued_message_the_broker_would_refuse_does_not_block_the_rest(broker, tmp_path: Path) -> None:
    # An older version let a tab into device_id, and so into queued topics; mosquitto drops a
    # client that publishes there, so every start stalled on that first message for good.
    from edge.outbox import Message, Outbox

    path = tmp_path / "state" / "outbox.sqlite"
    path.parent.mkdir(parents=True)
    left = Outbox(100, path)
    left.put(Message("fingercount/t\t1/event", b'{"i": 0}', 1, False))
    left.put(Message("fingercount/t1/event", b'{"i": 1}', 1, False))
    left.close()
    sub = Collector(broker.port, ["fingercount/t1/event"])
    link = MqttLink(link_cfg(broker.port, tmp_path), reconnect=(0.2, 0.5)).start()
    try:
        sub.wait(lambda: sub.json_on("fingercount/t1/event") == [{"i": 1}], timeout=10,
                 what="the message queued behind it")
        assert wait_until(lambda: link.stats()["outbox_depth"] == 0, 5), link.stats()
        assert link.connects == 1
    finally:
        link.stop()
        sub.close()


def test_full_outbox_drops_the_oldest_and_counts(broker_factory, persist_dir: Path, tmp_path: Path) -> None:
    b = persistent_broker(broker_factory, persist_dir)
    sub = Collector(b.port, ["fingercount/t1/event"], client_id="sub-drop", clean=False)
    link = MqttLink(link_cfg(b.port, tmp_path, outbox_max=5), reconnect=(0.2, 0.5)).start()
    assert link.wait_connected(5)
    b.stop()
    assert wait_until(lambda: not link.connected.is_set(), 10), "still connected after the broker stopped"
    for i in range(12):
        link.publish_reliable("event", {"type": "test", "i": i})
    assert link.outbox.dropped == 7 and link.stats()["outbox_depth"] == 5
    b.start()
    sub.wait(lambda: len(sub.on("fingercount/t1/event")) >= 5, timeout=15, what="5 newest events")
    time.sleep(0.3)
    assert [e["i"] for e in sub.json_on("fingercount/t1/event")] == [7, 8, 9, 10, 11]
    assert link.stats()["outbox_dropped"] == 7
    link.stop()
    sub.close()


def test_predictions_are_not_queued_while_offline(broker, tmp_path: Path) -> None:
    link = MqttLink(link_cfg(broker.port, tmp_path), reconnect=(5, 5))
    assert link.publish_now("prediction", {"seq": 1}) is False  # not connected: skipped
    assert len(link.outbox) == 0


def test_home_assistant_discovery_and_resend_on_ha_online(broker, tmp_path: Path) -> None:
    sub = Collector(broker.port, ["homeassistant/sensor/#"])
    link = MqttLink(link_cfg(broker.port, tmp_path)).start()
    assert link.wait_connected(5)
    topic = "homeassistant/sensor/fingercount_t1/count/config"
    sub.wait(lambda: sub.on(topic), what="count discovery config")
    cfg = json.loads(sub.on(topic)[0])
    assert cfg["state_topic"] == "fingercount/t1/count"
    assert cfg["availability_topic"] == "fingercount/t1/availability"
    assert cfg["unique_id"] == "fingercount_t1_count"
    assert cfg["device"]["identifiers"] == ["fingercount_t1"]
    assert "value_json.count" in cfg["value_template"]
    n = len(sub.on(topic))
    # Home Assistant restarted: it says online, and we send the configs again
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    pub.publish("homeassistant/status", b"online", qos=1).wait_for_publish(5)
    sub.wait(lambda: len(sub.on(topic)) > n, what="discovery re-sent")
    pub.loop_stop()
    link.stop()
    sub.close()
    # retained: Home Assistant finds them whenever it connects
    late = Collector(broker.port, ["homeassistant/sensor/fingercount_t1/+/config"])
    late.wait(lambda: len({t for t, _, r in late.msgs if r}) >= 2, what="retained discovery configs")
    late.close()


def make_ca_and_server_cert(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (openssl CLI)."""
    def run(*args: str) -> None:
        try:
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
        except FileNotFoundError:
            pytest.fail("the openssl command is needed for the TLS test: sudo apt-get install openssl",
                        pytrace=False)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fingercount test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
        "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return d / "ca.crt", d / "server.crt", d / "server.key"


@pytest.fixture
def tls_broker(broker_factory, persist_dir: Path):
    d = persist_dir  # readable by the mosquitto user (see persist_dir)
    ca, crt, key = make_ca_and_server_cert(d)
    pw = d / "passwd"
    pw.write_text("")
    try:
        subprocess.run(["mosquitto_passwd", "-b", str(pw), "pi", "s3cret pass"], check=True, capture_output=True)
    except FileNotFoundError:
        pytest.fail("mosquitto_passwd is missing: sudo apt-get install mosquitto", pytrace=False)
    for f in d.iterdir():
        f.chmod(0o644)  # throwaway test keys; mosquitto runs as its own user
    b = broker_factory(f"cafile {ca}\ncertfile {crt}\nkeyfile {key}\nallow_anonymous false\n"
                       f"password_file {pw}\n", name="tls")
    return b, ca


def test_tls_with_password_from_the_environment(tls_broker, tmp_path: Path) -> None:
    b, ca = tls_broker
    sub = Collector(b.port, ["fingercount/t1/#"], host="localhost", tls_ca=ca, auth=("pi", "s3cret pass"))
    over = {"device_id": "t1", "state_dir": str(tmp_path / "state"), "mqtt": {"host": "localhost", "port": b.port, "username": "pi",
                                        "tls": {"enabled": True, "ca_file": str(ca)}}}
    cfg = load_config(None, over, environ={"FINGERCOUNT_MQTT__PASSWORD": "s3cret pass"})
    link = MqttLink(cfg).start()
    assert link.wait_connected(8), link.last_error
    link.publish_reliable("event", {"type": "test"})
    sub.wait(lambda: sub.on("fingercount/t1/event"), what="event over TLS")
    link.stop()
    sub.close()


def test_tls_password_file_and_wrong_password(tls_broker, tmp_path: Path) -> None:
    b, ca = tls_broker
    good = tmp_path / "pw"
    good.write_text("s3cret pass\n")
    base = {"device_id": "t1", "state_dir": str(tmp_path / "state"), "mqtt": {"host": "localhost", "port": b.port, "username": "pi",
                                        "tls": {"enabled": True, "ca_file": str(ca)}}}
    base["mqtt"]["password_file"] = str(good)
    link = MqttLink(load_config(None, base, environ={})).start()
    assert link.wait_connected(8), link.last_error
    link.stop()
    bad = tmp_path / "bad"
    bad.write_text("wrong\n")
    base["mqtt"]["password_file"] = str(bad)
    link = MqttLink(load_config(None, base, environ={}), reconnect=(0.3, 0.3)).start()
    # last_error is set when the refusal arrives, which a busy machine can take seconds for
    assert wait_until(lambda: link.last_error, 15), link.stats()
    assert "refused" in link.last_error and "authori" in link.last_error.lower()
    assert not link.connected.is_set()
    link.stop()


def test_tls_with_an_untrusted_server_does_not_connect(tls_broker, tmp_path: Path) -> None:
    b, _ = tls_broker
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _, _ = make_ca_and_server_cert(other)
    cfg = load_config(None, {"device_id": "t1", "state_dir": str(tmp_path / "state"), "mqtt": {
        "host": "localhost", "port": b.port, "username": "pi", "password": "s3cret pass",
        "tls": {"enabled": True, "ca_file": str(other_ca)}}}, environ={})
    link = MqttLink(cfg, reconnect=(0.3, 0.3)).start()
    assert wait_until(lambda: link.last_error, 15), link.stats()
    assert "certificate" in link.last_error.lower() and not link.connected.is_set()
    link.stop()
