"""MQTT link: availability, reliable publishing through our own outbox, commands in, HA discovery.

One named thread owns the paho client and runs its network loop. Every connection gets a
fresh paho client, so nothing handed to a dead connection is resent by paho behind our back:
the Outbox alone decides what goes out and in which order. QoS 0 traffic (predictions,
stats) is published directly and simply skipped while disconnected.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

import paho.mqtt.client as mqtt

from edge.config import Config
from edge.discovery import Controls, discovery_messages
from edge.embedded_broker import EmbeddedBroker
from edge.errors import ConfigError
from edge.outbox import Message, Outbox

log = logging.getLogger(__name__)

# (command name, payload bytes or None when refused as oversized, payload size)
CommandCallback = Callable[[str, Optional[bytes], int], None]

WINDOW = 50  # QoS 1 messages handed to paho but not yet acknowledged
SHORT_SESSION_S = 5.0  # a connection dropped sooner than this was refused in effect: back off


def valid_topic(topic: str) -> bool:
    """A topic a broker accepts for PUBLISH (MQTT 3.1.1, 4.7): not empty, no wildcards, no
    control characters, at most 65535 bytes of UTF-8."""
    return (bool(topic) and not any(c in topic for c in "#+") and topic.isprintable()
            and len(topic.encode("utf-8", "surrogatepass")) <= 65535)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str).encode()



def set_tls(c: mqtt.Client, tls: Any) -> None:
    """The mqtt.tls settings on a client (the daemon's and check-config's); ConfigError if a
    file cannot be used."""
    if not tls.enabled:
        return
    try:
        c.tls_set(ca_certs=str(tls.ca_file) if tls.ca_file else None,
                  certfile=str(tls.cert_file) if tls.cert_file else None,
                  keyfile=str(tls.key_file) if tls.key_file else None,
                  cert_reqs=ssl.CERT_REQUIRED)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise ConfigError(f"mqtt.tls: {e}") from e
    if tls.insecure:
        c.tls_insecure_set(True)

class MqttLink:
    def __init__(self, cfg: Config, on_command: Optional[CommandCallback] = None,
                 reconnect: tuple[float, float] = (0.5, 15.0)):
        self.cfg = cfg
        m = cfg.mqtt
        self.base = f"{m.base_topic}/{cfg.device_id}"
        self.on_command = on_command
        self.reconnect = reconnect
        self.outbox = Outbox(m.outbox_max, cfg.state_dir / "outbox.sqlite")  # survives restarts
        self.embedded = m.host == "embedded"
        self.host = "127.0.0.1" if self.embedded else m.host
        self.port = m.port
        self.client_id = m.client_id or f"fingercount-{cfg.device_id}"
        cfg.check_mqtt_files()  # ConfigError now, not later in a thread
        self.password = cfg.mqtt_password()
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self._client: Optional[mqtt.Client] = None
        self._thread: Optional[threading.Thread] = None
        self._broker: Optional[EmbeddedBroker] = None
        self._inflight: dict[int, Message] = {}
        self._rediscover = threading.Event()
        # what the daemon offers Home Assistant beyond the count (buttons, label select)
        self.discovery_controls: Callable[[], Controls] = Controls
        self.connects = 0
        self.last_error: Optional[str] = None

    # ---- topics and publishing ---------------------------------------------------------
    def topic(self, name: str) -> str:
        return f"{self.base}/{name}"

    def publish_reliable(self, name: str, payload: Any, retain: bool = False) -> None:
        """QoS 1 through the outbox: survives broker outages (bounded), keeps order."""
        data = payload if isinstance(payload, bytes) else dumps(payload)
        self.outbox.put(Message(self.topic(name), data, 1, retain))

    def publish_reliable_many(self, items: list[tuple[str, Any, bool]]) -> None:
        """(name, payload, retain) in order, durable together: one write to the card."""
        self.outbox.put_many([Message(self.topic(name), p if isinstance(p, bytes) else dumps(p), 1, retain)
                              for name, p, retain in items])

    def publish_now(self, name: str, payload: Any, qos: int = 0, retain: bool = False) -> bool:
        """Best effort, not queued: False when not connected."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        data = payload if isinstance(payload, bytes) else dumps(payload)
        info = client.publish(self.topic(name), data, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def request_discovery(self) -> None:
        self._rediscover.set()
        self.outbox.wakeup.set()

    def stats(self) -> dict[str, Any]:
        self.outbox.check()  # outbox_persistent is true only of a file still at its path
        return {"connected": self.connected.is_set(), "outbox_depth": len(self.outbox),
                "outbox_dropped": self.outbox.dropped, "outbox_persistent": self.outbox.persistent,
                "connects": self.connects,
                "error": None if self.connected.is_set() else self.last_error}

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> MqttLink:
        if self.embedded:
            self._broker = EmbeddedBroker(self.host, self.port).start()
            log.info("embedded MQTT broker on %s:%d", self.host, self.port)
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()
        return self

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, timeout: float = 1.5) -> None:
        """Flush what we can, publish `offline`, disconnect cleanly; bounded by timeout."""
        self.stop_event.set()
        self.outbox.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self.outbox.close()  # acknowledged rows deleted now: a clean restart re-sends nothing
        # else: still inside a connect; it sees stop_event and ends, the outbox left open for it
        if self._broker is not None:
            self._broker.stop()

    # ---- the link thread ---------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        m = self.cfg.mqtt
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv311, clean_session=True)
        c.will_set(self.topic("availability"), b"offline", qos=1, retain=True)
        if m.username is not None:
            c.username_pw_set(m.username, self.password)
        set_tls(c, m.tls)
        c.connect_timeout = 3.0
        c.max_inflight_messages_set(WINDOW)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        return c

    def _fail(self, msg: str) -> None:
        if msg != self.last_error:  # say it once per change, not every retry
            log.warning("MQTT %s:%d: %s", self.host, self.port, msg)
        self.last_error = msg

    def _run(self) -> None:
        delay = self.reconnect[0]
        short = 0  # short sessions in a row, each reconnect accepted: the broker stayed up
        while not self.stop_event.is_set():
            try:
                client = self._make_client()
            except ConfigError as e:
                self._fail(str(e))
                return
            self._connack: Optional[Any] = None
            self.outbox.check()  # also while the broker is away: the queue is longest then
            try:
                client.connect(self.host, self.port, self.cfg.mqtt.keepalive)
            except (OSError, ssl.SSLError, ValueError) as e:
                self._fail(f"cannot connect: {getattr(e, 'strerror', None) or e}")
                short = 0
                if self.stop_event.wait(delay):
                    return
                delay = min(delay * 2, self.reconnect[1])
                continue
            deadline = time.monotonic() + 10
            while self._connack is None and time.monotonic() < deadline and not self.stop_event.is_set():
                if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    break
            if self._connack is None or self._connack.is_failure:
                reason = str(self._connack) if self._connack is not None else "no answer to CONNECT"
                self._fail(f"refused: {reason}")
                short = 0
                try:
                    client.disconnect()
                except Exception:
                    pass
                if self.stop_event.wait(delay):
                    return
                delay = min(delay * 2, self.reconnect[1])
                continue
            if self.stop_event.is_set():
                client.disconnect()
                return
            began = time.monotonic()
            self._session(client)
            if self.stop_event.is_set():
                return
            lasted = time.monotonic() - began
            if lasted >= SHORT_SESSION_S:
                self.last_error = None
                self._fail("connection lost")
                delay, short = self.reconnect[0], 0
                continue
            # Accepted, then dropped at once: back off, or two clients with one id (two Pis
            # both called raspberrypi) would take turns kicking each other out many times a second.
            # MQTT 3.1.1 gives no reason, and a broker restarted just after we connected looks
            # the same once: the hint needs it again with the broker up in between.
            short += 1
            said = f"the broker closed the connection {lasted:.1f} s after accepting it"
            self._fail(f"{said} (another client with the id {self.client_id!r}? set device_id or "
                       "mqtt.client_id; or a message it refuses: see the broker's log)" if short >= 2
                       else f"{said}; reconnecting")
            if self.stop_event.wait(delay):
                return
            delay = min(delay * 2, self.reconnect[1])

    def _session(self, client: mqtt.Client) -> None:
        self.connects += 1
        self._inflight.clear()
        self.outbox.rewind()
        client.subscribe([(f"{self.base}/cmd/+", 1), (f"{self.cfg.mqtt.discovery_prefix}/status", 1)])
        client.publish(self.topic("availability"), b"online", qos=1, retain=True)
        if self.cfg.mqtt.discovery:
            self._publish_discovery(client)
        self._client = client
        self.connected.set()
        log.info("MQTT connected to %s:%d as %s", self.host, self.port, self.client_id)
        try:
            while not self.stop_event.is_set():
                if self._rediscover.is_set():
                    self._rediscover.clear()
                    if self.cfg.mqtt.discovery:
                        self._publish_discovery(client)
                self._drain(client)
                self.outbox.check()
                if client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS or not self.connected.is_set():
                    return  # _run says why and when it tries again
            self._shutdown(client)
        finally:
            self.connected.clear()
            self._client = None
            # What the dead connection had in flight is unsent again: a count made during the
            # outage may replace it (its PUBACK can no longer come).
            self.outbox.rewind()

    def _publish_discovery(self, client: mqtt.Client) -> None:
        try:
            controls = self.discovery_controls()
        except Exception:  # the count must still reach Home Assistant
            log.exception("discovery controls failed; publishing the sensors only")
            controls = Controls()
        for topic, payload in discovery_messages(self.cfg.mqtt.discovery_prefix, self.base,
                                                 self.cfg.device_id, controls):
            client.publish(topic, payload, qos=1, retain=True)

    def _drain(self, client: mqtt.Client) -> None:
        while len(self._inflight) < WINDOW:
            msg = self.outbox.next_unsent()
            if msg is None:
                return
            if not valid_topic(msg.topic):
                # A broker drops the connection of a client that publishes to such a topic, so
                # one such message (left by an older version) would block the outbox for good.
                log.error("dropping a queued message the broker would refuse: topic %r", msg.topic[:200])
                self.outbox.mark_sent(msg)
                self.outbox.ack(msg)
                continue
            info = client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # not connected any more: it stays at the head for the next connection
            self._inflight[info.mid] = msg
            self.outbox.mark_sent(msg)

    def _shutdown(self, client: mqtt.Client, flush_s: float = 0.8) -> None:
        deadline = time.monotonic() + flush_s
        while (len(self.outbox) or self._inflight) and time.monotonic() < deadline:
            self._drain(client)
            if client.loop(0.02) != mqtt.MQTT_ERR_SUCCESS:
                return
        info = client.publish(self.topic("availability"), b"offline", qos=1, retain=True)
        deadline = time.monotonic() + 0.5
        while not info.is_published() and time.monotonic() < deadline:
            if client.loop(0.02) != mqtt.MQTT_ERR_SUCCESS:
                return
        client.disconnect()
        client.loop(0.05)

    # ---- paho callbacks (this thread, inside client.loop) ------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connack = reason

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        msg = self._inflight.pop(mid, None)
        if msg is not None:
            self.outbox.ack(msg)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == f"{self.cfg.mqtt.discovery_prefix}/status":
            if msg.payload.strip().lower() == b"online":
                self._rediscover.set()
            return
        name = msg.topic[len(self.base) + len("/cmd/"):]
        size = len(msg.payload)
        if self.on_command is None:
            return
        if msg.retain:
            # Kept by the broker from before we subscribed: running it would repeat it at
            # every start and reconnect (a retained pause would start every run paused).
            log.warning("ignoring a retained command on %s; clear it with: mosquitto_pub -r -n -t '%s'",
                        msg.topic, msg.topic)
            return
        if size == 0:
            log.info("ignoring an empty payload on %s (how a retained message is cleared); "
                     "a command is a JSON object, at least {}", msg.topic)
            return
        # Only hand over what we will parse: an oversized payload is refused, not queued.
        payload = bytes(msg.payload) if size <= self.cfg.mqtt.max_command_bytes else None
        try:
            self.on_command(name, payload, size)
        except Exception:
            log.exception("command callback failed")
