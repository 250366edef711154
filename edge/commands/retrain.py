"""`fingercount retrain [--force] [--json F]` and `fingercount rollback`: the current head, offline.

`--json F` gets the result with `"ok": true`, or, when the retrain could not run,
`{"ok": false, "model", "swapped": false, "reason"}` (the same line the error prints).

These commands change the head files that every later run/classify/eval/bench uses; a
running daemon sees head.npz change and reloads within 2 s (edge/head_watch.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from edge.config import Config
from edge.errors import FingercountError
from edge.heads import rollback
from edge.report_file import write_report
from edge.retrain import RetrainResult, retrain
from edge.runtime.loader import open_package
from edge.runtime.package import ModelPackage
from edge.samples import counts_text, open_store


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _write_json(path: str, data: dict) -> None:
    write_report(path, json.dumps(data, indent=2) + "\n")


def main(args: argparse.Namespace, cfg: Config) -> int:
    if args.command == "rollback":
        pkg = open_package(cfg)
        data = rollback(cfg, pkg)
        print(f"{pkg.name}: now using the {data['head']} head (labels: {', '.join(data['labels'])})")
        return 0
    try:
        pkg, res = _retrain(cfg, args.force)
    except Exception as e:
        if args.json:  # a script reading F learns why, not only that F is missing
            with contextlib.suppress(FingercountError):
                _write_json(args.json, {"ok": False, "model": cfg.model.name, "swapped": False,
                                        "reason": str(e) if isinstance(e, FingercountError)
                                        else f"{type(e).__name__}: {e}"})
        raise
    if args.json:
        _write_json(args.json, {"ok": True, **res.to_dict()})
    print(f"{pkg.name} {res.precision}: {sum(res.samples_per_label.values())} user samples "
          f"({counts_text(res.samples_per_label)}) + {res.base_samples} base; gate: {res.gate} on "
          f"{sum(res.holdout_per_label.values())}; accuracy before {_fmt(res.accuracy_before)}, "
          f"after {_fmt(res.accuracy_after)}; {res.embeddings_computed} embeddings computed; "
          f"{res.duration_s:.2f} s")
    print(("swapped in: " if res.swapped else "") + res.reason)
    if res.warning:
        print(f"note: {res.warning}", file=sys.stderr)
    return 0 if res.swapped else 1


def _retrain(cfg: Config, force: bool) -> tuple[ModelPackage, RetrainResult]:
    def progress(phase: str, frac: float, detail: dict) -> None:
        if phase == "embedding" and detail.get("done") and detail["done"] % 50 == 0:
            print(f"embedding samples: {detail['done']}/{detail['of']}", file=sys.stderr, flush=True)

    pkg = open_package(cfg)
    with open_store(cfg) as store:
        return pkg, retrain(cfg, pkg, store, cfg.model.precision, force, progress)
