"""1,000 fuzzed commands: each answered (ok or refused with a reason); daemon alive; RSS flat."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil

from tests.faults.harness import Watcher, changing_replay

N = 1000
NAMES = ["status", "pause", "resume", "set_model", "capture", "set_label", "retrain", "rollback",
         "bogus", "x" * 60, "STATUS", "__init__", "status\u00e9", "ca pture"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth if depth % 2 else '{"a":' * depth + "1" + "}" * depth


def payload(rng: random.Random, i: int) -> bytes:
    kind = i % 10
    if kind == 0:
        return rng.randbytes(rng.randint(0, 300))
    if kind == 1:
        return b"{" * rng.randint(1, 50_000)  # unbalanced nesting
    if kind == 2:
        return nested(rng.randint(500, 100_000)).encode()
    if kind == 3:
        return json.dumps({"id": i, "label": rng.choice([None, 3, [], {}, True, "x" * 5000, "\0"]),
                           "name": rng.choice([1, None, "../../etc", "fingers-cnn"]),
                           "precision": rng.choice(["int4", 8, None])}).encode()
    if kind == 4:
        return b"x" * rng.choice([5000, 70_000, 1_500_000])  # oversized
    if kind == 5:
        return json.dumps(rng.choice([[1, 2], "str", 3.5, None, True])).encode()
    if kind == 6:
        return json.dumps({"id": {"nested": i}}).encode()
    if kind == 7:
        return json.dumps({"id": i, "force": "yes", "extra": list(range(50))}).encode()
    if kind == 8:
        return "\ud800".encode("utf-8", "surrogatepass") + b'{"id": 1}'
    return json.dumps({"id": i}).encode()  # well formed: answered by known, refused by unknown


def test_fuzzed_commands_are_all_answered(tmp_path: Path, broker, daemon_factory) -> None:
    device = "fuzz"
    w = Watcher(broker.port, device).start()
    replay = changing_replay(tmp_path / "replay", hold=2, per_label=1)
    d = daemon_factory(broker.port, f"replay:{replay}@10", device=device).start()
    d.wait_ready(60)
    proc = psutil.Process(d.proc.pid)
    rng = random.Random(1234)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzzer")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    base = f"fingercount/{device}/cmd"
    sent: list[str] = []
    rss_after_warmup = rss_200 = 0.0
    t0 = time.monotonic()
    for i in range(N):
        # Only malformed retrain/rollback/capture: a valid one would train or write samples.
        name = rng.choice(NAMES)
        data = payload(rng, i)
        if name in ("retrain", "rollback", "capture", "set_label") and i % 10 == 9:
            data = b"[1]"
        if name == "pause" and i % 10 == 9:
            name = "resume"
        pub.publish(f"{base}/{name}", data, qos=1).wait_for_publish(10)
        sent.append(name)
        if i % 50 == 49:  # do not outrun the daemon's bounded command queue
            w.wait(lambda: len([m for m in w.msgs if m.topic.endswith("/result")]) >= len(sent) - 20,
                   60, f"results for {len(sent)} commands")
        if i == 199:
            rss_200 = proc.memory_info().rss / 2**20
        if i == 499:  # by now every kind of payload (1.5 MB ones too) has been seen
            rss_after_warmup = proc.memory_info().rss / 2**20
    pub.publish(f"{base}/resume", b"{}", qos=1).wait_for_publish(10)
    results = w.wait(lambda: (r := [m for m in w.msgs if m.topic.endswith("/result")])
                     and len(r) >= N + 1 and r, 120, f"{N + 1} results")
    elapsed = time.monotonic() - t0
    rss_end = proc.memory_info().rss / 2**20
    answers = [m.json() for m in results]
    ok = sum(1 for a in answers if a["ok"] is True)
    refused = [a for a in answers if a["ok"] is False]
    print(f"{len(answers)} results in {elapsed:.1f} s: {ok} ok, {len(refused)} refused; "
          f"RSS {rss_200:.1f} (200) -> {rss_after_warmup:.1f} (500) -> {rss_end:.1f} MB (1000)")
    assert len(answers) == N + 1
    assert all(isinstance(a["error"], str) and a["error"] for a in refused)
    assert ok >= 20 and len(refused) >= 500
    reasons = " | ".join(a["error"] for a in refused)
    for why in ("too large", "not valid JSON", "unknown command", "must be a JSON object"):
        assert why in reasons, why
    # Results go to the topic of the command they answer.
    assert sorted({m.topic.rsplit("/", 2)[-2] for m in results}) == sorted(set(sent))
    assert d.alive(), d.tail()
    assert rss_end - rss_after_warmup < 5, "RSS kept growing under fuzzing"
    t_check = time.monotonic()
    w.wait(lambda: w.on("prediction", t_check), 10, "predictions after the fuzzing")
    assert d.stop() == 0, d.tail()
    pub.loop_stop()
    w.stop()
