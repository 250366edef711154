"""What a user chose at run time (set_model, the capture label), kept across restarts.

A power cut must not undo a choice made from Home Assistant: the capture button would store
pupils' samples under another label. The config stays the authority: a model chosen over
MQTT is only restored while the config still names the model it replaced, so editing
config.yaml wins over an old choice.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from edge.durable import read_json, write_json

log = logging.getLogger(__name__)

CHOICES_FILE = "choices.json"
# set_model and a label reset it causes save at the same moment from two threads: each
# read-change-write must see the other's change
_lock = threading.Lock()
_warned: set[str] = set()  # an unreadable file is logged once, not by every reader


def load(state_dir: Path) -> dict[str, Any]:
    """The saved choices; {} when there are none or the file is unreadable (logged)."""
    path = Path(state_dir) / CHOICES_FILE
    try:
        return read_json(path)
    except (OSError, ValueError) as e:
        if str(path) not in _warned:
            _warned.add(str(path))
            log.warning("ignoring %s (%s): choices made over MQTT are not restored", path, e)
        return {}


def save(state_dir: Path, **changes: Any) -> None:
    """Merge changes into the saved choices (None removes a key); atomic, survives a power
    cut. A failure is logged, never raised: the choice still holds until the next restart."""
    path = Path(state_dir) / CHOICES_FILE
    with _lock:
        data = load(state_dir)
        for k, v in changes.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, data)
        except OSError as e:
            log.warning("cannot save %s (%s): the choice holds until the daemon restarts",
                        path, e.strerror or e)
