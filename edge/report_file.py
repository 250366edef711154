"""Reports the commands write (--json, --markdown): whole or not at all, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

from edge.errors import FingercountError


def write_report(path: str | Path, text: str) -> None:
    """Write text to path via a temporary file and a rename; on failure leave nothing behind."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, p)
    except OSError as e:
        if tmp.is_file():  # only our own temporary file
            tmp.unlink()
        raise FingercountError(f"cannot write {p}: {e.strerror or e}") from e
