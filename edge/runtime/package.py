"""Model packages (models/<name>/model.json + files); see docs/model-package.md."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from edge.errors import ModelError

PRECISIONS = ("int8", "fp16", "fp32")
# Tasks whose packages carry no labels: the hand stage's models (palm boxes, landmarks).
UNLABELLED_TASKS = ("palm-detection", "hand-landmark")


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


# The input of a landmark counter: the hand stage's 21 landmarks (x, y, z).
LANDMARKS_INPUT = InputSpec(height=21, width=3, channels=1, color="landmarks", range=(0.0, 0.0))


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
    # A counter on hand landmarks ("counter": "landmarks") runs after the hand stage: its
    # input is the 21 landmarks, it has a head but no .tflite of its own.
    landmarks = meta.get("counter") == "landmarks"
    inp = _require(meta, "input", mj)
    try:
        spec = LANDMARKS_INPUT if landmarks else InputSpec(
            height=int(inp["height"]), width=int(inp["width"]), channels=int(inp.get("channels", 3)),
            color=str(inp.get("color", "rgb")), range=tuple(inp.get("range", (0, 255))))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"{mj}: bad 'input' ({e})") from e
    task = str(meta.get("task", "finger-count"))
    if task in UNLABELLED_TASKS:
        labels = []
    else:
        labels = _require(meta, "labels", mj)
        if not isinstance(labels, list) or not labels or not all(isinstance(x, (str, int)) for x in labels):
            raise ModelError(f"{mj}: 'labels' must be a non-empty list of labels")
        labels = [str(x) for x in labels]
        if len(set(labels)) != len(labels):
            raise ModelError(f"{mj}: 'labels' has duplicates")
    variants = _require(meta, "variants", mj)
    if not isinstance(variants, dict) or not (variants or landmarks):
        raise ModelError(f"{mj}: 'variants' must name at least one precision")
    if landmarks and not isinstance((meta.get("retrainable") or {}).get("head"), dict):
        raise ModelError(f"{mj}: a landmark counter needs retrainable.head (its head.npz)")
    for prec, entry in variants.items():
        if prec not in PRECISIONS or not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ModelError(f"{mj}: variants.{prec} must be one of {', '.join(PRECISIONS)} "
                             "with a 'file'")
    for key in ("retrainable", "metrics", "provenance"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise ModelError(f"{mj}: '{key}' must be an object")
    return ModelPackage(root=root, name=str(meta.get("name") or root.name), version=str(meta.get("version", "0")),
                        task=task, labels=labels, input=spec,
                        variants=variants, retrainable=meta.get("retrainable"),
                        metrics=meta.get("metrics") or {}, provenance=meta.get("provenance") or {},
                        meta=meta)


# What a bare .tflite is called, from its tensors (model.json names a package's variants).
FILE_PRECISIONS = ("fp32", "fp16", "dynamic-range", "int8", "int8-float-io", "int16x8")
_BOUNDARY_OPS = ("DELEGATE", "QUANTIZE", "DEQUANTIZE")


def tflite_precision(interp: Any) -> str:
    """One of FILE_PRECISIONS, from the compute ops' activation and weight dtypes and the
    I/O dtypes: int16 activations -> int16x8; int8 activations -> int8 (integer I/O) or
    int8-float-io; float16 constants -> fp16; float ops with int8 weights -> dynamic-range."""
    import numpy as np

    try:
        ops = interp._get_ops_details()  # private but present in litert/tflite-runtime/tf
        tensors = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    except Exception:  # an old runtime: fall back on the I/O dtypes alone
        ops, tensors = [], {}
    compute = [op for op in ops if op.get("op_name") not in _BOUNDARY_OPS]
    acts = {tensors[i] for op in compute for i in op["outputs"] if i in tensors}
    used = {tensors[i] for op in ops for i in op["inputs"] if i in tensors}
    io_int = any(np.dtype(d["dtype"]).kind in "iu" and np.dtype(d["dtype"]).itemsize <= 2
                 for d in interp.get_input_details())
    if np.dtype(np.int16) in acts:
        return "int16x8"
    if acts & {np.dtype(np.int8), np.dtype(np.uint8)} or (not ops and io_int):
        return "int8" if io_int else "int8-float-io"
    if np.dtype(np.float16) in used:
        return "fp16"
    if any(np.dtype(np.int8) in {tensors.get(i) for i in op["inputs"]} for op in compute):
        return "dynamic-range"
    return "fp32"


def _ints(shape: Any) -> list[int]:
    """A tensor shape as plain ints (error messages show [1, 10], not numpy reprs)."""
    return [int(s) for s in shape]


def single_tflite_package(path: Path, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    """Wrap a bare .tflite: input spec from its input tensor, labels given or indices, the
    precision read from its tensors (tflite_precision)."""
    from edge.runtime.interpreter import make_interpreter

    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from e
    interp = make_interpreter(data, 1, what=str(path))
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    shape = _ints(inp["shape"])
    if len(shape) == 4:
        h, w, c = shape[1], shape[2], shape[3]
    elif len(shape) == 3:
        h, w, c = shape[1], shape[2], 1
    else:
        raise ModelError(f"{path}: input shape {shape} is not an image")
    oshape = _ints(out["shape"])
    n_out = oshape[-1] if oshape else 1
    labels = list(labels) if labels else [str(i) for i in range(n_out)]
    prec = tflite_precision(interp)
    return ModelPackage(root=path.parent, name=path.stem, version="file", task="unknown", labels=labels,
                        input=InputSpec(h, w, c, "gray" if c == 1 else "rgb"),
                        variants={prec: {"file": path.name, "sha256": None, "bytes": len(data)}},
                        single_file=True)


def bare_tflite(spec: str, models_dir: Path) -> Optional[Path]:
    """The file `spec` names when it is a bare .tflite (whatever its suffix), not a package's
    model.json nor the name of an installed model; else None."""
    p = Path(spec).expanduser()
    if p.name == "model.json" or not p.is_file():
        return None
    if p.suffix == ".tflite" or "/" in spec or not (Path(models_dir) / spec / "model.json").exists():
        return p
    return None


def resolve_package(spec: str, models_dir: Path, labels: Optional[Sequence[str]] = None) -> ModelPackage:
    """--model NAME | DIR | FILE (a .tflite, whatever its suffix) -> ModelPackage."""
    p = Path(spec).expanduser()
    cand = Path(models_dir) / spec
    if p.name == "model.json" and p.is_file():
        return load_package(p.parent)
    bare = bare_tflite(spec, models_dir)
    if bare is not None:
        return single_tflite_package(bare, labels)
    if p.suffix == ".tflite" and "/" in spec and not p.exists():
        raise ModelError(f"{p}: no such file")
    if p.is_dir() and (p / "model.json").exists():
        return load_package(p)
    if (cand / "model.json").exists():
        return load_package(cand)
    if cand.is_dir():
        raise ModelError(f"{cand}: has no model.json, so it is not a model package")
    try:
        return _installed_by_name(spec, models_dir)
    except ModelError:
        if p.is_dir():
            raise ModelError(f"{p}: is a directory without a model.json, not a model") from None
        if p.suffix == ".tflite":
            raise ModelError(f"{p}: no such file") from None
        raise


def package_by_name(name: str, models_dir: Path) -> ModelPackage:
    """A package in models_dir named `name` (its folder, or the name inside its model.json),
    never a path or a file elsewhere: what an MQTT set_model may load."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", name):
        raise ModelError(f"model {name[:100]!r}: a model name is letters, digits and _.+-, not starting "
                         f"with '.' (a model in {models_dir}), not a path")
    cand = Path(models_dir) / name
    if (cand / "model.json").is_file():
        return load_package(cand)
    return _installed_by_name(name, models_dir)


def _installed_by_name(name: str, models_dir: Path) -> ModelPackage:
    """The one installed package whose model.json carries `name` (a package copied to a folder
    of another name is still found by the name inside it); ModelError naming what is there."""
    installed = list_packages(models_dir)
    by_name = [pkg for pkg in installed if pkg.name == name]
    if len(by_name) == 1:
        return by_name[0]
    known = ", ".join(sorted(x.root.name for x in installed)) or "none"
    if by_name:
        raise ModelError(f"model {name!r}: {len(by_name)} packages carry that name ({known}); "
                         "give the folder name")
    raise ModelError(f"model {name!r} not found in {models_dir} (installed: {known})")


def scan_packages(models_dir: Path) -> list[tuple[Path, ModelPackage | ModelError]]:
    """Every folder in models_dir with a model.json, in name order: its package, or why it
    cannot be loaded (a listing names broken packages instead of skipping them). Hidden
    folders are not packages: the converter builds in `.NAME.building` and renames it when done."""
    d = Path(models_dir)
    out: list[tuple[Path, ModelPackage | ModelError]] = []
    for sub in sorted(d.iterdir()) if d.is_dir() else []:
        if not sub.name.startswith(".") and (sub / "model.json").is_file():
            try:
                out.append((sub, load_package(sub)))
            except ModelError as e:
                out.append((sub, e))
    return out


def list_packages(models_dir: Path) -> list[ModelPackage]:
    """The loadable packages in models_dir."""
    return [pkg for _, pkg in scan_packages(models_dir) if isinstance(pkg, ModelPackage)]
