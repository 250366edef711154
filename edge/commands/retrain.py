"""`fingercount retrain [--force] [--json F]` and `fingercount rollback`: the current head, offline.

A running daemon keeps its head until restarted or told over MQTT (cmd/retrain, cmd/rollback);
these commands change the files every later run/classify/eval/bench uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.config import Config
from edge.errors import RetrainError
from edge.retrain import retrain, rollback
from edge.runtime.loader import open_package
from edge.samples import counts_text, open_store


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def main(args: argparse.Namespace, cfg: Config) -> int:
    pkg = open_package(cfg)
    if args.command == "rollback":
        data = rollback(cfg, pkg)
        print(f"{pkg.name}: now using the {data['head']} head (labels: {', '.join(data['labels'])})")
        return 0

    def progress(phase: str, frac: float, detail: dict) -> None:
        if phase == "embedding" and detail.get("done") and detail["done"] % 50 == 0:
            print(f"embedding samples: {detail['done']}/{detail['of']}", file=sys.stderr, flush=True)

    with open_store(cfg) as store:
        res = retrain(cfg, pkg, store, cfg.model.precision, args.force, progress)
    d = res.to_dict()
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(d, indent=2) + "\n")
        except OSError as e:
            raise RetrainError(f"cannot write {args.json}: {e.strerror or e}") from e
    print(f"{pkg.name} {res.precision}: {sum(res.samples_per_label.values())} user samples "
          f"({counts_text(res.samples_per_label)}) + {res.base_samples} base; gate: {res.gate} on "
          f"{sum(res.holdout_per_label.values())}; accuracy before {_fmt(res.accuracy_before)}, "
          f"after {_fmt(res.accuracy_after)}; {res.embeddings_computed} embeddings computed; "
          f"{res.duration_s:.2f} s")
    print(("swapped in: " if res.swapped else "") + res.reason)
    return 0 if res.swapped else 1
