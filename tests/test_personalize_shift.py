"""A small personalisation run (the CI-sized version of tools/personalize_bench.py): the bundled
hand photos under a camera shift the model never saw, 5 captures per class through the CLI,
retrain, and the rest of the shifted photos must be recognised better than before."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from edge.cli import main
from tests.conftest import HANDS, ROOT
from tests.test_retrain import RETRAINABLE, models_dir

LABELS = [str(i) for i in range(6)]


def bench_module():
    spec = importlib.util.spec_from_file_location("personalize_bench", ROOT / "tools" / "personalize_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_retraining_on_a_shifted_camera_recovers_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = bench_module()
    # all 8 photos per class: the 5 first (by name hash) are captured, 3 are scored
    pool, evald = bench.make_sets(HANDS, tmp_path, 5, LABELS, split=(0.0, 1.0))
    common = ["--state-dir", str(tmp_path / "state"), "--models-dir", str(models_dir()),
              "--model", os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE), "--precision", "int8"]

    def accuracy(name: str) -> float:
        assert main(["eval", "--data", str(evald), "--json", str(tmp_path / name), *common]) == 0
        return json.loads((tmp_path / name).read_text())["accuracy"]

    before = accuracy("before.json")
    for lab in LABELS:
        assert len(pool[lab]) == 5
        cam = pool[lab][0].parent
        assert main(["capture", "--label", lab, "--count", "5", "--interval", "0",
                     "--camera", f"replay:{cam}@0", *common]) == 0
    assert main(["retrain", "--json", str(tmp_path / "r.json"), *common]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    after = accuracy("after.json")
    print(f"shifted hands: accuracy {before:.3f} -> {after:.3f} ({res['reason']})")
    assert res["swapped"] and res["samples_per_label"] == {lab: 5 for lab in LABELS}
    assert after >= before + 0.2, (before, after)
    assert after >= 0.75, (before, after)
