"""fingercount check-config: print the effective configuration (every default resolved), then
try what `run` will open, one line per check: the model, the camera (one frame), the broker
(name, connection, login) and the state dir. Exit 0 only when `run` would work."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import Config, dump_config
from edge.errors import FingercountError

OK, FAIL = "✓", "✗"
DEFAULT_TIMEOUT_S = 5.0


class CheckFailed(Exception):
    """A check that did not pass; its text is the line's reason."""


def _within(timeout: float, fn: Callable[[], Any], what: str) -> Any:
    """fn() in a helper thread; CheckFailed when it takes longer than timeout (a camera or a
    DNS lookup can block for minutes; the thread is left behind, the process exits anyway)."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # reported by the caller's thread
            box["error"] = e

    t = threading.Thread(target=call, name=f"check-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise CheckFailed(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def check_model(cfg: Config, timeout: float) -> str:
    from edge.runtime.loader import open_classifier

    models_dir = cfg.resolved_models_dir()
    if not models_dir.is_dir() and not Path(cfg.model.name).exists():
        raise CheckFailed(f"models_dir {models_dir} does not exist")
    try:
        clf = open_classifier(cfg)
    except FingercountError as e:
        raise CheckFailed(str(e)) from None
    note = f" (its retrained head is not used: {clf.head_problem})" if clf.head_problem else ""
    from edge.counting import HandCounter

    if isinstance(clf, HandCounter):
        h = cfg.hands
        return (f"{clf.model_id} loads and matches its checksums, behind the hand stage "
                f"({h.palm} + {h.landmark}, {h.precision}){note}")
    i = clf.package.input
    return f"{clf.model_id} loads and matches its checksums, input {i.height}x{i.width}x{i.channels}{note}"


def check_web(cfg: Config, timeout: float) -> str:
    """The web page's settings: off, or an address, its password file and aiohttp."""
    import importlib.util

    if cfg.web.listen is None:
        return "off (run --web HOST:PORT or web.listen turns it on)"
    try:
        cfg.web.password()
    except FingercountError as e:
        raise CheckFailed(str(e)) from None
    if importlib.util.find_spec("aiohttp") is None:
        raise CheckFailed("the web page needs aiohttp (pip install 'fingercount[edge]')")
    return f"will listen on {cfg.web.listen}"


def _camera_problems(kind: str, target: str) -> str:
    """What stops the camera from opening that can be seen without opening it ('' if nothing)."""
    import importlib.util

    if kind == "picamera2" and importlib.util.find_spec("picamera2") is None:
        return ("picamera2: the picamera2 module is not installed (Raspberry Pi OS: apt install "
                "python3-picamera2, in a venv made with --system-site-packages)")
    if kind == "opencv":
        dev = f"/dev/video{target}" if target.isdigit() else target
        if dev.startswith("/dev/") and not Path(dev).exists():
            return f"{dev} does not exist (is the camera plugged in?)"
    if kind == "replay" and not Path(target).exists():
        return f"{target} does not exist"
    return ""


def check_camera(cfg: Config, timeout: float) -> str:
    from edge.camera import open_source, parse_spec
    from edge.redact import redact

    c = cfg.camera
    name = redact(c.source)
    try:
        kind, target, _ = parse_spec(c.source)
        seen = _camera_problems(kind, target)
        if seen:  # the reason is plainer than whatever opening it would say
            raise CheckFailed(seen)
        src = open_source(c.source, c.width, c.height, c.fps)
    except FingercountError as e:
        raise CheckFailed(str(e)) from None

    def one_frame() -> Any:
        src.open()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                f = src.read()
                if f is not None:
                    return f
                time.sleep(0.02)
            return None
        finally:
            src.close()

    t0 = time.monotonic()
    try:
        frame = _within(timeout, one_frame, "camera")
    except CheckFailed as e:
        raise CheckFailed(f"{name}: {e}") from None
    except Exception as e:  # whatever the backend raises: the reason, on one line
        raise CheckFailed(f"{name}: {redact(str(e)) or type(e).__name__}") from None
    if frame is None:
        raise CheckFailed(f"{name}: opened, but no frame within {timeout:g} s")
    return (f"{name} gave a {frame.shape[1]}x{frame.shape[0]} frame in "
            f"{time.monotonic() - t0:.2f} s")


def check_mqtt(cfg: Config, timeout: float, enabled: bool) -> str:
    m = cfg.mqtt
    if not enabled:
        return "none (run without a broker)"
    try:
        cfg.check_mqtt_files()
    except FingercountError as e:
        raise CheckFailed(str(e)) from None
    if m.host == "embedded":
        return _check_embedded(m.port)
    where = f"{m.host}:{m.port}"
    try:
        addrs = _within(timeout, lambda: socket.getaddrinfo(m.host, m.port, type=socket.SOCK_STREAM),
                        "dns")
    except CheckFailed as e:
        raise CheckFailed(f"{where}: name lookup: {e}") from None
    except OSError as e:
        raise CheckFailed(f"{where}: the name does not resolve ({e.strerror or e})") from None
    ip = addrs[0][4][0]
    _mqtt_login(cfg, timeout, where)
    return f"{where} ({ip}) accepted a connection" + (f" as {m.username}" if m.username else "") + \
        (" over TLS" if m.tls.enabled else "")


def _check_embedded(port: int) -> str:
    import importlib.util

    if importlib.util.find_spec("amqtt") is None:
        raise CheckFailed("embedded: the amqtt module is not installed (pip install -e '.[demo]')")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise CheckFailed(f"embedded: 127.0.0.1:{port} is taken ({e.strerror}); another "
                              "broker runs there: --mqtt localhost uses it") from None
    return f"embedded broker can listen on 127.0.0.1:{port}"


def _mqtt_login(cfg: Config, timeout: float, where: str) -> None:
    """Connect and wait for the broker's CONNACK: address, port, TLS and login in one go."""
    import ssl

    import paho.mqtt.client as mqtt

    from edge.mqtt import set_tls

    m = cfg.mqtt
    # Not the daemon's client id: the broker would disconnect a running daemon that has it.
    # No last will either: this visit must not tell anyone the device went offline.
    cid = f"{m.client_id or f'fingercount-{cfg.device_id}'}-check"[:256]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    if m.username is not None:
        c.username_pw_set(m.username, cfg.mqtt_password())
    try:
        set_tls(c, m.tls)
    except FingercountError as e:
        raise CheckFailed(str(e)) from None
    c.connect_timeout = timeout
    answer: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer["reason"] = reason
        done.set()

    c.on_connect = on_connect
    try:
        c.connect(m.host, m.port, keepalive=max(5, int(timeout) + 5))
    except (OSError, ssl.SSLError) as e:
        raise CheckFailed(f"{where}: cannot connect ({getattr(e, 'strerror', None) or e})") from None
    c.loop_start()
    try:
        if not done.wait(timeout):
            raise CheckFailed(f"{where}: connected, but no MQTT answer within {timeout:g} s")
        reason = answer["reason"]
        if getattr(reason, "is_failure", False):
            raise CheckFailed(f"{where}: the broker refused the login ({reason})")
    finally:
        c.disconnect()
        c.loop_stop()


def check_state_dir(cfg: Config, timeout: float) -> str:
    d = Path(cfg.state_dir)
    existing = d
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if d.exists():
            if not d.is_dir():
                raise CheckFailed(f"{d} is not a directory")
            with tempfile.NamedTemporaryFile(dir=d, prefix=".check-"):
                pass
            return f"{d} is writable"
    except OSError as e:
        raise CheckFailed(f"{d}: cannot write there ({e.strerror or e})") from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CheckFailed(f"{d} does not exist and cannot be made ({existing} is not writable)")
    return f"{d} does not exist yet; run will create it (in {existing}, writable)"


def run_checks(cfg: Config, timeout: float, mqtt_enabled: bool = True
               ) -> list[tuple[str, bool, str]]:
    """(name, passed, what it found) for each thing `run` opens."""
    checks: list[tuple[str, Callable[[], str]]] = [
        ("model", lambda: check_model(cfg, timeout)),
        ("camera", lambda: check_camera(cfg, timeout)),
        ("mqtt", lambda: check_mqtt(cfg, timeout, mqtt_enabled)),
        ("state dir", lambda: check_state_dir(cfg, timeout)),
        ("web", lambda: check_web(cfg, timeout)),
    ]
    out = []
    for name, fn in checks:
        try:
            out.append((name, True, fn()))
        except CheckFailed as e:
            out.append((name, False, str(e)))
    return out


def resolved(cfg: Config) -> Config:
    """The configuration with the defaults that depend on other values filled in."""
    r = cfg.model_copy(deep=True)
    r.models_dir = r.resolved_models_dir()
    if r.mqtt.client_id is None:
        r.mqtt.client_id = f"fingercount-{r.device_id}"
    return r


def main(args: argparse.Namespace, cfg: Config) -> int:
    # load_config already raised ConfigError (naming key and line) if a value was wrong.
    timeout = args.timeout if getattr(args, "timeout", None) else DEFAULT_TIMEOUT_S
    mqtt_enabled = (getattr(args, "mqtt", None) or "").lower() != "none"
    print(dump_config(resolved(cfg)), end="")
    print("checks:", flush=True)
    results = run_checks(cfg, timeout, mqtt_enabled)
    for name, passed, text in results:
        print(f"  {OK if passed else FAIL} {name}: {text}", flush=True)
    failed = [name for name, passed, _ in results if not passed]
    if failed:
        print(f"fingercount: check-config: {len(failed)} of {len(results)} checks failed "
              f"({', '.join(failed)}): `fingercount run` would not work with this configuration",
              file=sys.stderr)
        return 1
    print(f"all {len(results)} checks passed: `fingercount run` has what it needs", flush=True)
    return 0
