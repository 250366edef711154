"""SSD anchors of MediaPipe's palm detector (its SsdAnchorsCalculator options for the CPU graph).

192x192 input, strides [8, 16, 16, 16], one aspect ratio (1.0) plus the interpolated scale,
fixed anchor size: 24x24 cells x 2 anchors + 12x12 cells x 6 anchors = 2016 anchors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

PALM_STRIDES = (8, 16, 16, 16)


def ssd_anchors(input_size: int = 192, strides: Sequence[int] = PALM_STRIDES,
                anchor_offset: float = 0.5, aspect_ratios: Sequence[float] = (1.0,),
                interpolated_scale: bool = True) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1]; with a fixed anchor size their w = h = 1.

    Consecutive layers with the same stride share one feature map, as MediaPipe groups them;
    each layer adds len(aspect_ratios) anchors per cell, plus one with interpolated_scale.
    """
    per_layer = len(aspect_ratios) + (1 if interpolated_scale else 0)
    out: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer < len(strides) and strides[layer] == stride:
            same += 1
            layer += 1
        n = per_layer * same
        size = int(math.ceil(input_size / stride))
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        centres = np.stack([(xs + anchor_offset) / size, (ys + anchor_offset) / size], axis=-1)
        # row-major cells, n anchors per cell (the order of the model's outputs)
        out.append(np.repeat(centres.reshape(-1, 2), n, axis=0))
    return np.concatenate(out).astype(np.float32)
