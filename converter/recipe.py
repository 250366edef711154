"""Recipes: one YAML per shipped model, with command-line overrides.

A recipe is checked whole (unknown keys, missing keys, types) when it is loaded, again after
the --toy settings and --set overrides, and before any data is read: a typo costs a
second, not a pre-training run."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml


class RecipeError(ValueError):
    """A recipe file is missing a key or has a bad value."""


KINDS = ("mobilenet", "compact", "digits", "landmarks")
TASKS = ("finger-count", "digit")
# DESIGN.md, model package: a finger-count model's labels are exactly "0".."5"
FINGER_COUNT_LABELS = ["0", "1", "2", "3", "4", "5"]

# A checker returns None when the value is fine, else what was expected ("an integer >= 1").
Check = Callable[[Any], Optional[str]]


def _int(lo: int) -> Check:
    def check(v: Any) -> Optional[str]:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= lo
        return None if ok else f"an integer >= {lo}"
    return check


def _num(lo: float, hi: Optional[float] = None, lo_open: bool = False) -> Check:
    def check(v: Any) -> Optional[str]:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and \
            (v > lo if lo_open else v >= lo) and (hi is None or v < hi)
        rng = f"> {lo}" if lo_open else f">= {lo}"
        return None if ok else f"a number {rng}" + (f" and < {hi}" if hi is not None else "")
    return check


def _choice(*options: Any) -> Check:
    def check(v: Any) -> Optional[str]:
        ok = any(v == o and type(v) is type(o) for o in options)
        return None if ok else "one of " + ", ".join(repr(o) for o in options)
    return check


def _str(v: Any) -> Optional[str]:
    return None if isinstance(v, str) and v.strip() else "a non-empty string (quote numbers)"


def _name(v: Any) -> Optional[str]:
    ok = isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v)
    return None if ok else "a name of letters, digits, '.', '_' and '-' (it names the package directory)"


def _labels(v: Any) -> Optional[str]:
    ok = (isinstance(v, list) and v and all(isinstance(x, str) and x.strip() for x in v)
          and len(set(v)) == len(v))
    return None if ok else 'a non-empty list of distinct quoted labels, e.g. ["0", "1"]'


def _int_list(v: Any) -> Optional[str]:
    ok = isinstance(v, list) and v and all(_int(1)(x) is None for x in v)
    return None if ok else "a non-empty list of integers >= 1"


def _pair(v: Any) -> Optional[str]:
    ok = isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(0)(x) is None for x in v)
    return None if ok else "a list of two numbers >= 0, e.g. [0.8, 1.2]"


def _bool(v: Any) -> Optional[str]:
    return None if isinstance(v, bool) else "true or false"


def _weights(v: Any) -> Optional[str]:
    return None if v is None or v == "imagenet" else "imagenet or null"


@dataclass(frozen=True)
class Field:
    check: Optional[Check] = None      # a leaf's checker; None for a mapping
    required: bool = False
    sub: Optional[dict[str, Field]] = None  # a mapping's keys


def _opt(check: Check) -> Field:
    return Field(check)


def _req(check: Check) -> Field:
    return Field(check, required=True)


def _augment_schema(kind: str) -> dict[str, Field]:
    from converter.augment import AugmentConfig  # numpy + OpenCV, no TensorFlow
    from converter.augment_digits import DigitAugmentConfig

    out = {}
    for f in dataclasses.fields(DigitAugmentConfig if kind == "digits" else AugmentConfig):
        d = f.default
        out[f.name] = _opt(_pair if isinstance(d, tuple) else _bool if isinstance(d, bool) else _num(0))
    return out


def _num_list(v: Any) -> Optional[str]:
    ok = isinstance(v, list) and v and all(_num(0, lo_open=True)(x) is None for x in v)
    return None if ok else "a non-empty list of numbers > 0"


def _groups(v: Any) -> Optional[str]:
    from edge.hands.features import GROUPS

    ok = isinstance(v, list) and v and all(x in GROUPS for x in v)
    return None if ok else f"a non-empty list of feature groups ({', '.join(GROUPS)})"


def landmarks_schema() -> dict[str, Field]:
    """Kind `landmarks`: a count head on hand landmarks (converter/landmark_build.py)."""
    fr = _num(0)
    return {
        "name": _req(_name), "version": _req(_str), "task": _req(_choice("finger-count")),
        "kind": _req(_choice("landmarks")), "labels": _req(_labels), "seed": _opt(_int(0)),
        "per_class": _opt(_int(1)), "why": _opt(_str),
        "hands": Field(sub={"models_dir": _opt(_str), "palm": _opt(_str), "landmark": _opt(_str),
                            "precision": _opt(_choice("fp32", "fp16", "int8"))}),
        "augment": Field(sub={"tilt_deg": _opt(fr), "z_scale": _opt(_pair), "jitter": _opt(fr),
                              "finger_length": _opt(_pair), "wrong_hand_p": _opt(_num(0, 1)),
                              "curl_copies": _opt(_int(0))}),
        "train": Field(sub={"copies": _opt(_int(0)), "l2": _opt(_num_list), "max_steps": _opt(_int(1)),
                            "groups": _opt(_groups), "retrain_groups": _opt(_groups),
                            "base_per_label": _opt(_int(0))}),
        "dev": Field(sub={"data": _opt(_str)}),
        "toy": Field(),
    }


def schema(kind: str) -> dict[str, Field]:
    """The keys a recipe of this kind may have (build.py reads exactly these)."""
    if kind == "landmarks":
        return landmarks_schema()
    lr = _num(0, lo_open=True)
    train = {"batch": _opt(_int(1)), "patience": _opt(_int(0)),
             "label_smoothing": _opt(_num(0, 1))}
    if kind == "digits":
        train |= {"epochs": _req(_int(1)), "lr": _req(lr), "average_last": _opt(_int(0))}
    else:
        train |= {"pretrain_epochs": _opt(_int(0)), "pretrain_lr": _opt(lr),
                  "head_epochs": _req(_int(1)), "head_lr": _req(lr)}
    if kind == "mobilenet":
        train |= {"finetune_epochs": _opt(_int(0)), "finetune_lr": _opt(lr)}
    s = {
        "name": _req(_name), "version": _req(_str), "task": _req(_choice(*TASKS)),
        "kind": _req(_choice(*KINDS)), "labels": _req(_labels),
        "input": Field(required=True, sub={"size": _req(_int(8)), "channels": _opt(_choice(1, 3)),
                                           "color": _opt(_choice("rgb", "gray")),
                                           # train on the edge hand stage's crops (converter/crops.py)
                                           "crop": _opt(_choice("hand"))}),
        "seed": _opt(_int(0)), "calibration": _opt(_int(1)), "per_class": _opt(_int(1)),
        "max_int8_bytes": _opt(_int(1)), "why": _opt(_str),
        # finger counts: the real-world dev set for the card (a folder, or 'none')
        "real_world": _opt(_str),
        "augment": Field(sub=_augment_schema(kind)),
        "train": Field(required=True, sub=train),
        "toy": Field(),  # dotted keys of this same schema; checked in _check_toy
    }
    if kind != "digits":
        s["pretrain_labels"] = _opt(_labels)
        # the hand stage of input.crop hand (default: the edge's, from the shipped models/)
        s["hands"] = Field(sub={"models_dir": _opt(_str), "palm": _opt(_str), "landmark": _opt(_str),
                                "precision": _opt(_choice("fp32", "fp16", "int8")),
                                "pad": _opt(_num(0, 2))})
    if kind == "digits":
        s["cnn"] = Field(sub={"widths": _opt(_int_list), "dense": _opt(_int(1)),
                              "dropout": _opt(_num(0, 1))})
    if kind == "compact":
        s["backbone"] = Field(sub={"widths": _opt(_int_list), "embedding_dim": _opt(_int(0))})
    elif kind == "mobilenet":
        s["backbone"] = Field(required=True, sub={
            "version": _opt(_choice(1, 2)), "alpha": _opt(_num(0, lo_open=True)),
            "embedding_dim": _opt(_int(1)), "embedding_norm": _opt(_bool),
            "weights": _opt(_weights)})
    return s


def _unknown(key: str, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f" (did you mean '{where}{close[0]}'?)" if close else \
        f" (known: {', '.join(sorted(known))})"
    return f"unknown key '{where}{key.rsplit('.', 1)[-1]}'{hint}"


def _problems(d: dict, s: dict[str, Field], where: str = "") -> list[str]:
    out = []
    for k in d:
        if k not in s:
            out.append(_unknown(str(k), list(s), where))
    for k, f in s.items():
        if k not in d or d[k] is None and f.sub is not None:
            if f.required:
                out.append(f"missing '{where}{k}'")
            continue
        v = d[k]
        if f.sub is not None:
            if not isinstance(v, dict):
                out.append(f"'{where}{k}' must be a mapping, not {v!r}")
            else:
                out += _problems(v, f.sub, f"{where}{k}.")
        elif f.check is not None and (why := f.check(v)) is not None:
            out.append(f"'{where}{k}' must be {why}, not {v!r}")
    return out


def _lookup(dotted: str, s: dict[str, Field]) -> Field:
    """The schema field of a dotted key; RecipeError naming the first unknown part."""
    parts = dotted.split(".")
    f = Field(sub=s)
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) + ("." if i else "")
        if part == "toy" and i == 0:
            raise RecipeError("'toy' holds the settings --toy applies; set those keys themselves")
        if f.sub is None or part not in f.sub:
            raise RecipeError(_unknown(part, list(f.sub or {}), where) if f.sub is not None
                              else f"unknown key '{dotted}' ('{where.rstrip('.')}' has no keys)")
        f = f.sub[part]
    return f


def _value_problem(dotted: str, f: Field, v: Any) -> Optional[str]:
    if f.sub is not None:
        if not isinstance(v, dict):
            return f"'{dotted}' must be a mapping, not {v!r}"
        probs = _problems(v, f.sub, f"{dotted}.")
        return probs[0] if probs else None
    why = f.check(v) if f.check is not None else None
    return f"'{dotted}' must be {why}, not {v!r}" if why else None


def _cross_problems(raw: dict) -> list[str]:
    out = []
    t = raw.get("train") or {}
    if raw.get("task") == "finger-count" and isinstance(raw.get("labels"), list) \
            and raw["labels"] != FINGER_COUNT_LABELS:
        out.append(f"'labels' must be {FINGER_COUNT_LABELS!r} for task finger-count (the package "
                   f"contract: the count is int(label)), not {raw['labels']!r}")
    pre = raw.get("pretrain_labels")
    if isinstance(pre, list) and isinstance(raw.get("labels"), list):
        missing = [lab for lab in raw["labels"] if lab not in pre]
        if missing:
            out.append(f"'pretrain_labels' must include every label (missing {', '.join(missing)})")
    if isinstance(t, dict) and isinstance(t.get("pretrain_epochs"), int) and t["pretrain_epochs"] > 0 \
            and "pretrain_lr" not in t:
        out.append("missing 'train.pretrain_lr' (train.pretrain_epochs is > 0)")
    inp = raw.get("input")
    if isinstance(inp, dict):
        # the model builders fix the channels: gray digits, RGB hands
        want = 1 if raw.get("kind") == "digits" else 3
        ch, color = inp.get("channels", 3), inp.get("color", "rgb")
        if ch != want:
            out.append(f"'input.channels' must be {want} for kind {raw.get('kind')}"
                       + ("" if "channels" in inp else " (it defaults to 3)"))
        elif color != ("gray" if want == 1 else "rgb"):
            out.append(f"'input.color' must be {'gray' if want == 1 else 'rgb'} for {ch} channel(s)")
        if inp.get("crop") == "hand" and raw.get("task") != "finger-count":
            out.append("'input.crop' hand is for task finger-count (the hand stage finds hands)")
        if raw.get("kind") == "mobilenet" and isinstance(inp.get("size"), int) and inp["size"] < 32:
            out.append("'input.size' must be >= 32 for kind mobilenet")
    return out


def validate(raw: dict, where: str) -> None:
    """RecipeError (one line: every problem, '; '-separated) unless raw is a whole recipe."""
    if raw.get("kind") not in KINDS:
        if "kind" not in raw:
            raise RecipeError(f"{where}: missing 'kind'")
        raise RecipeError(f"{where}: kind must be one of {', '.join(KINDS)}, not {raw['kind']!r}")
    s = schema(raw["kind"])
    probs = _problems(raw, s)
    toy = raw.get("toy")
    if toy is not None:
        if not isinstance(toy, dict):
            probs.append(f"'toy' must be a mapping of keys to values, not {toy!r}")
        else:
            for k, v in toy.items():
                try:
                    f = _lookup(str(k), s)
                except RecipeError as e:
                    probs.append(f"toy: {e}")
                    continue
                if (p := _value_problem(str(k), f, v)) is not None:
                    probs.append(f"toy: {p}")
    probs += _cross_problems(raw)
    if probs:
        raise RecipeError(f"{where}: " + "; ".join(probs))


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
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[last] = value


def load_recipe(path: Path | str, overrides: dict[str, Any] | None = None, toy: bool = False) -> Recipe:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe ({e.strerror or e})") from e
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from e
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping")
    validate(raw, str(path))
    s = schema(raw["kind"])
    raw = copy.deepcopy(raw)
    if toy:
        for k, v in (raw.get("toy") or {}).items():
            _set(raw, k, v)
    for k, v in (overrides or {}).items():
        try:
            f = _lookup(k, s)
        except RecipeError as e:
            raise RecipeError(f"--set {k}: {e}") from None
        if (p := _value_problem(k, f, v)) is not None:
            raise RecipeError(f"--set {k}: {p.replace(repr(k) + ' ', '', 1)}")
        _set(raw, k, v)
    validate(raw, f"{path} (after {'--toy and ' if toy else ''}--set)" if overrides else str(path))
    return Recipe(path, raw)


def parse_override(text: str) -> tuple[str, Any]:
    """'train.epochs=3' -> ('train.epochs', 3) (the value is read as YAML)."""
    if "=" not in text:
        raise RecipeError(f"--set expects KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k.strip(), yaml.safe_load(v)
    except yaml.YAMLError as e:
        raise RecipeError(f"--set {text}: the value is not valid YAML ({e})".replace("\n", " ")) from None
