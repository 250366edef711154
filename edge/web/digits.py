"""POST /api/digits: a PNG drawn on the page -> the digit model's labels and scores.

The PNG is only decoded to RGB here (transparent pixels count as black, the canvas's
background); the digit package's own preprocessing (Classifier.preprocess) does the rest.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

import cv2
import numpy as np

from edge.config import Config
from edge.runtime.classifier import Classifier
from edge.runtime.package import package_by_name

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 1024


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> RGB uint8; ValueError (one line) for anything else or a huge image."""
    if not data.startswith(PNG_MAGIC) or len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image (send the canvas as image/png)")
    w, h = struct.unpack(">II", data[16:24])
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise ValueError(f"PNG of {w}x{h} pixels: at most {MAX_SIDE}x{MAX_SIDE}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a readable PNG image")
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (img[:, :, :3].astype(np.float32) * alpha).astype(np.uint8)  # over black
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class DigitReader:
    """The digit model, loaded on first use per precision (one interpreter each, one call at a time)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._lock = threading.Lock()
        self._models: dict[str, Classifier] = {}

    def _classifier(self, precision: str) -> Classifier:
        if precision not in self._models:
            pkg = package_by_name(self.cfg.web.digits_model, self.cfg.resolved_models_dir())
            if precision not in pkg.variants:
                raise ValueError(f"{pkg.name} has no {precision} variant (has: {', '.join(pkg.variants)})")
            self._models[precision] = Classifier(pkg, precision, threads=1)
        return self._models[precision]

    def read(self, data: bytes, precision: str = "int8") -> dict[str, Any]:
        if precision not in ("int8", "fp16", "fp32"):
            raise ValueError("precision must be one of int8, fp16, fp32")
        rgb = decode_png(data)
        with self._lock:
            clf = self._classifier(precision)
            t0 = time.perf_counter()
            probs, timing = clf.classify(rgb)
            total = (time.perf_counter() - t0) * 1e3
        k = int(np.argmax(probs))
        return {"model": clf.model_id, "precision": precision, "labels": list(clf.labels),
                "scores": [round(float(p), 4) for p in probs], "label": clf.labels[k],
                "confidence": round(float(probs[k]), 4),
                "timing_ms": {**{key: round(v, 3) for key, v in timing.items()}, "total": round(total, 3)}}
