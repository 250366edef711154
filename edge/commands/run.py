"""fingercount run: the daemon."""

from __future__ import annotations

import argparse
import re
import signal
import sys

from edge.config import Config
from edge.errors import FingercountError


def main(args: argparse.Namespace, cfg: Config) -> int:
    # run_daemon's steps, kept here so that a --duration run can say afterwards whether it
    # classified anything (the daemon object is needed for that).
    from edge.daemon import IGNORED_SIGNALS, Daemon, start_web_page

    mqtt_enabled = (getattr(args, "mqtt", None) or "").lower() != "none"
    for sig in IGNORED_SIGNALS:  # while the model loads, before the logging handlers
        signal.signal(sig, signal.SIG_IGN)
    d = Daemon(cfg, mqtt_enabled=mqtt_enabled, print_to=sys.stdout if args.print else None)
    if args.print:  # what the lines below mean, once
        s = cfg.smoothing
        print(f"('no hand': no hand in view; 'count unsure': a hand, but the mean confidence of the "
              f"last {s.window} frames is under {s.min_confidence:.0%}, as while the hand changes)",
              flush=True)
    start_web_page(d)
    d.install_signal_handlers()
    rc = d.run(args.duration)
    if args.duration is not None and not d.fstats.frames and getattr(d, "_stopped_by", None) is None:
        cam = d.camera
        err = re.sub(r" \((retrying|reopening)[^()]*\)$", "", cam.last_error or "")
        why = (f"the camera {cam.source.name} never opened" if not cam.opened.is_set()
               else f"the camera {cam.source.name} opened but delivered no frame")
        why += f" ({err})" if err else ""
        raise FingercountError(f"no frame was classified in {args.duration:g} s: {why}")
    return rc
