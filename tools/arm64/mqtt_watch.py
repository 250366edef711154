"""A subscriber on the host that keeps every message the board's daemon publishes."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt


class Watch:
    def __init__(self, host: str, port: int, topic: str):
        self.host, self.port, self.topic = host, port, topic
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fingercount-arm64-watch")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, _ud: object, _flags: object, rc: object,
                    _props: object = None) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: mqtt.Client, _ud: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def start(self, timeout: float = 10.0) -> None:
        """Connected and subscribed before the daemon starts: nothing it sends is missed."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self._client.loop_stop()
            raise RuntimeError(f"no subscription at {self.host}:{self.port} within {timeout:.0f} s")

    def stop(self) -> list[tuple[str, bytes]]:
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            return list(self.messages)
