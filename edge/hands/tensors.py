"""A hand model's interpreter with named, dequantised outputs, whatever its precision.

The hand packages ship fp32 first; fp16 and full-integer (uint8/int8 I/O) variants may be
added beside it, so nothing here assumes float tensors: inputs are quantised and outputs
dequantised through each tensor's own scale and zero point.
"""

from __future__ import annotations

import numpy as np

from edge.errors import ModelError
from edge.runtime.interpreter import make_interpreter


class TensorModel:
    """One .tflite with a single image input of shape (1, H, W, C) and any number of outputs."""

    def __init__(self, data: bytes, threads: int = 1, what: str = "model"):
        """Load from bytes (verified by the interpreter); ModelError if it is not an image model."""
        self.what = what
        self.interp = make_interpreter(data, threads, what)
        ind = self.interp.get_input_details()
        if len(ind) != 1:
            raise ModelError(f"{what}: expected one input tensor, has {len(ind)}")
        self._in = ind[0]
        shape = tuple(int(s) for s in self._in["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ModelError(f"{what}: input shape {list(shape)} is not one RGB image (1, H, W, 3)")
        self.input_hw = (shape[1], shape[2])
        self.in_dtype = np.dtype(self._in["dtype"])
        if self.in_dtype not in (np.float32, np.uint8, np.int8):
            raise ModelError(f"{what}: unsupported input dtype {self.in_dtype}")
        scale, zp = self._in.get("quantization", (0.0, 0))
        if self.in_dtype != np.float32 and not scale:
            raise ModelError(f"{what}: integer input without a quantisation scale")
        self._in_q = (float(scale), int(zp))
        self.outputs = self.interp.get_output_details()
        if not self.outputs:
            raise ModelError(f"{what}: has no output tensor")

    def output_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every output, in the interpreter's order."""
        return [(str(d["name"]), tuple(int(s) for s in d["shape"])) for d in self.outputs]

    def set_input(self, x01: np.ndarray) -> None:
        """Set the input from a float image (H, W, 3) in the model's float input range (the
        hand models': [0, 1]); an integer input gets it quantised by the tensor's scale and
        zero point."""
        x = x01.reshape(self._in["shape"])
        if self.in_dtype == np.float32:
            x = x.astype(np.float32, copy=False)
        else:
            scale, zp = self._in_q
            info = np.iinfo(self.in_dtype)
            x = np.clip(np.round(x / scale + zp), info.min, info.max).astype(self.in_dtype)
        self.interp.set_tensor(self._in["index"], x)

    def output(self, i: int) -> np.ndarray:
        """Output i as float32 (dequantised where the tensor is integer)."""
        d = self.outputs[i]
        out = self.interp.get_tensor(d["index"])
        if np.dtype(d["dtype"]) == np.float32:
            return out.astype(np.float32, copy=True)
        scale, zp = d.get("quantization", (0.0, 0))
        if not scale:
            raise ModelError(f"{self.what}: integer output {d['name']} without a quantisation scale")
        return (out.astype(np.float32) - float(zp)) * float(scale)

    def run(self, x01: np.ndarray) -> list[np.ndarray]:
        """Invoke on a float image (see set_input); every output as float32, in the
        interpreter's order."""
        self.set_input(x01)
        self.interp.invoke()
        return [self.output(i) for i in range(len(self.outputs))]
