"""Buttons and the status LED (gpiozero, BCM numbering, pins from cfg.gpio).

capture button: press = capture one frame with the current label; hold gpio.hold_s = retrain.
label button:   press = next label; the LED blinks the label's count (one long blink for
                labels without a count, e.g. "0" or "none").
status LED:     acknowledges a capture only once the sample is durable (two short blinks);
                a refusal is a fast flicker, so the two cannot be mistaken. While a
                button-started retrain runs it blinks slowly, then acks (swapped) or flickers.

The callbacks run in gpiozero's own threads; they must not block for long (retraining
is started in the background by the caller).
"""

from __future__ import annotations

import glob
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any, Optional

from edge.config import GPIOSection
from edge.runtime.classifier import label_count

log = logging.getLogger(__name__)

# LED patterns: (on_time, off_time, n)
ACK = (0.15, 0.15, 2)
REFUSE = (0.05, 0.05, 8)
COUNT_BLINK = (0.25, 0.25)
LONG_BLINK = (1.0, 0.2, 1)
BUSY = (0.5, 0.5, None)  # slow blink while retraining (until ack/refuse replaces it)

# A board with a GPIO header has GPIO character devices; a PC or a container has none.
GPIO_CHIPS = "/dev/gpiochip*"


def blink_pattern(label: str) -> tuple[float, float, int]:
    n = label_count(label)
    if n:
        return COUNT_BLINK[0], COUNT_BLINK[1], n
    return LONG_BLINK


class GpioControls:
    """Wires gpiozero devices to the personalisation actions."""

    def __init__(self, cfg: GPIOSection, labels: Callable[[], list[str]],
                 on_capture: Callable[[str], bool], on_retrain: Callable[[], None],
                 on_label: Optional[Callable[[str], None]] = None, initial_label: Optional[str] = None,
                 pin_factory: Any = None):
        from gpiozero import LED, Button

        self.cfg = cfg
        self._labels = labels
        self._on_capture = on_capture
        self._on_retrain = on_retrain
        self._on_label = on_label
        self._lock = threading.Lock()
        self.label = initial_label or (labels() or ["0"])[0]
        self._held = False
        self.devices: list[Any] = []
        kw = {"pin_factory": pin_factory} if pin_factory is not None else {}
        try:
            self.led = LED(cfg.led_pin, **kw) if cfg.led_pin is not None else None
            if self.led is not None:
                self.devices.append(self.led)
            self.capture_button = None
            if cfg.capture_pin is not None:
                self.capture_button = Button(cfg.capture_pin, pull_up=cfg.pull_up, bounce_time=cfg.bounce_s,
                                             hold_time=cfg.hold_s, **kw)
                self.devices.append(self.capture_button)
                self.capture_button.when_pressed = self._capture_pressed
                self.capture_button.when_held = self._capture_held
                self.capture_button.when_released = self._capture_released
            self.label_button = None
            if cfg.label_pin is not None:
                self.label_button = Button(cfg.label_pin, pull_up=cfg.pull_up, bounce_time=cfg.bounce_s, **kw)
                self.devices.append(self.label_button)
                self.label_button.when_pressed = self._label_pressed
        except Exception:
            self.close()
            raise

    # ---- button handlers (gpiozero threads) -------------------------------------------

    def _capture_pressed(self) -> None:
        self._held = False

    def _capture_held(self) -> None:
        self._held = True
        log.info("capture button held: retraining")
        self._on_retrain()

    def _capture_released(self) -> None:
        if self._held:  # the hold already retrained; a release after a hold is not a capture
            self._held = False
            return
        ok = False
        try:
            ok = bool(self._on_capture(self.label))
        except Exception as e:  # the handler reports its own errors; never kill the GPIO thread
            log.warning("capture from button failed: %s", e)
        self.ack() if ok else self.refuse()

    def _label_pressed(self) -> None:
        with self._lock:
            labels = self._labels() or [self.label]
            i = labels.index(self.label) + 1 if self.label in labels else 0
            self.label = labels[i % len(labels)]
        self.show_label(self.label)
        if self._on_label is not None:
            self._on_label(self.label)

    # ---- LED ------------------------------------------------------------------------

    def set_label(self, label: str) -> None:
        with self._lock:
            self.label = label
        self.show_label(label)

    def _blink(self, on: float, off: float, n: Optional[int]) -> None:
        if self.led is not None:
            self.led.blink(on_time=on, off_time=off, n=n, background=True)

    def show_label(self, label: str) -> None:
        self._blink(*blink_pattern(label))

    def ack(self) -> None:
        self._blink(*ACK)

    def refuse(self) -> None:
        self._blink(*REFUSE)

    def busy(self) -> None:
        self._blink(*BUSY)

    def close(self) -> None:
        for d in self.devices:
            try:
                d.close()
            except Exception:
                pass
        self.devices.clear()


def open_controls(cfg: GPIOSection, **kw: Any) -> Optional[GpioControls]:
    """GpioControls, or None (with one log line) where there is no GPIO or it is disabled."""
    if not cfg.enabled:
        log.info("GPIO disabled in config")
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gpiozero warns once per factory it falls back from
            return GpioControls(cfg, **kw)
    except ImportError as e:  # gpiozero missing, or BadPinFactory (an ImportError) off a Pi
        # A PC has no GPIO to miss: one INFO line. A board with GPIO chips that cannot be
        # used (no pin library installed) is worth a warning.
        level = logging.WARNING if glob.glob(GPIO_CHIPS) else logging.INFO
        log.log(level, "no GPIO on this machine (%s): running without buttons and LED", e)
    except Exception as e:  # pin busy, no permission, ...
        log.warning("GPIO unavailable (%s: %s): running without buttons and LED", type(e).__name__, e)
    return None
