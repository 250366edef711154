"""tools/arm64/requirements.py: what `make test-arm64` downloads for the board, read from
pyproject.toml with markers evaluated for aarch64 (pip download --platform would use the host's)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("arm64_requirements", ROOT / "tools/arm64/requirements.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _names(reqs: list[str]) -> set[str]:
    from packaging.requirements import Requirement
    return {Requirement(r).name.lower() for r in reqs}


def test_edge_requirements_are_the_core_the_edge_extra_and_the_build_backend() -> None:
    reqs = _module().edge_requirements(ROOT / "pyproject.toml", "3.11")
    names = _names(reqs)
    assert {"numpy", "ai-edge-litert", "pydantic", "paho-mqtt", "setuptools"} <= names
    assert not any(n.startswith("tensorflow") for n in names)  # the board never gets TensorFlow
    assert all(";" not in r for r in reqs)  # markers already evaluated


def test_markers_are_evaluated_for_aarch64_not_for_this_host(tmp_path: Path) -> None:
    py = tmp_path / "pyproject.toml"
    py.write_text('[build-system]\nrequires = ["setuptools>=68"]\n[project]\nname = "x"\n'
                  'dependencies = ["numpy>=1.23"]\n[project.optional-dependencies]\n'
                  'edge = ["a-x86; platform_machine == \'x86_64\'", "b-arm; platform_machine != \'x86_64\'",\n'
                  '        "c-old; python_version < \'3.11\'", "d-any"]\n')
    assert _module().edge_requirements(py, "3.11") == ["numpy>=1.23", "b-arm", "d-any", "setuptools>=68"]
    assert "c-old" in _module().edge_requirements(py, "3.9")
