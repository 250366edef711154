"""fingercount models: installed packages, their variants (bytes) and recorded metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.config import Config
from edge.errors import ModelError
from edge.runtime.classifier import current_head_path
from edge.runtime.package import PRECISIONS, load_package


def _metric(m: dict) -> str:
    if not m:
        return "no recorded metrics"
    parts = []
    if "accuracy" in m:
        parts.append(f"accuracy {m['accuracy']:.3f}")
    if "macro_f1" in m:
        parts.append(f"macro-F1 {m['macro_f1']:.3f}")
    where = ", ".join(str(x) for x in (m.get("split"), f"n={m['n']}" if "n" in m else None) if x)
    return "  ".join(parts) + (f"  ({where})" if where else "")


def main(args: argparse.Namespace, cfg: Config) -> int:
    root = cfg.resolved_models_dir()
    dirs = sorted(d for d in Path(root).iterdir() if (d / "model.json").is_file()) if Path(root).is_dir() else []
    if not dirs:
        print(f"no models in {root} (build them with `make models`, or set models_dir)")
        return 1
    print(f"models in {root}:")
    for d in dirs:
        try:
            pkg = load_package(d)
        except ModelError as e:
            print(f"\n{d.name}: BROKEN: {e}")
            continue
        i = pkg.input
        rt = pkg.retrainable
        active = " (active)" if pkg.name == cfg.model.name else ""
        print(f"\n{pkg.name} {pkg.version}{active}  task {pkg.task}  labels {','.join(pkg.labels)}  "
              f"input {i.height}x{i.width}x{i.channels} {i.color}"
              + (f"  retrainable (embedding {rt.get('embedding_dim')})" if rt else ""))
        head = current_head_path(cfg.state_dir, pkg.name) if rt else None
        if head is not None:
            print(f"  user head: {head}")
        for prec in PRECISIONS:
            v = pkg.variants.get(prec)
            if not v:
                continue
            size = v.get("bytes")
            if size is None and (pkg.root / v.get("file", "")).is_file():
                size = (pkg.root / v["file"]).stat().st_size
            print(f"  {prec:5s} {size or 0:>12,} bytes  {_metric(pkg.metrics.get(prec, {}))}")
    return 0
