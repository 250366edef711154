"""The web page's HTTP side against a real daemon (replay camera, real model, real mosquitto):
one command registry for both transports, bad and hostile requests, the live view's cost."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HANDS, ROOT, Broker, free_port, make_broker, wait_until
from tests.web_live import LiveWeb


@pytest.fixture(scope="module")
def broker_m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = make_broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, broker_m: Broker) -> Iterator[LiveWeb]:
    lw = LiveWeb(tmp_path_factory.mktemp("state"), broker_m.port)
    yield lw
    lw.close()


def counting(lw: LiveWeb, frames: int = 3, timeout: float = 10) -> bool:
    n = lw.daemon.fstats.frames
    return bool(wait_until(lambda: lw.daemon.fstats.frames >= n + frames, timeout))


def test_same_command_same_answer_over_both_transports(live: LiveWeb) -> None:
    status, res = live.api("status", {"id": "web-1"})
    assert status == 200 and res["id"] == "web-1" and res["ok"] is True and res["error"] is None
    mq = live.mqtt_command("status", {})
    assert set(res) == set(mq) == {"id", "ok", "data", "error"}
    assert set(res["data"]) == set(mq["data"])  # the same command, whichever way it came
    assert res["data"]["labels"] == ["0", "1", "2", "3", "4", "5"]
    status, res = live.api("set_label", {"label": "4", "id": 7})
    assert (status, res["ok"], res["id"], res["data"]["label"]) == (200, True, 7, "4")
    assert live.mqtt_command("status", {})["data"]["capture_label"] == "4"


def test_bad_requests_get_a_clear_4xx_and_the_daemon_keeps_counting(live: LiveWeb) -> None:
    h = {"X-CSRF-Token": live.csrf}
    cases = [
        ("malformed JSON", "/api/status", b'{"label": ', h, 400, "not valid JSON"),
        ("not an object", "/api/status", b"[1, 2]", h, 400, "JSON object"),
        ("NaN", "/api/status", b'{"x": NaN}', h, 400, "not valid JSON"),
        ("unknown command", "/api/explode", b"{}", h, 404, "unknown command 'explode'"),
        ("path-like command", "/api/..%2fstatus", b"{}", h, 404, "unknown command"),
        ("over max_command_bytes", "/api/status", b'{"pad": "' + b"x" * 5000 + b'"}', h, 413, "max_command_bytes"),
        ("over max_body_bytes", "/api/status", b"x" * 300_000, h, 413, "max_body_bytes"),
        ("unexpected field", "/api/pause", b'{"forever": true}', h, 422, "unexpected field"),
        ("bad label", "/api/set_label", b'{"label": "../../etc"}', h, 422, "label"),
        ("no CSRF token", "/api/pause", b"{}", {}, 403, "CSRF"),
        ("wrong CSRF token", "/api/pause", b"{}", {"X-CSRF-Token": "guess"}, 403, "CSRF"),
        ("cross-site", "/api/pause", b"{}", {**h, "Origin": "http://evil.example"}, 403, "cross-origin"),
        ("cross-site fetch", "/api/pause", b"{}", {**h, "Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"),
        ("DNS rebinding", "/api/csrf", None, {"Host": "evil.example:80"}, 421, "host"),
        ("no such digit image", "/api/digits", b"GIF89a", h, 400, "not a PNG"),
    ]
    for what, path, body, headers, want, text in cases:
        method = "GET" if body is None else "POST"
        status, _, data = live.request(method, path, body, headers)
        assert status == want, (what, status, data[:300])
        assert text.lower() in json.loads(data)["error"].lower(), (what, data[:300])
    assert not live.daemon.paused.is_set()  # none of the refused pauses ran
    assert counting(live)


def test_flood_and_slow_clients_do_not_stall_the_daemon(live: LiveWeb) -> None:
    # many slow clients: half a request line each, and event streams nobody reads
    slow = []
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", live.port))
        s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" if i % 2 else b"POST /api/status HTT")
        slow.append(s)
    results: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(25):
            st, res = live.api("status", {})
            with lock:
                results.append(st)

    captured: list[dict] = []

    def capture() -> None:  # changes in the flood: each one answered ok is on disk
        for _ in range(10):
            st, res = live.api("capture", {"label": "thumb-flood"})
            with lock:
                results.append(st)
                if res["ok"]:
                    captured.append(res["data"])

    frames0 = live.daemon.fstats.frames
    t0 = time.monotonic()
    threads = [threading.Thread(target=hammer) for _ in range(8)] + [threading.Thread(target=capture)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    took = time.monotonic() - t0
    assert len(results) == 210 and set(results) <= {200, 503}, sorted(set(results))
    assert results.count(200) > 0 and captured
    on_disk = live.samples_on_disk("thumb-flood")
    assert sorted(str(p) for p in on_disk) == sorted(c["path"] for c in captured)  # nothing lost
    assert captured[-1]["samples"]["thumb-flood"] == len(on_disk)
    # the daemon counted all along (8 fps camera; allow for a busy 2-core machine)
    assert live.daemon.fstats.frames - frames0 >= max(3, int(took * 8 * 0.3)), (took, live.daemon.fstats.frames - frames0)
    assert live.mqtt_command("status", {})["ok"]  # MQTT still answers
    for s in slow:
        s.close()
    assert counting(live)


def test_no_viewer_no_encoding_and_two_viewers_share_one_encoder(live: LiveWeb) -> None:
    hub = live.hub
    wait_until(lambda: hub.viewers == 0, 5)
    before = hub.encoded
    assert counting(live, frames=8)
    assert hub.encoded == before, "JPEGs were made with nobody watching"

    got = [0, 0]

    def watch(i: int, seconds: float) -> None:
        s = socket.create_connection(("127.0.0.1", live.port))
        s.sendall(b"GET /video HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.settimeout(1.0)
        end, buf = time.monotonic() + seconds, b""
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            buf += chunk
        got[i] = buf.count(b"Content-Type: image/jpeg")
        s.close()

    ts = [threading.Thread(target=watch, args=(i, 4.0)) for i in range(2)]
    start = hub.encoded
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    made = hub.encoded - start
    assert got[0] >= 5 and got[1] >= 5, got
    # one encoder for both: no more JPEGs than one viewer at web.fps needs (5 fps x 4 s)
    assert made <= live.cfg.web.fps * 4 + 3, made
    assert got[0] + got[1] > made, (got, made)
    assert wait_until(lambda: hub.viewers == 0, 5)
    after = hub.encoded
    assert counting(live, frames=8)
    assert hub.encoded <= after + 1  # at most the frame in hand when the last viewer left


def test_model_download_is_a_package_the_commands_accept(live: LiveWeb, tmp_path: Path) -> None:
    """With a retrained head: the archive runs that head under `fingercount run --model` and
    `fingercount-convert evaluate`, and scores a frame exactly as the daemon does."""
    for label in ("1", "4", "1", "4", "1", "4"):
        assert live.api("capture", {"label": label})[1]["ok"]
    st, res = live.api("retrain", {"force": True}, timeout=180)
    assert st == 200 and res["ok"] and res["data"]["swapped"], res
    assert wait_until(lambda: live.daemon.classifier.model_id.endswith("+head"), 10)
    status, headers, data = live.request("GET", "/api/model")
    assert status == 200, data[:300]
    assert headers["content-disposition"] == 'attachment; filename="fingers-mobilenet-w1.tar.gz"'
    archive = tmp_path / "download.tar.gz"
    archive.write_bytes(data)
    with tarfile.open(archive) as t:
        meta = json.loads(t.extractfile("fingers-mobilenet-w1/model.json").read())  # type: ignore[union-attr]
        head = t.extractfile("fingers-mobilenet-w1/head.npz").read()  # type: ignore[union-attr]
    assert meta["retrainable"]["run_head"] is True and meta["name"] == "fingers-mobilenet-w1"
    assert head == live.daemon.classifier.head_path.read_bytes()  # the user's head, not the shipped one

    from edge.runtime.classifier import Classifier
    from edge.runtime.package import resolve_package
    from edge.runtime.preprocess import read_image

    # the archive alone (no state dir) scores as the daemon's package with its state dir's head
    # (new classifiers: the daemon's own belongs to its pipeline thread)
    mine = Classifier(resolve_package(str(archive), tmp_path), "int8", threads=1)
    running = live.daemon.classifier
    pkg = getattr(running, "package", None) or running.classifier.package
    theirs = Classifier(pkg, "int8", threads=1, state_dir=live.state_dir)
    img = read_image(str(sorted((HANDS / "3").iterdir())[0]))
    assert mine.model_id.endswith("+head") and mine.labels == theirs.labels
    assert np.allclose(mine.classify(img)[0], theirs.classify(img)[0], atol=1e-6)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    bin_dir = Path(sys.executable).parent
    run = subprocess.run([str(bin_dir / "fingercount"), "run", "--model", str(archive), "--camera",
                          f"replay:{HANDS}@8", "--mqtt", "none", "--state-dir", str(tmp_path / "other"),
                          "--duration", "3", "--print"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "fingers-mobilenet-w1@" in run.stdout and "+head" in run.stdout, run.stdout
    ev = subprocess.run([str(bin_dir / "fingercount-convert"), "evaluate", str(archive), "--data", str(HANDS),
                         "--precision", "int8"], capture_output=True, text=True, env=env, timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "fingers-mobilenet-w1@" in ev.stdout and "+head" in ev.stdout, ev.stdout


def test_archives_that_leave_their_folder_are_refused(tmp_path: Path) -> None:
    from edge.errors import ModelError
    from edge.runtime.package import resolve_package

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as t:
        for name in ("pkg/model.json", "../outside.txt"):
            ti = tarfile.TarInfo(name)
            ti.size = 2
            t.addfile(ti, io.BytesIO(b"{}"))
    with pytest.raises(ModelError, match="outside the package"):
        resolve_package(str(evil), tmp_path)
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as t:
        ti = tarfile.TarInfo("pkg/model.json")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(ti)
    with pytest.raises(ModelError, match="not a regular file"):
        resolve_package(str(link), tmp_path)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_the_command_line_refuses_an_open_page_without_a_password(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "fingercount"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([str(exe), "run", "--web", "0.0.0.0:8080", "--mqtt", "none", "--duration", "1",
                        "--state-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "web.password_file" in r.stderr and "0.0.0.0:8080" in r.stderr
    with socket.socket() as busy:  # a port in use: one line too
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([str(exe), "run", "--web", str(port), "--mqtt", "none", "--duration", "1",
                            "--camera", f"replay:{HANDS}@8", "--model", "fingers-cnn", "--state-dir", str(tmp_path)],
                           capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "cannot serve the page there" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # and the page is served while `fingercount run --web PORT` runs
    port = free_port()
    p = subprocess.Popen([str(exe), "run", "--web", str(port), "--mqtt", "none", "--duration", "15", "--print",
                          "--camera", f"replay:{HANDS}@8", "--model", "fingers-cnn", "--state-dir", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        def csrf() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /api/csrf HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    return b" 200 " in s.recv(100).split(b"\r\n")[0] + b" "
            except OSError:
                return False
        assert wait_until(csrf, 40, interval=0.2), "no page while the daemon ran"
    finally:
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err[-2000:]
    assert f"web page: http://127.0.0.1:{port}/" in out.splitlines()[:3], out[:500]


def test_password_cookie_basic_and_csrf(tmp_path: Path, broker_m: Broker) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    lw = LiveWeb(tmp_path / "state", broker_m.port, web={"password_file": str(pw)}, model="fingers-cnn")
    try:
        st, h, _ = lw.request("GET", "/")
        assert st == 303 and h["location"] == "/login"
        for path in ("/events", "/video", "/api/model", "/api/csrf"):
            assert lw.request("GET", path)[0] == 401, path
        st, h, body = lw.request("GET", "/api/csrf")
        assert h["www-authenticate"].startswith("Basic") and b"password" in body
        bad = {"Authorization": "Basic " + base64.b64encode(b"u:wrong").decode()}
        good = {"Authorization": "Basic " + base64.b64encode(b"u:correct horse battery").decode()}
        assert lw.request("GET", "/api/csrf", headers=bad)[0] == 401
        assert lw.request("GET", "/api/csrf", headers=good)[0] == 200
        assert lw.api("pause", {}, headers={"Authorization": bad["Authorization"]})[0] == 401
        # the password alone is not enough for a change: the CSRF token too
        st, _, data = lw.request("POST", "/api/pause", b"{}", good)
        assert st == 403 and b"CSRF" in data
        assert lw.api("pause", {}, headers=good)[0] == 200 and lw.daemon.paused.is_set()
        # the login page: a wrong password costs a second, the right one gives a session cookie
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        t0 = time.monotonic()
        st, h, _ = lw.request("POST", "/login", "password=nope", form)
        assert st == 303 and "wrong" in h["location"] and time.monotonic() - t0 >= 0.9
        st, h, _ = lw.request("POST", "/login", "password=correct+horse+battery", form)
        assert st == 303 and h["location"] == "/" and "HttpOnly" in h["set-cookie"]
        cookie = {"Cookie": h["set-cookie"].split(";")[0]}
        st, _, page = lw.request("GET", "/", headers=cookie)
        assert st == 200 and lw.csrf.encode() in page
        assert lw.api("resume", {}, headers=cookie)[0] == 200 and not lw.daemon.paused.is_set()
        assert lw.request("GET", "/", headers={"Cookie": "fc_session=forged"})[0] == 303
    finally:
        lw.close()
