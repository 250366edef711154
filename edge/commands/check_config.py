"""fingercount check-config: validate and print the effective configuration."""

from __future__ import annotations

import argparse

from edge.config import Config, dump_config


def main(args: argparse.Namespace, cfg: Config) -> int:
    # load_config already raised ConfigError (naming key and line) if anything was wrong.
    print(dump_config(cfg), end="")
    return 0
