"""MediaPipe's hand landmark model: 21 landmarks, hand presence and handedness on a hand crop."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from edge.errors import ModelError
from edge.hands.nms import sigmoid
from edge.hands.tensors import TensorModel

_IDENTITY = re.compile(r"^Identity(?:_(\d+))?(?::\d+)?$")
_PROBABILITY_OPS = ("LOGISTIC",)
_PASS_THROUGH_OPS = ("QUANTIZE", "DEQUANTIZE", "RESHAPE")


@dataclass(frozen=True)
class LandmarkResult:
    """One run of the landmark model on a crop."""

    landmarks: np.ndarray  # (21, 3) crop pixels (x, y, z scaled like x)
    presence: float  # 0..1
    right: float  # 0..1, probability that it is a right hand (in the unmirrored image)
    world: np.ndarray  # (21, 3) metres, hand-centred


def _name_order(name: str) -> int:
    """Keras export order of an output named Identity, Identity_1, ... (-1 for other names)."""
    m = _IDENTITY.match(name)
    return -1 if m is None else int(m.group(1) or 0)


class LandmarkModel:
    """Runs hand_landmark (lite or full) and names its outputs by shape and export name.

    The model has two 63-value outputs (screen landmarks, then world landmarks) and two
    single values (presence, then handedness). Where the export names are Identity_N their
    order says which is which; otherwise the interpreter's order. Screen and world landmarks
    are also told apart by magnitude at run time (crop pixels vs metres)."""

    def __init__(self, model: TensorModel):
        """Check the shapes and work out which output is which; ModelError if it is not one."""
        self.model = model
        h, w = model.input_hw
        self.size = h
        if h != w:
            raise ModelError(f"{model.what}: landmark input {h}x{w} is not square")
        shapes = model.output_shapes()
        order = list(range(len(shapes)))
        if all(_name_order(n) >= 0 for n, _ in shapes):
            order.sort(key=lambda i: _name_order(shapes[i][0]))
        vec = [i for i in order if int(np.prod(shapes[i][1])) == 63]
        one = [i for i in order if int(np.prod(shapes[i][1])) == 1]
        if len(vec) != 2 or len(one) != 2:
            raise ModelError(f"{model.what}: outputs {[list(s) for _, s in shapes]} are not a hand "
                             "landmark model's (two of 63 values, two single scores)")
        self._screen_i, self._world_i = vec
        self._presence_i, self._hand_i = one
        self._is_prob = {i: self._made_by_logistic(i) for i in one}

    def _made_by_logistic(self, i: int) -> Optional[bool]:
        """Whether output i is a sigmoid's output (else it is a logit and needs one); None
        when the runtime cannot say (then the value decides)."""
        try:
            ops = self.model.interp._get_ops_details()
        except Exception:  # an old runtime without the op list
            return None
        producer: dict[int, Any] = {}
        for op in ops:
            if op.get("op_name") != "DELEGATE":
                for t in op["outputs"]:
                    producer[t] = op
        t = self.model.outputs[i]["index"]
        for _ in range(4):
            op = producer.get(t)
            if op is None:
                return False
            if op["op_name"] in _PROBABILITY_OPS:
                return True
            if op["op_name"] not in _PASS_THROUGH_OPS or not len(op["inputs"]):
                return False
            t = op["inputs"][0]
        return False

    def _score(self, outs: list[np.ndarray], i: int) -> float:
        """Output i as a probability: a sigmoid's output as it is (clipped: a quantised one
        may step just past 1), a logit through a sigmoid."""
        v = float(outs[i].reshape(-1)[0])
        prob = self._is_prob[i]
        if prob is None:
            prob = 0.0 <= v <= 1.0
        return min(1.0, max(0.0, v)) if prob else float(sigmoid(np.array(v)))

    def __call__(self, crop01: np.ndarray) -> LandmarkResult:
        """Run on a size x size float [0, 1] crop of the hand (fingers up)."""
        outs = self.model.run(crop01)
        screen = outs[self._screen_i].reshape(21, 3)
        world = outs[self._world_i].reshape(21, 3)
        if np.abs(screen[:, :2]).max() < 2.0 < np.abs(world[:, :2]).max():  # swapped exports
            screen, world = world, screen
        return LandmarkResult(screen, self._score(outs, self._presence_i), self._score(outs, self._hand_i), world)
