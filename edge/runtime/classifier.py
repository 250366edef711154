"""Classifier: a model package variant ready to score frames.

A plain model runs its fused .tflite. A retrainable model with a user head under
<state_dir>/heads/<model>/head.npz runs backbone .tflite -> numpy head instead.
A Classifier is never mutated after construction: reloading means building a new one.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edge.durable import fsync_dir
from edge.errors import ModelError
from edge.runtime.digits import mnist_like
from edge.runtime.interpreter import make_interpreter
from edge.runtime.package import UNLABELLED_TASKS, ModelPackage
from edge.runtime.preprocess import prepare

log = logging.getLogger(__name__)

HEAD_FILE = "head.npz"
PREVIOUS_HEAD_FILE = "head.previous.npz"


def head_dir(state_dir: Path, model_name: str) -> Path:
    return Path(state_dir) / "heads" / model_name


def current_head_path(state_dir: Optional[Path], model_name: str) -> Optional[Path]:
    if state_dir is None:
        return None
    p = head_dir(state_dir, model_name) / HEAD_FILE
    return p if p.is_file() else None


def load_user_head(path: Path, package: ModelPackage) -> Head:
    """A retrained head for package's backbone; ModelError if unreadable or the wrong size."""
    head = Head.load(path)
    rt = package.retrainable or {}
    dim = int(rt.get("embedding_dim") or head.W.shape[0])
    if head.W.shape[0] != dim:
        raise ModelError(f"{path}: made for embedding size {head.W.shape[0]}, the model has {dim}")
    # An upgraded model keeps the embedding size but not its meaning: an old head on a new
    # backbone ran at 68 % where either model alone scored 100 %.
    made_for = head_info(head).get("backbone_sha256")
    ours = {e.get("sha256") for e in (rt.get("backbone") or {}).values()
            if isinstance(e, dict)} - {None}
    made_feat, want_feat = head_info(head).get("features"), rt.get("features")
    if isinstance(made_feat, str) and isinstance(want_feat, str) and made_feat != want_feat:
        raise ModelError(f"{path}: trained on landmark features {made_feat!r}, {package.name} "
                         f"{package.version} uses {want_feat!r}; retrain to make a head for these")
    if isinstance(made_for, str) and ours and made_for not in ours:
        raise ModelError(f"{path}: trained on another backbone than {package.name} {package.version}'s "
                         "(the model was upgraded or replaced); retrain to make a head for this one")
    return head


def head_info(head: Head) -> dict:
    """What a retrained head records about itself (trained_on, backbone_sha256, …); {} if none."""
    try:
        info = json.loads((head.info or {}).get("info_json") or "{}")
    except (TypeError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def check_class_scores(shape: Sequence[int], what: str) -> None:
    """A classifier's output must be one score per class ([N] or [1, N], N >= 2): anything
    else (an image, a single score) would give labels that mean nothing."""
    dims = [int(x) for x in shape]
    if len(dims) == 2 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != 1 or dims[0] < 2:
        raise ModelError(f"{what}: output shape {[int(x) for x in shape]} is not a vector of "
                         "class scores ([1, N] with N >= 2), so it cannot classify")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Head:
    """Softmax-regression head: probabilities = softmax(x @ W + b)."""

    W: np.ndarray  # (D, K) float32
    b: np.ndarray  # (K,) float32
    labels: tuple[str, ...]
    info: Optional[dict] = None

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            with open(path, "rb") as f:
                if f.read(4) != b"PK\x03\x04":
                    raise ValueError("not an .npz archive")
            with np.load(path, allow_pickle=False) as z:
                W = np.asarray(z["W"], dtype=np.float32)
                b = np.asarray(z["b"], dtype=np.float32)
                labels = tuple(str(x) for x in z["labels"])
                info = {k: z[k].item() if z[k].shape == () else z[k].tolist()
                        for k in z.files if k not in ("W", "b", "labels")}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ModelError(f"{path}: not a valid head file ({e})") from e
        if W.ndim != 2 or b.shape != (W.shape[1],) or len(labels) != W.shape[1]:
            raise ModelError(f"{path}: head shapes do not agree (W {W.shape}, b {b.shape}, {len(labels)} labels)")
        return cls(W, b, labels, info)

    def save(self, path: Path, **extra: Any) -> None:
        """Write atomically: temp file, fsync, rename."""
        import os

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, W=self.W.astype(np.float32), b=self.b.astype(np.float32),
                     labels=np.array(self.labels), **extra)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)

    def predict(self, emb: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(emb, dtype=np.float32) @ self.W + self.b)


class TFLiteModel:
    """One .tflite with a single image input; handles quantized I/O."""

    def __init__(self, data: bytes, threads: int, what: str, input_hw: tuple[int, int, int],
                 want_uint8: Optional[bool] = None):
        self.interp = make_interpreter(data, threads, what)
        self.what = what
        self.bytes = len(data)
        ind = self.interp.get_input_details()
        outd = self.interp.get_output_details()
        if len(ind) != 1 or len(outd) < 1:
            raise ModelError(f"{what}: expected one input tensor, has {len(ind)}")
        self._in = ind[0]
        self._out = outd[0]
        shape = tuple(int(s) for s in self._in["shape"])
        h, w, c = input_hw
        if shape not in ((1, h, w, c),) and not (c == 1 and shape == (1, h, w)):
            raise ModelError(f"{what}: input shape {shape} does not match model.json ({h}x{w}x{c})")
        self.in_dtype = np.dtype(self._in["dtype"])
        if want_uint8 is not None and (self.in_dtype == np.uint8) != want_uint8:
            raise ModelError(f"{what}: input dtype {self.in_dtype} is not the expected "
                             f"{'uint8' if want_uint8 else 'float32'}")
        if self.in_dtype not in (np.uint8, np.int8, np.float32):
            raise ModelError(f"{what}: unsupported input dtype {self.in_dtype}")
        self._in_index = self._in["index"]
        self._in_shape = shape
        self._out_index = self._out["index"]
        scale, zp = self._in.get("quantization", (0.0, 0))
        self._in_q = (float(scale), int(zp)) if self.in_dtype != np.float32 else None
        # A uint8 input with scale 1 / zero point 0 takes raw pixels as they are.
        self.raw_pixels = self._in_q is not None and self.in_dtype == np.uint8 and \
            abs(self._in_q[0] - 1.0) < 1e-6 and self._in_q[1] == 0
        oscale, ozp = self._out.get("quantization", (0.0, 0))
        self.out_dtype = np.dtype(self._out["dtype"])
        self._out_q = (float(oscale), int(ozp)) if self.out_dtype != np.float32 and oscale else None
        self.out_shape = [int(x) for x in self._out["shape"]]
        self.out_dim = self.out_shape[-1] if self.out_shape else 1
        # 8-bit outputs dequantise through a 256-entry table (one numpy call per frame, not 3)
        self._out_lut: Optional[np.ndarray] = None
        if self._out_q is not None and self.out_dtype.itemsize == 1:
            codes = np.arange(256, dtype=np.uint8).view(self.out_dtype).astype(np.float32)
            self._out_lut = (codes - self._out_q[1]) * self._out_q[0]
        # TFLite fixes a quantised softmax's output at scale 1/256 (zero point 0 for uint8,
        # -128 for int8): such a model outputs probabilities and needs no per-frame check.
        self.outputs_probabilities = self._out_q is not None and \
            abs(self._out_q[0] - 1 / 256) < 1e-9 and self._out_q[1] == int(np.iinfo(self.out_dtype).min)

    def _to_input(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels.reshape(self._in_shape)
        if self.raw_pixels:  # first: the shipped int8 models' per-frame case
            return x
        if self.in_dtype == np.float32:
            return x.astype(np.float32)
        assert self._in_q is not None  # float32 returned above
        scale, zp = self._in_q
        info = np.iinfo(self.in_dtype)
        return np.clip(np.round(x.astype(np.float32) / scale + zp), info.min, info.max).astype(self.in_dtype)

    def set_input(self, pixels: np.ndarray) -> None:
        self.interp.set_tensor(self._in_index, self._to_input(pixels))

    def run(self) -> np.ndarray:
        self.interp.invoke()
        out = self.interp.get_tensor(self._out_index).reshape(-1)
        if self._out_lut is not None:
            return self._out_lut[out.view(np.uint8)]
        if self._out_q is not None:
            scale, zp = self._out_q
            return (out.astype(np.float32) - zp) * scale
        return out.astype(np.float32, copy=False)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.set_input(pixels)
        return self.run()


class Classifier:
    """Scores frames with one variant of a package (and the user's head, where present)."""

    def __init__(self, package: ModelPackage, precision: str = "int8", threads: int = 2,
                 state_dir: Optional[Path] = None, roi: Optional[Sequence[int]] = None,
                 head_path: Optional[Path] = None):
        if package.task in UNLABELLED_TASKS:
            raise ModelError(f"{package.name}: a {package.task} model (part of the hand stage, "
                             "configured under hands:), not a classifier")
        if package.meta.get("counter") == "landmarks":
            raise ModelError(f"{package.name}: counts fingers from hand landmarks (after the hand "
                             "stage, edge.hands.counter.LandmarkCounter), not from a whole frame")
        self.package = package
        self.precision = precision
        self.threads = threads
        self.roi = roi
        spec = package.input
        self.input_shape = (spec.height, spec.width, spec.channels)
        want_uint8 = None if package.single_file else (precision == "int8")
        self.head: Optional[Head] = None
        # Why the user's head in state_dir is not used (unreadable, wrong size): the shipped
        # model runs instead, so a damaged file on a device costs its personalisation, not
        # the service. A head asked for by path is an error instead.
        self.head_problem: Optional[str] = None
        self.head_path = head_path or (current_head_path(state_dir, package.name)
                                       if package.retrainable else None)
        if self.head_path is None and package.retrainable and package.retrainable.get("run_head"):
            # a package exported with a retrained head (GET /api/model): its fused variants
            # predate that head, so backbone + head.npz is the model
            self.head_path = package.file_path("head")
        if self.head_path is not None:
            try:
                self.head = load_user_head(self.head_path, package)
            except ModelError as e:
                if head_path is not None:
                    raise
                self.head_problem = f"{e}; running the shipped head (retrain or rollback replaces it)"
                log.error("ignoring the retrained head: %s", self.head_problem)
                self.head_path = None
        if self.head is not None:
            self.model = TFLiteModel(package.backbone_bytes(precision), threads,
                                     f"{package.name} {precision} backbone", self.input_shape, want_uint8)
            self.labels = list(self.head.labels)
        else:
            self.model = TFLiteModel(package.variant_bytes(precision), threads,
                                     f"{package.name} {precision}", self.input_shape, want_uint8)
            self.labels = list(package.labels)
            check_class_scores(self.model.out_shape, f"{package.name} {precision}")
            if self.model.out_dim != len(self.labels):
                given = "--labels / model.labels give" if package.single_file else "model.json lists"
                raise ModelError(f"{package.name} {precision}: output has {self.model.out_dim} "
                                 f"classes, {given} {len(self.labels)} labels")

    @property
    def model_id(self) -> str:
        mid = self.package.model_id(self.precision)
        return mid + ("+head" if self.head is not None else "")

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        h, w, c = self.input_shape
        if self.package.task == "digit":  # canvas drawings and photos of ink, made MNIST-like
            return mnist_like(frame, h, w, c, self.roi)
        return prepare(frame, h, w, c, self.roi)

    def invoke(self, pixels: np.ndarray) -> np.ndarray:
        """Model-size uint8 pixels -> probabilities over self.labels."""
        out = self.model(pixels)
        if self.head is not None:
            return self.head.predict(out[None, :])[0]
        if self.model.outputs_probabilities:
            return out
        total = float(out.sum())
        if not 0.98 <= total <= 1.02:  # a model that outputs logits
            out = softmax(out)
        return out

    def classify(self, frame: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """RGB frame -> (probabilities, {"preprocess": ms, "invoke": ms})."""
        t0 = time.perf_counter()
        x = self.preprocess(frame)
        t1 = time.perf_counter()
        p = self.invoke(x)
        t2 = time.perf_counter()
        return p, {"preprocess": (t1 - t0) * 1e3, "invoke": (t2 - t1) * 1e3}


class Backbone:
    """image -> embedding, for retraining (its own interpreter: never shared across threads)."""

    def __init__(self, package: ModelPackage, precision: str = "int8", threads: int = 2,
                 roi: Optional[Sequence[int]] = None):
        if not package.retrainable:
            raise ModelError(f"{package.name}: not a retrainable model (no backbone/head split)")
        spec = package.input
        self.input_shape = (spec.height, spec.width, spec.channels)
        self.roi = roi
        self.sha256 = package.backbone_sha256(precision)
        self.model = TFLiteModel(package.backbone_bytes(precision), threads,
                                 f"{package.name} {precision} backbone", self.input_shape,
                                 precision == "int8")
        self.dim = self.model.out_dim

    def embed_frame(self, frame: np.ndarray) -> np.ndarray:
        h, w, c = self.input_shape
        return self.model(prepare(frame, h, w, c, self.roi)).copy()


def top(probs: np.ndarray, labels: Sequence[str]) -> tuple[str, float]:
    i = int(np.argmax(probs))
    return labels[i], float(probs[i])


def label_count(label: str) -> Optional[int]:
    """Finger count of a label ('0'..'5'), None for other labels."""
    return int(label) if label.isdigit() and 0 <= int(label) <= 5 else None
