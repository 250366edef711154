"""The daemon: camera -> pipeline -> MQTT, commands, stats, systemd notifications.

Threads (all named, all ending on one stop Event): camera-capture and camera-watch (edge.camera),
mqtt-link (network loop and outbox), commands (runs MQTT commands, never in the network
thread), stats (periodic …/stats). The pipeline runs in the thread that calls run().

Other parts plug in through the extension API below (edge.personalize.attach(daemon)).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Optional, TextIO

import numpy as np

from edge import __version__, choices
from edge.camera import camera_from_config
from edge.config import Config
from edge.counting import Counter, HandCounter
from edge.discovery import Controls
from edge.errors import CommandError, FingercountError
from edge.mqtt import MqttLink
from edge.pipeline import Pipeline, Result
from edge.runtime.classifier import label_count
from edge.runtime.loader import open_classifier, open_counter
from edge.runtime.package import package_by_name, resolve_package
from edge.sdnotify import Notifier
from edge.smoothing import Smoother, Stable
from edge.stats import FrameStats, cpu_temperature, rss_mb, throttling

# A command's answer goes back the way it came: MQTT publishes it on cmd/<name>/result, the
# web page's POST /api/<name> gets it as its response body.
Reply = Callable[[dict], None]

log = logging.getLogger(__name__)

# READY=1 waits for the first classified frame and the broker; a broker that is down does
# not hold the service in "activating" for longer than this (results wait in the outbox).
READY_MQTT_WAIT_S = 10.0
COMMAND_QUEUE = 64


def _reject_constant(name: str) -> Any:
    raise CommandError(f"not valid JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise CommandError(f"not valid JSON: {text} is out of range")
    return value


def parse_command(payload: bytes) -> dict:
    """A command's JSON object (strict JSON: no NaN or Infinity, which no reply could carry)."""
    text = payload.strip()
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite) if text else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CommandError(f"not valid JSON: {e}") from None
    except RecursionError:  # [[[[… past Python's recursion limit: not a command, not a bug
        raise CommandError("not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise CommandError(f"the command must be a JSON object, got {type(body).__name__}")
    return body


def _command_id(body: dict) -> Any:
    cid = body.get("id")
    if cid is not None and (isinstance(cid, bool) or not isinstance(cid, (str, int, float))):
        raise CommandError("'id' must be a string or a number")
    return cid


# Their default action kills the process, and systemd counts a death by SIGHUP as a clean
# exit (no restart): a habitual `kill -HUP` to reload would leave the service dead.
IGNORED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def _log_ignored(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    if signum == signal.SIGHUP:
        log.warning("SIGHUP ignored: the configuration is read at start; restart the service to "
                    "apply changes (systemctl restart fingercount)")
    else:
        log.warning("%s ignored: fingercount does not use it", name)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Daemon:
    def __init__(self, cfg: Config, mqtt_enabled: bool = True, print_to: Optional[TextIO] = None,
                 notifier: Optional[Notifier] = None):
        self.cfg = cfg
        self.stop_event = threading.Event()
        self.paused = threading.Event()
        self.notifier = notifier or Notifier.from_env()
        self.print_to = print_to
        self.fstats = FrameStats()
        self._configured_model: list[str] = [cfg.model.name, cfg.model.precision]
        self._restore_problem: Optional[str] = None  # published as an error event once running
        self._classifier = self._open_model()  # ModelError here: one line, non-zero exit
        self.camera = camera_from_config(cfg.camera, on_error=self._camera_error)
        s = cfg.smoothing
        self.pipeline = Pipeline(self.camera, self._classifier,
                                 Smoother(self._classifier.labels, s.window, s.min_confidence, s.min_hold_ms))
        self._commands: dict[str, Callable[[dict], dict]] = {
            "pause": self._cmd_pause, "resume": self._cmd_resume,
            "set_model": self._cmd_set_model, "status": self._cmd_status,
        }
        self._cmd_queue: queue.Queue = queue.Queue(COMMAND_QUEUE)
        # what is published (count, event, stats) and every classified frame, for the web page;
        # a tap must return at once: it runs on the per-frame path and in publishing threads
        self._taps: list[Callable[[str, Any], None]] = []
        self._slow_commands: set[str] = set()
        self._stats_providers: list[Callable[[], dict]] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._swap_hooks: list[Callable[[Counter], None]] = []
        self._swap_lock = threading.Lock()
        self.link: Optional[MqttLink] = MqttLink(cfg, self._on_command) if mqtt_enabled else None
        if self.link is not None:
            self.link.discovery_controls = self._discovery_controls
        # set by a plugin that stores samples: the labels a capture can use
        self.capture_labels: Optional[Callable[[], list[str]]] = None
        self._stats_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self.first_prediction_at: Optional[float] = None
        self._stopped_by: Optional[str] = None  # the signal that asked for the stop
        self.started_at = time.monotonic()
        self._stable = Stable(None, 0.0, 0.0)
        self._since = time.time()
        self._hand: Optional[bool] = None  # a hand in the frame that made the stable state
        self.last_result: Optional[Result] = None

    def _open_model(self) -> Counter:
        """The configured model, or the one set_model chose instead of it before a restart."""
        cfg = self.cfg
        m = choices.load(cfg.state_dir).get("model")
        if not isinstance(m, dict):
            return open_classifier(cfg)
        if m.get("instead_of") != self._configured_model:
            log.info("not restoring the model chosen over MQTT (%s/%s): the config now names %s/%s",
                     m.get("name"), m.get("precision"), *self._configured_model)
            choices.save(cfg.state_dir, model=None)
            return open_classifier(cfg)
        try:
            self._set_model_config(m.get("name"), m.get("precision"))
            clf = open_classifier(cfg)
        except (FingercountError, ValueError) as e:
            self._restore_problem = (f"the model chosen over MQTT cannot be loaded ({e}); using the "
                                     "configured {}/{}".format(*self._configured_model))
            log.warning("%s", self._restore_problem)
            self._set_model_config(*self._configured_model)
            choices.save(cfg.state_dir, model=None)
            return open_classifier(cfg)
        log.info("restored the model chosen over MQTT: %s (the config names %s/%s)", clf.model_id,
                 *self._configured_model)
        return clf

    def _set_model_config(self, name: object, precision: object) -> None:
        """cfg.model with another name and precision, validated as the config file is."""
        m = self.cfg.model
        self.cfg.model = type(m).model_validate({**m.model_dump(), "name": name, "precision": precision})

    # ---- extension API -----------------------------------------------------------------
    @property
    def classifier(self) -> Counter:
        return self.pipeline.classifier

    def latest_frame(self) -> Optional[tuple[np.ndarray, float, int]]:
        f = self.camera.latest()
        return None if f is None else (f.rgb, f.ts, f.seq)

    def swap_classifier(self, new: Counter, replacing: Optional[Counter] = None) -> bool:
        """Run `new` from the next frame. With `replacing`, only if that is still the classifier
        (False otherwise): a reload built from it (a retrain, a rollback, a head changed on
        disk) must not undo a set_model that came in while it was being built."""
        with self._swap_lock:
            old = self.pipeline.classifier
            if replacing is not None and old is not replacing:
                return False
            self.pipeline.set_classifier(new)
        for fn in self._swap_hooks:
            fn(new)
        self.refresh_discovery()  # labels and retrainability may have changed
        self.publish_event("model_swapped", model=new.model_id, previous=old.model_id,
                           labels=list(new.labels))
        log.info("model swapped: %s -> %s", old.model_id, new.model_id)
        self.publish_stats_soon()  # the dashboard's Model sensor
        self._report_head_problem(new)
        return True

    def publish_event(self, type: str, **data: Any) -> None:
        ev = self._event(type, **data)
        if self.link is not None:
            self.link.publish_reliable("event", ev)
        self._tap("event", ev)

    def add_tap(self, fn: Callable[[str, Any], None]) -> None:
        """fn(kind, payload) for "count", "event", "stats" (the MQTT payloads) and "result" (the
        pipeline's Result of every classified frame). Called in the publishing thread and on the
        per-frame path: it must only hand the payload over, never block (edge.web does so)."""
        self._taps.append(fn)

    def _tap(self, kind: str, payload: Any) -> None:
        for fn in self._taps:
            try:
                fn(kind, payload)
            except Exception:  # the page must never stop the counting
                log.exception("tap %s failed", kind)

    @staticmethod
    def _event(type: str, **data: Any) -> dict[str, Any]:
        return {"type": type, "ts": iso(time.time()), **data}

    def register_command(self, name: str, fn: Callable[[dict], dict], slow: bool = False) -> None:
        """fn(payload) -> result data. A slow command (e.g. retrain waiting for its result)
        runs in a thread of its own so the quick ones behind it are not held up."""
        if not name or any(c in name for c in "/#+"):
            raise ValueError(f"bad command name {name!r}")
        self._commands[name] = fn
        if slow:
            self._slow_commands.add(name)
        else:
            self._slow_commands.discard(name)

    def command_names(self) -> list[str]:
        """The commands the registry has now (MQTT cmd/<name> and POST /api/<name> alike)."""
        return sorted(self._commands)

    def add_stats_provider(self, fn: Callable[[], dict]) -> None:
        self._stats_providers.append(fn)

    def publish_stats_soon(self) -> None:
        """Publish stats now, not at the next interval: a state Home Assistant shows changed
        (paused, the capture label, sample counts)."""
        self._stats_now.set()

    def refresh_discovery(self) -> None:
        """Send Home Assistant's discovery configs again: the controls changed."""
        if self.link is not None:
            self.link.request_discovery()

    def _discovery_controls(self) -> Controls:
        labels = self.capture_labels() if self.capture_labels is not None else []
        return Controls(tuple(labels), bool(self.classifier.package.retrainable))

    def add_shutdown_hook(self, fn: Callable[[], None]) -> None:
        self._shutdown_hooks.append(fn)

    def add_swap_hook(self, fn: Callable[[Counter], None]) -> None:
        """fn(new classifier) after every swap, before discovery and stats are refreshed."""
        self._swap_hooks.append(fn)

    # ---- commands ----------------------------------------------------------------------
    def _on_command(self, name: str, payload: Optional[bytes], size: int) -> None:
        """In the MQTT network thread: only queue, never run."""
        self.submit_command(name, payload, size, lambda res: self._reply(name, res))

    def submit_command(self, name: str, payload: Optional[bytes], size: int, reply: Reply) -> None:
        """Queue a command from any transport (MQTT, the web page): it runs in the commands
        thread (a slow one in its own), in arrival order, and reply(result) gets its
        {id, ok, data, error}. Never blocks: a full queue is answered 'busy' at once."""
        try:
            self._cmd_queue.put_nowait((name, payload, size, reply))
        except queue.Full:
            try:
                cid = _command_id(parse_command(payload)) if payload is not None else None
            except CommandError:
                cid = None
            reply({"id": cid, "ok": False, "data": {}, "error": "busy: too many commands waiting"})

    def _reply(self, name: str, res: dict) -> None:
        if self.link is not None:
            self.link.publish_reliable(f"cmd/{name}/result", res)

    def execute(self, name: str, payload: Optional[bytes], size: Optional[int] = None) -> dict:
        """Parse, check and run one command; returns the result message (also for tests)."""
        cid = None
        try:
            if payload is None:
                raise CommandError(f"command too large: {size} bytes (mqtt.max_command_bytes is "
                                   f"{self.cfg.mqtt.max_command_bytes})")
            body = parse_command(payload)
            cid = _command_id(body)
            body.pop("id", None)
            fn = self._commands.get(name)
            if fn is None:
                raise CommandError(f"unknown command {name!r} (known: {', '.join(sorted(self._commands))})")
            data = fn(body)
            return {"id": cid, "ok": True, "data": data or {}, "error": None}
        except FingercountError as e:
            return {"id": cid, "ok": False, "data": {}, "error": str(e)}
        except Exception as e:  # a bug in a command must not take the daemon down
            log.exception("command %s failed", name)
            return {"id": cid, "ok": False, "data": {}, "error": f"internal error: {type(e).__name__}: {e}"}

    def _command_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                name, payload, size, reply = self._cmd_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if name in self._slow_commands:
                threading.Thread(target=self._execute_and_reply, args=(name, payload, size, reply),
                                 name=f"cmd-{name}", daemon=True).start()
            else:
                self._execute_and_reply(name, payload, size, reply)

    def _execute_and_reply(self, name: str, payload: Optional[bytes], size: Optional[int],
                           reply: Reply) -> None:
        res = self.execute(name, payload, size)
        if not res["ok"]:
            log.warning("command %s refused: %s", name, res["error"])
        try:
            reply(res)
        except Exception:  # this thread must outlive any one command
            log.exception("command %s: the result could not be sent", name)

    @staticmethod
    def _only(body: dict, allowed: set[str]) -> None:
        extra = set(body) - allowed
        if extra:
            raise CommandError(f"unexpected field(s): {', '.join(sorted(extra))}")

    def _cmd_pause(self, body: dict) -> dict:
        self._only(body, set())
        self.paused.set()
        self.publish_stats_soon()
        return {"paused": True}

    def _cmd_resume(self, body: dict) -> dict:
        self._only(body, set())
        self.paused.clear()
        self.publish_stats_soon()
        return {"paused": False}

    def _cmd_set_model(self, body: dict) -> dict:
        self._only(body, {"name", "precision"})
        name = body.get("name", self.cfg.model.name)
        precision = body.get("precision", self.cfg.model.precision)
        if not isinstance(name, str) or not name:
            raise CommandError("'name' must be a non-empty string")
        if precision not in ("int8", "fp16", "fp32"):
            raise CommandError("'precision' must be one of int8, fp16, fp32")
        models = self.cfg.resolved_models_dir()
        # Anyone on the broker may send this: only a model in models_dir by its name, never a
        # file of their choosing (the configured model, which may be a path, is the exception).
        pkg = resolve_package(name, models) if name == self._configured_model[0] else \
            package_by_name(name, models)  # ModelError -> ok:false
        cur = self.classifier  # a new model keeps the running hand stage (and its track)
        new = open_counter(self.cfg, pkg, precision, self.cfg.model.threads,
                           stage=cur.stage if isinstance(cur, HandCounter) else None)
        self.swap_classifier(new)
        self.cfg.model.name, self.cfg.model.precision = name, precision
        chosen = None if [name, precision] == self._configured_model else \
            {"name": name, "precision": precision, "instead_of": self._configured_model}
        choices.save(self.cfg.state_dir, model=chosen)  # a restart keeps it
        return {"model": new.model_id, "labels": list(new.labels)}

    def _cmd_status(self, body: dict) -> dict:
        self._only(body, set())
        st = self.stats()
        st["labels"] = list(self.classifier.labels)
        st["count"] = self._count_payload()
        return st

    # ---- stats -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        p50, p95 = self.fstats.invoke_percentiles()
        cam = self.camera
        out: dict[str, Any] = {
            "ts": iso(time.time()),
            "uptime_s": round(self.fstats.uptime_s(), 1),
            "fps": round(self.fstats.fps(), 2),
            "invoke_p50_ms": round(p50, 2),
            "invoke_p95_ms": round(p95, 2),
            "frames": self.fstats.frames,
            "dropped_frames": self.pipeline.dropped,
            "model": self.classifier.model_id,
            "paused": self.paused.is_set(),
            "camera": {"source": cam.source.name, "captured": cam.captured, "stalls": cam.stalls,
                       "reopens": cam.reopens, "open_failures": cam.open_failures,
                       "error": cam.last_error},
            "cpu_temp_c": cpu_temperature(),
            "throttled": throttling(),
            "rss_mb": rss_mb(),
            "version": __version__,
        }
        if self.link is not None:
            ls = self.link.stats()
            out["outbox_depth"] = ls["outbox_depth"]
            out["outbox_dropped"] = ls["outbox_dropped"]
            out["outbox_persistent"] = ls["outbox_persistent"]
            out["mqtt_connects"] = ls["connects"]
        else:
            out["outbox_depth"] = 0
        for fn in self._stats_providers:
            try:
                out.update(fn() or {})
            except Exception:
                log.exception("stats provider failed")
        return out

    def _stats_loop(self) -> None:
        interval = self.cfg.publish.stats_interval_s
        first = True
        while not self.stop_event.is_set():
            self._stats_now.wait(2.0 if first else interval)
            self._stats_now.clear()
            if self.stop_event.is_set():
                break
            first = False  # the first stats soon after start, then every interval
            st = self.stats()
            if self.link is not None:
                self.link.publish_now("stats", st, qos=0, retain=True)
            self._tap("stats", st)
            self.notifier.status(f"{st['fps']:.1f} fps, {st['model']}"
                                 + (", paused" if st["paused"] else ""))

    # ---- results -----------------------------------------------------------------------
    def _count_payload(self) -> dict[str, Any]:
        st = self._stable
        out = {"count": label_count(st.label) if st.label is not None else None,
               "label": st.label, "confidence": round(st.confidence, 4),
               "since": iso(self._since), "model": self.classifier.model_id}
        if self._hand is not None:  # behind the hand stage: why a null count is null
            out["hand"] = self._hand
        return out

    def _publish_count(self) -> None:
        count = self._count_payload()
        if self.link is not None:
            self.link.publish_reliable("count", count, retain=True)
        self._tap("count", count)

    def _on_change(self, r: Result, st: Stable) -> None:
        prev = self._stable
        self._stable = st
        self._since = r.frame.ts
        self._hand = (r.hand is not None) if r.hand_info is not None else None
        count = self._count_payload()
        ev = self._event("count_changed", count=count["count"], label=st.label,
                         previous=label_count(prev.label) if prev.label is not None else None,
                         confidence=count["confidence"], seq=r.seq)
        if self.link is not None:  # the state and its event: one write to the card
            self.link.publish_reliable_many([("count", count, True), ("event", ev, False)])
        self._tap("count", count)
        self._tap("event", ev)
        if self.print_to is not None:
            shown = f"count {count['count']}" if count["count"] is not None else \
                (f"label {st.label}" if st.label is not None else
                 "no hand" if self._hand is False else "count unsure")
            conf = f"{st.confidence:.0%}, " if st.label is not None else ""
            print(f"{time.strftime('%H:%M:%S')}  {shown}  ({conf}frame {r.seq})",
                  file=self.print_to, flush=True)

    def _report_head_problem(self, clf: Counter) -> None:
        if clf.head_problem is not None:
            self.publish_event("error", where="head", message=clf.head_problem)

    def _camera_error(self, kind: str, msg: str) -> None:
        self.publish_event("error", error=kind, message=msg)

    # ---- main loop ---------------------------------------------------------------------
    def _start_threads(self) -> None:
        for name, target in (("commands", self._command_loop), ("stats", self._stats_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def attach_plugins(self) -> None:
        try:
            import edge.personalize as personalize  # samples, retrain, GPIO (another part)
        except ModuleNotFoundError as e:
            if e.name != "edge.personalize":
                raise
            return
        personalize.attach(self)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self._stopped_by = signal.Signals(signum).name  # logged by shutdown, not in here
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        for sig in IGNORED_SIGNALS:
            signal.signal(sig, _log_ignored)

    def run(self, duration: Optional[float] = None) -> int:
        """Run until stop_event (SIGTERM, Ctrl-C, duration); returns the exit code."""
        try:
            self.attach_plugins()
        except Exception as e:  # a bug in capture/retrain/GPIO must not stop the counting
            log.exception("personalisation unavailable; counting without it")
            self.publish_event("error", where="plugins", message=f"{type(e).__name__}: {e}")
        if self._restore_problem is not None:
            self.publish_event("error", where="model", message=self._restore_problem)
        if self.link is not None:
            self.link.start()
        self.camera.start()
        self._start_threads()
        self._publish_count()  # the truth right now: nothing stable yet
        self._report_head_problem(self._classifier)
        if self.print_to is not None:
            print(f"counting fingers with {self.classifier.model_id} on {self.camera.source.name}; "
                  "each change of the stable count is printed below (Ctrl-C stops)",
                  file=self.print_to, flush=True)
        end = None if duration is None else time.monotonic() + duration
        wd_usec = self.notifier.watchdog_usec()
        wd_every = wd_usec / 2e6 if wd_usec else None
        last_wd = 0.0
        ready = False
        max_hz = self.cfg.publish.max_hz
        min_gap = 1.0 / max_hz if max_hz > 0 else None
        last_pred = 0.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                if self.paused.is_set():
                    # deliberate: the loop is alive, so the watchdog is still fed
                    if wd_every is not None and now - last_wd >= wd_every:
                        self.notifier.watchdog()
                        last_wd = now
                    self.stop_event.wait(0.1)
                    continue
                r = self.pipeline.step(timeout=0.25)
                if r is None:
                    continue  # no fresh frame: the watchdog is not fed (a stuck camera restarts us)
                self.last_result = r  # a capture stores this frame with the hand found in it
                now = time.monotonic()
                if not self.fstats.frames:  # counting starts here, whether or not a broker is up
                    log.info("first frame classified %.2f s after start", now - self.started_at)
                self.fstats.record(r.timing_ms["invoke"], now)
                if r.changed is not None:
                    self._on_change(r, r.changed)
                if self._taps:
                    self._tap("result", r)
                if min_gap is not None and self.link is not None and now - last_pred >= min_gap:
                    if self.link.publish_now("prediction", r.prediction(), qos=0):
                        last_pred = now
                        if self.first_prediction_at is None:
                            self.first_prediction_at = now
                            log.info("first prediction published %.2f s after start",
                                     now - self.started_at)
                if wd_every is not None and now - last_wd >= wd_every:
                    self.notifier.watchdog()
                    last_wd = now
                if not ready and (self.link is None or self.link.connected.is_set()
                                  or now - self.started_at >= READY_MQTT_WAIT_S):
                    ready = True
                    self.notifier.ready(f"classifying with {r.model}")
                    log.info("ready: %s on %s", r.model, self.camera.source.name)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self.stop_event.set()
        log.info("stopping%s", f" ({self._stopped_by})" if self._stopped_by else "")
        self._stats_now.set()
        self.notifier.stopping()
        for t in self._threads:
            if t.name == "stats":
                t.join(0.5)  # a report in progress reads what the hooks below close
        for fn in self._shutdown_hooks:
            try:
                fn()
            except Exception:
                log.exception("shutdown hook failed")
        self.camera.stop(timeout=0.5)
        if self.link is not None:
            self.link.stop(timeout=1.3)
        for t in self._threads:
            t.join(0.3)
        log.info("stopped")


def run_daemon(cfg: Config, mqtt_enabled: bool = True, print_changes: bool = False,
               duration: Optional[float] = None) -> int:
    for sig in IGNORED_SIGNALS:  # while the model loads, before the logging handlers
        signal.signal(sig, signal.SIG_IGN)
    d = Daemon(cfg, mqtt_enabled=mqtt_enabled, print_to=sys.stdout if print_changes else None)
    start_web_page(d)
    d.install_signal_handlers()
    return d.run(duration)


def start_web_page(d: Daemon) -> None:
    """The web page when web.listen is set (edge.web), its address printed with --print;
    ConfigError (one line) if it cannot listen there."""
    if d.cfg.web.listen is None:
        return
    from edge.web import start_web  # aiohttp only where the page is wanted

    web = start_web(d, d.cfg)
    if d.print_to is not None and web is not None:
        print(f"web page: {web.url}", file=d.print_to, flush=True)
