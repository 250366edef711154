"""Buttons and LED through gpiozero's own MockFactory (pins pressed with drive_low/drive_high)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.config import GPIOSection
from edge.errors import SampleError
from edge.gpio import ACK, REFUSE, GpioControls, open_controls
from edge.samples import SampleStore
from tests.conftest import HANDS

LABELS = ["0", "1", "2", "3", "4", "5", "none"]


def cfg(**kw: object) -> GPIOSection:
    return GPIOSection(capture_pin=17, label_pin=27, led_pin=22, hold_s=0.4, bounce_s=None, **kw)


def blinks(pin, settle: float = 1.0, timeout: float = 10.0) -> int:
    """Wait until the LED has changed since its states were last cleared and then stayed off
    for `settle` s, and count how often it went on. `settle` is twice the longest off-time
    (BUSY's 0.5 s), so a gap between blinks, or a blink not started yet on a busy machine,
    is not taken for the end."""
    deadline = time.monotonic() + timeout
    last = -1
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        n = len(pin.states)
        if n != last:
            last, stable_since = n, time.monotonic()
        elif n > 1 and time.monotonic() - stable_since > settle and not pin.state:
            break
        time.sleep(0.02)
    return sum(1 for s in pin.states[1:] if s.state)


def press(pin, hold: float = 0.05) -> None:
    pin.drive_low()  # pull_up: pressed connects the pin to ground
    time.sleep(hold)
    pin.drive_high()


def frame(label: str = "3") -> np.ndarray:
    p = sorted((HANDS / label).glob("*.JPG"))[0]
    return cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)


def test_label_button_cycles_and_led_blinks_the_count(mock_factory: MockFactory) -> None:
    chosen: list[str] = []
    ctl = GpioControls(cfg(), labels=lambda: LABELS, on_capture=lambda lab: True, on_retrain=lambda: None,
                       on_label=chosen.append, initial_label="2")
    led, button = mock_factory.pin(22), mock_factory.pin(27)
    try:
        led.clear_states()
        press(button)
        assert blinks(led) == 3 and ctl.label == "3"
        ctl.set_label("5")
        blinks(led)
        led.clear_states()
        press(button)
        # "none" has no count: one long blink
        assert blinks(led) == 1 and ctl.label == "none"
        assert max(s.timestamp for s in led.states[1:]) > 0.8
        press(button)
        blinks(led)
        assert ctl.label == "0"  # wraps around
        assert chosen[-3:] == ["3", "none", "0"]
    finally:
        ctl.close()


def test_capture_button_stores_durably_before_the_led_acknowledges(mock_factory: MockFactory,
                                                                   tmp_path: Path) -> None:
    led = mock_factory.pin(22)
    store = SampleStore(tmp_path)
    lit_while_saving: list[bool] = []

    def on_capture(label: str) -> bool:
        s = store.add(frame("3"), label, source="button")
        # the sample is on disk and indexed, and the LED has not said anything yet
        lit_while_saving.append(bool(led.state) or len(led.states) > 1)
        assert s.path.is_file() and store.counts() == {label: 1}
        return True

    ctl = GpioControls(cfg(), labels=lambda: LABELS, on_capture=on_capture, on_retrain=lambda: None,
                       initial_label="3")
    try:
        led.clear_states()
        press(mock_factory.pin(17))
        assert blinks(led) == ACK[2]
        assert lit_while_saving == [False]
        assert store.counts() == {"3": 1}
        assert store.list()[0].source == "button"
    finally:
        ctl.close()
        store.close()


def test_refused_capture_has_a_different_pattern(mock_factory: MockFactory, tmp_path: Path) -> None:
    store = SampleStore(tmp_path)

    def on_capture(label: str) -> bool:
        try:
            store.add(frame(), label)
        except SampleError:
            return False
        return True

    ctl = GpioControls(cfg(), labels=lambda: ["bad/label"], on_capture=on_capture, on_retrain=lambda: None)
    led = mock_factory.pin(22)
    try:
        led.clear_states()
        press(mock_factory.pin(17))
        assert blinks(led) == REFUSE[2] != ACK[2]
        assert len(store) == 0
    finally:
        ctl.close()
        store.close()


def test_holding_capture_retrains_instead_of_capturing(mock_factory: MockFactory, tmp_path: Path) -> None:
    store = SampleStore(tmp_path)
    retrained = threading.Event()
    ctl = GpioControls(cfg(), labels=lambda: LABELS, on_retrain=retrained.set,
                       on_capture=lambda lab: store.add(frame(), lab) is not None, initial_label="1")
    try:
        # held until gpiozero's hold thread has fired (hold_s is 0.4 here), however late it wakes
        pin = mock_factory.pin(17)
        pin.drive_low()
        try:
            assert retrained.wait(10)
        finally:
            pin.drive_high()
        time.sleep(0.2)
        assert len(store) == 0  # a hold is not also a capture
        press(mock_factory.pin(17))  # a short press afterwards is a capture again
        deadline = time.monotonic() + 3
        while len(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.counts() == {"1": 1}
    finally:
        ctl.close()
        store.close()


def test_no_gpio_hardware_means_one_log_line_and_no_controls(caplog: pytest.LogCaptureFixture) -> None:
    saved = Device.pin_factory
    Device.pin_factory = None  # as on an x86 box: gpiozero looks for a real pin library
    try:
        with caplog.at_level(logging.INFO, logger="edge.gpio"):
            ctl = open_controls(cfg(), labels=lambda: LABELS, on_capture=lambda lab: True,
                                on_retrain=lambda: None)
    finally:
        Device.pin_factory = saved
    assert ctl is None
    lines = [r for r in caplog.records if r.name == "edge.gpio"]
    assert len(lines) == 1 and "running without buttons" in lines[0].getMessage()


def test_disabled_gpio_opens_nothing(mock_factory: MockFactory) -> None:
    assert open_controls(cfg(enabled=False), labels=lambda: LABELS, on_capture=lambda lab: True,
                         on_retrain=lambda: None) is None
