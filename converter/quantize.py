"""Keras model -> TFLite bytes per precision.

Quantization is a value (cf. MediaPipe model maker's QuantizationConfig): one
`Quantization` per precision, one `convert()` that applies it. int8 is full-integer
with uint8 input/output, and the converter *asserts* that the input takes raw pixels
(scale 1.0, zero point 0) so a device can feed camera pixels straight in.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from converter.errors import QuantizationError

if TYPE_CHECKING:
    import tensorflow as tf

# TensorFlow is imported where it converts, not here: PRECISIONS and converter.tools'
# quantize_outputs serve the quick checks made before any conversion.

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Quantization:
    precision: str
    representative: Optional[Callable[[], Iterable[list[np.ndarray]]]] = None

    @classmethod
    def for_float32(cls) -> Quantization:
        return cls("fp32")

    @classmethod
    def for_float16(cls) -> Quantization:
        return cls("fp16")

    @classmethod
    def for_int8(cls, representative: Callable[[], Iterable[list[np.ndarray]]]) -> Quantization:
        return cls("int8", representative)

    def apply(self, conv: tf.lite.TFLiteConverter) -> None:
        import tensorflow as tf

        if self.precision == "fp16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif self.precision == "int8":
            if self.representative is None:
                raise QuantizationError("int8 needs a representative dataset")
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = self.representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.uint8
            conv.inference_output_type = tf.uint8


def representative_from_pixels(pixels: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    """Calibration samples (N, H, W, C) uint8 -> generator of float32 batches of one.

    The first sample gets one black and one white pixel so the input range calibrates
    to exactly [0, 255], i.e. uint8 scale 1.0 / zero point 0."""
    px = np.array(pixels, dtype=np.float32, copy=True)
    px[0, 0, 0, :] = 0.0
    px[0, 0, 1, :] = 255.0

    def gen():
        for x in px:
            yield [x[None]]

    return gen


def _run(conv, q: Quantization) -> bytes:
    q.apply(conv)
    with contextlib.redirect_stdout(io.StringIO()):  # keras' ~30-line "Saved artifact at ..." per call
        data = conv.convert()
    check_io(data, q.precision)
    return data


def convert(model, q: Quantization) -> bytes:
    """A Keras model -> TFLite flatbuffer bytes (the interpreter sees batch size 1)."""
    import tensorflow as tf

    return _run(tf.lite.TFLiteConverter.from_keras_model(model), q)


def convert_saved_model(path: str, q: Quantization) -> bytes:
    import tensorflow as tf

    return _run(tf.lite.TFLiteConverter.from_saved_model(path), q)


def check_io(data: bytes, precision: str) -> None:
    """Fail loudly unless the model has the package contract's input/output types."""
    from edge.runtime.interpreter import make_interpreter

    interp = make_interpreter(data, 1, f"{precision} model")
    ind = interp.get_input_details()[0]
    outd = interp.get_output_details()[0]
    if precision == "int8":
        scale, zp = ind["quantization"]
        if ind["dtype"] != np.uint8 or outd["dtype"] != np.uint8:
            raise QuantizationError(f"int8 model has {ind['dtype'].__name__} input / "
                                    f"{outd['dtype'].__name__} output, expected uint8 / uint8")
        if abs(scale - 1.0) > 1e-6 or zp != 0:
            raise QuantizationError(f"int8 input quantization is scale {scale} / zero point {zp}; "
                                    "raw pixels need scale 1.0 / zero point 0 (is the model's "
                                    "float input raw 0..255 pixels?)")
    elif ind["dtype"] != np.float32:
        raise QuantizationError(f"{precision} model input is {ind['dtype'].__name__}, expected float32")
