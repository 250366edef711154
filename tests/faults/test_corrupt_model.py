"""set_model with corrupt model files: refused with a reason; the old model keeps serving."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from tests.faults.harness import Watcher, changing_replay, model_dir


def corrupt_models(dest: Path) -> tuple[Path, dict[str, str]]:
    """A models dir with the good package and broken copies of it; name -> what is wrong."""
    good = model_dir()
    dest.mkdir()
    shutil.copytree(good, dest / good.name)
    meta = json.loads((good / "model.json").read_text())
    tfl = meta["variants"]["int8"]["file"]
    broken: dict[str, str] = {}

    def variant(name: str, why: str, data: bytes, fix_sha: bool) -> None:
        pkg = dest / name
        shutil.copytree(good, pkg)
        (pkg / tfl).write_bytes(data)
        m = json.loads(json.dumps(meta))
        m["name"] = name
        if fix_sha:  # model.json agrees with the file: only the flatbuffer check can catch it
            m["variants"]["int8"]["sha256"] = hashlib.sha256(data).hexdigest()
            m["variants"]["int8"]["bytes"] = len(data)
        (pkg / "model.json").write_text(json.dumps(m))
        broken[name] = why

    raw = (good / tfl).read_bytes()
    flipped = bytearray(raw)
    for i in range(64, len(flipped), max(1, len(flipped) // 50)):
        flipped[i] ^= 0xFF
    variant("bitflip", "sha256", bytes(flipped), fix_sha=False)
    variant("truncated", "truncated", raw[: len(raw) // 3], fix_sha=True)
    variant("garbage", "garbage", b"\x00TFL3" + bytes(range(256)) * 40, fix_sha=True)
    variant("empty", "empty", b"", fix_sha=True)
    pkg = dest / "badjson"
    shutil.copytree(good, pkg)
    (pkg / "model.json").write_text('{"name": "badjson", "labels": ')
    broken["badjson"] = "model.json"
    shutil.copytree(good, dest / "missing")
    (dest / "missing" / tfl).unlink()
    broken["missing"] = "missing"
    return dest, broken


def test_corrupt_models_are_refused_and_the_old_one_keeps_serving(tmp_path: Path, broker,
                                                                  daemon_factory) -> None:
    device = "corrupt"
    models, broken = corrupt_models(tmp_path / "models")
    w = Watcher(broker.port, device).start()
    replay = changing_replay(tmp_path / "replay", hold=2, per_label=1)
    d = daemon_factory(broker.port, f"replay:{replay}@10", device=device,
                       env={"FINGERCOUNT_MODELS_DIR": str(models)}).start()
    d.wait_ready(60)
    first = w.wait(lambda: w.on("prediction"), 10, "a prediction")[0].json()["model"]
    assert first.startswith(model_dir().name + "@") and first.endswith("/int8")

    pub = w.client
    for i, name in enumerate(broken):
        pub.publish(f"fingercount/{device}/cmd/set_model",
                    json.dumps({"id": i, "name": name, "precision": "int8"}), qos=1)
    pub.publish(f"fingercount/{device}/cmd/set_model",
                json.dumps({"id": "path", "name": str(models / "garbage"), "precision": "int8"}), qos=1)
    results = w.wait(lambda: len(r := w.on("cmd/set_model/result")) >= len(broken) + 1 and r,
                     60, "set_model results")
    answers = {m.json()["id"]: m.json() for m in results}
    for i, name in enumerate(broken):
        a = answers[i]
        assert a["ok"] is False and a["error"], (name, a)
        assert "internal error" not in a["error"], (name, a["error"])
        print(f"{name:10s} -> {a['error'][:110]}")
    assert answers["path"]["ok"] is False
    assert not w.events("model_swapped")

    t = time.monotonic()
    later = w.wait(lambda: [m for m in w.on("prediction", t)][:5] if len(w.on("prediction", t)) >= 5
                   else None, 15, "predictions after the refusals")
    assert {m.json()["model"] for m in later} == {first}, "the served model changed"
    assert d.alive(), d.tail()
    assert d.stop() == 0, d.tail()
    w.stop()
