"""Capture in its own thread, newest frame only; stall detection and reopen with backoff.

Every failure (open, read, stall) counts towards one run: the next open waits 0.5 s, doubling
to 10 s, until frames have flowed for HEALTHY_S. Reports of a run are thinned by RepeatFilter.

The consumer (the pipeline) waits for a frame newer than the one it last used, so it never
classifies a stale frame twice and never works through a backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import cv2

from edge.camera.base import Frame, FrameSource
from edge.errors import CameraError

log = logging.getLogger(__name__)

ROTATIONS = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
             270: cv2.ROTATE_90_COUNTERCLOCKWISE}

# An on-demand source (replay@0) keeps up to this many frames read and prepared ahead, and
# the consumer wakes its thread only when one is left: one cross-thread wake-up per three
# frames. Each costs the consumer ~10 us on a VM (3 % of an int8 invoke) in the pipeline's
# critical path, where a real camera's frames wake the capture thread, not the consumer.
ON_DEMAND_AHEAD = 4

# A run of identical reports: the first REPORT_BURST (they show the retry delay growing),
# then at most one per REPORT_EVERY_S saying how many were held back. A failing camera
# then costs a few log lines and events a minute, not a flood (disk, outbox, CPU).
REPORT_BURST = 3
REPORT_EVERY_S = 60.0
# Frames flowing this long after an open end a run of failures: the next failure is
# retried at the shortest delay again and reported afresh.
HEALTHY_S = 30.0

# (kind, message): kind is "camera_open_failed", "camera_stalled" or "camera_error"; called
# for the reports RepeatFilter lets through.
ErrorCallback = Callable[[str, str], None]


@dataclass
class _Run:
    msg: str
    shown: int  # times reported
    last: float  # monotonic time of the last report
    last_wall: float
    held: int = 0  # held back since the last report


class RepeatFilter:
    """Per kind: a new message passes at once; the same one again passes REPORT_BURST times,
    then once per REPORT_EVERY_S with how many were held back since the last one shown."""

    def __init__(self, burst: int = REPORT_BURST, every_s: float = REPORT_EVERY_S):
        self.burst, self.every_s = burst, every_s
        self._runs: dict[str, _Run] = {}

    def reset(self) -> None:
        self._runs.clear()

    def admit(self, kind: str, msg: str, now: float, wall: float) -> Optional[str]:
        """None: hold this one back. Otherwise a note for it ("" or "N more since HH:MM:SS")."""
        run = self._runs.get(kind)
        if run is None or run.msg != msg:
            self._runs[kind] = _Run(msg, 1, now, wall)
            return ""
        if run.shown < self.burst or now - run.last >= self.every_s:
            note = f"{run.held} more since {time.strftime('%H:%M:%S', time.localtime(run.last_wall))}" \
                if run.held else ""
            run.shown, run.last, run.last_wall, run.held = run.shown + 1, now, wall, 0
            return note
        run.held += 1
        return None


class Camera:
    """Runs a FrameSource in a named thread and keeps only its newest frame (an on-demand
    replay queues a few made for the consumer: it has no live scene to fall behind)."""

    def __init__(self, source: FrameSource, stall_s: float = 5.0,
                 on_error: Optional[ErrorCallback] = None,
                 backoff: tuple[float, float] = (0.5, 10.0), rotate: int = 0,
                 healthy_s: float = HEALTHY_S):
        if rotate not in ROTATIONS:
            raise ValueError(f"rotate must be one of {sorted(ROTATIONS)}, not {rotate!r}")
        self.source = source
        # A camera mounted sideways or upside down: frames are turned upright here, once, so
        # classification, captured samples and ROIs all see the hand the right way up.
        self._rotation = ROTATIONS[rotate]
        self.stall_s = float(stall_s)
        self.on_error = on_error
        self.backoff = backoff
        self.healthy_s = float(healthy_s)
        self.reports = RepeatFilter()
        self.failures = 0  # in a row (open, read, stall); the next open waits _delay()
        self._fail_lock = threading.Lock()  # the capture and the watch thread both fail
        self._opened_at = 0.0
        self._cond = threading.Condition()
        self._latest: Optional[Frame] = None
        self._seq = 0
        # A source with on_demand = True (replay@0) makes frames only as they are taken, into
        # a FIFO of up to ON_DEMAND_AHEAD: the consumer always finds one ready, none is
        # dropped and no core is burnt on unused frames.
        self.on_demand = bool(getattr(source, "on_demand", False))
        self._queue: deque[Frame] = deque()
        # Wakes an on-demand capture thread when the queue runs low: a bare lock released from
        # the consumer (C-level, ~0.1 us) instead of a Condition's notify (pure Python, several
        # us on the pipeline's critical path). Held while nobody has signalled.
        self._taken_signal = threading.Lock()
        self._taken_signal.acquire()
        self._stop = threading.Event()
        self._reopen = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._watch: Optional[threading.Thread] = None
        self._last_fresh = time.monotonic()
        self.opened = threading.Event()
        # Optional rgb -> Frame.prepared, run in the capture thread (the pipeline sets it so
        # preprocessing frame N+1 overlaps the invoke of frame N).
        self.prepare: Optional[Callable[[Any], Optional[tuple]]] = None
        # counters for stats
        self.captured = 0
        self.stalls = 0
        self.reopens = 0
        self.open_failures = 0
        self.last_error: Optional[str] = None

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> Camera:
        self._stop.clear()
        self._last_fresh = time.monotonic()
        self._thread = threading.Thread(target=self._capture_loop, name="camera-capture", daemon=True)
        self._thread.start()
        self._watch = threading.Thread(target=self._watch_loop, name="camera-watch", daemon=True)
        self._watch.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self.source.close()  # unblocks a read that waits on the device
        with self._cond:
            self._cond.notify_all()
        self._signal_taken()
        for t in (self._thread, self._watch):
            if t is not None and t is not threading.current_thread():
                t.join(timeout)

    def __enter__(self) -> Camera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- consumer side -----------------------------------------------------------------
    def latest(self) -> Optional[Frame]:
        return self._latest

    def wait_next(self, after_seq: int, timeout: Optional[float] = None) -> Optional[Frame]:
        """The newest frame with seq > after_seq (from an on-demand source: the next one made);
        waits up to timeout; None on timeout/stop."""
        f = self._ready(after_seq)
        if f is not None:  # the usual case in the pipeline: no lock needed
            return f
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._stop.is_set():
                f = self._ready(after_seq)
                if f is not None:
                    return f
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return None

    def _ready(self, after_seq: int) -> Optional[Frame]:
        if self.on_demand:
            q = self._queue
            if not q:
                return None
            f = q.popleft()  # only the one consumer pops, so this cannot fail
            if len(q) <= 1:
                self._signal_taken()
            return f
        latest = self._latest
        return latest if latest is not None and latest.seq > after_seq else None

    def _signal_taken(self) -> None:
        try:
            self._taken_signal.release()
        except RuntimeError:  # already signalled and not yet consumed
            pass

    @property
    def seq(self) -> int:
        return self._seq

    # ---- capture thread ----------------------------------------------------------------
    def _delay(self) -> float:
        lo, hi = self.backoff
        return min(lo * 2 ** min(max(self.failures - 1, 0), 30), hi)

    def _fail(self, kind: str, msg: str, then: str) -> None:
        """One more failure in a row: reported (unless RepeatFilter holds it back); the next
        open waits longer. msg must not vary between identical failures; `then` may."""
        with self._fail_lock:
            self.failures += 1
            note = f"{then} in {self._delay():g} s"
            self.last_error = f"{msg} ({note})"
            extra = self.reports.admit(kind, msg, time.monotonic(), time.time())
            if extra is None:
                return
            text = f"{msg} ({note}; {extra})" if extra else self.last_error
        log.warning("%s: %s", kind, text)
        if self.on_error is not None:
            try:
                self.on_error(kind, text)
            except Exception:  # a reporting failure must not kill capture
                log.exception("camera error callback failed")

    def _recovered(self) -> None:
        with self._fail_lock:
            n, self.failures = self.failures, 0
            self.reports.reset()
        log.info("camera %s recovered: frames for %g s after %d failure(s) in a row",
                 self.source.name, self.healthy_s, n)

    def _open_with_backoff(self) -> bool:
        """Open the source; after a failure (of any kind) first wait the backoff delay."""
        while not self._stop.is_set():
            if self.failures and self._stop.wait(self._delay()):
                return False
            try:
                self.source.open()
            except Exception as e:  # a backend bug must not end capture for good
                self.open_failures += 1
                self._fail("camera_open_failed", self._describe(e), "retrying")
                continue
            self._opened_at = self._last_fresh = time.monotonic()
            self.opened.set()
            return True
        return False

    def _describe(self, e: Exception) -> str:
        """A CameraError says what happened; a backend bug gets the source and its type."""
        return str(e) if isinstance(e, CameraError) else f"{self.source.name}: {type(e).__name__}: {e}"

    def _capture_loop(self) -> None:
        if not self._open_with_backoff():
            return
        while not self._stop.is_set():
            if self._reopen.is_set():
                self._reopen.clear()
                self.source.close()
                self.reopens += 1
                self.opened.clear()
                if not self._open_with_backoff():
                    return
                continue
            try:
                rgb = self.source.read()
            except Exception as e:  # CameraError or a backend bug: reopen after the backoff
                self._fail("camera_error", self._describe(e), "reopening")
                self._reopen.set()
                continue
            if rgb is None:
                # Nothing this time; the watch thread decides when it is a stall.
                self._stop.wait(0.005)
                continue
            if self._rotation is not None:
                rgb = cv2.rotate(rgb, self._rotation)
            prepared = None
            if self.prepare is not None:
                try:
                    prepared = self.prepare(rgb)
                except Exception:  # the pipeline then preprocesses it itself
                    log.exception("preprocessing in the capture thread failed")
            if self.on_demand:
                # Read and prepared while the consumer works on earlier ones: queued, it is
                # ready the moment the consumer asks.
                while len(self._queue) >= ON_DEMAND_AHEAD and not self._stop.is_set() \
                        and not self._reopen.is_set():
                    self._taken_signal.acquire(timeout=0.1)
                    self._last_fresh = time.monotonic()  # waiting for the consumer is no stall
                if self._stop.is_set() or self._reopen.is_set():
                    continue
            now, wall = time.monotonic(), time.time()
            self._last_fresh = now
            if self.failures and now - self._opened_at >= self.healthy_s:
                self._recovered()
            self._seq += 1
            self.captured += 1
            frame = Frame(rgb, wall, self._seq, now, prepared)
            if self.on_demand:
                self._queue.append(frame)
            with self._cond:
                self._latest = frame  # the previous frame is simply dropped if nobody took it
                self._cond.notify_all()
        self.source.close()

    def _watch_loop(self) -> None:
        step = min(0.25, self.stall_s / 4)
        while not self._stop.wait(step):
            if not self.opened.is_set() or self._reopen.is_set():
                continue
            idle = time.monotonic() - self._last_fresh
            if idle >= self.stall_s:
                self.stalls += 1
                self._fail("camera_stalled", f"{self.source.name}: no fresh frame for {self.stall_s:g} s",
                           "reopening")
                self._last_fresh = time.monotonic()
                self._reopen.set()
                self.source.close()  # a read blocked in the driver returns now
