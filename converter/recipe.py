"""Recipes: one YAML per shipped model, with command-line overrides."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class RecipeError(ValueError):
    """A recipe file is missing a key or has a bad value."""


KINDS = ("mobilenet", "compact", "digits")


@dataclass
class Recipe:
    path: Path
    raw: dict

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, dotted: str, default: Any = None) -> Any:
        d: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(d, dict) or part not in d:
                return default
            d = d[part]
        return d

    @property
    def name(self) -> str:
        return str(self.raw["name"])


def _set(d: dict, dotted: str, value: Any) -> None:
    *head, last = dotted.split(".")
    for k in head:
        d = d.setdefault(k, {})
    d[last] = value


def load_recipe(path: Path | str, overrides: dict[str, Any] | None = None, toy: bool = False) -> Recipe:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe ({e.strerror or e})") from e
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping")
    for key in ("name", "version", "task", "kind", "labels", "input", "train"):
        if key not in raw:
            raise RecipeError(f"{path}: missing '{key}'")
    if raw["kind"] not in KINDS:
        raise RecipeError(f"{path}: kind must be one of {', '.join(KINDS)}, not {raw['kind']!r}")
    raw = copy.deepcopy(raw)
    if toy:
        for k, v in (raw.get("toy") or {}).items():
            _set(raw, k, v)
    for k, v in (overrides or {}).items():
        _set(raw, k, v)
    return Recipe(path, raw)


def parse_override(text: str) -> tuple[str, Any]:
    """'train.epochs=3' -> ('train.epochs', 3) (the value is read as YAML)."""
    if "=" not in text:
        raise RecipeError(f"--set expects KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), yaml.safe_load(v)
