"""fingercount bench [MODEL_OR_TFLITE…] | bench --pipeline: latency benchmarks and reports."""

from __future__ import annotations

import argparse
import shlex
import sys

from edge import bench
from edge import bench_report as rep
from edge.config import Config
from edge.errors import FingercountError
from edge.runtime.package import resolve_package


def main(args: argparse.Namespace, cfg: Config) -> int:
    threads = args.threads or [cfg.model.threads]
    warmup = bench.DEFAULT_WARMUP if args.warmup is None else args.warmup
    if (args.runs is not None and args.runs < 1) or warmup < 0 or \
            (args.frames is not None and args.frames < 1):
        raise FingercountError("--runs and --frames must be >= 1, --warmup >= 0")
    settings = {"threads": threads, "warmup": warmup,
                "command": "fingercount " + " ".join(shlex.quote(a) for a in sys.argv[1:])}
    if args.pipeline:
        doc = _pipeline(args, cfg, threads, warmup, settings)
    else:
        doc = _invoke(args, cfg, threads, warmup, settings)
    print(rep.text_table(doc), end="")
    if args.json:
        rep.write_json(doc, args.json)
    if args.markdown:
        rep.write_markdown(doc, args.markdown)
    if args.plot:
        rep.plot(doc, args.plot)
    return 0


def _invoke(args: argparse.Namespace, cfg: Config, threads: list[int], warmup: int,
            settings: dict) -> dict:
    if args.camera or args.frames or args.mqtt:
        raise FingercountError("--camera, --frames and --mqtt belong to bench --pipeline")
    runs = args.runs or bench.DEFAULT_RUNS
    settings["runs"] = runs
    targets = bench.resolve_targets(args.targets or ([args.model] if args.model else []),
                                    cfg.resolved_models_dir(), args.precision)

    def progress(r: dict) -> None:
        print(f"  {r['model']} {r['precision']} x{r['threads']}: p50 {r['p50_ms']:.2f} ms",
              file=sys.stderr, flush=True)

    records = bench.run_invoke_bench(targets, threads, runs, warmup, progress)
    if args.data:
        _add_accuracy(records, targets, args, cfg, threads[0])
        settings["data"] = args.data
    return bench.report("invoke", records, settings)


def _add_accuracy(records: list[dict], targets: list, args: argparse.Namespace, cfg: Config,
                  threads: int) -> None:
    done: dict[str, dict] = {}
    for t in targets:
        if t.model in done:
            continue
        if t.package is None or t.package.single_file:
            pkg = resolve_package(str(t.file), cfg.resolved_models_dir())
        else:
            pkg = t.package
        precs = [x.precision for x in targets if x.model == t.model]
        if "fp32" in pkg.variants and "fp32" not in precs:
            precs.append("fp32")  # agreement needs fp32's labels even when not benchmarked
        done[t.model] = bench.accuracy_by_precision(pkg, precs, args.data, threads,
                                                    cfg.state_dir, cfg.camera.roi)
    for r in records:
        r.update(done.get(r["model"], {}).get(r["precision"], {}))


def _pipeline(args: argparse.Namespace, cfg: Config, threads: list[int], warmup: int,
              settings: dict) -> dict:
    if args.targets:
        raise FingercountError("bench --pipeline takes the model from --model, not as an argument")
    frames = args.frames or bench.DEFAULT_FRAMES
    precision = args.precision or cfg.model.precision
    target = None
    if args.mqtt and args.mqtt != "none":
        if cfg.mqtt.host == "embedded":
            raise FingercountError("bench --pipeline --mqtt needs a broker address (HOST[:PORT])")
        target = (cfg.mqtt.host, cfg.mqtt.port)
    settings.update({"frames": frames, "precision": precision, "model": cfg.model.name,
                     "camera": args.camera})
    records = bench.run_pipeline_bench(cfg, precision, threads, frames, warmup,
                                       args.camera, target)
    return bench.report("pipeline", records, settings)
