"""fingercount check-config: validate and print the effective configuration, then check what
`run` would open: the model, the camera spec, the MQTT password and TLS files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.config import Config, dump_config
from edge.errors import FingercountError


def problems(cfg: Config) -> list[str]:
    """What would stop `fingercount run` from starting with this configuration."""
    from edge.camera import parse_spec
    from edge.runtime.loader import open_classifier

    found = []
    models_dir = cfg.resolved_models_dir()
    if not models_dir.is_dir():
        found.append(f"models_dir {models_dir} does not exist")
    else:
        try:
            open_classifier(cfg)
        except FingercountError as e:
            found.append(f"model: {e}")
    try:
        kind, target, _ = parse_spec(cfg.camera.source)
        if kind == "replay" and not Path(target).exists():
            found.append(f"camera.source: {target} does not exist")
    except FingercountError as e:
        found.append(str(e))
    try:
        cfg.check_mqtt_files()
    except FingercountError as e:
        found.append(str(e))
    return found


def main(args: argparse.Namespace, cfg: Config) -> int:
    # load_config already raised ConfigError (naming key and line) if a value was wrong.
    print(dump_config(cfg), end="")
    sys.stdout.flush()
    found = problems(cfg)
    if found:
        raise FingercountError("; ".join(found))
    return 0
