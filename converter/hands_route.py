"""A MediaPipe hand model (.tflite) -> fp16 / int8 variants, through ONNX and back.

TFLite has no way back from a flatbuffer to something its converter can quantize, so the
route is: tf2onnx (tflite -> ONNX, input as NCHW so that onnx2tf turns it back to NHWC) ->
onnx2tf (ONNX -> TensorFlow SavedModel) -> TensorFlow's
TFLiteConverter on the SavedModel: float16 weights, int8 with a representative dataset, or
dynamic range (int8 weights). Both tools run as subprocesses, each with its own log, in a work folder.

The TFLiteConverter names outputs 'StatefulPartitionedCall:N' and orders them as it likes;
the edge's landmark wrapper tells presence from handedness by the source's export names
(Identity_1, Identity_2), so `restore_io_names` puts the source's names and order back,
going by the SavedModel signature (output_k is the k-th ONNX output, which tf2onnx named
after the source's k-th output).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from converter.errors import ConvertError

OPSET = 13
TOOLS = ("tf2onnx", "onnx2tf", "onnx", "onnxruntime", "onnxsim", "tensorflow-cpu", "tf-keras",
         "ai-edge-litert")
# onnx2tf checks its conversion against sample images it downloads unless this file is in its
# working folder: it gets frames of our own data instead (nothing is downloaded).
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def tool_versions() -> dict[str, str]:
    out = {}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def io_names(data: bytes) -> tuple[list[str], list[str]]:
    """(input names, output names) of a .tflite, in the interpreter's order."""
    from edge.runtime.interpreter import make_interpreter

    it = make_interpreter(data, 1, "model")
    return ([str(d["name"]) for d in it.get_input_details()],
            [str(d["name"]) for d in it.get_output_details()])


def _run(cmd: list[str], cwd: Path, log: Path, what: str) -> None:
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        raise ConvertError(f"{what} failed (exit {rc}): {tail[0] if tail else '?'} (log: {log})")


@dataclass(frozen=True)
class Route:
    """The intermediate products of one model's trip through ONNX."""

    onnx: Path
    saved_model: Path
    inputs: list[str]
    outputs: list[str]


def to_saved_model(source: Path, work: Path, samples: np.ndarray) -> Route:
    """tflite -> ONNX -> SavedModel in `work`.

    samples: a few (N, H, W, 3) float [0, 1] frames of our own data for onnx2tf's self-check."""
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    source = source.resolve()
    data = source.read_bytes()
    inputs, outputs = io_names(data)
    onnx = work / f"{source.stem}.onnx"
    sm = work / "saved_model"
    stamp = work / "source.sha256"  # a kept --work folder is reused for the same source
    digest = hashlib.sha256(data).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest and (sm / "saved_model.pb").is_file():
        return Route(onnx, sm, inputs, outputs)
    stamp.unlink(missing_ok=True)
    _run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(source), "--output", str(onnx),
          "--opset", str(OPSET), "--inputs-as-nchw", ",".join(inputs)], work, work / "tf2onnx.log",
         f"tf2onnx on {source.name}")
    import cv2

    sample = np.stack([cv2.resize(s, (128, 128), interpolation=cv2.INTER_AREA) for s in samples[:20]])
    np.save(work / ONNX2TF_SAMPLE, np.resize(sample, (20, 128, 128, 3)).astype(np.float32))
    _run([sys.executable, "-m", "onnx2tf.onnx2tf", "-i", onnx.name, "-o", sm.name, "-osd", "-n"],
         work, work / "onnx2tf.log", f"onnx2tf on {onnx.name}")
    stamp.write_text(digest + "\n")
    return Route(onnx, sm, inputs, outputs)


def representative(samples: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Calibration batches of one. The first sample gets a black and a white pixel, so the
    uint8 input calibrates to exactly [0, 1] = scale 1/255, zero point 0: raw camera pixels."""
    xs = np.array(samples, np.float32, copy=True)
    xs[0, 0, 0, :] = 0.0
    xs[0, 0, 1, :] = 1.0
    for x in xs:
        yield [x[None]]


def quantize(route: Route, scheme: str, samples: np.ndarray) -> bytes:
    """The SavedModel as TFLite bytes with the source's input/output names and order:
    'float32' (the route's check), 'float16' (float16 weights, float32 compute and I/O),
    'full-integer' (int8 compute, uint8 input and output, calibrated on samples) or
    'dynamic-range' (int8 weights, float activations and I/O)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(route.saved_model))
    if scheme != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if scheme == "float16":
        conv.target_spec.supported_types = [tf.float16]
    elif scheme == "full-integer":
        conv.representative_dataset = lambda: representative(samples)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
    elif scheme not in ("dynamic-range", "float32"):
        raise ValueError(f"unknown quantization scheme {scheme!r}")
    with contextlib.redirect_stdout(io.StringIO()):
        data = conv.convert()
    return restore_io_names(data, route.inputs, route.outputs)


def restore_io_names(data: bytes, inputs: list[str], outputs: list[str]) -> bytes:
    """Rename the model's I/O tensors to the source's names and order its outputs like the
    source's, going by the signature (input k / output_k = the source's k-th)."""
    from tensorflow.lite.tools import flatbuffer_utils as fb

    model = fb.convert_bytearray_to_object(bytearray(data))
    sg = model.subgraphs[0]
    if len(model.signatureDefs or []) != 1:
        raise ConvertError("quantized model has no single signature to name its outputs by")
    sig = model.signatureDefs[0]
    by_key = {t.name.decode(): t.tensorIndex for t in sig.outputs}
    keys = [f"output_{k}" for k in range(len(outputs))]
    if sorted(by_key) != sorted(keys):
        raise ConvertError(f"quantized model's outputs {sorted(by_key)} are not {keys}")
    sg.outputs = np.array([by_key[k] for k in keys], dtype=np.int32)
    for k, name in zip(keys, outputs):
        sg.tensors[by_key[k]].name = name.encode()
    if len(sg.inputs) != len(inputs):
        raise ConvertError(f"quantized model has {len(sg.inputs)} inputs, the source {len(inputs)}")
    for i, name in zip(sg.inputs, inputs):
        sg.tensors[i].name = name.encode()
    return bytes(fb.convert_object_to_bytearray(model))


def max_output_gap(a: bytes, b: bytes, x: np.ndarray) -> float:
    """Largest absolute difference between two float models' outputs (by order) on x."""
    from edge.runtime.interpreter import make_interpreter

    outs = []
    for data in (a, b):
        it = make_interpreter(data, 1, "model")
        it.set_tensor(it.get_input_details()[0]["index"], x[None].astype(np.float32))
        it.invoke()
        outs.append([it.get_tensor(d["index"]).reshape(-1) for d in it.get_output_details()])
    if [len(o) for o in outs[0]] != [len(o) for o in outs[1]]:
        return float("inf")
    return max(float(np.abs(p - q).max()) for p, q in zip(*outs))
