"""Personalisation inside the daemon: capture / set_label / retrain / rollback commands and GPIO.

The daemon calls attach(daemon) once at startup. Everything here works on the daemon's
public API only (cfg, classifier, latest_frame, swap_classifier, publish_event,
register_command, add_stats_provider, publish_stats_soon, refresh_discovery, capture_labels,
add_shutdown_hook, add_swap_hook, stop_event), so the same Personalizer can be driven by a test double of
that API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional

from edge import choices
from edge.counting import Counter
from edge.durable import read_json, write_json
from edge.errors import CommandError, FingercountError, RetrainError, SampleError
from edge.gpio import GpioControls, open_controls
from edge.head_watch import HeadWatch
from edge.heads import finish_head_swap, rollback
from edge.retrain import RetrainCancelled, RetrainResult, retrain
from edge.runtime.classifier import label_count
from edge.runtime.loader import reload_counter
from edge.sample_features import hand_identity, stored_hand
from edge.samples import SampleStore, StoredHand, open_store, validate_label

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_S = 0.5  # retrain_progress events are throttled to this
FRESH_FRAME_S = 2.0  # how long a capture waits for a frame it has not stored yet
# At stop a running retrain is cancelled (within a step) and waited for this long: the daemon
# must exit within 2 s of SIGTERM, well inside the unit's TimeoutStopSec.
RETRAIN_STOP_WAIT_S = 1.0
CANCELLED = "cancelled: the daemon is stopping"
# In the state dir while a retrain runs: one a power cut or kill -9 cut short is reported
# (retrain_finished, ok false, interrupted) when the daemon starts again.
RUNNING_FILE = "retrain.running"


def only(body: dict, allowed: set[str]) -> None:
    extra = set(body) - allowed
    if extra:
        raise CommandError(f"unexpected field(s): {', '.join(sorted(extra))}")


def check_label(label: Any, classifier: Counter) -> str:
    """A valid label this model can learn: any label for a retrainable model, its own otherwise."""
    label = validate_label(label)
    if not classifier.package.retrainable and label not in classifier.labels:
        raise SampleError(f"label {label!r} is not one of {classifier.package.name}'s labels "
                          f"({', '.join(classifier.labels)}) and the model cannot learn new ones")
    return label


class Personalizer:
    def __init__(self, daemon: Any, gpio: bool = True, pin_factory: Any = None):
        self.daemon = daemon
        self.cfg = daemon.cfg
        self._store_lock = threading.Lock()
        self._store: Optional[SampleStore] = None
        try:
            self._store = open_store(self.cfg)
        except Exception as e:  # e.g. a full disk at boot: counting must not depend on it
            if not isinstance(e, SampleError):  # a bug, not a reason: keep the traceback
                log.exception("cannot open the sample store")
            log.error("%s; counting goes on, capture and retrain are refused until it opens", e)
            daemon.publish_event("error", where="samples", message=str(e))
        self._retrain_thread: Optional[threading.Thread] = None
        self.heads = HeadWatch(daemon, self._reload, busy=lambda: self.retraining)
        self._finish_head_swap()
        self._report_cut_short()
        self._label_lock = threading.Lock()
        self.label = self._restored_label()
        self._retrain_lock = threading.Lock()
        self._capture_lock = threading.Lock()  # button and MQTT captures, one at a time
        self._captured_seq: Optional[int] = None
        self._hand_id: Optional[str] = None  # the hand stage's identity in the sample store
        self.last_result: Optional[dict] = None
        self.gpio: Optional[GpioControls] = None
        if gpio:
            kw = {"pin_factory": pin_factory} if pin_factory is not None else {}
            self.gpio = open_controls(self.cfg.gpio, labels=self._labels, on_capture=self._button_capture,
                                      on_retrain=self._button_retrain, on_label=self._button_label,
                                      initial_label=self.label, **kw)

    @property
    def store(self) -> SampleStore:
        """The sample store, opened again on use if it could not be opened before (a full
        disk at boot that has room now); SampleError refuses the command that needed it."""
        with self._store_lock:
            if self._store is None:
                self._store = open_store(self.cfg)
                log.info("sample store %s opened", self._store.root)
            return self._store

    def _finish_head_swap(self) -> None:
        """A head change that a crash cut short is finished now, and the daemon runs its result."""
        clf = self.daemon.classifier
        if not clf.package.retrainable:
            return
        try:
            with self.heads.lock:
                if finish_head_swap(self.cfg, clf.package):
                    log.warning("finished a head change that was interrupted")
                    self.daemon.swap_classifier(self._reload(clf), replacing=clf)
                self.heads.note()
        except FingercountError as e:
            log.error("%s; counting goes on with the head it has", e)
            self.daemon.publish_event("error", where="head", message=str(e))

    def _running_file(self) -> Path:
        return Path(self.cfg.state_dir) / RUNNING_FILE

    def _mark_running(self, info: dict) -> None:
        path = self._running_file()
        try:
            write_json(path, info)  # a power cut is what it is there for
        except OSError as e:
            log.warning("cannot write %s (%s): a retrain cut short by a power cut would go unreported",
                        path, e.strerror or e)

    def _report_cut_short(self) -> None:
        """A retrain that the last run did not finish (power cut, kill -9) gets its
        retrain_finished now, so a dashboard waiting on it is not left waiting."""
        path = self._running_file()
        if not path.exists():
            return
        try:
            info = read_json(path)
        except (OSError, ValueError):
            info = {}  # cut short while being written: still a retrain that did not finish
        when = info.get("started", "?")
        msg = (f"interrupted: the daemon stopped during the retrain started {when} "
               f"(a power cut or a kill); counting with {self.daemon.classifier.model_id}")
        log.warning("%s", msg)
        self.daemon.publish_event("retrain_finished", ok=False, model=info.get("model"), error=msg,
                                  interrupted=True)
        with contextlib.suppress(OSError):
            path.unlink()

    def _counts(self) -> Optional[dict[str, int]]:
        try:
            return self.store.counts()
        except SampleError:
            return None

    # ---- labels ------------------------------------------------------------------------

    def _labels(self) -> list[str]:
        """The model's labels, then labels that exist only as samples (if it can learn them)."""
        clf = self.daemon.classifier
        out = list(clf.labels)
        if clf.package.retrainable:
            out += [lab for lab in (self._counts() or {}) if lab not in out]
        return out

    def _restored_label(self) -> str:
        """The label chosen before the last restart, if this model can still take it."""
        first = next(iter(self._labels()), "0")
        saved = choices.load(self.cfg.state_dir).get("capture_label")
        if saved is None:
            return first
        try:
            return check_label(saved, self.daemon.classifier)
        except SampleError as e:
            log.warning("not restoring the capture label: %s; capturing as %r", e, first)
            return first

    def _on_swap(self, new: Counter) -> None:
        """After a swap to a model that cannot take the chosen label: the model's first label
        (the swap refreshes discovery and stats right after this)."""
        try:
            check_label(self.label, new)
        except SampleError:
            first = next(iter(self._labels()), "0")
            log.info("capture label %r does not fit %s: it is now %r", self.label, new.model_id, first)
            self._choose(first, announce=False)
            if self.gpio is not None:
                self.gpio.set_label(first)

    def capture_labels(self) -> list[str]:
        """What Home Assistant's label select offers: every label, and the chosen one."""
        out = self._labels()
        return out if self.label in out else [*out, self.label]

    def _choose(self, label: str, announce: bool = True) -> None:
        with self._label_lock:  # the label in memory and in choices.json stay the same
            before = self.capture_labels()
            self.label = label
            choices.save(self.cfg.state_dir, capture_label=label)  # a restart keeps it
            changed = self.capture_labels() != before
        if announce:
            if changed:
                self.daemon.refresh_discovery()  # the select's options grow, or lose a label left behind
            self.daemon.publish_stats_soon()

    def set_label(self, payload: dict) -> dict:
        only(payload, {"label"})
        label = check_label(payload.get("label"), self.daemon.classifier)
        self._choose(label)
        if self.gpio is not None:
            self.gpio.set_label(label)
        return {"label": label, "count": label_count(label)}

    # ---- capture -----------------------------------------------------------------------

    def capture(self, payload: dict, source: str = "mqtt") -> dict:
        only(payload, {"label"})
        label = payload.get("label", self.label)
        try:
            label = check_label(label, self.daemon.classifier)
            new_label = label not in self.capture_labels()
            with self._capture_lock:
                frame, ts, seq, hand = self._frame_to_store()
                sample = self.store.add(frame, label, source=source, hand=hand)
                self._captured_seq = seq
        except SampleError as e:
            shown = label if isinstance(label, str) else json.dumps(label)  # true, not Python's True
            self.daemon.publish_event("error", where="capture", label=shown[:40], message=str(e))
            raise
        counts = self.store.counts()
        data = {"label": label, "count": label_count(label), "path": str(sample.path),
                "sha256": sample.sha256, "source": source, "frame_seq": seq, "frame_ts": ts,
                "samples": counts}
        if hand is not None:  # behind the hand stage: did this sample show a hand
            data["hand"] = hand.landmarks is not None
        self.daemon.publish_event("sample_captured", **data)
        if new_label:
            self.daemon.refresh_discovery()
        self.daemon.publish_stats_soon()
        return data

    def _frame_to_store(self) -> tuple[Any, float, int, Optional[StoredHand]]:
        """The next frame the pipeline counts after the one stored last, with the hand it found
        there (what the user saw counted). Paused, the pipeline counts nothing: then the
        camera's next frame, whose hand the retrain finds."""
        deadline = time.monotonic() + FRESH_FRAME_S
        while not self.daemon.paused.is_set() and time.monotonic() < deadline:
            r = self.daemon.last_result
            if r is not None and r.seq != self._captured_seq:
                ident = self._hand_identity() if r.hand_info is not None else None
                hand = stored_hand(ident, r.hand) if ident is not None else None
                return r.frame.rgb, r.frame.ts, r.seq, hand
            time.sleep(0.005)
        return (*self._fresh_frame(), None)

    def _hand_identity(self) -> Optional[str]:
        if self._hand_id is None:
            try:
                self._hand_id = hand_identity(self.cfg)
            except FingercountError:
                self._hand_id = ""
        return self._hand_id or None

    def _fresh_frame(self) -> tuple[Any, float, int]:
        """The newest frame, but never the one stored last: a burst of captures (automation,
        a double press) would otherwise store one frame several times and weigh it that much
        more in the retrain. Waits up to FRESH_FRAME_S for the camera's next frame."""
        deadline = time.monotonic() + FRESH_FRAME_S
        while True:
            latest = self.daemon.latest_frame()
            if latest is not None and latest[2] != self._captured_seq:
                return latest
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        if latest is None:
            raise SampleError("no camera frame yet: capture refused")
        raise SampleError(f"no new camera frame within {FRESH_FRAME_S:.0f} s of the last capture: "
                          "capture refused (the camera may have stalled)")

    # ---- retrain / rollback --------------------------------------------------------------

    @property
    def retraining(self) -> bool:
        return self._retrain_thread is not None and self._retrain_thread.is_alive()

    def start_retrain(self, force: bool = False, source: str = "mqtt") -> threading.Thread:
        """Run retraining in a background thread (classification continues meanwhile)."""
        with self._retrain_lock:
            if self.retraining:
                raise CommandError("a retrain is already running")
            done = threading.Event()
            box: dict = {}
            t = threading.Thread(target=self._retrain_job, args=(force, source, box, done),
                                 name="retrain", daemon=True)
            t.done = done  # type: ignore[attr-defined]
            t.box = box  # type: ignore[attr-defined]
            self._retrain_thread = t
            t.start()
            return t

    def retrain(self, payload: dict) -> dict:
        """MQTT `retrain {"force"?: bool, "wait"?: bool}`: result data when finished
        (wait, the default) or {"started": true} at once (wait: false)."""
        only(payload, {"force", "wait"})
        force = payload.get("force", False)
        wait = payload.get("wait", True)
        if not isinstance(force, bool) or not isinstance(wait, bool):
            raise CommandError("retrain: 'force' and 'wait' must be true or false")
        t = self.start_retrain(force, "mqtt")
        if not wait:
            return {"started": True}
        t.done.wait()  # type: ignore[attr-defined]
        box = t.box  # type: ignore[attr-defined]
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _retrain_job(self, force: bool, source: str, box: dict, done: threading.Event) -> None:
        clf = self.daemon.classifier
        pkg, precision = clf.package, clf.precision
        last = [0.0]

        def progress(phase: str, frac: float, detail: dict) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_MIN_INTERVAL_S or frac >= 1.0:
                last[0] = now
                self.daemon.publish_event("retrain_progress", phase=phase, progress=round(min(frac, 1.0), 3),
                                          **detail)

        try:
            self._mark_running({"model": pkg.name, "source": source,
                                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            self.daemon.publish_event("retrain_started", model=pkg.name, precision=precision, force=force,
                                      source=source, samples=self.store.counts())
            # the daemon's stop cancels it: nothing is installed, embeddings made are kept
            result: RetrainResult = retrain(self.cfg, pkg, self.store, precision, force, progress,
                                            cancel=self.daemon.stop_event)
            data = result.to_dict()
            if result.swapped:
                with self.heads.lock:
                    now = self.daemon.classifier
                    # with the precision it runs now; a set_model meanwhile stands, and the head
                    # waits for this model's return
                    if now.package.root != pkg.root or \
                            not self.daemon.swap_classifier(self._reload(now), replacing=now):
                        log.info("retrained head of %s installed; the daemon runs %s since, and keeps it",
                                 pkg.name, self.daemon.classifier.model_id)
                    self.heads.note()
            self.daemon.publish_event("retrain_finished", ok=True, **data)
            self.daemon.publish_stats_soon()
            self.last_result = data
            box["result"] = data
        except RetrainCancelled as e:
            log.info("the daemon is stopping: %s", e)
            self.daemon.publish_event("retrain_finished", ok=False, model=pkg.name, error=CANCELLED,
                                      cancelled=True)
            box["error"] = RetrainError(f"retrain {CANCELLED}")
        except FingercountError as e:
            self.daemon.publish_event("retrain_finished", ok=False, model=pkg.name, error=str(e))
            self.daemon.publish_event("error", where="retrain", message=str(e))
            box["error"] = e
        except Exception as e:  # a bug must not kill the daemon; report it as one line
            log.exception("retrain failed")
            err = RetrainError(f"retrain failed: {type(e).__name__}: {e}")
            self.daemon.publish_event("retrain_finished", ok=False, model=pkg.name, error=str(err))
            box["error"] = err
        finally:
            with contextlib.suppress(OSError):
                self._running_file().unlink(missing_ok=True)
            done.set()
            if source == "button" and self.gpio is not None:
                self.gpio.ack() if box.get("result", {}).get("swapped") else self.gpio.refuse()

    def _reload(self, clf: Counter) -> Counter:
        """The same model, precision and hand stage with whatever head is now current."""
        return reload_counter(self.cfg, clf)

    def rollback(self, payload: dict) -> dict:
        only(payload, set())
        if self.retraining:
            raise CommandError("a retrain is running; roll back when it has finished")
        clf = self.daemon.classifier
        with self.heads.lock:
            data = rollback(self.cfg, clf.package)
            self.daemon.swap_classifier(self._reload(clf), replacing=clf)
            self.heads.note()
        return data

    # ---- GPIO ---------------------------------------------------------------------------

    def _button_capture(self, label: str) -> bool:
        try:
            self.capture({"label": label}, source="button")
            return True
        except FingercountError as e:
            log.warning("button capture refused: %s", e)
            return False

    def _button_retrain(self) -> None:
        if self.gpio is not None:
            self.gpio.busy()  # before starting: a quick retrain's ack/refuse must come last
        try:
            self.start_retrain(False, "button")
        except FingercountError as e:
            self.daemon.publish_event("error", where="retrain", message=str(e))
            if self.gpio is not None:
                self.gpio.refuse()

    def _button_label(self, label: str) -> None:
        self._choose(label)
        self.daemon.publish_event("label_selected", label=label, count=label_count(label), source="button")

    # ---- stats / shutdown ---------------------------------------------------------------

    def stats(self) -> dict:
        return {"samples": self._counts(), "capture_label": self.label, "retraining": self.retraining}

    def close(self) -> None:
        if self.gpio is not None:
            self.gpio.close()
            self.gpio = None
        t = self._retrain_thread
        if t is not None and t.is_alive():  # the daemon's stop_event has cancelled it
            log.info("waiting up to %g s for the retrain to stop", RETRAIN_STOP_WAIT_S)
            t.join(RETRAIN_STOP_WAIT_S)
            if t.is_alive():  # its store stays open under it: the process is ending anyway
                log.warning("the retrain did not stop within %g s; exiting without it", RETRAIN_STOP_WAIT_S)
                return
        with self._store_lock:
            if self._store is not None:
                self._store.close()


def attach(daemon: Any) -> Personalizer:
    """Register capture, set_label, retrain and rollback; set up GPIO; return the Personalizer."""
    p = Personalizer(daemon)
    daemon.register_command("capture", p.capture)
    daemon.register_command("set_label", p.set_label)
    daemon.register_command("retrain", p.retrain, slow=True)
    daemon.register_command("rollback", p.rollback)
    daemon.add_stats_provider(p.stats)
    daemon.capture_labels = p.capture_labels
    daemon.add_shutdown_hook(p.close)
    daemon.add_swap_hook(p._on_swap)
    p.heads.start()
    return p
