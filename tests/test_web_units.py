"""The web page's parts on their own: config rules, drawing the hand, decoding the canvas PNG,
the per-page event queue, the export's package and the hub's encoder."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.web.digits import decode_png
from edge.web.draw import draw_hand, render
from edge.web.hub import QUEUE_PER_CLIENT, LiveHub, Subscriber


def web(**kw: Any) -> Any:
    return load_config(None, {"web": kw}, environ={}).web


def test_listen_forms_and_the_loopback_rule(tmp_path: Path) -> None:
    assert web(listen="8080").listen == "127.0.0.1:8080"
    assert web(listen=8080).listen == "127.0.0.1:8080"
    assert web(listen="localhost:81").listen == "localhost:81"
    assert web(listen="[::1]:81").listen == "[::1]:81"
    assert web(listen="off").listen is None and web().listen is None
    for bad, text in (("host:0", "1..65535"), ("host:x", "1..65535"), (":80", "no host"), ("::1:80", "HOST:PORT")):
        with pytest.raises(ConfigError, match=text):
            web(listen=bad)
    with pytest.raises(ConfigError, match="password_file"):
        web(listen="0.0.0.0:8080")
    pw = tmp_path / "pw"
    pw.write_text("short\n")
    cfg = web(listen="0.0.0.0:8080", password_file=str(pw))  # allowed; the password is read at start
    with pytest.raises(ConfigError, match="at least 8"):
        cfg.password()
    pw.write_text("long enough password\nignored second line\n")
    assert cfg.password() == "long enough password"
    with pytest.raises(ConfigError, match="password_file"):
        web(listen="0.0.0.0:8080", password_file=str(tmp_path / "missing")).password()


@dataclass
class Hand:
    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float = 0.9
    handedness: str = "Right"


def test_the_hand_is_drawn_where_it_is_in_the_frame() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0] = np.linspace(220, 420, 21)
    lm[:, 1] = np.linspace(120, 360, 21)
    hand = Hand((200, 100, 440, 380), lm)
    img = np.zeros((240, 320, 3), np.uint8)
    draw_hand(img, hand, 0.5)
    assert img[50, 100:220].any() and img[190, 100:220].any()  # the box's top and bottom edges
    assert img[60:180, 110:210].any()  # landmarks and bones inside it
    assert not img[:40].any() and not img[:, :90].any()  # nothing outside the box
    blank = np.zeros_like(img)
    draw_hand(blank, None, 0.5)  # no hand stage yet, or no hand: the frame as it is
    draw_hand(blank, SimpleNamespace(present=False, box=(0, 0, 10, 10), landmarks=lm), 0.5)
    assert not blank.any()
    jpeg = render(frame, hand, 320, 70)
    out = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (240, 320, 3) and out[50, 100:220].max() > 100


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def test_canvas_png_decoding() -> None:
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[10:18, 12:16] = (255, 255, 255, 255)  # an opaque white stroke on transparent
    rgb = decode_png(png(rgba))
    assert rgb.shape == (28, 28, 3) and rgb[12, 13].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [0, 0, 0]
    assert decode_png(png(np.full((5, 5), 200, np.uint8)))[0, 0].tolist() == [200, 200, 200]
    with pytest.raises(ValueError, match="not a PNG"):
        decode_png(b"\xff\xd8\xff\xe0 a jpeg")
    with pytest.raises(ValueError, match="at most 1024x1024"):
        decode_png(png(np.zeros((1100, 20), np.uint8)))
    with pytest.raises(ValueError, match="not a readable PNG"):
        decode_png(png(np.zeros((8, 8), np.uint8))[:40])


def test_a_slow_page_loses_its_oldest_events_not_the_daemon() -> None:
    async def run() -> None:
        hub = LiveHub(SimpleNamespace(), web())
        sub = Subscriber(hub)
        for i in range(QUEUE_PER_CLIENT + 10):
            sub.put(f"m{i}")
        assert sub.queue.qsize() == QUEUE_PER_CLIENT and sub.dropped == 10 == hub.events_dropped
        assert sub.queue.get_nowait() == "m10"  # the oldest went
    asyncio.run(run())


class FakeFrame:
    def __init__(self) -> None:
        self.rgb = np.zeros((480, 640, 3), np.uint8)


def test_the_encoder_keeps_to_web_fps_and_stops_when_nobody_watches() -> None:
    """A real encoder thread on a loop: results at 50 per second, JPEGs at web.fps."""
    loop = asyncio.new_event_loop()
    hub = LiveHub(SimpleNamespace(), web(fps=5))
    hub.start(loop)
    r = SimpleNamespace(frame=FakeFrame())
    try:
        for _ in range(50):  # nobody watches: nothing kept, nothing encoded
            hub.tap("result", r)
        time.sleep(0.3)
        assert hub.encoded == 0 and hub._result is None
        hub.add_viewer()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            hub.tap("result", r)
            loop.run_until_complete(asyncio.sleep(0.02))
        hub.remove_viewer()
        made = hub.encoded
        assert 7 <= made <= 12, made  # ~5 fps over 2 s
        for _ in range(30):
            hub.tap("result", r)
            loop.run_until_complete(asyncio.sleep(0.02))
        assert hub.encoded <= made + 1
        assert hub.jpeg is not None and hub.jpeg.startswith(b"\xff\xd8")
    finally:
        hub.stop()
        loop.close()
