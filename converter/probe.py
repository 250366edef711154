"""Measure candidate MobileNet backbones BEFORE training: int8/fp32 bytes and int8/fp32 speed.

Untrained (random-weight) models have the same graph, tensor sizes and kernels as
trained ones, so file sizes and latencies carry over; only accuracy needs training.

    python -m converter.probe --candidates v1:0.5:96:1024 v2:0.5:96:640 --runs 200
    python -m converter.probe --package models/fingers-mobilenet   # the trained files
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _latency_ms(data: bytes, threads: int, runs: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data, num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.random.default_rng(0).integers(0, 256, d["shape"]).astype(d["dtype"])
    for _ in range(20):
        it.set_tensor(d["index"], x)
        it.invoke()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.set_tensor(d["index"], x)
        it.invoke()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1000)


def probe(version: int, alpha: float, size: int, emb: int, runs: int) -> dict:
    import keras

    from converter.models import mobilenet_backbone, with_head
    from converter.quantize import Quantization, convert, representative_from_pixels

    keras.utils.set_random_seed(0)
    model = with_head(mobilenet_backbone(size, version, alpha, emb, None), 6)
    cal = np.random.default_rng(0).integers(0, 256, (16, size, size, 3)).astype(np.uint8)
    fp32 = convert(model, Quantization.for_float32())
    int8 = convert(model, Quantization.for_int8(representative_from_pixels(cal)))
    row = {"arch": f"MobileNetV{version} a{alpha} @{size} emb{emb}",
           "fp32_bytes": len(fp32), "int8_bytes": len(int8), "ratio": len(int8) / len(fp32)}
    for t in (1, 2):
        f, i = _latency_ms(fp32, t, runs), _latency_ms(int8, t, runs)
        row[f"fp32_ms_t{t}"], row[f"int8_ms_t{t}"], row[f"speedup_t{t}"] = f, i, f / i
    return row


def package_speedup(root: str, runs: int) -> str:
    """One markdown row for a built package: fused fp32 vs int8 bytes and p50 latency."""
    import json
    from pathlib import Path

    meta = json.loads((Path(root) / "model.json").read_text())
    data = {p: (Path(root) / meta["variants"][p]["file"]).read_bytes() for p in ("fp32", "int8")}
    ms = {(p, t): _latency_ms(data[p], t, runs) for p in data for t in (1, 2)}
    return (f"| {meta['name']} {meta['version']} (trained) | {len(data['fp32']) / 1024:.0f} | "
            f"{len(data['int8']) / 1024:.0f} | {len(data['int8']) / len(data['fp32']):.3f} | "
            f"{ms['fp32', 1]:.2f} / {ms['fp32', 2]:.2f} | {ms['int8', 1]:.2f} / {ms['int8', 2]:.2f} | "
            f"{ms['fp32', 1] / ms['int8', 1]:.2f}x / {ms['fp32', 2] / ms['int8', 2]:.2f}x |")


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", nargs="+", default=[], help="vVERSION:ALPHA:SIZE:EMB")
    ap.add_argument("--package", help="measure a model package's fused fp32 and int8 files instead")
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    if a.package:
        print(package_speedup(a.package, a.runs))
        return
    print("| backbone | fp32 KB | int8 KB | int8/fp32 | fp32 p50 ms (1t / 2t) | "
          "int8 p50 ms (1t / 2t) | speed-up (1t / 2t) |")
    print("|---|---|---|---|---|---|---|")
    for c in a.candidates:
        v, al, s, e = c.lstrip("v").split(":")
        r = probe(int(v), float(al), int(s), int(e), a.runs)
        print(f"| {r['arch']} | {r['fp32_bytes'] / 1024:.0f} | {r['int8_bytes'] / 1024:.0f} | "
              f"{r['ratio']:.3f} | {r['fp32_ms_t1']:.2f} / {r['fp32_ms_t2']:.2f} | "
              f"{r['int8_ms_t1']:.2f} / {r['int8_ms_t2']:.2f} | "
              f"{r['speedup_t1']:.2f}x / {r['speedup_t2']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
