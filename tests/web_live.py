"""A real daemon with its web page for the web tests: replay camera, real model, real mosquitto."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any, Optional

import paho.mqtt.client as mqtt

from edge.config import load_config
from edge.daemon import Daemon
from edge.web import start_web
from tests.conftest import HANDS, free_port, wait_until
from tests.test_mqtt import Collector
from tests.test_retrain import models_dir

DEVICE = "w1"
BASE = f"fingercount/{DEVICE}"


class LiveWeb:
    """Daemon + web page in this process (so tests can read its counters), MQTT on a real broker."""

    def __init__(self, state_dir: Path, mqtt_port: int, web: Optional[dict] = None,
                 model: str = "fingers-mobilenet"):
        self.port = free_port()
        self.cfg = load_config(None, {
            "device_id": DEVICE, "state_dir": str(state_dir), "models_dir": str(models_dir()),
            "model": {"name": model, "precision": "int8", "threads": 1},
            "camera": {"source": f"replay:{HANDS}@8"}, "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
            "publish": {"max_hz": 10, "stats_interval_s": 60}, "gpio": {"enabled": False},
            "retrain": {"holdout": 0.34, "max_seconds": 20}, "samples": {"min_free_mb": 0},
            "web": {"listen": f"127.0.0.1:{self.port}", **(web or {})},
        }, environ={})
        self.state_dir = Path(state_dir)
        self.daemon = Daemon(self.cfg)
        self.server = start_web(self.daemon, self.cfg)
        assert self.server is not None
        self.hub = self.server.hub
        self.url = f"http://127.0.0.1:{self.port}"
        self.csrf = self.server.guard.csrf
        self.sub = Collector(mqtt_port, [f"{BASE}/#"])
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"duration": 600}, name="daemon-under-test")
        self.thread.start()
        self.pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.pub.connect("127.0.0.1", mqtt_port, 30)
        self.pub.loop_start()
        assert wait_until(lambda: self.daemon.fstats.frames > 3, 60), "the daemon did not start counting"

    # ---- HTTP ------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | str | dict | None = None,
                headers: Optional[dict] = None, timeout: float = 30) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = json.dumps(body).encode() if isinstance(body, dict) else \
            body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        conn.close()
        return out

    def api(self, name: str, body: Any = None, headers: Optional[dict] = None,
            timeout: float = 60) -> tuple[int, Any]:
        h = {"X-CSRF-Token": self.csrf, "Content-Type": "application/json", **(headers or {})}
        status, _, data = self.request("POST", f"/api/{name}", {} if body is None else body, h, timeout)
        return status, json.loads(data)

    # ---- MQTT ------------------------------------------------------------------------------------
    def mqtt_command(self, name: str, body: dict, timeout: float = 30) -> dict:
        cid = f"{name}-{time.monotonic_ns()}"
        self.pub.publish(f"{BASE}/cmd/{name}", json.dumps({**body, "id": cid}), qos=1)
        return self.sub.wait(lambda: next((r for r in self.sub.json_on(f"{BASE}/cmd/{name}/result")
                                           if r["id"] == cid), None), timeout, f"result of {name}")

    def samples_on_disk(self, label: str) -> list[Path]:
        d = self.state_dir / "samples" / label
        return sorted(d.glob("*.jpg")) if d.is_dir() else []

    def close(self) -> None:
        self.daemon.stop_event.set()
        self.thread.join(30)
        self.pub.loop_stop()
        self.sub.c.loop_stop()
