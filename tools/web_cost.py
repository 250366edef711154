"""What one live-view viewer costs the daemon: CPU (% of one core) and RSS, with and without a
viewer, in the same run.

    python tools/web_cost.py [--seconds 20] [--size 640x480] [--fps 30] [--model fingers-cnn]

Starts `fingercount run --web` on the replay camera (no broker) over the hand photos scaled to
--size (a camera's frame, not the 100x100 photos: the live view scales and encodes what the
camera gives), measures the daemon process for
--seconds with no viewer, then with one viewer reading /video (at web.fps, default 5), then with
none again, and prints one JSON record (also the daemon's own count of JPEGs made in each phase).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import psutil  # type: ignore[import-untyped]  # the test extra; no type stubs

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(base: str, csrf: str) -> dict:
    req = urllib.request.Request(base + "/api/status", data=b"{}", method="POST",
                                 headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["data"]


def thread_cpu(proc: psutil.Process, ids: set[int]) -> float:
    return sum(t.user_time + t.system_time for t in proc.threads() if t.id in ids)


def measure(proc: psutil.Process, seconds: float, web_ids: set[int]) -> dict:
    """The whole process's CPU (noisy on a shared machine) and the web threads' own CPU (the
    encoder and the server's loop: what a viewer adds, whatever else the machine does)."""
    t0, c0, w0 = time.monotonic(), proc.cpu_times(), thread_cpu(proc, web_ids)
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(proc.memory_info().rss / 2**20)
        time.sleep(0.5)
    c1, w1, t1 = proc.cpu_times(), thread_cpu(proc, web_ids), time.monotonic()
    cpu = (c1.user + c1.system - c0.user - c0.system) / (t1 - t0) * 100
    return {"cpu_pct_of_one_core": round(cpu, 1), "web_threads_cpu_pct": round((w1 - w0) / (t1 - t0) * 100, 2),
            "rss_mb_mean": round(sum(rss) / len(rss), 1), "rss_mb_max": round(max(rss), 1)}


def watch(port: int, stop: threading.Event, got: list[int]) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /video HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.settimeout(0.5)
    while not stop.is_set():
        try:
            chunk = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not chunk:
            break
        got[0] += chunk.count(b"Content-Type: image/jpeg")
    s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", default="640x480", help="frame size WxH the replay camera delivers")
    ap.add_argument("--fps", type=float, default=30, help="frames per second of the replay camera")
    ap.add_argument("--model", default="fingers-cnn")
    ap.add_argument("--json", help="also write the record here")
    a = ap.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).parent / "fingercount"
    w, h = (int(v) for v in a.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as state:
        frames = Path(state) / "frames"
        for i, src in enumerate(sorted((ROOT / "tests/data/hands").glob("*/*.JPG"))):
            frames.mkdir(exist_ok=True)
            img = cv2.imread(str(src))
            if img is None:
                continue
            cv2.imwrite(str(frames / f"{i:04d}.png"), cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC))
        camera = f"replay:{frames}@{a.fps:g}"
        p = subprocess.Popen([str(exe), "run", "--camera", camera, "--model", a.model, "--mqtt", "none",
                              "--web", str(port), "--state-dir", str(Path(state) / "state")], env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(base + "/api/csrf", timeout=2) as r:
                        csrf = json.loads(r.read())["csrf"]
                    break
                except OSError:
                    if time.monotonic() > deadline or p.poll() is not None:
                        raise SystemExit("the daemon did not start") from None
                    time.sleep(0.3)
            proc = psutil.Process(p.pid)
            time.sleep(5)  # warm up: model loaded, first frames counted
            out: dict = {"camera": f"replay of tests/data/hands at {w}x{h}, {a.fps:g} fps", "model": a.model, "seconds": a.seconds}
            phases = []
            for name, viewer in (("no_viewer", False), ("one_viewer", True), ("no_viewer_after", False)):
                enc0 = status(base, csrf)["web"]["jpeg_encoded"]
                stop, got = threading.Event(), [0]
                t = threading.Thread(target=watch, args=(port, stop, got))
                if viewer:
                    t.start()
                    time.sleep(1)
                web_ids = set(status(base, csrf)["web"]["threads"].values())
                m = measure(proc, a.seconds, web_ids)
                st = status(base, csrf)
                if viewer:
                    stop.set()
                    t.join(5)
                    time.sleep(1)
                m.update(jpeg_encoded=st["web"]["jpeg_encoded"] - enc0, frames_received=got[0], fps=st["fps"])
                out[name] = m
                phases.append(m)
            out["viewer_cost_cpu_pct"] = round(out["one_viewer"]["cpu_pct_of_one_core"]
                                               - out["no_viewer"]["cpu_pct_of_one_core"], 1)
            out["viewer_cost_web_threads_cpu_pct"] = round(out["one_viewer"]["web_threads_cpu_pct"]
                                                           - out["no_viewer"]["web_threads_cpu_pct"], 2)
            out["viewer_cost_rss_mb"] = round(out["one_viewer"]["rss_mb_max"] - out["no_viewer"]["rss_mb_max"], 1)
        finally:
            p.terminate()
            p.wait(10)
    print(json.dumps(out, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
