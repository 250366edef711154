"""A power cut at any step of a head change (retrain's swap-in, rollback) loses no head.

A child process makes the change and dies with os._exit (no cleanup, like kill -9 or a power
cut) just before its k-th file operation (fsync, rename, replace, unlink), for every k. Right
after the crash every head the change involves is still on disk; then two rollbacks (which
finish an interrupted change first) exchange exactly the two heads of the state before the
change or of the state after it, never one head with a copy of itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.config import Config, load_config
from edge.heads import rollback
from edge.runtime.classifier import HEAD_FILE, PREVIOUS_HEAD_FILE, Head, head_dir
from edge.runtime.loader import open_package
from tests.conftest import ROOT
from tests.test_retrain import RETRAINABLE, models_dir

DIM = 1024  # fingers-mobilenet's embedding size

CHILD = """
import json, os, sys
sys.path.insert(0, {root!r})
from edge import heads
from edge.config import load_config
from edge.runtime.classifier import Head
from edge.runtime.loader import open_package

state, models, action, crash_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = load_config(None, {{"state_dir": state, "models_dir": models,
                          "model": {{"name": {model!r}}}}}, environ={{}})
pkg = open_package(cfg)
new = Head.load(sys.argv[5]) if action == "install" else None
ops = 0

def counted(fn):
    def op(*a, **kw):
        global ops
        ops += 1
        if ops == crash_at:
            os._exit(9)  # the power cut: nothing after this runs, no cleanup
        return fn(*a, **kw)
    return op

for name in ("fsync", "rename", "replace", "unlink"):
    setattr(os, name, counted(getattr(os, name)))
if action == "rollback":
    heads.rollback(cfg, pkg)
else:
    cur, is_user = heads.current_head(cfg, pkg)
    heads.install_head(cfg, pkg, new, cur, is_user, {{"marker": "N"}})
print(ops)
"""


def make_head(marker: str, labels: list[str], seed: int) -> tuple[Head, dict]:
    rng = np.random.default_rng(seed)
    head = Head(rng.normal(size=(DIM, len(labels))).astype(np.float32),
                rng.normal(size=len(labels)).astype(np.float32), tuple(labels))
    origin = "shipped" if marker == "shipped" else "retrained"
    return head, {"origin": origin, "marker": marker}


HEADS = {"C": make_head("C", [*"012345", "none"], 1), "O": make_head("O", list("012345"), 2),
         "N": make_head("N", [*"012345", "none", "fist"], 3), "shipped": make_head("shipped", list("012345"), 4)}


def marker(path: Path) -> str:
    """Which of HEADS the file holds, checked down to its weights ("shipped" also for the
    package's own head, which a rollback keeps as previous)."""
    h = Head.load(path)
    info = json.loads(h.info["info_json"])
    if "marker" not in info:
        assert info == {"origin": "shipped"}, (path, info)
        return "shipped"
    m = info["marker"]
    assert np.array_equal(h.W, HEADS[m][0].W) and h.labels == HEADS[m][0].labels, path
    return m


def state_of(d: Path) -> tuple[str, str]:
    """(current, previous); no head.npz means the shipped model runs."""
    cur = marker(d / HEAD_FILE) if (d / HEAD_FILE).exists() else "shipped"
    return cur, marker(d / PREVIOUS_HEAD_FILE)


def on_disk(d: Path) -> set[str]:
    """Every head held by a complete file in the head directory, under any name."""
    out = set()
    for p in d.iterdir():
        if p.suffix in (".npz", ".next") and not p.name.endswith(".tmp"):
            out.add(marker(p))
    return out


def cfg_for(state: Path) -> Config:
    return load_config(None, {"state_dir": str(state), "models_dir": str(models_dir()),
                              "model": {"name": RETRAINABLE}}, environ={})


def run_child(tmp: Path, state: Path, action: str, crash_at: int) -> subprocess.CompletedProcess:
    script = tmp / "child.py"
    if not script.exists():
        script.write_text(CHILD.format(root=str(ROOT), model=RETRAINABLE))
    new = tmp / "new.npz"
    if not new.exists():
        HEADS["N"][0].save(new, info_json=json.dumps(HEADS["N"][1]))
    return subprocess.run([sys.executable, str(script), str(state), str(models_dir()), action,
                           str(crash_at), str(new)], capture_output=True, text=True, timeout=60)


# action, (current, previous) before; the two states a crash may leave (before, after)
CASES = {
    "rollback": ("rollback", ("C", "O"), [("C", "O"), ("O", "C")]),
    "rollback-to-shipped": ("rollback", ("C", "shipped"), [("C", "shipped"), ("shipped", "C")]),
    "retrain-swap-in": ("install", ("C", "O"), [("C", "O"), ("N", "C")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_crash_at_any_step_of_a_head_change_loses_no_head(tmp_path: Path, case: str) -> None:
    action, before, outcomes = CASES[case]
    seed = tmp_path / "seed"
    d0 = head_dir(seed, RETRAINABLE)
    d0.mkdir(parents=True)
    for name, m in zip((HEAD_FILE, PREVIOUS_HEAD_FILE), before):
        if m != "shipped" or name == PREVIOUS_HEAD_FILE:
            HEADS[m][0].save(d0 / name, info_json=json.dumps(HEADS[m][1]))
    shutil.copytree(seed, tmp_path / "clean")
    clean = run_child(tmp_path, tmp_path / "clean", action, 0)  # no crash: count the steps
    assert clean.returncode == 0, clean.stderr
    assert state_of(head_dir(tmp_path / "clean", RETRAINABLE)) == outcomes[1]
    steps = int(clean.stdout.split()[-1])
    assert steps >= 4, steps

    pkg = open_package(cfg_for(seed))
    for k in range(1, steps + 1):
        state = tmp_path / f"crash{k}"
        shutil.copytree(seed, state)
        r = run_child(tmp_path, state, action, k)
        assert r.returncode == 9, (k, r.stderr)
        d = head_dir(state, RETRAINABLE)
        # right after the crash: the heads of the pair before or of the pair after are all
        # on disk (the shipped one is in the package anyway)
        held = on_disk(d)
        assert any(set(o) - {"shipped"} <= held for o in outcomes), (k, held, sorted(os.listdir(d)))
        cfg = cfg_for(state)
        rollback(cfg, pkg)  # finishes (or drops) the interrupted change, then rolls back
        first = state_of(d)
        rollback(cfg, pkg)
        second = state_of(d)
        # the two states are the exchange of the pair before or of the pair after the change
        assert {first, second} in ({o, o[::-1]} for o in outcomes), (k, first, second)
        assert not list(d.glob("*.next")) and not (d / "swap.json").exists(), k
