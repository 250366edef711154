"""`fingercount-convert quantize`: any Keras model -> fp32/fp16/int8 TFLite with raw-pixel input."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converter.data import calibration_files
from converter.errors import ConvertError
from converter.quantize import PRECISIONS, Quantization, convert, representative_from_pixels
from edge.runtime.preprocess import prepare, read_image

if TYPE_CHECKING:
    import keras


class ModelLoadError(FileNotFoundError):
    """The Keras model could not be read."""


def load_keras(path: Path) -> keras.Model:
    """.keras / .h5 via keras; a SavedModel directory via a TFSMLayer wrapped in a Model."""
    import keras

    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or directory")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ModelLoadError(f"{path}: a directory but not a SavedModel (no saved_model.pb)")
        layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
        shape = _savedmodel_input_shape(path)
        inp = keras.Input(tuple(int(d) for d in shape[1:]), name="image")
        out = layer(inp)
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return keras.Model(inp, out)
    try:
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError, TypeError) as e:
        raise ModelLoadError(f"{path}: not a loadable Keras model ({e})") from e


def _savedmodel_input_shape(path: Path) -> tuple:
    import tensorflow as tf

    sig = tf.saved_model.load(str(path)).signatures["serving_default"]
    spec = next(iter(sig.structured_input_signature[1].values()))
    return tuple(spec.shape)


def raw_pixel_model(model: keras.Model, lo: float, hi: float) -> keras.Model:
    """Prepend a layer mapping raw 0..255 pixels to the model's own input range [lo, hi]."""
    import keras

    if (lo, hi) == (0.0, 255.0):
        return model
    inp = keras.Input(model.input_shape[1:], name="image")
    x = keras.layers.Rescaling((hi - lo) / 255.0, offset=lo, name="from_pixels")(inp)
    return keras.Model(inp, model(x), name=f"{model.name}_raw_pixels")


def calibration_pixels(root: Path, h: int, w: int, c: int, count: int, seed: int = 0) -> np.ndarray:
    """Up to `count` images from root and its sub-folders, prepared like on a device."""
    files = calibration_files(root)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(files), min(count, len(files)), replace=False)
    try:
        return np.stack([prepare(read_image(str(files[i])), h, w, c) for i in sorted(pick)])
    except ValueError as e:
        raise ConvertError(f"--calib: {e}") from None


def quantize_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """The file quantize writes for each precision asked (--precision, default all three, each
    once): OUT/{--name or the model's stem}_{precision}.tflite. Quick (no TensorFlow): the
    command's refusal to replace files checks them before converting."""
    stem = args.name or Path(args.model).stem
    return {prec: Path(args.out) / f"{stem}_{prec}.tflite"
            for prec in dict.fromkeys(args.precision or PRECISIONS)}


def quantize_any(args: argparse.Namespace, input_range: tuple[float, float]) -> list[Path]:
    """Convert every precision first, then write the files: a failure leaves nothing behind."""
    model = load_keras(Path(args.model))
    model = raw_pixel_model(model, *input_range)
    shape = model.input_shape[1:]
    h, w = int(shape[0]), int(shape[1])
    c = int(shape[2]) if len(shape) == 3 else 1
    out = Path(args.out)
    blobs = {}
    for prec, dest in quantize_outputs(args).items():
        if prec == "int8":
            q = Quantization.for_int8(representative_from_pixels(
                calibration_pixels(Path(args.calib), h, w, c, args.calib_count)))
        else:
            q = Quantization(prec)
        blobs[dest] = convert(model, q)
    out.mkdir(parents=True, exist_ok=True)
    for dest, data in blobs.items():
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    return list(blobs)
