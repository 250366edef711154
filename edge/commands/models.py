"""fingercount models: installed packages, their variants (bytes) and recorded metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from edge.config import Config
from edge.errors import FingercountError, ModelError
from edge.runtime.classifier import current_head_path
from edge.runtime.package import PRECISIONS, ModelPackage, scan_packages, sha256_file


def _metric(m: dict) -> str:
    if not m:
        return "no recorded metrics"
    parts = []
    if "accuracy" in m:
        parts.append(f"accuracy {m['accuracy']:.3f}")
    if "macro_f1" in m:
        parts.append(f"macro-F1 {m['macro_f1']:.3f}")
    inv = m.get("invoke")
    if isinstance(inv, dict) and isinstance(inv.get("p50_ms"), (int, float)):  # hand models: speed only
        parts.append(f"invoke p50 {inv['p50_ms']:.1f} ms ({inv.get('threads', '?')} thread(s), "
                     f"{inv.get('machine', 'this machine')})")
    where = ", ".join(str(x) for x in (m.get("split"), f"n={m['n']}" if "n" in m else None) if x)
    return "  ".join(parts) + (f"  ({where})" if where else "")


def _file_state(pkg: ModelPackage, entry: dict) -> tuple[Optional[int], str]:
    """(bytes on disk, '' or what is wrong with the file): what loading it would find."""
    path = pkg.root / entry["file"]
    if not path.is_file():
        return None, "  MISSING"
    size = path.stat().st_size
    want = entry.get("sha256")
    if not want:
        return size, "  UNVERIFIABLE (no sha256 in model.json)"
    if sha256_file(path) != want:
        return size, "  CORRUPT (does not match its sha256)"
    return size, ""


def main(args: argparse.Namespace, cfg: Config) -> int:
    root = Path(cfg.resolved_models_dir())
    if not root.is_dir():
        raise FingercountError(f"models_dir {root} does not exist")
    found = scan_packages(root)
    if not found:
        raise FingercountError(f"no models in {root} (build them with `make models`, or set models_dir)")
    print(f"models in {root}:")
    problems = 0  # a script can tell from the exit code that something will not load
    for d, pkg in found:
        if isinstance(pkg, ModelError):
            print(f"\n{d.name}: BROKEN: {pkg}")
            problems += 1
            continue
        i = pkg.input
        rt = pkg.retrainable
        active = " (active)" if cfg.model.name in (d.name, str(d)) else ""
        title = pkg.name if pkg.name == d.name else f"{d.name} ({pkg.name})"
        landmarks = pkg.meta.get("counter") == "landmarks"
        shape = (f"hand landmarks (features {(rt or {}).get('features')}, {(rt or {}).get('embedding_dim')} "
                 "per hand; runs after the hand stage)" if landmarks
                 else f"{i.height}x{i.width}x{i.channels} {i.color}")
        print(f"\n{title} {pkg.version}{active}  task {pkg.task}"
              f"{'  labels ' + ','.join(pkg.labels) if pkg.labels else ''}  "
              f"input {shape}"
              + (f"  retrainable (embedding {rt.get('embedding_dim')})" if rt and not landmarks
                 else "  retrainable" if rt else ""))
        head = current_head_path(cfg.state_dir, pkg.name) if rt else None
        if head is not None:
            print(f"  user head: {head}")
        for prec in PRECISIONS:
            v = pkg.variants.get(prec)
            if not v:
                continue
            size, problem = _file_state(pkg, v)
            problems += problem.strip() in ("MISSING", "CORRUPT (does not match its sha256)")
            print(f"  {prec:5s} {size or 0:>12,} bytes  {_metric(pkg.metrics.get(prec, {}))}{problem}")
        if landmarks:  # no variants: its figures are per evaluation set
            for key, m in pkg.metrics.items():
                if isinstance(m, dict):
                    missed = f", no hand found in {m['no_hand_found']}" if "no_hand_found" in m else ""
                    print(f"  {key:5s} {_metric(m)}{missed}")
        rw = (pkg.meta.get("real_world") or {}).get("metrics") or {}
        shown = "int8" if "int8" in rw else next(iter(rw), None)
        if shown:  # beside the test split of the training photos: other cameras and rooms
            m, nh = rw[shown], rw[shown]["no_hand"]
            print(f"  real-world dev set ({pkg.meta['real_world'].get('dataset')}, {shown}): "
                  f"accuracy {m['accuracy']:.3f} (n={m['n']}), false counts on no-hand photos "
                  f"{nh['false_counts']}/{nh['n']}")
        for what, entry in _retrain_files(pkg):  # what capture and retrain load
            _, problem = _file_state(pkg, entry)
            if problem:
                print(f"  {what}:{problem} (retrain cannot use it)")
                problems += problem.strip() != "UNVERIFIABLE (no sha256 in model.json)"
    if problems:
        print(f"fingercount models: {problems} broken, missing or corrupt (marked above)", file=sys.stderr)
        return 1
    return 0


def _retrain_files(pkg: ModelPackage) -> list[tuple[str, dict]]:
    rt = pkg.retrainable or {}
    out = [(f"backbone {prec}", e) for prec, e in (rt.get("backbone") or {}).items() if isinstance(e, dict)]
    out += [(key, rt[key]) for key in ("head", "base_embeddings") if isinstance(rt.get(key), dict)]
    return [(what, e) for what, e in out if isinstance(e.get("file"), str)]
