"""`fingercount-convert quantize-hands`: fp16 and int8 variants of the MediaPipe hand packages,
made through ONNX (converter/hands_route.py), measured against the float model on real photos
(converter/hands_measure.py) and added to each package with sha256, metrics, provenance and a
model card (report.md).

Per package, four candidates are made and measured; two are shipped, as the package contract
names them: `fp16` (float16 weights) and `int8` (full-integer, uint8 I/O: raw camera pixels in).
The fourth, dynamic range (int8 weights, float activations), is measured and reported, not
shipped (see the report for why). The float model every figure compares with is the package's
own fp32 file, exactly as MediaPipe ships it.
"""

from __future__ import annotations

import datetime as _dt
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from converter import hands_measure as hm
from converter.errors import ConvertError
from converter.hands_data import SETS, hand_crops, palm_inputs, photo_groups, pick_photos
from converter.hands_import import git_commit
from converter.hands_report import model_card
from converter.hands_route import OPSET, max_output_gap, quantize, to_saved_model, tool_versions
from converter.package import write_bytes, write_json
from edge.hands.palm import PalmDetector
from edge.hands.stage import LANDMARK_TASK, PALM_TASK, load_model
from edge.runtime.package import ModelPackage, load_package, scan_packages

CROP_PALM = "palm-detection-lite"  # the stage's default palm detector cuts the landmark crops
# candidate -> TFLiteConverter scheme; the first two are shipped under these precision names
CANDIDATES = {"fp16": "float16", "int8": "full-integer", "dynamic-range": "dynamic-range"}
SHIPPED = ("fp16", "int8")
SCHEMES = {
    "fp16": "float16 weights, float32 compute and I/O",
    "int8": "full-integer: int8 weights and activations, uint8 input (scale 1/255, zero point 0: "
            "raw camera pixels) and uint8 outputs",
    "dynamic-range": "int8 weights, float32 activations and I/O (not shipped)",
}
ROUTE_TOLERANCE = 1e-3  # the round trip's own float32 model must reproduce the source this closely
ROUTE = ("tflite -> ONNX (tf2onnx, opset {opset}, input as NCHW) -> TensorFlow SavedModel "
         "(onnx2tf) -> TFLiteConverter (float16 / full-integer with a representative dataset / "
         "dynamic range) -> the source's I/O names and output order restored")


def hand_packages(models: Path, names: Optional[list[str]]) -> list[ModelPackage]:
    """The palm-detection / hand-landmark packages in models (those named, if names)."""
    found = {}
    for _sub, pkg in scan_packages(models):
        if isinstance(pkg, ModelPackage) and pkg.task in (PALM_TASK, LANDMARK_TASK):
            found[pkg.name] = pkg
    for n in names or []:
        if n not in found:
            raise ConvertError(f"{models}: no hand model package named {n!r} "
                               f"(have: {', '.join(sorted(found)) or 'none'})")
    pkgs = [found[n] for n in (names or sorted(found))]
    if not pkgs:
        raise ConvertError(f"{models}: no hand model packages (fingercount-convert import-hands first)")
    for p in pkgs:
        if "fp32" not in p.variants:
            raise ConvertError(f"{p.name}: has no fp32 variant to quantize")
    return pkgs


def check_not_there(pkgs: list[ModelPackage], force: bool) -> None:
    there = [f"{p.name}/{p.name}_{prec}.tflite" for p in pkgs for prec in SHIPPED
             if prec in p.variants or (p.root / f"{p.name}_{prec}.tflite").exists()]
    if there and not force:
        raise ConvertError(f"{', '.join(there)} already exist; pass --force to replace them")


def run(models: Path, data: Path, names: Optional[list[str]], work: Optional[Path], force: bool,
        command: str, log=print) -> list[Path]:
    pkgs = hand_packages(models, names)
    check_not_there(pkgs, force)
    measure, calib = pick_photos(data)
    crops = None
    if any(p.task == LANDMARK_TASK for p in pkgs):
        crop_pkg = load_package(models / CROP_PALM) if (models / CROP_PALM).is_dir() else None
        if crop_pkg is None:
            raise ConvertError(f"{models}/{CROP_PALM}: needed to cut the landmark model's hand crops")
        det = PalmDetector(load_model(crop_pkg, "fp32", 2))
        log(f"hand crops from {CROP_PALM} fp32: {len(measure)} photos to measure, {len(calib)} to calibrate")
        crops = (hand_crops(measure, det, 224), hand_crops(calib, det, 224))
    tmp = None if work else Path(tempfile.mkdtemp(prefix="quantize-hands-"))
    try:
        done = []
        for pkg in pkgs:
            done.append(quantize_package(pkg, measure, calib, crops, (work or tmp) / pkg.name,  # type: ignore[operator]
                                         command, log))
        return done
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def quantize_package(pkg: ModelPackage, measure: list, calib: list, crops: Optional[tuple],
                     work: Path, command: str, log) -> Path:
    src_file = pkg.root / pkg.variants["fp32"]["file"]
    src = pkg.variant_bytes("fp32")  # sha256-checked
    size = pkg.input.height
    palm = pkg.task == PALM_TASK
    if palm:
        samples = palm_inputs(calib, size)
        calib_desc = f"{len(calib)} photos letterboxed to {size}x{size} as the edge does"
    else:
        assert crops is not None
        (m_crops, _), (c_crops, c_found) = crops
        samples = c_crops[c_found]
        calib_desc = (f"{len(samples)} hand crops ({size}x{size}, rotated as the edge's stage cuts them from "
                      f"{CROP_PALM} fp32's palm) of the {len(calib)} calibration photos where a palm was found")
    log(f"{pkg.name}: tflite -> ONNX -> SavedModel in {work}")
    route = to_saved_model(src_file, work, samples)
    gap = max_output_gap(src, quantize(route, "float32", samples), samples[0])
    if not gap <= ROUTE_TOLERANCE:
        raise ConvertError(f"{pkg.name}: the ONNX round trip changed the float model (largest output "
                           f"difference {gap:.3g} > {ROUTE_TOLERANCE}); not quantizing it")
    blobs = {}
    for name, scheme in CANDIDATES.items():
        log(f"{pkg.name}: {name} ({scheme})")
        blobs[name] = quantize(route, scheme, samples)
    log(f"{pkg.name}: measuring against fp32 on {len(measure)} photos")
    if palm:
        ref = hm.palm_results(src, measure)
        acc = {n: hm.compare_palms(ref, hm.palm_results(b, measure), measure, size) for n, b in blobs.items()}
        acc["fp32"] = hm.compare_palms(ref, ref, measure, size)
    else:
        ref_l = hm.landmark_results(src, m_crops)
        acc = {n: hm.compare_landmarks(ref_l, hm.landmark_results(b, m_crops), size) for n, b in blobs.items()}
        acc["fp32"] = hm.compare_landmarks(ref_l, ref_l, size)
    speed = hm.invoke_speeds({"fp32": src, **blobs})
    return write_package(pkg, blobs, acc, speed, {
        "route": ROUTE.format(opset=OPSET), "opset": OPSET, "tools": tool_versions(),
        "route_check_max_abs_output_diff": float(f"{gap:.3g}"),
        "representative": calib_desc,
        "representative_sets": photo_groups(calib),
        "measured_on": photo_groups(measure),
        "data_sets": sorted({folder for _, folder, *_ in SETS}),
        "selection": "seeded (0) disjoint picks per set: converter/hands_data.py SETS",
        "source_sha256": pkg.variants["fp32"]["sha256"],
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }, log)


def write_package(pkg: ModelPackage, blobs: dict[str, bytes], acc: dict[str, dict],
                  speed: dict[str, dict], quant: dict[str, Any], log) -> Path:
    meta = dict(pkg.meta)
    variants = {k: v for k, v in meta["variants"].items() if k == "fp32"}
    for prec in SHIPPED:
        entry = write_bytes(pkg.root, f"{pkg.name}_{prec}.tflite", blobs[prec])
        variants[prec] = {**entry, "scheme": SCHEMES[prec]}
    meta["variants"] = variants
    machine = platform.machine()
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if k not in CANDIDATES}
    metrics.setdefault("fp32", {})
    for prec in ("fp32", *CANDIDATES):
        inv = {**speed[prec], "machine": machine, "how": "interleaved with the other variants"}
        entry = {"vs_fp32": acc[prec], "invoke": inv}
        if prec == "fp32":
            metrics["fp32"] = {**metrics["fp32"], **entry}
        elif prec in SHIPPED:
            metrics[prec] = entry
        else:
            metrics.setdefault("not_shipped", {})[prec] = {**entry, "scheme": SCHEMES[prec]}
    meta["metrics"] = metrics
    meta.setdefault("provenance", {})["quantization"] = quant
    (pkg.root / "report.md").write_text(model_card(meta))
    write_json(pkg.root / "model.json", meta)
    log(f"{pkg.name}: " + ", ".join(
        f"{p} {speed[p]['p50_ms']:.1f} ms" for p in ("fp32", *CANDIDATES)))
    return pkg.root

