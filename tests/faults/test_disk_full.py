"""Capture onto a full disk: refused with a reason, classification continues, no partial files.

The state dir is a 3 MB tmpfs mounted by the test (it runs as root here). Where mount is not
permitted, the daemon gets RLIMIT_FSIZE instead, a real EFBIG from the kernel (the store
treats it like ENOSPC); the test says which one it used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import fill_filesystem, mount_tmpfs, umount
from tests.faults.harness import ROOT, Watcher, changing_replay


def samples(state: Path) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "edge", "samples", "list", "--json",
                          "--state-dir", str(state)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={k: v for k, v in os.environ.items()
                                          if not k.startswith("FINGERCOUNT_")})
    assert out.returncode == 0, out.stderr
    return [json.loads(ln) for ln in out.stdout.splitlines() if ln.strip()]  # JSON lines


def capture(w: Watcher, device: str, cid: int, label: str = "3") -> dict:
    w.client.publish(f"fingercount/{device}/cmd/capture", json.dumps({"id": cid, "label": label}), qos=1)
    res = w.wait(lambda: [m.json() for m in w.on("cmd/capture/result") if m.json()["id"] == cid],
                 20, f"capture result {cid}")
    return res[0]


def test_capture_on_full_disk(tmp_path: Path, broker, daemon_factory) -> None:
    device = "diskfull"
    w = Watcher(broker.port, device).start()
    replay = changing_replay(tmp_path / "replay", hold=2, per_label=1)
    # the disk itself refuses here (samples.min_free_mb would refuse long before on 3 MB)
    d = daemon_factory(broker.port, f"replay:{replay}@10", device=device,
                       env={"FINGERCOUNT_SAMPLES__MIN_FREE_MB": "0"})
    tmpfs = mount_tmpfs(d.state, "3m")
    try:
        d.start()
        d.wait_ready(60)
        how = "tmpfs of 3 MB"
        if not tmpfs:
            how = "RLIMIT_FSIZE (mount not permitted)"
        first = capture(w, device, 1)
        assert first["ok"], first
        if tmpfs:
            fill_filesystem(d.state)
        else:
            psutil.Process(d.proc.pid).rlimit(psutil.RLIMIT_FSIZE, (1, 1))
        refused = [capture(w, device, 2 + i) for i in range(3)]
        print(f"ENOSPC via {how}: " + refused[0].get("error", ""))
        for r in refused:
            assert r["ok"] is False and ("disk full" in r["error"] or "quota" in r["error"]
                                         or "too large" in r["error"]), r
        t = time.monotonic()
        w.wait(lambda: len(w.on("prediction", t)) >= 5, 15, "predictions on a full disk")
        assert d.alive(), d.tail()
        assert d.stop() == 0, d.tail()
        # Nothing partial: the only sample files are the indexed, complete ones.
        files = sorted(p for p in (d.state / "samples").rglob("*") if p.is_file())
        listed = samples(d.state)
        assert len(files) == len(listed) == 1, (files, listed)
        assert files[0].suffix == ".jpg" and files[0].read_bytes()[-2:] == b"\xff\xd9"
    finally:
        d.close()
        if tmpfs:
            umount(d.state)
    w.stop()
