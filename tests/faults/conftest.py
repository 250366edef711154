"""Fixtures for the fault-injection suite (the harness is in tests/faults/harness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Daemon


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    made: list[Daemon] = []

    def make(port: int, camera: str, **kw: Any) -> Daemon:
        d = Daemon(tmp_path / f"d{len(made)}", port, camera, **kw)
        d.tmp.mkdir(parents=True, exist_ok=True)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture
def persistent_broker(broker_factory: Callable[..., Any], tmp_path: Path) -> Any:
    """mosquitto that keeps sessions across stop()/start() (for outage tests)."""
    store = tmp_path / "mosq-store"
    store.mkdir()
    return broker_factory(f"persistence true\npersistence_location {store}/\n"
                          "max_queued_messages 5000\n", name="persist")
