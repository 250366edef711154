"""The requirements a Raspberry Pi install needs, read from pyproject.toml, one per line.

The core dependencies, the `edge` extra and the build backend (systemd/install.sh builds the
package from source), with their environment markers evaluated for aarch64 Linux and the
given CPython: `pip download --platform` would evaluate them for the host instead.

    python tools/arm64/requirements.py pyproject.toml --python 3.11
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python < 3.11: pip vendors the same parser
    from pip._vendor import tomli as tomllib


def target_environment(python: str) -> dict[str, str]:
    env = {k: str(v) for k, v in default_environment().items()}
    env.update({"platform_machine": "aarch64", "platform_system": "Linux", "sys_platform": "linux",
                "os_name": "posix", "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
                "python_version": python, "python_full_version": f"{python}.0"})
    return env


def edge_requirements(pyproject: Path, python: str, extra: str = "edge") -> list[str]:
    doc = tomllib.loads(pyproject.read_text())
    project = doc["project"]
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise SystemExit(f"requirements.py: error: no [{extra}] extra in {pyproject}")
    specs = list(project.get("dependencies", [])) + list(extras[extra])
    specs += list(doc.get("build-system", {}).get("requires", []))
    env = target_environment(python)
    out: list[str] = []
    for spec in specs:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue  # not for an aarch64 board
        req.marker = None
        text = str(req)
        if text not in out:
            out.append(text)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pyproject", type=Path)
    ap.add_argument("--python", default="3.11", help="the board's CPython, major.minor")
    ap.add_argument("--extra", default="edge")
    args = ap.parse_args(argv)
    for line in edge_requirements(args.pyproject, args.python, args.extra):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
