"""fingercount run: the daemon."""

from __future__ import annotations

import argparse

from edge.config import Config


def main(args: argparse.Namespace, cfg: Config) -> int:
    from edge.daemon import run_daemon

    mqtt_enabled = (getattr(args, "mqtt", None) or "").lower() != "none"
    return run_daemon(cfg, mqtt_enabled=mqtt_enabled, print_changes=bool(args.print),
                      duration=args.duration)
