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
from edge.runtime.interpreter import make_interpreter
from edge.runtime.package import PRECISIONS, ModelPackage, resolve_package, scan_packages

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
            return self.package.variant_bytes(self.precision)  # sha256-verified
        try:
            return self.file.read_bytes()
        except OSError as e:
            raise ModelError(f"{self.file}: cannot read ({e.strerror or e})") from e


# ---- targets ---------------------------------------------------------------------------

def file_precision(interp: Any) -> str:
    """int8 for integer input, else fp16 if float16 weights are stored, else fp32."""
    if any(np.dtype(d["dtype"]).kind in "iu" and np.dtype(d["dtype"]).itemsize == 1
           for d in interp.get_input_details()):
        return "int8"
    dtypes = {np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    return "fp16" if np.dtype(np.float16) in dtypes else "fp32"


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


def resolve_targets(specs: Sequence[str], models_dir: Path,
                    precision: Optional[str] = None) -> list[Target]:
    """Bench targets: every installed model and precision, or the named models / .tflite files."""
    precisions = [precision] if precision else list(PRECISIONS)
    targets: list[Target] = []
    if not specs:
        targets = installed_targets(models_dir, precisions)
    for spec in specs:
        p = Path(spec).expanduser()
        if p.suffix == ".tflite":
            if not p.is_file():
                raise BenchError(f"{p}: no such file")
            data = p.read_bytes()
            prec = file_precision(make_interpreter(data, 1, str(p)))
            if precision and prec != precision:
                continue
            targets.append(Target(p.stem, prec, "file", p))
            continue
        pkg = resolve_package(spec, models_dir)
        got = _package_targets(pkg, precisions)
        if not got:
            raise BenchError(f"{pkg.name}: no {precision} variant (has: {', '.join(pkg.variants)})")
        targets += got
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


def fill_inputs(interp: Any, seed: int = 0) -> list[dict]:
    """Random input of the right dtype and shape for every input (any model, any signature).

    Dynamic dimensions (-1 in the shape signature) become 1. Returns what was fed."""
    rng = np.random.default_rng(seed)
    details = interp.get_input_details()
    resized = False
    for d in details:
        sig = d.get("shape_signature", d["shape"])
        if len(sig) and any(int(s) < 0 for s in sig):
            interp.resize_tensor_input(d["index"], [max(1, int(s)) for s in sig])
            resized = True
    if resized:
        interp.allocate_tensors()
        details = interp.get_input_details()
    fed = []
    for d in details:
        dt = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        if dt.kind == "f":
            x = rng.random(shape, dtype=np.float32).astype(dt)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            lo, hi = max(info.min, -(2 ** 15)), min(info.max, 2 ** 15)
            x = rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)
        elif dt.kind == "b":
            x = rng.random(shape) < 0.5
        else:
            raise ModelError(f"input {d['name']!r} has dtype {dt}, which the benchmark cannot fill")
        interp.set_tensor(d["index"], x)
        fed.append({"name": d["name"], "shape": list(shape), "dtype": dt.name})
    return fed


def percentiles(ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    mean = float(a.mean())
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": mean,
            "min_ms": float(a.min()), "max_ms": float(a.max()), "std_ms": float(a.std()),
            "fps": 1000.0 / mean if mean > 0 else 0.0}


def time_invokes(invoke: Callable[[], Any], runs: int, max_seconds: float = MAX_SECONDS) -> list[float]:
    """Per-call ms of `runs` invokes (fewer, >= 10, if max_seconds runs out)."""
    pc = time.perf_counter_ns
    out: list[float] = []
    deadline = time.monotonic() + max_seconds
    for i in range(runs):
        t0 = pc()
        invoke()
        out.append((pc() - t0) / 1e6)
        if i >= 9 and time.monotonic() > deadline:
            break
    return out


def overhead_check(invoke: Callable[[], Any], runs: int, block: int = BARE_BLOCK) -> dict:
    """This module's timing loop against a bare invoke loop, interleaved block by block so
    that load from other processes hits both alike. Each block of `block` invokes gives one
    ms-per-invoke figure; the medians of those are compared."""
    pc = time.perf_counter_ns
    timed: list[float] = []
    bare: list[float] = []
    for _ in range(max(3, runs // block)):
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
    t, b = float(np.median(timed)), float(np.median(bare))
    return {"timed_block_p50_ms": t, "bare_p50_ms": b, "overhead_pct": 100.0 * (t - b) / b}


def bench_model(data: bytes, threads: int, runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
                what: str = "model", bare: bool = True, max_seconds: float = MAX_SECONDS) -> dict:
    """One model at one thread count: init, first, warm-up, timed runs, RSS delta."""
    if runs < 1 or warmup < 0:
        raise BenchError("--runs must be >= 1 and --warmup >= 0")
    release_memory()
    rss0 = rss_mb()
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
    warm = time_invokes(interp.invoke, warmup, max_seconds / 3) if warmup else []
    timed = time_invokes(interp.invoke, runs, max_seconds)
    rec: dict[str, Any] = {
        "bytes": len(data), "threads": int(threads), "init_ms": init_ms, "first_ms": first_ms,
        "warmup_ms": float(np.mean(warm)) if warm else None, "warmup_runs": len(warm),
        "runs": len(timed), **percentiles(timed),
    }
    rec["rss_mb"] = rss_mb() - rss0
    if bare:
        rec.update(overhead_check(interp.invoke, len(timed)))
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

def labelled_images(data_dir: Path) -> list[tuple[Path, str]]:
    from edge.camera.replay import IMAGE_SUFFIXES

    d = Path(data_dir)
    if not d.is_dir():
        raise BenchError(f"--data {d}: not a directory of class folders")
    out = [(p, sub.name) for sub in sorted(d.iterdir()) if sub.is_dir()
           for p in sorted(sub.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not out:
        raise BenchError(f"--data {d}: no images in class folders (DIR/<label>/*.jpg)")
    return out


def accuracy_by_precision(pkg: ModelPackage, precisions: Iterable[str], data_dir: Path,
                          threads: int = 1, state_dir: Optional[Path] = None,
                          roi: Optional[Sequence[int]] = None) -> dict[str, dict]:
    """Accuracy per precision on the images whose folder is one of the model's labels, and
    agreement with fp32 (share of those images where this precision gives fp32's label)."""
    from edge.runtime.classifier import Classifier
    from edge.runtime.preprocess import read_image

    precs = [p for p in precisions if p in pkg.variants]
    preds: dict[str, list[str]] = {}
    truth: list[str] = []
    clfs = {p: Classifier(pkg, p, threads, state_dir=state_dir, roi=roi) for p in precs}
    labels = set(next(iter(clfs.values())).labels) if clfs else set()
    items = [(path, lab) for path, lab in labelled_images(data_dir) if lab in labels]
    if not items:
        raise BenchError(f"--data {data_dir}: no class folder is one of {pkg.name}'s labels "
                         f"({', '.join(sorted(labels))})")
    for path, lab in items:
        try:
            frame = read_image(str(path))
        except ValueError as e:
            log.warning("skipping %s", e)
            continue
        truth.append(lab)
        for p, clf in clfs.items():
            probs, _ = clf.classify(frame)
            preds.setdefault(p, []).append(clf.labels[int(np.argmax(probs))])
    out: dict[str, dict] = {}
    t = np.array(truth)
    for p in precs:
        got = np.array(preds[p])
        out[p] = {"accuracy": float((got == t).mean()), "n_images": len(t)}
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
                       mqtt_target: Optional[tuple[str, int]] = None) -> list[dict]:
    """The real pipeline (camera thread, preprocess, invoke, smoothing, result payload,
    optional MQTT publish) per thread count, beside the raw invoke rate of the same model."""
    from edge.camera import camera_from_config
    from edge.pipeline import Pipeline
    from edge.runtime.classifier import Classifier
    from edge.runtime.loader import open_package
    from edge.smoothing import Smoother

    spec = camera_spec or f"replay:{bundled_replay_dir()}@0"
    pkg = open_package(cfg)
    if pkg.single_file:
        precision = next(iter(pkg.variants))
    publish = _mqtt_publisher(cfg, mqtt_target) if mqtt_target else None
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
                        "model_id": clf.model_id, "threads": n, "camera": spec,
                        "frame_shape": shape, "invoke_p50_ms": inv["p50_ms"],
                        "invoke_mean_ms": inv["mean_ms"], "invoke_fps": inv["fps"],
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
                   between: Optional[Callable[[int], None]] = None, blocks: int = PIPELINE_BLOCKS) -> dict:
    """Per frame what the daemon's loop does: step, then the …/prediction payload (built and
    published) at most max_hz times a second, as publish.max_hz limits the daemon.

    The frames run in `blocks` blocks with between(n) (a raw-invoke block of n) before each,
    so that load from other processes on a shared machine hits both rates alike."""
    stages = ("capture", "preprocess", "invoke", "smooth", "result", "total")
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
    ms: dict[str, list[float]] = {s: [t[s] for t in timings] for s in stages[:4]}  # the pipeline's own
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
           errors: Optional[list[dict]] = None) -> dict:
    """The JSON document: machine, settings, one record per measured case, and one error
    record (model, precision, threads, file, error) per case that could not be measured."""
    x = next((r.get("xnnpack") for r in records if r.get("xnnpack")), None)
    return {"kind": kind, "machine": machine_info(x), "settings": settings, "records": records,
            "errors": errors or [], "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
