"""Latency benchmarks: raw interpreter invokes per model/precision/threads, and the pipeline.

The invoke benchmark follows TensorFlow's benchmark_model (init, first inference, warm-up,
then timed runs) and adds percentiles. Only `interpreter.invoke()` sits inside the timer,
so the numbers are the model's, not this module's; overhead_check() compares that loop with a
bare one (a timer read per block of invokes) and every record carries the result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edge.errors import FingercountError, ModelError
from edge.machine import machine_info, xnnpack_status
from edge.redact import redact
from edge.runtime.interpreter import make_interpreter
from edge.runtime.package import (
    FILE_PRECISIONS,
    PRECISIONS,
    ModelPackage,
    bare_tflite,
    resolve_package,
    scan_packages,
    tflite_precision,
)

log = logging.getLogger(__name__)

DEFAULT_RUNS = 100
DEFAULT_WARMUP = 10
DEFAULT_FRAMES = 300
MAX_SECONDS = 30.0  # per case: slow models on small boards stop after this (>= 10 runs)
BARE_BLOCK = 10  # invokes per timer read in the bare reference loop


class BenchError(FingercountError, ValueError):
    """A benchmark could not run as asked (no models, bad target, missing camera data)."""


@dataclass
class Target:
    """One .tflite to benchmark, named as the report shows it."""

    model: str
    precision: Optional[str]  # None only for a package too broken to list its precisions
    version: Optional[str]
    file: Path
    package: Optional[ModelPackage] = None
    error: Optional[str] = None  # why it cannot be benchmarked (a broken package), if known

    def data(self) -> bytes:
        if self.error is not None:
            raise ModelError(self.error)
        if self.package is not None and not self.package.single_file:
            return self.package.variant_bytes(str(self.precision))  # sha256-verified
        try:
            return self.file.read_bytes()
        except OSError as e:
            raise ModelError(f"{self.file}: cannot read ({e.strerror or e})") from e


# ---- targets ---------------------------------------------------------------------------

def _package_targets(pkg: ModelPackage, precisions: Sequence[str]) -> list[Target]:
    out = []
    for prec in PRECISIONS:
        if prec in precisions and prec in pkg.variants:
            out.append(Target(pkg.name, prec, pkg.version, pkg.root / pkg.variants[prec]["file"], pkg))
    return out


def installed_targets(models_dir: Path, precisions: Sequence[str]) -> list[Target]:
    """Every package in models_dir; one whose model.json is unusable becomes a Target with
    .error, so that the report names it instead of skipping it without a word."""
    found = scan_packages(models_dir)
    if not found:
        raise BenchError(f"no model packages in {models_dir}; name a model or a .tflite "
                         "(fingercount bench path/to/model.tflite)")
    targets: list[Target] = []
    for sub, pkg in found:
        if isinstance(pkg, ModelError):
            targets.append(Target(sub.name, None, None, sub / "model.json", error=str(pkg)))
        else:
            targets += _package_targets(pkg, precisions)
    return targets


def _file_target(p: Path) -> Target:
    """A .tflite given by path (any suffix), named by its stem, precision read from its tensors."""
    try:
        data = p.read_bytes()
    except OSError as e:
        raise BenchError(f"{p}: cannot read ({e.strerror or e})") from e
    return Target(p.stem, tflite_precision(make_interpreter(data, 1, str(p))), "file", p)


def _spec_targets(spec: str, models_dir: Path, precisions: Sequence[str]) -> list[Target]:
    """What `spec` names, resolved as --model resolves it; a bare file need not be a classifier."""
    bare = bare_tflite(spec, models_dir)
    if bare is not None:
        t = _file_target(bare)
        return [t] if t.precision in precisions else []
    pkg = resolve_package(spec, models_dir)
    got = _package_targets(pkg, precisions)
    if not got:
        raise BenchError(f"{pkg.name}: no {'/'.join(precisions)} variant (has: {', '.join(pkg.variants)})")
    return got


def resolve_targets(specs: Sequence[str], models_dir: Path,
                    precision: Optional[str] = None) -> list[Target]:
    """Bench targets: every installed model and precision, or the named models / .tflite files.

    One named target that cannot be resolved raises; among several it becomes a Target with
    .error (a failed row) and the others are still measured."""
    precisions = [precision] if precision else list(PRECISIONS) + list(FILE_PRECISIONS)
    targets: list[Target] = []
    if not specs:
        targets = installed_targets(models_dir, precisions)
    for spec in specs:
        try:
            targets += _spec_targets(spec, models_dir, precisions)
        except FingercountError as e:
            if len(specs) == 1:
                raise
            targets.append(Target(Path(spec).stem or spec, None, None, Path(spec), error=str(e)))
    if not targets:
        raise BenchError(f"nothing to benchmark with --precision {precision}")
    return targets


# ---- measuring -------------------------------------------------------------------------

def rss_mb() -> float:
    """Resident memory of this process now (not the peak), in MB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # peak, KB on Linux


def _malloc_trim() -> Callable[[], Any]:
    """glibc's malloc_trim(0), or a no-op where the C library has none (musl, macOS)."""
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    fn.argtypes = [ctypes.c_size_t]
    return partial(fn, 0)


_trim = _malloc_trim()


def release_memory() -> None:
    """Free the previous case's interpreter and hand freed heap back to the OS, so the next
    case's RSS delta is its own and not hidden by memory the allocator kept from before."""
    gc.collect()
    _trim()


def prime_runtime(data: bytes, threads: int) -> bool:
    """One throwaway case (interpreter, invokes, statistics) before the first measured one, so
    that no row pays for loading the runtime, XNNPACK or numpy's lazily imported parts. False
    if this model would not run; the measured case then reports why."""
    try:
        bench_model(data, threads, runs=1, warmup=1, what="priming", bare=False)
    except ModelError:
        return False
    return True


DYNAMIC_HW = 224  # a dynamic image height/width is timed at this size (and the report says so)


def _image_like(shape: Sequence[int]) -> bool:
    """NHWC with 1, 3 or 4 channels: pixels, where random values are valid input."""
    return len(shape) == 4 and int(shape[-1]) in (1, 3, 4)


def _concrete_shape(sig: Sequence[int]) -> list[int]:
    """A dynamic dimension (-1) becomes 1, or DYNAMIC_HW for an image's height and width."""
    img = len(sig) == 4 and int(sig[-1]) in (-1, 1, 3, 4)
    out = []
    for i, s in enumerate(int(x) for x in sig):
        out.append(s if s >= 0 else DYNAMIC_HW if img and i in (1, 2) else 3 if img and i == 3 else 1)
    return out


def fill_inputs(interp: Any, seed: int = 0) -> list[dict]:
    """Input of the right dtype and shape for every input (any model, any signature): random
    floats and random image pixels; zeros for other integer inputs (indices, token ids),
    whose valid range only the model knows. Returns what was fed; an input with dynamic
    dimensions carries its "signature" (see _concrete_shape for what they became)."""
    rng = np.random.default_rng(seed)
    details = interp.get_input_details()
    dynamic: dict[str, list[int]] = {}
    resized = False
    for d in details:
        sig = [int(s) for s in d.get("shape_signature", d["shape"])]
        if any(s < 0 for s in sig):
            interp.resize_tensor_input(d["index"], _concrete_shape(sig))
            resized = True
            if any(s < 0 for s in sig[1:]):  # a dynamic batch of 1 needs no word
                dynamic[d["name"]] = sig
    if resized:
        interp.allocate_tensors()
        details = interp.get_input_details()
    fed = []
    for d in details:
        dt = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        if dt.kind == "f":
            x = rng.random(shape, dtype=np.float32).astype(dt)
        elif dt.kind in "iu" and dt.itemsize == 1 and _image_like(shape):
            info = np.iinfo(dt)
            x = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt)
        elif dt.kind in "iu":
            x = np.zeros(shape, dtype=dt)
        elif dt.kind == "b":
            x = rng.random(shape) < 0.5
        else:
            raise ModelError(f"input {d['name']!r} has dtype {dt}, which the benchmark cannot fill")
        interp.set_tensor(d["index"], x)
        rec: dict[str, Any] = {"name": d["name"], "shape": list(shape), "dtype": dt.name}
        if d["name"] in dynamic:
            rec["signature"] = dynamic[d["name"]]
        fed.append(rec)
    return fed


def percentiles(ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    mean = float(a.mean())
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": mean,
            "min_ms": float(a.min()), "max_ms": float(a.max()), "std_ms": float(a.std()),
            "fps": 1000.0 / mean if mean > 0 else 0.0}


def time_invokes(invoke: Callable[[], Any], runs: int, max_seconds: float = MAX_SECONDS,
                 min_runs: int = 10) -> list[float]:
    """Per-call ms of `runs` invokes (fewer, >= min_runs, if max_seconds runs out)."""
    pc = time.perf_counter_ns
    out: list[float] = []
    deadline = time.monotonic() + max_seconds
    for i in range(runs):
        t0 = pc()
        invoke()
        out.append((pc() - t0) / 1e6)
        if i + 1 >= min_runs and time.monotonic() > deadline:
            break
    return out


def overhead_check(invoke: Callable[[], Any], runs: int, block: int = BARE_BLOCK,
                   deadline: Optional[float] = None, invoke_ms: float = 0.0) -> dict:
    """This module's timing loop against a bare invoke loop, interleaved block by block so
    that load from other processes hits both alike. Each block of `block` invokes gives one
    ms-per-invoke figure; the medians of those are compared.

    With a deadline (time.monotonic()), a block pair that would not end before it (at
    invoke_ms per invoke) is not started; with no pair done the check is skipped."""
    pc = time.perf_counter_ns
    timed: list[float] = []
    bare: list[float] = []
    for _ in range(max(3, runs // block)):
        if deadline is not None and time.monotonic() + 2 * block * invoke_ms / 1e3 > deadline:
            break
        acc = []
        for _ in range(block):  # exactly what time_invokes does per call
            t0 = pc()
            invoke()
            acc.append((pc() - t0) / 1e6)
        timed.append(sum(acc) / block)
        t0 = pc()
        for _ in range(block):
            invoke()
        bare.append((pc() - t0) / 1e6 / block)
    if not timed:
        return {"timed_block_p50_ms": None, "bare_p50_ms": None, "overhead_pct": None,
                "overhead_blocks": 0}
    t, b = float(np.median(timed)), float(np.median(bare))
    return {"timed_block_p50_ms": t, "bare_p50_ms": b, "overhead_pct": 100.0 * (t - b) / b,
            "overhead_blocks": len(timed)}


def bench_model(data: bytes, threads: int, runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
                what: str = "model", bare: bool = True, max_seconds: float = MAX_SECONDS) -> dict:
    """One model at one thread count: init, first, warm-up, timed runs, RSS delta, and the
    overhead check, all within max_seconds (a slow model gets fewer runs; "cut" says so)."""
    if runs < 1 or warmup < 0:
        raise BenchError("--runs must be >= 1 and --warmup >= 0")
    release_memory()
    rss0 = rss_mb()
    start = time.monotonic()
    deadline = start + max_seconds
    t0 = time.perf_counter()
    interp = make_interpreter(data, threads, what)
    init_ms = (time.perf_counter() - t0) * 1e3
    inputs = fill_inputs(interp)
    t0 = time.perf_counter()
    try:
        interp.invoke()
    except (RuntimeError, ValueError) as e:
        raise ModelError(f"{what}: invoke failed: {str(e).strip().splitlines()[0]}") from e
    first_ms = (time.perf_counter() - t0) * 1e3
    # warm-up up to 1/6 of the budget, timed runs up to 2/3 of it, the overhead check the rest
    warm = time_invokes(interp.invoke, warmup, max_seconds / 6, 1) if warmup else []
    timed = time_invokes(interp.invoke, runs, max(0.0, start + max_seconds * 2 / 3 - time.monotonic()),
                         min(runs, 10))
    rec: dict[str, Any] = {
        "bytes": len(data), "threads": int(threads), "init_ms": init_ms, "first_ms": first_ms,
        "warmup_ms": float(np.mean(warm)) if warm else None, "warmup_runs": len(warm),
        "runs": len(timed), "runs_asked": runs, **percentiles(timed),
    }
    rec["rss_mb"] = rss_mb() - rss0
    if bare:
        rec.update(overhead_check(interp.invoke, len(timed), deadline=deadline,
                                  invoke_ms=rec["p50_ms"]))
    rec["cut"] = len(timed) < runs or len(warm) < warmup or \
        (bare and rec["overhead_blocks"] < max(3, len(timed) // BARE_BLOCK))
    rec["seconds"] = time.monotonic() - start
    rec["max_seconds"] = max_seconds
    rec["inputs"] = inputs
    rec["outputs"] = [{"name": d["name"], "shape": [int(s) for s in d["shape"]],
                       "dtype": np.dtype(d["dtype"]).name} for d in interp.get_output_details()]
    rec["xnnpack"] = xnnpack_status(interp)
    del interp
    return rec


def run_invoke_bench(targets: Sequence[Target], threads: Sequence[int], runs: int = DEFAULT_RUNS,
                     warmup: int = DEFAULT_WARMUP,
                     progress: Optional[Callable[[dict], None]] = None,
                     keep_going: bool = True) -> tuple[list[dict], list[dict]]:
    """(records, errors). A case that cannot load or run becomes an error record (model,
    precision, file, error) and the others are still measured; keep_going=False raises instead."""
    records: list[dict] = []
    errors: list[dict] = []
    primed = False

    def done(rec: dict, e: Optional[ModelError] = None) -> None:
        if e is not None:
            if not keep_going:
                raise e
            rec["error"] = str(e)
        (errors if e is not None else records).append(rec)
        if progress:
            progress(rec)

    for t in targets:
        base = {"model": t.model, "precision": t.precision, "version": t.version, "file": str(t.file)}
        try:
            data = t.data()
        except ModelError as e:
            done({**base, "threads": None}, e)  # unreadable: one record for every thread count
            continue
        for n in threads:
            primed = primed or prime_runtime(data, n)
            try:
                rec = bench_model(data, n, runs, warmup, f"{t.model} {t.precision}")
            except ModelError as e:
                done({**base, "threads": int(n)}, e)
            else:
                done({**base, **rec})
    return records, errors


# ---- accuracy (--data) -----------------------------------------------------------------

def accuracy_by_precision(pkg: ModelPackage, precisions: Iterable[str], data_dir: Path,
                          threads: int = 1, roi: Optional[Sequence[int]] = None,
                          stage: Any = None) -> dict[str, dict]:
    """Per precision {"accuracy", "n_images", "skipped_files"[, "agreement_fp32"]} or
    {"accuracy_error": why}, scoring the same .tflite the invoke rows time (the fused
    variant: no retrained head). Images and unreadable files are treated as eval does
    (edge.evaluate); agreement with fp32 needs fp32 among the precisions: no other variant
    is loaded, so a broken one cannot cost the others their score. stage: a HandStage the
    classifier runs behind (a finger-count model: on the hand crop, no hand = wrong), as eval."""
    from edge.evaluate import class_folder_items
    from edge.runtime.classifier import Classifier
    from edge.runtime.preprocess import read_image

    out: dict[str, dict] = {}
    clfs = {}
    for p in precisions:
        try:
            clfs[p] = Classifier(pkg, p, threads, roi=roi)
        except FingercountError as e:
            out[p] = {"accuracy_error": str(e)}
    if not clfs:
        return out
    labels = next(iter(clfs.values())).labels
    try:
        items, _ = class_folder_items(data_dir, labels)
    except FingercountError as e:
        return {**out, **{p: {"accuracy_error": f"--data {e}"} for p in clfs}}
    truth: list[int] = []
    preds: dict[str, list[int]] = {p: [] for p in clfs}
    skipped: list[str] = []
    for path, k in items:
        try:
            frame = read_image(str(path))
        except ValueError:
            skipped.append(str(path))
            continue
        truth.append(k)
        for p, clf in clfs.items():
            if stage is None:
                preds[p].append(int(np.argmax(clf.classify(frame)[0])))
                continue
            from edge.counting import HandCounter, analyse
            from edge.evaluate import NO_HAND

            probs = analyse(HandCounter(stage, clf), frame).probs
            preds[p].append(NO_HAND if probs is None else int(np.argmax(probs)))
    if not truth:
        why = f"--data {data_dir}: no readable image in the label folders"
        return {**out, **{p: {"accuracy_error": why} for p in clfs}}
    t = np.array(truth)
    for p in clfs:
        got = np.array(preds[p])
        out[p] = {"accuracy": float((got == t).mean()), "n_images": len(t), "skipped_files": skipped}
        if "fp32" in preds:
            out[p]["agreement_fp32"] = float((got == np.array(preds["fp32"])).mean())
    return out


# ---- the pipeline ----------------------------------------------------------------------

# pipeline and raw-invoke blocks alternate (see _pipeline_loop)
PIPELINE_BLOCKS = 10


def bundled_replay_dir() -> Path:
    """tests/data/hands next to the installation (the default --pipeline camera)."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "tests" / "data" / "hands", Path("/usr/share/fingercount/replay")):
        if cand.is_dir():
            return cand
    raise BenchError("no bundled replay images found; pass --camera replay:DIR or a real camera")


def invoke_rate(clf: Any, pixels: np.ndarray, runs: int, warmup: int) -> list[float]:
    """Raw invoke ms of the classifier's own interpreter (same model, same threads)."""
    clf.model.set_input(pixels)
    interp = clf.model.interp
    time_invokes(interp.invoke, warmup)
    return time_invokes(interp.invoke, runs)


def _raw_block(into: list[list[float]], clf: Any, pixels: np.ndarray, n: int) -> None:
    into.append(invoke_rate(clf, pixels, max(n, 50), 0))


def run_pipeline_bench(cfg: Any, precision: str, threads: Sequence[int], frames: int,
                       warmup: int, camera_spec: Optional[str] = None,
                       mqtt_target: Optional[tuple[str, int]] = None,
                       precision_asked: Optional[str] = None) -> list[dict]:
    """The real pipeline (camera thread, preprocess, invoke, smoothing, result payload,
    optional MQTT publish) per thread count, beside the raw invoke rate of the same model.
    Like the daemon it runs the user's retrained head where there is one ("head": true,
    model_id ends in +head)."""
    from edge.camera import camera_from_config
    from edge.pipeline import Pipeline
    from edge.runtime.classifier import Classifier
    from edge.runtime.loader import open_package
    from edge.smoothing import Smoother

    pkg = open_package(cfg)
    publish = _mqtt_publisher(cfg, mqtt_target) if mqtt_target else None
    from edge.runtime.loader import uses_hand_stage

    if uses_hand_stage(cfg, pkg):
        from edge.bench_hands import run_hand_pipeline_bench

        try:
            return run_hand_pipeline_bench(cfg, pkg, precision, threads, frames, warmup, camera_spec,
                                           publish)
        finally:
            if publish is not None:
                publish(None)
    spec = camera_spec or f"replay:{bundled_replay_dir()}@0"
    if pkg.single_file:
        have = next(iter(pkg.variants))
        if precision_asked and precision_asked != have:
            raise BenchError(f"--precision {precision_asked}: {pkg.root / pkg.variants[have]['file']} "
                             f"is {have}")
        precision = have
    records = []
    try:
        for n in threads:
            clf = Classifier(pkg, precision, n, state_dir=cfg.state_dir, roi=cfg.camera.roi)
            source = _camera_source(spec, cfg)
            cam = camera_from_config(cfg.camera, source)
            sm = cfg.smoothing
            smoother = Smoother(clf.labels, sm.window, sm.min_confidence, sm.min_hold_ms)
            pipe = Pipeline(cam, clf, smoother)
            with cam:
                first = pipe.step(10.0)
                if first is None:
                    raise BenchError(f"camera {spec}: no frame within 10 s")
                pixels = clf.preprocess(first.frame.rgb)
                invoke_rate(clf, pixels, 0, warmup)
                raw_blocks: list[list[float]] = []
                rec = _pipeline_loop(pipe, frames, warmup, publish, cfg.publish.max_hz,
                                     between=partial(_raw_block, raw_blocks, clf, pixels))
                shape = list(first.frame.rgb.shape)
            inv = percentiles([ms for b in raw_blocks for ms in b])
            block_ratios = [f / percentiles(b)["fps"] for f, b in zip(rec.pop("block_fps"), raw_blocks)]
            rec.update({"model": pkg.name, "precision": precision, "version": pkg.version,
                        "model_id": clf.model_id, "threads": n, "camera": redact(spec),
                        "head": clf.head is not None,
                        "frame_shape": shape, "raw_invoke_p50_ms": inv["p50_ms"],
                        "raw_invoke_mean_ms": inv["mean_ms"], "invoke_fps": inv["fps"],
                        "blocks": len(block_ratios),
                        "ratio_blocks": {"median": float(np.median(block_ratios)),
                                         "min": min(block_ratios), "max": max(block_ratios)},
                        "mqtt": f"{mqtt_target[0]}:{mqtt_target[1]}" if mqtt_target else None,
                        "xnnpack": xnnpack_status(clf.model.interp)})
            rec["ratio"] = rec["pipeline_fps"] / rec["invoke_fps"] if rec["invoke_fps"] else 0.0
            records.append(rec)
    finally:
        if publish is not None:
            publish(None)
    return records


def _camera_source(spec: str, cfg: Any) -> Any:
    """A replay of a folder delivers camera-sized frames (camera.width x height), pre-resized
    once, so the benchmark measures the pipeline on realistic frames, not JPEG decoding."""
    from edge.camera import open_source, parse_spec

    kind, target, fps = parse_spec(spec)
    if kind == "replay" and Path(target).is_dir():
        from edge.camera.replay import ReplaySource

        return ReplaySource(target, 0.0 if fps is None else fps,
                            size=(cfg.camera.width, cfg.camera.height))
    return open_source(spec, cfg.camera.width, cfg.camera.height, cfg.camera.fps)


def _pipeline_loop(pipe: Any, frames: int, warmup: int,
                   publish: Optional[Callable[[Optional[str]], None]], max_hz: float,
                   between: Optional[Callable[[int], None]] = None, blocks: int = PIPELINE_BLOCKS,
                   on_result: Optional[Callable[[Any], Any]] = None) -> dict:
    """Per frame what the daemon's loop does: step, then the …/prediction payload (built and
    published) at most max_hz times a second, as publish.max_hz limits the daemon.

    The frames run in `blocks` blocks with between(n) (a raw-invoke block of n) before each,
    so that load from other processes on a shared machine hits both rates alike."""
    stages: tuple[str, ...] = ()  # the pipeline's own stages, as its first result names them
    pc = time.perf_counter
    min_gap = 1.0 / max_hz if max_hz > 0 else None
    last, built = -1e9, 0
    # Per frame only appends; the stage tables are built after the clock stops, so the
    # benchmark's bookkeeping is not charged to the pipeline.
    timings: list[dict[str, float]] = []
    result_ms: list[float] = []
    ahead_ms: list[float] = []  # preprocessing done in the capture thread, off the critical path

    def one() -> None:
        nonlocal last, built
        r = pipe.step(10.0)
        if r is None:
            raise BenchError(f"camera {pipe.camera.source.name}: no fresh frame within 10 s")
        t0 = pc()
        if min_gap is not None and t0 - last >= min_gap:
            payload = json.dumps(r.prediction())
            if publish is not None:
                publish(payload)
            last = t0
            built += 1
        result_ms.append((pc() - t0) * 1e3)
        timings.append(r.timing_ms)
        if on_result is not None:
            on_result(r)
        prep = r.frame.prepared
        if prep is not None and prep[1] is not None:
            ahead_ms.append(prep[2])

    for _ in range(warmup):
        one()
    del timings[:], result_ms[:], ahead_ms[:]
    dropped0 = pipe.dropped
    built = 0
    seconds = 0.0
    block_fps: list[float] = []
    nb = max(1, min(blocks, frames // 100))
    for b in range(nb):
        n = frames // nb + (1 if b < frames % nb else 0)
        if between is not None:
            between(n)
        t0 = pc()
        for _ in range(n):
            one()
        dt = pc() - t0
        seconds += dt
        block_fps.append(n / dt if dt > 0 else 0.0)
    stages = tuple(s for s in timings[0] if s != "total") + ("result", "total")
    ms: dict[str, list[float]] = {s: [t[s] for t in timings] for s in stages[:-2]}  # the pipeline's own
    ms["result"] = result_ms
    ms["total"] = [t["total"] + x for t, x in zip(timings, result_ms)]
    out: dict[str, Any] = {"frames": frames, "seconds": seconds,
                           "pipeline_fps": frames / seconds if seconds > 0 else 0.0,
                           "dropped": pipe.dropped - dropped0,
                           "payloads": built, "publish_max_hz": max_hz, "block_fps": block_fps,
                           "preprocessed_ahead": len(ahead_ms) / frames,
                           "preprocess_ahead_ms": float(np.mean(ahead_ms)) if ahead_ms else None}
    for s in stages:
        a = np.asarray(ms[s])
        out[f"{s}_ms"] = float(a.mean())
        out[f"{s}_p50_ms"] = float(np.median(a))
        out[f"{s}_p90_ms"] = float(np.percentile(a, 90))
    return out


def _mqtt_publisher(cfg: Any, target: tuple[str, int]) -> Callable[[Optional[str]], None]:
    """publish(payload) to …/prediction at QoS 0; publish(None) disconnects."""
    import paho.mqtt.client as mqtt

    host, port = target
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fingercount-bench-{os.getpid()}")
    if cfg.mqtt.username:
        client.username_pw_set(cfg.mqtt.username, cfg.mqtt_password())
    try:
        client.connect(host, port, keepalive=cfg.mqtt.keepalive)
    except OSError as e:
        raise BenchError(f"--mqtt {host}:{port}: cannot connect ({e.strerror or e})") from e
    client.loop_start()
    topic = f"{cfg.mqtt.base_topic}/{cfg.device_id}/prediction"

    def publish(payload: Optional[str]) -> None:
        if payload is None:
            client.disconnect()
            client.loop_stop()
            return
        client.publish(topic, payload, qos=0)

    return publish


def report(kind: str, records: list[dict], settings: dict,
           errors: Optional[list[dict]] = None, machine: Optional[dict] = None) -> dict:
    """The JSON document: machine (machine_info() taken before the first case, so its load
    average is the one at start), settings, one record per measured case, and one error
    record (model, precision, threads, file, error) per case that could not be measured.
    machine.xnnpack is the cases' common status, or "mixed" (each record has its own)."""
    info = dict(machine) if machine is not None else machine_info()
    seen = [r["xnnpack"] for r in records if r.get("xnnpack")]
    if seen and all(x.get("enabled") == seen[0].get("enabled") for x in seen):
        info["xnnpack"] = seen[0]
    elif seen:
        info["xnnpack"] = {"enabled": None, "mixed": True,
                           "how": "differs per case: see the XNNPACK column"}
    return {"kind": kind, "machine": info, "settings": settings, "records": records,
            "errors": errors or [], "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
