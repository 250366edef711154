"""fingercount bench [MODEL_OR_TFLITE…] | bench --pipeline: latency benchmarks and reports."""

from __future__ import annotations

import argparse
import shlex
import sys

from edge import bench
from edge import bench_report as rep
from edge.config import Config
from edge.errors import FingercountError, ModelError
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
    if doc["errors"]:  # the measured cases are reported above; the exit status says not all were
        n = len(doc["errors"])
        raise FingercountError(f"{n} bench case(s) could not be measured (see 'failed' above)")
    return 0


def _invoke(args: argparse.Namespace, cfg: Config, threads: list[int], warmup: int,
            settings: dict) -> dict:
    if args.camera or args.frames or args.mqtt:
        raise FingercountError("--camera, --frames and --mqtt belong to bench --pipeline")
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

    # One named target that fails is one error line; over several, a broken one is reported
    # and the rest are still measured.
    records, errors = bench.run_invoke_bench(targets, threads, runs, warmup, progress,
                                             keep_going=len(specs) != 1)
    if args.data:
        measured = [t for t in targets if any(r["model"] == t.model and r["precision"] == t.precision
                                              for r in records)]
        errors += _add_accuracy(records, measured, args, cfg, threads[0])
        settings["data"] = args.data
    return bench.report("invoke", records, settings, errors)


def _add_accuracy(records: list[dict], targets: list, args: argparse.Namespace, cfg: Config,
                  threads: int) -> list[dict]:
    """Accuracy per measured model and precision; a model whose accuracy cannot be computed
    becomes an error record instead of ending the run."""
    done: dict[str, dict] = {}
    errors: list[dict] = []
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
        try:
            done[t.model] = bench.accuracy_by_precision(pkg, precs, args.data, threads,
                                                        cfg.state_dir, cfg.camera.roi)
        except ModelError as e:
            done[t.model] = {}
            errors.append({"model": t.model, "precision": ",".join(precs), "version": t.version,
                           "file": str(t.file), "threads": threads, "error": f"--data: {e}"})
            print(f"  {t.model}: accuracy FAILED: {e}", file=sys.stderr, flush=True)
    for r in records:
        r.update(done.get(r["model"], {}).get(r["precision"], {}))
    return errors


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
