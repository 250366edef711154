"""The live hub between the daemon's threads and the web server's event loop.

The daemon hands every classified frame and every published payload to tap(); tap only
stores a reference or queues a small job for the loop, so counting never waits on the page.

Live view (as picamera2's mjpeg_server): one encoder thread, a condition variable, every viewer
reads the newest JPEG. The encoder runs only while someone watches: no viewer, no drawing and
no JPEG (the `encoded` counter proves it). It encodes at most web.fps frames a second however
many viewers there are.

Events: each page has a bounded queue; when a page reads slower than events come, its oldest
events are dropped (counted), never the daemon's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any, Optional

from edge.config import WebSection
from edge.web.draw import render

log = logging.getLogger(__name__)

QUEUE_PER_CLIENT = 64
STATS_EVERY_S = 5.0  # while a page listens, stats (fps, latency) this often besides the daemon's


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


class Subscriber:
    """One page's event stream: a bounded queue of ready-made SSE messages (loop thread only)."""

    def __init__(self, hub: LiveHub) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_PER_CLIENT)
        self.hub = hub
        self.dropped = 0

    def put(self, msg: str) -> None:
        while True:
            try:
                self.queue.put_nowait(msg)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # the oldest goes: a page wants the present
                self.dropped += 1
                self.hub.events_dropped += 1


class LiveHub:
    def __init__(self, daemon: Any, cfg: WebSection):
        self.daemon = daemon
        self.cfg = cfg
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.subscribers: set[Subscriber] = set()  # loop thread only
        self._n_subscribers = 0  # read by tap() in other threads
        self._last_pred = 0.0
        self.last: dict[str, str] = {}  # newest "count" and "stats" message, for a page that connects
        # live view
        self._cond = threading.Condition()
        self._result: Any = None  # newest Result while someone watches
        self._result_no = 0
        self.viewers = 0
        self.encoded = 0  # JPEGs made since start
        self.events_dropped = 0
        self.jpeg: Optional[bytes] = None
        self.jpeg_no = 0
        self._jpeg_changed: Optional[asyncio.Event] = None
        self._stop = threading.Event()
        self._encoder = threading.Thread(target=self._encode_loop, name="web-encoder", daemon=True)

    # ---- daemon side (any thread; never blocks) --------------------------------------------
    def tap(self, kind: str, payload: Any) -> None:
        if kind == "result":
            if self.viewers:
                with self._cond:
                    self._result = payload
                    self._result_no += 1
                    self._cond.notify_all()
            if self._n_subscribers:
                now = time.monotonic()
                if now - self._last_pred >= 1.0 / self.cfg.events_hz:
                    self._last_pred = now
                    self._post("prediction", payload)
            return
        if kind in ("count", "event", "stats"):
            self._post(kind, payload)

    def _post(self, kind: str, payload: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._fanout, kind, payload)
        except RuntimeError:  # the loop is closing
            pass

    # ---- loop side ---------------------------------------------------------------------------
    def _fanout(self, kind: str, payload: Any) -> None:
        if kind == "prediction":
            data = payload.prediction()  # with "hand" behind the hand stage (Result.hand_info)
        else:
            data = payload
        msg = f"event: {kind}\ndata: {_dumps(data)}\n\n"
        if kind in ("count", "stats"):
            self.last[kind] = msg
        for sub in self.subscribers:
            sub.put(msg)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self)
        for kind in ("count", "stats"):
            if kind in self.last:
                sub.put(self.last[kind])
        self.subscribers.add(sub)
        self._n_subscribers = len(self.subscribers)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self._n_subscribers = len(self.subscribers)

    async def stats_loop(self) -> None:
        """Fresh stats for listening pages (the daemon's own come every stats_interval_s)."""
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            if self.subscribers:
                try:
                    st = await asyncio.get_running_loop().run_in_executor(None, self.daemon.stats)
                except Exception:
                    log.exception("stats for the web page failed")
                    continue
                self._fanout("stats", st)

    # ---- live view ---------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._jpeg_changed = asyncio.Event()
        self._encoder.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._encoder.is_alive():
            self._encoder.join(1.0)

    def add_viewer(self) -> None:
        with self._cond:
            self.viewers += 1
            self._cond.notify_all()

    def remove_viewer(self) -> None:
        with self._cond:
            self.viewers -= 1
            if not self.viewers:
                self._result = None  # no frame kept alive for nobody

    async def next_jpeg(self, after: int, timeout: float) -> tuple[int, Optional[bytes]]:
        """The newest JPEG once it is newer than `after` (or the same one after timeout)."""
        assert self._jpeg_changed is not None
        if self.jpeg_no == after:
            ev = self._jpeg_changed
            try:
                await asyncio.wait_for(ev.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.jpeg_no, self.jpeg

    def _publish_jpeg(self, data: bytes) -> None:  # loop thread
        assert self._jpeg_changed is not None
        self.jpeg = data
        self.jpeg_no += 1
        ev, self._jpeg_changed = self._jpeg_changed, asyncio.Event()
        ev.set()

    def _encode_loop(self) -> None:
        gap = 1.0 / self.cfg.fps
        done_no = 0
        last = 0.0
        while not self._stop.is_set():
            with self._cond:
                # nobody watching, or nothing new: sleep here (no drawing, no encoding)
                while not self._stop.is_set() and (not self.viewers or self._result_no == done_no):
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
            wait = last + gap - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            with self._cond:
                r, done_no = self._result, self._result_no
            if r is None:
                continue
            try:
                data = render(r.frame.rgb, getattr(r, "hand", None), self.cfg.width, self.cfg.jpeg_quality)
            except Exception:
                log.exception("live view: a frame could not be drawn")
                continue
            last = time.monotonic()
            self.encoded += 1
            loop = self.loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._publish_jpeg, data)
                except RuntimeError:
                    return

    def stats(self) -> dict:
        return {"web": {"viewers": self.viewers, "event_clients": self._n_subscribers,
                        "jpeg_encoded": self.encoded,
                        "events_dropped": self.events_dropped}}
