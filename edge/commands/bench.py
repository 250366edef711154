"""fingercount bench [MODEL_OR_TFLITE…] | bench --pipeline: latency benchmarks and reports."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from edge import bench
from edge import bench_report as rep
from edge.config import MAX_THREADS, Config
from edge.errors import FingercountError
from edge.hands import hand_stage_from_config
from edge.machine import machine_info
from edge.redact import redact
from edge.runtime.loader import uses_hand_stage
from edge.runtime.package import UNLABELLED_TASKS, single_tflite_package


def main(args: argparse.Namespace, cfg: Config) -> int:
    threads = args.threads or [cfg.model.threads]
    if any(not 1 <= n <= MAX_THREADS for n in threads):
        raise FingercountError(f"--threads: each count must be 1..{MAX_THREADS}")
    warmup = bench.DEFAULT_WARMUP if args.warmup is None else args.warmup
    if (args.runs is not None and args.runs < 1) or warmup < 0 or \
            (args.frames is not None and args.frames < 1):
        raise FingercountError("--runs and --frames must be >= 1, --warmup >= 0")
    if args.plot:
        rep.check_plot_path(args.plot)  # before measuring, not after
    settings = {"threads": threads, "warmup": warmup,
                "command": redact("fingercount " + " ".join(shlex.quote(a) for a in sys.argv[1:]))}
    machine = machine_info()  # the load average before the first case
    if args.pipeline:
        doc = _pipeline(args, cfg, threads, warmup, settings, machine)
    else:
        doc = _invoke(args, cfg, threads, warmup, settings, machine)
    # Files first: a closed stdout (`| head`, `| true`) must not cost the reports.
    if args.json:
        rep.write_json(doc, args.json)
    if args.markdown:
        rep.write_markdown(doc, args.markdown)
    if args.plot:
        rep.plot(doc, args.plot)
    print(rep.text_table(doc, wide=bool(getattr(args, "wide", False))), end="", flush=True)
    unscored = sum(1 for r in doc["records"] if r.get("accuracy_error"))
    why = ([f"{len(doc['errors'])} bench case(s) could not be measured"] if doc["errors"] else []) + \
        ([f"{unscored} case(s) have no accuracy"] if unscored else [])
    where = (["'failed'"] if doc["errors"] else []) + (["'notes'"] if unscored else [])
    if why:  # the rest is reported above; the exit status says not all of it was done
        raise FingercountError(f"{', '.join(why)} (see {' and '.join(where)} above)")
    return 0


def _invoke(args: argparse.Namespace, cfg: Config, threads: list[int], warmup: int,
            settings: dict, machine: dict) -> dict:
    if args.camera or args.frames or args.mqtt:
        raise FingercountError("--camera, --frames and --mqtt belong to bench --pipeline")
    if args.model and args.targets:
        raise FingercountError("give the models either as arguments or with --model, not both")
    runs = args.runs or bench.DEFAULT_RUNS
    settings["runs"] = runs
    specs = args.targets or ([args.model] if args.model else [])
    targets = bench.resolve_targets(specs, cfg.resolved_models_dir(), args.precision)

    def progress(r: dict) -> None:
        if "error" in r:
            print(f"  FAILED {rep.failed_line(r)}", file=sys.stderr, flush=True)
            return
        print(f"  {r['model']} {r['precision']} x{r['threads']}: p50 {r['p50_ms']:.2f} ms",
              file=sys.stderr, flush=True)
        for note in rep.record_notes(r):
            print(f"  warning: {note}", file=sys.stderr, flush=True)

    # One named target that fails is one error line; over several, a broken one is reported
    # and the rest are still measured.
    records, errors = bench.run_invoke_bench(targets, threads, runs, warmup, progress,
                                             keep_going=len(specs) != 1)
    if args.data:
        _add_accuracy(records, targets, args, cfg, threads[0])
        settings["data"] = args.data
    return bench.report("invoke", records, settings, errors, machine)


def _case_key(t: bench.Target) -> str:
    """Which model a target is: its package folder, or the file itself (two files of the same
    name in different folders are two models)."""
    if t.package is not None:  # only packages from models_dir or a folder: never single_file
        return str(t.package.root.resolve())
    return str(t.file.resolve())


def _add_accuracy(records: list[dict], targets: list[bench.Target], args: argparse.Namespace,
                  cfg: Config, threads: int) -> None:
    """Accuracy of each measured case (the .tflite its row timed); a case that cannot be scored
    gets "accuracy_error" in its record, and its latency stays reported."""
    measured = {r["file"] for r in records}
    groups: dict[str, list[bench.Target]] = {}
    for t in targets:
        # the hand stage's models classify nothing: eval scores them behind the counter
        if t.package is not None and t.package.task in UNLABELLED_TASKS:
            continue
        if t.error is None and str(t.file) in measured:
            groups.setdefault(_case_key(t), []).append(t)
    scored: dict[str, dict] = {}
    notes: set[str] = set()
    for ts in groups.values():
        precs = list(dict.fromkeys(t.precision for t in ts if t.precision is not None))
        try:
            # a bare file's one variant is named by the same tflite_precision as its target
            pkg = ts[0].package or single_tflite_package(ts[0].file)
            # a finger-count package is scored behind the hand stage, as `fingercount eval` scores it
            stage = hand_stage_from_config(cfg) if uses_hand_stage(cfg, pkg) else None
            got = bench.accuracy_by_precision(pkg, precs, Path(args.data), threads, cfg.camera.roi, stage)
        except FingercountError as e:
            got = {p: {"accuracy_error": str(e)} for p in precs}
        for t in ts:
            res = got.get(t.precision or "", {})
            scored[str(t.file)] = res
            notes.update(res.get("skipped_files", []))
            if res.get("accuracy_error"):
                print(f"  {t.model} {t.precision}: accuracy not scored: {res['accuracy_error']}",
                      file=sys.stderr, flush=True)
    for path in sorted(notes):
        print(f"note: {path}: not a readable image; skipped", file=sys.stderr)
    for r in records:
        r.update(scored.get(r["file"], {}))


def _pipeline(args: argparse.Namespace, cfg: Config, threads: list[int], warmup: int,
              settings: dict, machine: dict) -> dict:
    if args.targets:
        raise FingercountError("bench --pipeline takes the model from --model, not as an argument")
    if args.data or args.runs is not None:
        raise FingercountError("--data and --runs belong to the invoke benchmark, not --pipeline "
                               "(it runs --frames frames)")
    frames = args.frames or bench.DEFAULT_FRAMES
    precision = args.precision or cfg.model.precision
    target = None
    if args.mqtt and args.mqtt != "none":
        if cfg.mqtt.host == "embedded":
            raise FingercountError("bench --pipeline --mqtt needs a broker address (HOST[:PORT])")
        target = (cfg.mqtt.host, cfg.mqtt.port)
    settings.update({"frames": frames, "precision": precision, "model": cfg.model.name,
                     "camera": redact(args.camera) if args.camera else None})
    records = bench.run_pipeline_bench(cfg, precision, threads, frames, warmup,
                                       args.camera, target, precision_asked=args.precision)
    return bench.report("pipeline", records, settings, machine=machine)
