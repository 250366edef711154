"""GET /api/model: the running model package as one .tar.gz, with the user's retrained head in it.

The archive holds one folder, a model package that `fingercount run --model FILE`,
`fingercount-convert evaluate FILE` (edge.runtime.archive unpacks it) and anything that reads
a package folder accept. With a retrained head, the folder is named <model>-<device_id>
(its own heads/ folder on any device, so a head retrained there never hides the exported
one), head.npz is the user's head, model.json lists its sha256 and sets retrainable.run_head:
the fused variants predate that head, so the runtime runs backbone + head instead of them.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from edge import __version__
from edge.runtime.classifier import Classifier, head_info
from edge.runtime.package import sha256_file


def _export_name(clf: Classifier, device_id: str) -> str:
    if clf.head is None:
        return clf.package.name
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", f"{clf.package.name}-{device_id}")[:100]


def export_filename(clf: Classifier, device_id: str) -> str:
    if clf.package.single_file:
        return clf.package.root.name if clf.package.root.is_file() else f"{clf.package.name}.tflite"
    return f"{_export_name(clf, device_id)}.tar.gz"


def write_export(clf: Classifier, device_id: str, dest_dir: Path) -> Path:
    """Write the archive into dest_dir (a temporary file the caller removes); returns its path."""
    pkg = clf.package
    tmp = tempfile.NamedTemporaryFile(prefix=".model-", suffix=".tar.gz", dir=dest_dir, delete=False)
    tmp.close()
    out = Path(tmp.name)
    if pkg.single_file:  # a bare .tflite given by path: the file itself
        out.write_bytes(Path(pkg.root).read_bytes() if Path(pkg.root).is_file() else
                        pkg.variant_bytes(clf.precision))
        return out
    name = _export_name(clf, device_id)
    meta: dict[str, Any] = json.loads((pkg.root / "model.json").read_text())
    head_file = None
    if clf.head is not None and clf.head_path is not None:
        head_file = Path(clf.head_path)
        meta["name"] = name
        rt = dict(meta.get("retrainable") or {})
        rt["head"] = {"file": "head.npz", "sha256": sha256_file(head_file),
                      "bytes": head_file.stat().st_size}
        rt["run_head"] = True
        meta["retrainable"] = rt
        meta["provenance"] = {**(meta.get("provenance") or {}), "exported": {
            "from": pkg.model_id(clf.precision), "device_id": device_id,
            "head": head_info(clf.head), "labels": list(clf.head.labels),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "by": f"fingercount {__version__} web page (GET /api/model)"}}
        # metrics describe the fused model as built, not the retrained head
        meta["metrics_of_shipped_head"] = meta.pop("metrics", {})
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:  # .tflite barely compresses
        for f in sorted(pkg.root.iterdir()):
            if f.name.startswith(".") or not f.is_file() or f.name == "model.json":
                continue
            src = head_file if (head_file is not None and f.name == "head.npz") else f
            tar.add(src, arcname=f"{name}/{f.name}", recursive=False)
        data = (json.dumps(meta, indent=2) + "\n").encode()
        ti = tarfile.TarInfo(f"{name}/model.json")
        ti.size, ti.mtime, ti.mode = len(data), int(time.time()), 0o644

        tar.addfile(ti, io.BytesIO(data))
    return out
