"""edge/ never imports TensorFlow, Keras or mediapipe, not even indirectly: import every edge module in a
fresh interpreter and look at sys.modules."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import importlib, pkgutil, sys
import edge
names = ["edge"]
for m in pkgutil.walk_packages(edge.__path__, "edge."):
    if m.name != "edge.__main__":  # the `python -m edge` entry point runs the CLI
        names.append(m.name)
failed = []
for n in names:
    try:
        importlib.import_module(n)
    except Exception as e:  # a module that fails to import is a failure too
        failed.append(f"{n}: {type(e).__name__}: {e}")
# build what the daemon builds at start too (camera, pipeline, MQTT link), without running it
from edge.config import load_config
from edge.camera import open_source
open_source("replay:tests/data/hands")
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "tensorboard", "mediapipe"))
print(len(names))
print("FAILED:" + "|".join(failed))
print("TF:" + ",".join(bad))
"""


def test_no_edge_module_imports_tensorflow() -> None:
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    n, failed, tf = int(lines[0]), lines[1][len("FAILED:"):], lines[2][len("TF:"):]
    assert n >= 20, f"only {n} edge modules found"
    assert failed == "", f"edge modules that do not import: {failed}"
    assert tf == "", f"TensorFlow/Keras imported by edge: {tf}"
