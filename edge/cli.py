"""The `fingercount` command. main(argv) returns the exit code; errors are one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Optional

from edge import __version__
from edge.errors import FingercountError
from edge.redact import redact

PROG = "fingercount"

# command -> module under edge.commands with main(args, cfg)
_HANDLERS = {
    "run": "run",
    "classify": "classify",
    "eval": "evaluate",
    "bench": "bench",
    "capture": "capture",
    "samples": "samples",
    "retrain": "retrain",
    "rollback": "retrain",
    "models": "models",
    "check-config": "check_config",
}


def _csv_ints(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("thread counts must be >= 1")
    return vals


def _seconds(allow_zero: bool) -> Callable[[str], float]:
    """argparse type: a finite number of seconds, > 0 (or >= 0 with allow_zero)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
            raise argparse.ArgumentTypeError(f"must be {'0 or more' if allow_zero else 'more than 0'} "
                                             f"seconds, got {text!r}")
        return v
    return parse


def _model_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model name in the models directory, a package directory or a .tflite")
    p.add_argument("--precision", choices=["int8", "fp16", "fp32"], help="model variant")
    p.add_argument("--labels", help="comma-separated labels for a bare .tflite")
    p.add_argument("--threads", type=int, help="interpreter threads (default: config model.threads)")


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: an option given before the subcommand is not overwritten by the
    # subparser's default when it is absent after it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS, allow_abbrev=False)
    common.add_argument("--config", help="YAML config (default $FINGERCOUNT_CONFIG, else "
                        "/etc/fingercount/config.yaml when present)")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs (or FINGERCOUNT_DEBUG=1)")
    common.add_argument("--models-dir", help="where model packages live (default: shipped models/)")
    common.add_argument("--state-dir", help="samples, heads, outbox (default $STATE_DIRECTORY, "
                        "/var/lib/fingercount if writable, else ~/.local/state/fingercount)")

    # allow_abbrev=False everywhere: `--model` must not quietly mean `--models-dir`.
    p = argparse.ArgumentParser(prog=PROG, description="Count fingers on a camera and publish over MQTT.",
                                parents=[common], allow_abbrev=False)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def _parser(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], allow_abbrev=False, help=help)

    sub.required = True

    r = _parser("run", help="run the daemon")
    r.add_argument("--camera", help="picamera2 | opencv:N | opencv:/dev/videoN | opencv:rtsp://… | replay:PATH[@FPS]")
    _model_opts(r)
    r.add_argument("--mqtt", help="HOST[:PORT] or 'embedded'; 'none' to run without a broker")
    r.add_argument("--device-id", help="topic id (default: hostname)")
    r.add_argument("--print", action="store_true", help="print each stable count change")
    r.add_argument("--duration", type=_seconds(allow_zero=False), help="stop after S seconds")
    r.add_argument("--web", metavar="[HOST:]PORT", help="serve the web page there (default 127.0.0.1; "
                   "another address needs web.password_file); 'off' for none")

    c = _parser("classify", help="JSON prediction per image")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    _model_opts(c)
    c.add_argument("--landmarks", action="store_true", help="also print the 21 hand landmarks (x, y, z in pixels)")

    e = _parser("eval", help="score a model on class folders")
    e.add_argument("--data", required=True, help="directory of class folders named by label")
    _model_opts(e)
    e.add_argument("--json", help="write the result as JSON to this file")

    b = _parser("bench", help="latency benchmarks")
    b.add_argument("targets", nargs="*", metavar="MODEL_OR_TFLITE")
    b.add_argument("--precision", choices=["int8", "fp16", "fp32"], help="only this precision")
    b.add_argument("--labels", help=argparse.SUPPRESS)
    b.add_argument("--threads", type=_csv_ints, help="thread counts to sweep, e.g. 1,2,4 (default: config model.threads)")
    b.add_argument("--runs", type=int, default=None, help="timed invocations per case (default 100; a case stops after 30 s)")
    b.add_argument("--warmup", type=int, default=None, help="untimed invocations first (default 10)")
    b.add_argument("--json", help="write records as JSON")
    b.add_argument("--markdown", help="write a Markdown table")
    b.add_argument("--plot", help="draw latency per model and precision to a PNG")
    b.add_argument("--wide", "--verbose", dest="wide", action="store_true",
                   help="every column (wider than 100 characters) and the timing check's figures")
    b.add_argument("--data", help="class folders: add accuracy and agreement with fp32")
    b.add_argument("--pipeline", action="store_true", help="benchmark the whole per-frame pipeline")
    b.add_argument("--camera", help="camera for --pipeline (default: replay of the bundled hands)")
    b.add_argument("--model", help="model for --pipeline")
    b.add_argument("--frames", type=int, default=None, help="frames for --pipeline (default 300)")
    b.add_argument("--mqtt", help="publish to this broker during --pipeline")

    cap = _parser("capture", help="store labelled samples from the camera")
    cap.add_argument("--label", required=True, help="label to store the samples under, e.g. 3 or none")
    cap.add_argument("--camera", help="camera spec as for run (default: config camera.source)")
    cap.add_argument("--count", type=int, default=1, help="samples to take (default 1)")
    cap.add_argument("--interval", type=_seconds(allow_zero=True), default=0.2,
                     help="seconds between captures (0 or more)")
    _model_opts(cap)

    s = _parser("samples", help="list, count, export or remove stored samples")
    s.add_argument("action", choices=["list", "stats", "export", "remove"])
    s.add_argument("dest", nargs="?", help="export: target directory")
    s.add_argument("--label", help="only this label (remove: all of its samples)")
    s.add_argument("--sample", help="remove: this one sample, by its path or sha256 (or 8+ of its "
                                    "first hex digits), as `samples list` shows them")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    rt = _parser("retrain", help="retrain the head from the samples")
    _model_opts(rt)
    rt.add_argument("--force", action="store_true", help="swap in even if it scores worse")
    rt.add_argument("--json", help="write the result as JSON")

    rb = _parser("rollback", help="restore the previous head")
    _model_opts(rb)

    _parser("models", help="list installed models")

    cc = _parser("check-config", help="print the configuration, then try the model, camera, broker "
                 "and state dir as run would (exit 0: run has what it needs)")
    cc.add_argument("--camera", help="camera spec, as for run")
    _model_opts(cc)
    cc.add_argument("--mqtt", help="HOST[:PORT], 'embedded' or 'none', as for run")
    cc.add_argument("--device-id", help="topic id (default: hostname)")
    cc.add_argument("--timeout", type=_seconds(allow_zero=False), default=None,
                    help="seconds to wait for the camera's frame and the broker (default 5)")
    return p


def parse_host_port(text: str) -> tuple[str, Optional[int]]:
    """--mqtt HOST[:PORT], [IPv6][:PORT] or a bare IPv6 address -> (host, port or None)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise FingercountError(f"--mqtt {text!r}: expected [IPv6]:PORT")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:  # a name, IPv4, or an IPv6 address without brackets (then no port)
        host, port = text, None
    if not host.strip():
        raise FingercountError(f"--mqtt {text!r}: no host (HOST[:PORT])")
    if port is None:
        return host, None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise FingercountError(f"--mqtt: bad port in {text!r} (1..65535)")
    return host, int(port)


def config_overrides(args: argparse.Namespace) -> dict:
    """Command-line flags that map onto config fields."""
    o: dict = {}

    def put(path: str, value: object) -> None:
        if value is None:
            return
        d = o
        *head, last = path.split(".")
        for k in head:
            d = d.setdefault(k, {})
        d[last] = value

    put("models_dir", getattr(args, "models_dir", None))
    put("state_dir", getattr(args, "state_dir", None))
    put("camera.source", getattr(args, "camera", None))
    if args.command != "bench" or getattr(args, "pipeline", False):
        put("model.name", getattr(args, "model", None))
    put("model.precision", getattr(args, "precision", None) if args.command != "bench" else None)
    labels = getattr(args, "labels", None)
    if labels:
        put("model.labels", [x.strip() for x in labels.split(",")])
    threads = getattr(args, "threads", None)
    if isinstance(threads, int):
        put("model.threads", threads)
    put("device_id", getattr(args, "device_id", None))
    web = getattr(args, "web", None)
    if web is not None:
        o.setdefault("web", {})["listen"] = None if web.lower() in ("off", "none") else web
    mqtt = getattr(args, "mqtt", None)
    if mqtt and mqtt not in ("embedded", "none"):
        host, port = parse_host_port(mqtt)
        put("mqtt.host", host)
        put("mqtt.port", port)
    elif mqtt == "embedded":
        put("mqtt.host", "embedded")
    return o


def _redact_record(record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    clean = redact(msg)
    if clean != msg:
        record.msg, record.args = clean, None
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("config", "models_dir", "state_dir"):
        setattr(args, name, getattr(args, name, None))
    args.debug = getattr(args, "debug", False)
    debug = args.debug or bool(os.environ.get("FINGERCOUNT_DEBUG"))
    # The state dir holds photos of people's hands: nothing we create is for other users,
    # run by hand (umask 022) as under the unit (UMask=0027).
    os.umask(os.umask(0o027) | 0o027)
    try:
        from edge.config import load_config

        cfg = load_config(args.config, config_overrides(args))
        logging.basicConfig(level=logging.DEBUG if debug else getattr(logging, cfg.log_level),
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        for h in logging.getLogger().handlers:  # whatever a message quotes, no camera password
            h.addFilter(_redact_record)
        mod = importlib.import_module(f"edge.commands.{_HANDLERS[args.command]}")
        return int(mod.main(args, cfg) or 0)
    except FingercountError as e:
        if debug:
            raise
        print(f"{PROG}: error: {redact(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `fingercount … | head`: the reader left; say nothing more, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
