"""A plausible open right hand in the canonical palm frame (tests only; no photo needed)."""

from __future__ import annotations

import numpy as np

# x across the palm (towards the index), y wrist -> middle MCP, z palm normal; palm size ~1
_MCP = {5: (0.32, 0.95), 9: (0.05, 1.0), 13: (-0.2, 0.95), 17: (-0.42, 0.85)}
_LEN = {5: (0.42, 0.25, 0.22), 9: (0.47, 0.28, 0.24), 13: (0.44, 0.27, 0.23), 17: (0.35, 0.2, 0.2)}
_SPREAD = {5: 0.12, 9: 0.02, 13: -0.08, 17: -0.2}


def open_hand() -> np.ndarray:
    """(21, 3) landmarks of a right hand with all five fingers extended, palm size ~1."""
    p = np.zeros((21, 3))
    for mcp, (x, y) in _MCP.items():
        p[mcp] = (x, y, 0.0)
        d = np.array([_SPREAD[mcp], 1.0, 0.0])
        d /= np.linalg.norm(d)
        for j, seg in enumerate(_LEN[mcp], start=1):
            p[mcp + j] = p[mcp + j - 1] + d * seg
    p[1] = (0.25, 0.25, 0.05)
    p[2] = (0.5, 0.45, 0.08)
    p[3] = (0.68, 0.62, 0.1)
    p[4] = (0.82, 0.78, 0.11)
    return p


def in_image(c: np.ndarray, handedness: str = "right", angle_deg: float = 0.0, scale: float = 120.0,
             at: tuple[float, float] = (320.0, 300.0)) -> np.ndarray:
    """Canonical landmarks placed in a 640x480 frame as the hand stage would give them:
    y down, fingers up, turned in the image plane, a left hand mirrored."""
    q = np.array(c, dtype=np.float64)
    q[:, 1] = -q[:, 1]  # image y grows downwards
    if handedness == "left":
        q[:, 0] = -q[:, 0]
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    q = q @ rot.T * scale
    q[:, 0] += at[0]
    q[:, 1] += at[1]
    return q.astype(np.float32)
