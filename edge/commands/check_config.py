"""fingercount check-config: validate and print the effective configuration, then check what
`run` would open: the model, the camera (its module or device), the MQTT password and TLS files."""

from __future__ import annotations

import argparse
import importlib.util
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
        found += _camera_problems(*parse_spec(cfg.camera.source)[:2])
    except FingercountError as e:
        found.append(str(e))
    try:
        cfg.check_mqtt_files()
    except FingercountError as e:
        found.append(str(e))
    if cfg.web.listen is not None:
        try:
            cfg.web.password()
        except FingercountError as e:
            found.append(str(e))
        if importlib.util.find_spec("aiohttp") is None:
            found.append("web.listen: the web page needs aiohttp (pip install 'fingercount[edge]')")
    return found


def _camera_problems(kind: str, target: str) -> list[str]:
    """What stops the camera from opening that can be seen without opening it."""
    if kind == "picamera2" and importlib.util.find_spec("picamera2") is None:
        return ["camera.source picamera2: the picamera2 module is not installed (Raspberry Pi OS: "
                "apt install python3-picamera2, in a venv made with --system-site-packages)"]
    if kind == "opencv":
        dev = f"/dev/video{target}" if target.isdigit() else target
        if dev.startswith("/dev/") and not Path(dev).exists():
            return [f"camera.source: {dev} does not exist (is the camera plugged in?)"]
    if kind == "replay" and not Path(target).exists():
        return [f"camera.source: {target} does not exist"]
    return []


def main(args: argparse.Namespace, cfg: Config) -> int:
    # load_config already raised ConfigError (naming key and line) if a value was wrong.
    print(dump_config(cfg), end="")
    sys.stdout.flush()
    found = problems(cfg)
    if found:
        raise FingercountError("; ".join(found))
    return 0
