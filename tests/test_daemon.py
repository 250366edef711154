"""The daemon in-process against a real mosquitto, the replay camera and a real model:
the MQTT contract, commands (good, malformed, unknown, oversized), the extension API."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.config import dump_config, load_config
from edge.daemon import Daemon
from edge.errors import CommandError
from edge.redact import redact
from edge.runtime.classifier import Classifier
from edge.runtime.package import load_package
from tests.conftest import HANDS, MODELS, wait_until
from tests.test_mqtt import Collector
from tests.test_pipeline import model_dir

DEV = "td"
BASE = f"fingercount/{DEV}"


def daemon_cfg(port: int, tmp: Path, **over: Any) -> Any:
    d = model_dir()
    o: dict[str, Any] = {
        "device_id": DEV, "state_dir": str(tmp / "state"), "models_dir": str(d.parent),
        "model": {"name": d.name, "precision": "int8", "threads": 1},
        "camera": {"source": f"replay:{HANDS}@15"},
        "smoothing": {"window": 1, "min_confidence": 0.0, "min_hold_ms": 0},
        "mqtt": {"host": "127.0.0.1", "port": port, "max_command_bytes": 256},
        "publish": {"max_hz": 20, "stats_interval_s": 1},
        "gpio": {"enabled": False},
    }
    for k, v in over.items():
        o[k] = {**o[k], **v} if isinstance(v, dict) and isinstance(o.get(k), dict) else v
    return load_config(None, o, environ={})


class Running:
    def __init__(self, d: Daemon):
        self.d = d
        self.t = threading.Thread(target=d.run, name="test-daemon", daemon=True)
        self.t.start()

    def stop(self) -> None:
        self.d.stop_event.set()
        self.t.join(5)
        assert not self.t.is_alive(), "daemon did not stop"


@pytest.fixture
def running(broker, tmp_path: Path) -> Iterator[tuple[Running, Collector]]:
    sub = Collector(broker.port, [f"{BASE}/#"])
    d = Daemon(daemon_cfg(broker.port, tmp_path))
    r = Running(d)
    try:
        yield r, sub
    finally:
        r.stop()
        sub.close()


def command(port: int, name: str, *payloads: bytes) -> None:
    """Publish payloads to …/cmd/<name> in order, as a client of its own would."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", port)
    c.loop_start()
    for payload in payloads:
        c.publish(f"{BASE}/cmd/{name}", payload, qos=1).wait_for_publish(5)
    c.disconnect()  # before loop_stop: otherwise the loop sits out its select timeout
    c.loop_stop()


def result(sub: Collector, name: str, cid: Any, timeout: float = 10) -> dict:
    topic = f"{BASE}/cmd/{name}/result"
    return sub.wait(lambda: next((m for m in sub.json_on(topic) if m.get("id") == cid), None),
                    timeout, what=f"result of {name} id={cid}")


def test_topics_follow_the_contract(running, broker) -> None:
    r, sub = running
    sub.wait(lambda: b"online" in sub.on(f"{BASE}/availability"), what="online")
    preds = sub.wait(lambda: len(sub.json_on(f"{BASE}/prediction")) >= 5 and sub.json_on(f"{BASE}/prediction"),
                     what="predictions")
    p = preds[-1]
    assert set(p) >= {"seq", "ts", "label", "count", "confidence", "scores", "timing_ms"}
    # behind the hand stage: locate (detect, landmarks), then count; invoke = the models' time
    assert set(p["timing_ms"]) >= {"capture", "detect", "landmarks", "count", "invoke", "total"}
    assert set(p["hand"]) == {"present", "score", "box", "handedness"}
    with_hand = [x for x in preds if x["hand"]["present"]]
    assert with_hand, "no hand found in any replayed photo"
    assert set(with_hand[-1]["scores"]) == set(r.d.classifier.labels)
    for x in preds:  # no hand: no scores and no count
        assert x["hand"]["present"] or (x["count"] is None and x["scores"] == {})
    seqs = [x["seq"] for x in preds]
    assert seqs == sorted(set(seqs)), "a frame was classified twice"
    counts = sub.wait(lambda: [c for c in sub.json_on(f"{BASE}/count") if c["count"] is not None],
                      what="a stable count")
    c = counts[-1]
    assert set(c) == {"count", "label", "confidence", "since", "model", "hand"}
    assert c["hand"] is True
    assert c["model"] == r.d.classifier.model_id and c["since"].endswith("Z")
    ev = sub.wait(lambda: [e for e in sub.json_on(f"{BASE}/event") if e["type"] == "count_changed"],
                  what="count_changed event")
    assert ev[0]["count"] == int(ev[0]["label"]) if ev[0]["label"].isdigit() else ev[0]["count"] is None
    st = sub.wait(lambda: sub.json_on(f"{BASE}/stats"), what="stats")[-1]
    for k in ("fps", "invoke_p50_ms", "invoke_p95_ms", "dropped_frames", "uptime_s", "model",
              "outbox_depth", "cpu_temp_c", "throttled"):
        assert k in st, k
    # retained: count and stats are there for a late subscriber
    late = Collector(broker.port, [f"{BASE}/count", f"{BASE}/stats", f"{BASE}/availability"])
    late.wait(lambda: len({t for t, _, ret in late.msgs if ret}) == 3, what="retained count/stats/availability")
    late.close()


def test_commands_answer_with_the_request_id(running, broker) -> None:
    r, sub = running
    sub.wait(lambda: sub.on(f"{BASE}/prediction"), what="first prediction")
    command(broker.port, "status", b'{"id": "s1"}')
    res = result(sub, "status", "s1")
    assert res["ok"] is True and res["data"]["model"] == r.d.classifier.model_id
    command(broker.port, "pause", b'{"id": 2}')
    assert result(sub, "pause", 2)["ok"] is True
    # a frame in progress at the pause is still published (directly, so it can come after the
    # result): wait for 0.5 s without one, then none may come for 1 s
    seen = [len(sub.on(f"{BASE}/prediction")), time.monotonic()]

    def quiet() -> bool:
        k = len(sub.on(f"{BASE}/prediction"))
        if k != seen[0]:
            seen[:] = [k, time.monotonic()]
        return time.monotonic() - seen[1] > 0.5

    assert wait_until(quiet, 10), "predictions kept coming after the pause"
    n = len(sub.on(f"{BASE}/prediction"))
    time.sleep(1.0)
    assert len(sub.on(f"{BASE}/prediction")) == n, "still classifying while paused"
    command(broker.port, "resume", b'{"id": 3}')
    assert result(sub, "resume", 3)["ok"] is True
    sub.wait(lambda: len(sub.on(f"{BASE}/prediction")) > n + 2, what="predictions after resume")


@pytest.mark.parametrize("name,payload,reason", [
    ("status", b"{not json", "not valid JSON"),
    ("status", b"[1, 2]", "must be a JSON object"),
    ("status", b'"hello"', "must be a JSON object"),
    ("status", b'{"id": [1]}', "'id' must be"),
    ("set_model", b'{"id": 7, "name": 5}', "'name' must be"),
    ("set_model", b'{"id": 8, "precision": "int4"}', "'precision' must be"),
    ("pause", b'{"id": 9, "bogus": 1}', "unexpected field"),
    ("self_destruct", b'{"id": 10}', "unknown command"),
    ("status", b'{"id": 11, "pad": "' + b"x" * 400 + b'"}', "too large"),
    ("status", b'{"id": NaN}', "NaN is not a JSON number"),
    ("status", b'{"id": 12, "x": -Infinity}', "-Infinity is not a JSON number"),
    ("status", b'{"id": 1e400}', "1e400 is out of range"),
])
def test_bad_commands_get_ok_false_and_a_reason(tmp_path: Path, name: str, payload: bytes, reason: str) -> None:
    d = Daemon(daemon_cfg(1, tmp_path), mqtt_enabled=False)
    size = len(payload)
    res = d.execute(name, payload if size <= d.cfg.mqtt.max_command_bytes else None, size)
    assert res["ok"] is False and reason in res["error"], res


def test_json_nested_past_the_recursion_limit_is_a_bad_command(tmp_path: Path, caplog) -> None:
    d = Daemon(daemon_cfg(1, tmp_path, mqtt={"max_command_bytes": 4096}), mqtt_enabled=False)
    with caplog.at_level(logging.WARNING):
        res = d.execute("status", b"[" * 1500)  # within the default max_command_bytes
    assert res["ok"] is False and res["error"] == "not valid JSON: nested too deeply", res
    assert "Traceback" not in caplog.text and "internal error" not in caplog.text


def test_bad_commands_over_mqtt_do_not_stop_the_daemon(running, broker) -> None:
    r, sub = running
    sub.wait(lambda: sub.on(f"{BASE}/prediction"), what="first prediction")
    command(broker.port, "status", b"\xff\xfe garbage")
    command(broker.port, "nope", b'{"id": "u"}')
    command(broker.port, "status", b'{"id": "big", "x": "' + b"y" * 5000 + b'"}')
    garbage = sub.wait(lambda: [m for m in sub.json_on(f"{BASE}/cmd/status/result") if m["id"] is None],
                       what="result for garbage")[0]
    assert garbage["ok"] is False and "JSON" in garbage["error"]
    assert "unknown command" in result(sub, "nope", "u")["error"]
    # oversized: refused unparsed, so no id can be echoed
    big = sub.wait(lambda: [m for m in sub.json_on(f"{BASE}/cmd/status/result") if "too large" in (m["error"] or "")],
                   what="oversized refused")[0]
    assert big["ok"] is False
    n = len(sub.on(f"{BASE}/prediction"))
    sub.wait(lambda: len(sub.on(f"{BASE}/prediction")) > n + 3, what="still classifying")
    assert r.t.is_alive()


def test_set_model_swaps_or_keeps_the_old_one(running, broker, tmp_path: Path) -> None:
    r, sub = running
    sub.wait(lambda: sub.on(f"{BASE}/prediction"), what="first prediction")
    old = r.d.classifier.model_id
    command(broker.port, "set_model", b'{"id": "m1", "name": "no-such-model"}')
    res = result(sub, "set_model", "m1")
    assert res["ok"] is False and "not found" in res["error"]
    assert r.d.classifier.model_id == old
    name = model_dir().name
    command(broker.port, "set_model", json.dumps({"id": "m2", "name": name, "precision": "fp32"}).encode())
    res = result(sub, "set_model", "m2")
    assert res["ok"] is True and res["data"]["model"].endswith("/fp32")
    sub.wait(lambda: [e for e in sub.json_on(f"{BASE}/event") if e["type"] == "model_swapped"],
             what="model_swapped event")
    sub.wait(lambda: [p for p in sub.json_on(f"{BASE}/prediction") if p.get("model", "").endswith("/fp32")],
             what="predictions from the new model")


def test_a_model_swap_reaches_the_stats_at_once(broker, tmp_path: Path) -> None:
    # Home Assistant's Model sensor reads …/stats: with a 60 s interval only the push can do it
    sub = Collector(broker.port, [f"{BASE}/#"])
    r = Running(Daemon(daemon_cfg(broker.port, tmp_path, publish={"stats_interval_s": 60})))
    try:
        sub.wait(lambda: sub.json_on(f"{BASE}/stats"), what="the first stats")
        command(broker.port, "set_model", json.dumps({"id": 1, "name": model_dir().name,
                                                      "precision": "fp32"}).encode())
        assert result(sub, "set_model", 1)["ok"]
        sub.wait(lambda: [s for s in sub.json_on(f"{BASE}/stats") if s["model"].endswith("/fp32")],
                 timeout=10, what="stats naming the new model")
    finally:
        r.stop()
        sub.close()


def test_extension_api(broker, tmp_path: Path) -> None:
    sub = Collector(broker.port, [f"{BASE}/#"])
    d = Daemon(daemon_cfg(broker.port, tmp_path))
    hooks: list[str] = []

    def hello(body: dict) -> dict:
        if "fail" in body:
            raise CommandError("asked to fail")
        return {"hello": body.get("who", "world")}

    d.register_command("hello", hello)
    d.add_stats_provider(lambda: {"samples_per_label": {"3": 2}})
    d.add_shutdown_hook(lambda: hooks.append("closed"))
    r = Running(d)
    try:
        sub.wait(lambda: d.latest_frame() is not None, what="a frame")
        rgb, ts, seq = d.latest_frame()
        assert rgb.ndim == 3 and seq >= 1 and abs(ts - time.time()) < 5
        d.publish_event("sample_captured", label="3", path="x.jpg")
        sub.wait(lambda: [e for e in sub.json_on(f"{BASE}/event") if e["type"] == "sample_captured"
                          and e["label"] == "3"], what="plugin event")
        command(broker.port, "hello", b'{"id": 1, "who": "pi"}')
        assert result(sub, "hello", 1) == {"id": 1, "ok": True, "data": {"hello": "pi"}, "error": None}
        command(broker.port, "hello", b'{"id": 2, "fail": true}')
        assert result(sub, "hello", 2)["error"] == "asked to fail"
        st = sub.wait(lambda: [s for s in sub.json_on(f"{BASE}/stats") if "samples_per_label" in s],
                      what="provider stats")[-1]
        assert st["samples_per_label"] == {"3": 2}
        new = Classifier(load_package(model_dir()), "fp32", 1)
        d.swap_classifier(new)
        assert d.classifier is new
    finally:
        r.stop()
    assert hooks == ["closed"]
    sub.wait(lambda: sub.on(f"{BASE}/availability")[-1:] == [b"offline"], what="offline on stop")
    sub.close()


def test_a_slow_command_does_not_hold_up_the_others(broker, tmp_path: Path) -> None:
    sub = Collector(broker.port, [f"{BASE}/#"])
    d = Daemon(daemon_cfg(broker.port, tmp_path))
    release = threading.Event()
    d.register_command("slow", lambda body: {"released": release.wait(20)}, slow=True)
    r = Running(d)
    try:
        sub.wait(lambda: sub.on(f"{BASE}/availability")[-1:] == [b"online"], what="online")
        command(broker.port, "slow", b'{"id": "s"}')
        command(broker.port, "status", b'{"id": "q"}')
        assert result(sub, "status", "q")["ok"] is True
        assert not [m for m in sub.json_on(f"{BASE}/cmd/slow/result")], "slow answered before release"
        release.set()
        assert result(sub, "slow", "s")["data"] == {"released": True}
    finally:
        release.set()
        r.stop()
        sub.close()


def test_a_camera_that_cannot_open_is_reported_and_retried(broker, tmp_path: Path) -> None:
    sub = Collector(broker.port, [f"{BASE}/#"])
    d = Daemon(daemon_cfg(broker.port, tmp_path, camera={"source": f"replay:{tmp_path}/missing"}))
    r = Running(d)
    try:
        errs = sub.wait(lambda: [e for e in sub.json_on(f"{BASE}/event") if e["type"] == "error"],
                        what="error event")
        assert errs[0]["error"] == "camera_open_failed" and "missing" in errs[0]["message"]
        st = sub.wait(lambda: [s for s in sub.json_on(f"{BASE}/stats") if s["camera"]["open_failures"] >= 2],
                      what="retries in stats")[-1]
        assert st["camera"]["error"]
        assert r.t.is_alive()
    finally:
        r.stop()
        sub.close()


def test_shutdown_lets_a_stats_report_in_progress_finish_first(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # The sample store is closed by a shutdown hook; a stats report reading it must not see it closed.
    d = Daemon(daemon_cfg(1, tmp_path), mqtt_enabled=False)
    closed, reporting = threading.Event(), threading.Event()

    def provider() -> dict:
        reporting.set()
        time.sleep(0.2)
        if closed.is_set():
            raise RuntimeError("read after close")
        return {}

    d.add_stats_provider(provider)
    d.add_shutdown_hook(closed.set)
    runner = threading.Thread(target=d.run, kwargs={"duration": 30})
    runner.start()
    assert reporting.wait(10)  # the first report comes 2 s after start
    d.stop_event.set()
    runner.join(10)
    assert not runner.is_alive() and closed.is_set()
    assert "stats provider failed" not in caplog.text


def test_a_command_no_reply_could_carry_does_not_stop_the_commands_behind_it(running, broker) -> None:
    # NaN, Infinity and 1e400 are not JSON: the reply is refused, and the command thread lives on.
    r, sub = running
    sub.wait(lambda: sub.on(f"{BASE}/prediction"), what="first prediction")
    command(broker.port, "status", b'{"id": NaN}', b'{"id": Infinity}', b'{"id": 1e400}', b'{"id": 1, "x": NaN}')
    refused = sub.wait(lambda: (lambda m: m if len(m) == 4 else None)(
        [m for m in sub.json_on(f"{BASE}/cmd/status/result") if not m["ok"]]), what="four refusals")
    assert all("not a JSON number" in m["error"] or "out of range" in m["error"] for m in refused), refused
    command(broker.port, "pause", b'{"id": "after"}')
    assert result(sub, "pause", "after")["ok"] is True and r.d.paused.is_set()


def test_retained_and_empty_commands_are_not_run(broker, tmp_path: Path) -> None:
    # A retained pause would pause every start; clearing it (an empty retained payload) must not
    # pause either. Only a live JSON command runs.
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.publish(f"{BASE}/cmd/pause", b'{"id": "kept"}', qos=1, retain=True).wait_for_publish(5)
    sub = Collector(broker.port, [f"{BASE}/#"])
    r = Running(Daemon(daemon_cfg(broker.port, tmp_path)))
    try:
        sub.wait(lambda: len(sub.on(f"{BASE}/prediction")) >= 3, what="predictions")
        c.publish(f"{BASE}/cmd/pause", b"", qos=1, retain=True).wait_for_publish(5)  # the clear
        command(broker.port, "status", b'{"id": "s"}')
        assert result(sub, "status", "s")["data"]["paused"] is False
        assert not r.d.paused.is_set()
        assert not [m for m in sub.json_on(f"{BASE}/cmd/pause/result")], "a retained or empty pause ran"
        command(broker.port, "pause", b'{"id": "live"}')
        assert result(sub, "pause", "live")["ok"] is True and r.d.paused.is_set()
    finally:
        r.stop()
        sub.close()
        c.loop_stop()
        c.disconnect()


def test_a_busy_refusal_carries_the_request_id(broker, tmp_path: Path) -> None:
    from edge.daemon import COMMAND_QUEUE

    sub = Collector(broker.port, [f"{BASE}/cmd/#"])
    d = Daemon(daemon_cfg(broker.port, tmp_path))
    d.link.start()  # the link only: no command thread drains the queue
    try:
        assert d.link.wait_connected(5)
        command(broker.port, "status", *(json.dumps({"id": f"q{i}"}).encode() for i in range(COMMAND_QUEUE + 1)))
        busy = result(sub, "status", f"q{COMMAND_QUEUE}")
        assert busy["ok"] is False and busy["error"].startswith("busy")
    finally:
        d.link.stop()
        sub.close()


def test_a_camera_password_is_not_published_or_logged(broker, tmp_path: Path, caplog) -> None:
    # The README's own example source is opencv:rtsp://user:pass@…: the retained stats, the
    # error events and the log reached everyone with the URL as it was typed.
    secret = "CamPass99"
    src = f"opencv:rtsp://camuser:{secret}@127.0.0.1:1/stream"  # refused at once: errors follow
    sub = Collector(broker.port, [f"{BASE}/#"])
    with caplog.at_level(logging.INFO):
        r = Running(Daemon(daemon_cfg(broker.port, tmp_path, camera={"source": src})))
        try:
            sub.wait(lambda: [e for e in sub.json_on(f"{BASE}/event") if e["type"] == "error"], 20, "a camera error")
            sub.wait(lambda: sub.json_on(f"{BASE}/stats"), 20, "stats")
            assert r.d.stats()["camera"]["source"] == "opencv:rtsp://camuser:***@127.0.0.1:1/stream"
        finally:
            r.stop()
            sub.close()
    published = b"".join(m for _, m, _ in sub.msgs)
    assert b"camuser:***@" in published and secret.encode() not in published
    assert "camuser:***@" in caplog.text and secret not in caplog.text
    assert secret not in dump_config(r.d.cfg)


@pytest.mark.parametrize("source, shown", [
    ("opencv:rtsp://admin:p@ss#1@cam:554/s", "opencv:rtsp://admin:***@cam:554/s"),  # "@" in the password
    ("opencv:rtsp://cam/s?user=admin&password=QSECRET", "opencv:rtsp://cam/s?user=***&password=***"),
    ("opencv:http://cam/mjpg?channel=1&apikey=zz", "opencv:http://cam/mjpg?channel=1&apikey=***"),
    ("opencv:http://USERONLYTOKEN@cam/mjpg", "opencv:http://***@cam/mjpg"),
    ("opencv:0", "opencv:0"), ("replay:tests/data/hands@15", "replay:tests/data/hands@15"),
    # not URLs, or a replay's @FPS: left as they are
    ("replay:/data/hands?author=me@8", "replay:/data/hands?author=me@8"),
    ("replay:/data/design;monkey=1/", "replay:/data/design;monkey=1/"),
    ("replay:http://host/clip.mp4@8", "replay:http://host/clip.mp4@8"),
    ("replay:http://host@8", "replay:http://host@8"),
])
def test_camera_credentials_are_masked_in_every_form(source: str, shown: str) -> None:
    assert redact(source) == shown


def test_a_reload_built_from_a_model_since_replaced_is_not_swapped_in(tmp_path: Path) -> None:
    # a retrain, rollback or head reload builds its classifier from the one running; a
    # set_model landing meanwhile must stand
    d = Daemon(daemon_cfg(1, tmp_path), mqtt_enabled=False)
    seen: list[str] = []
    d.add_swap_hook(lambda new: seen.append(new.model_id))
    old = d.classifier
    chosen = Classifier(load_package(model_dir()), "fp32", 1)
    assert d.swap_classifier(chosen) and d.classifier is chosen
    reload = Classifier(load_package(model_dir()), "int8", 1)
    assert d.swap_classifier(reload, replacing=old) is False and d.classifier is chosen
    assert d.swap_classifier(reload, replacing=chosen) and d.classifier is reload
    assert seen == [chosen.model_id, reload.model_id]


def test_set_model_can_go_back_to_a_configured_model_given_as_a_path(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS / "digits-cnn", models / "digits-cnn")
    d = Daemon(daemon_cfg(1, tmp_path, models_dir=str(models), model={"name": str(model_dir())}),
               mqtt_enabled=False)
    assert d.execute("set_model", b'{"name": "digits-cnn"}')["ok"]
    back = d.execute("set_model", json.dumps({"name": str(model_dir())}).encode())
    assert back["ok"] and d.classifier.package.root == model_dir(), back
