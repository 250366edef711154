"""Model packages (models/<name>/model.json + files); see docs/model-package.md."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from edge.errors import ModelError

PRECISIONS = ("int8", "fp16", "fp32")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    channels: int = 3
    color: str = "rgb"
    range: tuple[float, float] = (0.0, 255.0)


@dataclass
class ModelPackage:
    """A model package on disk, or a single .tflite wrapped as one."""

    root: Path
    name: str
    version: str
    task: str
    labels: list[str]
    input: InputSpec
    variants: dict[str, dict]
    retrainable: Optional[dict] = None
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    single_file: bool = False

    def model_id(self, precision: str) -> str:
        return f"{self.name}@{self.version}/{precision}"

    def has(self, precision: str) -> bool:
        return precision in self.variants

    def _entry_bytes(self, entry: dict, what: str) -> bytes:
        if not entry or "file" not in entry:
            raise ModelError(f"{self.name}: model.json has no file for {what}")
        path = self.root / entry["file"]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelError(f"{self.name}: cannot read {path}: {e.strerror or e}") from e
        want = entry.get("sha256")
        if not want and not self.single_file:
            raise ModelError(f"{self.name}: model.json gives no sha256 for {what}; "
                             "a package's files must be verifiable")
        if want and sha256_bytes(data) != want:
            raise ModelError(f"{self.name}: {path.name} does not match its sha256 in model.json "
                             "(corrupt or replaced file)")
        return data

    def variant_bytes(self, precision: str) -> bytes:
        if precision not in self.variants:
            have = ", ".join(self.variants) or "none"
            raise ModelError(f"{self.name}: no {precision} variant (has: {have})")
        return self._entry_bytes(self.variants[precision], f"{precision} variant")

    def backbone_bytes(self, precision: str) -> bytes:
        if not self.retrainable:
            raise ModelError(f"{self.name}: not a retrainable model")
        entry = self.retrainable.get("backbone", {}).get(precision)
        return self._entry_bytes(entry, f"{precision} backbone")

    def backbone_sha256(self, precision: str) -> str:
        if not self.retrainable:
            raise ModelError(f"{self.name}: not a retrainable model")
        return self.retrainable["backbone"][precision]["sha256"]

    def file_path(self, key: str) -> Path:
        """Path of a retrainable file ('head' or 'base_embeddings'), sha256-verified."""
        if not self.retrainable or key not in self.retrainable:
            raise ModelError(f"{self.name}: package has no {key}")
        entry = self.retrainable[key]
        self._entry_bytes(entry, key)
        return self.root / entry["file"]


def _require(meta: dict, key: str, where: Path) -> Any:
    if key not in meta:
        raise ModelError(f"{where}: model.json lacks '{key}'")
    return meta[key]


def load_package(root: Path | str) -> ModelPackage:
    root = Path(root)
    mj = root / "model.json"
    try:
        meta = json.loads(mj.read_text())
    except OSError as e:
        raise ModelError(f"{root}: no readable model.json ({e.strerror or e})") from e
    except json.JSONDecodeError as e:
        raise ModelError(f"{mj}: not valid JSON (line {e.lineno}: {e.msg})") from e
    if not isinstance(meta, dict):
        raise ModelError(f"{mj}: must hold a JSON object")
    inp = _require(meta, "input", mj)
    try:
        spec = InputSpec(height=int(inp["height"]), width=int(inp["width"]),
                         channels=int(inp.get("channels", 3)), color=str(inp.get("color", "rgb")),
                         range=tuple(inp.get("range", (0, 255))))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"{mj}: bad 'input' ({e})") from e
    labels = _require(meta, "labels", mj)
    if not isinstance(labels, list) or not labels or not all(isinstance(x, (str, int)) for x in labels):
        raise ModelError(f"{mj}: 'labels' must be a non-empty list of labels")
    labels = [str(x) for x in labels]
    if len(set(labels)) != len(labels):
        raise ModelError(f"{mj}: 'labels' has duplicates")
    variants = _require(meta, "variants", mj)
    if not isinstance(variants, dict) or not variants:
        raise ModelError(f"{mj}: 'variants' must name at least one precision")
    for prec, entry in variants.items():
        if prec not in PRECISIONS or not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ModelError(f"{mj}: variants.{prec} must be one of {', '.join(PRECISIONS)} "
                             "with a 'file'")
    for key in ("retrainable", "metrics", "provenance"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise ModelError(f"{mj}: '{key}' must be an object")
    return ModelPackage(root=root, name=str(meta.get("name") or root.name), version=str(meta.get("version", "0")),
                        task=str(meta.get("task", "finger-count")), labels=labels, input=spec,
                        variants=variants, retrainable=meta.get("retrainable"),
                        metrics=meta.get("metrics") or {}, provenance=meta.get("provenance") or {},
                        meta=meta)


def single_tflite_package(path: Path, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    """Wrap a bare .tflite: input spec from its input tensor, labels given or indices."""
    from edge.runtime.interpreter import make_interpreter

    data = path.read_bytes() if path.is_file() else b""
    interp = make_interpreter(data, 1, what=str(path))
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    shape = list(inp["shape"])
    if len(shape) == 4:
        h, w, c = int(shape[1]), int(shape[2]), int(shape[3])
    elif len(shape) == 3:
        h, w, c = int(shape[1]), int(shape[2]), 1
    else:
        raise ModelError(f"{path}: input shape {shape} is not an image")
    n_out = int(out["shape"][-1]) if len(out["shape"]) else 1
    labels = list(labels) if labels else [str(i) for i in range(n_out)]
    prec = "int8" if inp["dtype"].__name__ in ("uint8", "int8") else "fp32"
    return ModelPackage(root=path.parent, name=path.stem, version="file", task="unknown", labels=labels,
                        input=InputSpec(h, w, c, "gray" if c == 1 else "rgb"),
                        variants={prec: {"file": path.name, "sha256": None, "bytes": len(data)}},
                        single_file=True)


def resolve_package(spec: str, models_dir: Path, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    """--model NAME | DIR | FILE.tflite -> ModelPackage."""
    p = Path(spec).expanduser()
    if p.suffix == ".tflite" and (p.is_file() or "/" in spec):
        if not p.is_file():
            raise ModelError(f"{p}: no such file")
        return single_tflite_package(p, labels)
    if p.is_dir() and (p / "model.json").exists():
        return load_package(p)
    if p.name == "model.json" and p.is_file():
        return load_package(p.parent)
    cand = Path(models_dir) / spec
    if (cand / "model.json").exists():
        return load_package(cand)
    if cand.is_dir():
        raise ModelError(f"{cand}: has no model.json, so it is not a model package")
    installed = list_packages(models_dir)
    # A package copied to a folder of another name is still found by the name inside it.
    by_name = [pkg for pkg in installed if pkg.name == spec]
    if len(by_name) == 1:
        return by_name[0]
    known = ", ".join(sorted(x.root.name for x in installed)) or "none"
    if by_name:
        raise ModelError(f"model '{spec}': {len(by_name)} packages carry that name ({known}); "
                         "give the folder name")
    raise ModelError(f"model '{spec}' not found in {models_dir} (installed: {known})")


def scan_packages(models_dir: Path) -> list[tuple[Path, ModelPackage | ModelError]]:
    """Every folder in models_dir with a model.json, in name order: its package, or why it
    cannot be loaded (a listing names broken packages instead of skipping them)."""
    d = Path(models_dir)
    out: list[tuple[Path, ModelPackage | ModelError]] = []
    for sub in sorted(d.iterdir()) if d.is_dir() else []:
        if (sub / "model.json").is_file():
            try:
                out.append((sub, load_package(sub)))
            except ModelError as e:
                out.append((sub, e))
    return out


def list_packages(models_dir: Path) -> list[ModelPackage]:
    """The loadable packages in models_dir."""
    return [pkg for _, pkg in scan_packages(models_dir) if isinstance(pkg, ModelPackage)]
